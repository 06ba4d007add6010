//! Backends: where a population trains. One trait, population-first; the CPU backend is
//! always compiled and is the reference every other backend is checked against.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod resident;

pub use resident::{HostPopulation, TrainingPopulation};

use crate::data::Dataset;
use crate::error::Result;
use crate::population::{Evaluation, Population};

/// The minibatches of one epoch, shared by every member (common random numbers: trials
/// are compared on the same data in the same order).
#[derive(Clone, Debug)]
pub struct EpochPlan {
    /// Row order of the training set for this epoch.
    pub order: Vec<usize>,
    pub batch_size: usize,
}

pub trait Backend: Sync {
    fn name(&self) -> &'static str;

    /// Whether an empty population slot costs about as much time as a busy one, so that
    /// filling it is free: true of a GPU training small members (a step is latency-bound
    /// below the population that fills the GPU), false of a CPU, whose step time grows with
    /// every member. ASHA's `drain: auto` follows it.
    fn idle_slots_cost_time(&self) -> bool {
        false
    }

    /// How many members train at the same moment, when that is a handful (the CPU's
    /// worker threads); `None` where the whole population trains together (a GPU). A slot
    /// schedule whose file does not size it gets two slots per concurrent member here.
    fn concurrent_members(&self) -> Option<usize> {
        None
    }

    /// Where a population of `members` trains: the bytes available there (host memory for
    /// the CPU, free device memory for a GPU) and how many members hold a training
    /// workspace (activations and gradients of a minibatch) at once.
    fn memory_for(&self, members: usize) -> (u64, usize) {
        (crate::limits::available_memory(), members)
    }

    /// A population that trains on `train` and is validated on `val`, living where this
    /// backend trains. Sweeps work through it (and so through its verbs only); by default
    /// it is held in host memory and trained by [`Backend::train_epoch`].
    fn population<'d>(
        &'d self,
        train: &'d Dataset,
        val: &'d Dataset,
    ) -> Box<dyn TrainingPopulation + 'd> {
        Box::new(HostPopulation::new(self, train, val))
    }

    /// Trains every alive member for one epoch over `train` in `plan`'s order, then scores
    /// it on `val`, appending one [`crate::population::EpochMetrics`] to its history. A member
    /// that diverges gets its `failure` set and stops; no other member is affected. An
    /// error means the device failed (never a member's numbers).
    fn train_epoch(
        &self,
        pop: &mut Population,
        train: &Dataset,
        val: &Dataset,
        plan: &EpochPlan,
    ) -> Result<()>;

    /// Loss and accuracy of the member in `slot` on `rows`, without dropout. One member on
    /// a handful of rows (the final test evaluation, the sanity check): by default the CPU
    /// reference does it, with no round trip to a device.
    fn evaluate(&self, pop: &Population, slot: usize, rows: &Dataset) -> Result<Evaluation> {
        Ok(cpu::evaluate_params(
            &pop.members()[slot].spec.arch,
            pop.params(slot),
            rows,
        ))
    }
}

/// Which backend a command asked for (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The GPU when one is usable, else the CPU; says which and why.
    Auto,
    Cpu,
    Cuda,
}

/// The backend for `choice`, with a line saying what was chosen and why (for `auto`, or
/// when nothing needs saying, `None`). `cuda` without a usable GPU is an error that says
/// what is missing.
pub fn select(
    choice: BackendChoice,
    threads: Option<usize>,
) -> Result<(Box<dyn Backend>, Option<String>)> {
    let cpu = || -> Box<dyn Backend> {
        Box::new(threads.map_or_else(cpu::CpuBackend::with_all_cores, cpu::CpuBackend::new))
    };
    match (choice, open_cuda()) {
        (BackendChoice::Cpu, _) => Ok((cpu(), None)),
        (BackendChoice::Cuda, Ok((gpu, name))) => {
            Ok((gpu, Some(format!("backend: cuda ({name})"))))
        }
        (BackendChoice::Cuda, Err(why)) => Err(crate::error::Error::Device(format!(
            "--backend cuda: {why}"
        ))),
        (BackendChoice::Auto, Ok((gpu, name))) => {
            Ok((gpu, Some(format!("backend: auto chose cuda ({name})"))))
        }
        (BackendChoice::Auto, Err(why)) => {
            Ok((cpu(), Some(format!("backend: auto chose cpu ({why})"))))
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda() -> std::result::Result<(Box<dyn Backend>, String), String> {
    let gpu = cuda::CudaBackend::open().map_err(|e| e.to_string())?;
    let name = gpu.device().name.clone();
    Ok((Box::new(gpu), name))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> std::result::Result<(Box<dyn Backend>, String), String> {
    Err("this binary was built without the cuda feature".into())
}
