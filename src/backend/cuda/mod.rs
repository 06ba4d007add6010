//! The CUDA backend: the population trained by the kernels in `kernels/`, each with a CPU
//! twin in `backend/cpu/` that it is tested against (tests/cuda_parity.rs).
//!
//! A sweep's population lives on the device ([`CudaPopulation`]): the data and the
//! members' weights and moments are copied there once, every minibatch is a fixed number of
//! launches for all members at once, and after an epoch only the per-member sums come back.
//! A member that diverges is marked dead by the loss kernel before its update, exactly where
//! the CPU backend stops it.

pub mod activation;
pub mod attention;
pub mod conv;
pub mod device;
pub mod device_layout;
pub mod dropout;
pub mod epoch;
pub mod gather;
pub mod layout;
pub mod linear;
pub mod loss;
pub mod network;
pub mod network_population;
pub mod norm;
pub mod optim;
pub mod plan;
pub mod pool;
pub mod population;
pub mod resident;
pub mod slots;
pub mod tokens;

pub use device::{Device, Transfer, Unavailable};
pub use population::DevicePopulation;
pub use resident::CudaPopulation;

use crate::backend::{Backend, EpochPlan, TrainingPopulation};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::population::Population;
use cudarc::driver::DriverError;
use std::sync::Arc;

/// Rows per evaluation pass (at least the batch size; bounds the activation buffers).
const EVAL_ROWS: usize = 512;

pub struct CudaBackend {
    dev: Arc<Device>,
}

fn device_error(e: DriverError) -> Error {
    Error::Device(format!("CUDA driver error: {e}"))
}

impl CudaBackend {
    pub fn open() -> std::result::Result<Self, Unavailable> {
        Ok(CudaBackend {
            dev: Device::open()?,
        })
    }

    pub fn device(&self) -> &Arc<Device> {
        &self.dev
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn idle_slots_cost_time(&self) -> bool {
        true
    }

    /// Every member of a resident population keeps its workspace on the device.
    fn memory_for(&self, members: usize) -> (u64, usize) {
        let free = self
            .dev
            .ctx
            .mem_get_info()
            .map_or(u64::MAX, |(free, _)| free as u64);
        (free, members)
    }

    fn population<'d>(
        &'d self,
        train: &'d Dataset,
        val: &'d Dataset,
    ) -> Box<dyn TrainingPopulation + 'd> {
        Box::new(CudaPopulation::new(self, train, val))
    }

    /// One epoch of a host population, through a device population made for it and
    /// exported back: the parity tests' entry point. Sweeps keep theirs on the device.
    fn train_epoch(
        &self,
        pop: &mut Population,
        train: &Dataset,
        val: &Dataset,
        plan: &EpochPlan,
    ) -> Result<()> {
        let mut resident = CudaPopulation::new(self, train, val);
        for slot in 0..pop.len() {
            resident.import(pop.export(slot))?;
        }
        resident.train(plan)?;
        let mut trained = Population::new();
        for slot in 0..resident.len() {
            trained.import(resident.export(slot)?);
        }
        *pop = trained;
        Ok(())
    }
}
