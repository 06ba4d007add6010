//! The CPU population trainer: members are independent work items; each thread takes the
//! next member and runs its whole epoch (forward, backward, update for every minibatch)
//! while that member's weights stay hot in its core's cache, then scores it on validation.
//!
//! Why member-major rather than step-major: a small MLP's weights, gradient and momentum
//! fit in L2, so running all of a member's steps back to back streams only the shared
//! minibatches; interleaving members per step would evict them every step. The result of a
//! member never depends on which thread trained it or who else was in the population.

use super::gemm::GemmThreads;
use super::network::NetworkWorkspace;
use crate::backend::cpu::augment::augment_batch;
use crate::backend::cpu::network::{evaluate, forward_backward, update_running_stats, StepDropout};
use crate::backend::cpu::update::{UpdateStep, Updater};
use crate::backend::{Backend, EpochPlan};
use crate::data::{Dataset, Task};
use crate::error::Result;
use crate::model::Arch;
use crate::population::health::{check_batch_loss, check_params, divergence_limit, Divergence};
use crate::population::{EpochMetrics, Evaluation, Population, SlotMut};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Rows per forward pass when evaluating (bounds the workspace, not the result).
const EVAL_CHUNK: usize = 256;

#[derive(Clone, Debug)]
pub struct CpuBackend {
    threads: usize,
    /// The worker threads, built once: an epoch of a digits-sized population takes about
    /// a millisecond, as long as starting the threads again would. `None` for one thread.
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl CpuBackend {
    /// A backend using `threads` worker threads (at least one; one if the operating
    /// system refuses to start more).
    pub fn new(threads: usize) -> Self {
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("popsweep-cpu-{i}"))
                    .build()
                    .ok()
            })
            .flatten()
            .map(Arc::new);
        CpuBackend {
            threads: if pool.is_some() { threads } else { 1 },
            pool,
        }
    }

    /// One thread per available core.
    pub fn with_all_cores() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn concurrent_members(&self) -> Option<usize> {
        Some(self.threads)
    }

    /// Members train one per thread, each in its thread's workspace.
    fn memory_for(&self, members: usize) -> (u64, usize) {
        (crate::limits::available_memory(), members.min(self.threads))
    }

    fn train_epoch(
        &self,
        pop: &mut Population,
        train: &Dataset,
        val: &Dataset,
        plan: &EpochPlan,
    ) -> Result<()> {
        let shuffled = train.subset(&plan.order);
        // Each cross-validation fold walks the same shuffled order, skipping the rows it
        // does not train on; one copy of its rows per fold, shared by its members.
        let mut views: BTreeMap<usize, (Dataset, Dataset)> = BTreeMap::new();
        for m in pop.members().iter().filter(|m| m.is_alive()) {
            if let Some(fold) = &m.spec.fold {
                views.entry(fold.id).or_insert_with(|| {
                    let order: Vec<usize> = plan
                        .order
                        .iter()
                        .copied()
                        .filter(|&r| fold.in_train.get(r).copied().unwrap_or(false))
                        .collect();
                    (train.subset(&order), val.subset(&fold.val_rows))
                });
            }
        }
        let mut work: Vec<SlotMut<'_>> = pop
            .slots_mut()
            .into_iter()
            .filter(|s| s.member.is_alive())
            .collect();
        // Longest first, so the last member to start is a cheap one (LPT balancing).
        work.sort_by_key(|s| std::cmp::Reverse(s.member.spec.arch.macs_per_sample()));
        let members_left = AtomicUsize::new(work.len());
        let queue = Mutex::new(work);
        let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let train_all = || {
            // Every large GEMM splits into one block per core (bit-identical, see
            // `gemm.rs`); a block waits in its thread's queue and runs there unless an idle
            // core takes it. So a core whose members are done works on the others' GEMMs
            // instead of idling until the slowest member ends the epoch.
            let _gemm = GemmThreads::set(self.threads);
            while let Some(slot) = next() {
                let batch = slot
                    .member
                    .spec
                    .hparams
                    .batch_size
                    .unwrap_or(plan.batch_size);
                let (rows, val) = match &slot.member.spec.fold {
                    Some(fold) => {
                        let (t, v) = &views[&fold.id];
                        (t, v)
                    }
                    None => (&shuffled, val),
                };
                busy(|| train_member_epoch(slot, rows, val, batch));
                members_left.fetch_sub(1, Ordering::Release);
            }
        };
        match &self.pool {
            // One job per core: each trains members while any are left, then helps with
            // the GEMM blocks of those still training until the epoch ends.
            Some(pool) => pool.scope(|scope| {
                for _ in 0..self.threads {
                    scope.spawn(|_| {
                        train_all();
                        help_until_done(&members_left);
                    });
                }
            }),
            None => train_all(),
        }
        Ok(())
    }
}

thread_local! {
    /// Whether this thread is training a member or helping: a thread that steals another
    /// core's not-yet-started job while it waits inside one of these must not start
    /// helping there (see [`help_until_done`]).
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread marked [`BUSY`], restoring the mark it had.
fn busy<R>(f: impl FnOnce() -> R) -> R {
    let was = BUSY.with(|b| b.replace(true));
    let result = f();
    BUSY.with(|b| b.set(was));
    result
}

/// Runs the GEMM blocks that the members still training put in rayon's queues until
/// `members_left` is 0: a core whose members are done spins here instead of sleeping.
///
/// Why spin: rayon puts an idle worker to sleep after some tens of µs, and waking it takes
/// about as long as the half of a member's GEMM it would run (an MLP layer of 256 units at
/// batch 32 is 2 M multiply-adds, some 40 µs). So a lone member — a final retrain, the last
/// rung of a bracket — ran its split GEMMs on one core: 0.55 s with one thread or two for
/// the digits retrain of a 64-256-256-256-10 MLP. The spin lasts only while this epoch's
/// members train, and yields the core to the system between polls.
///
/// A thread that gets here inside a member's step or another helper (it stole a job not
/// yet started while waiting for a GEMM block) returns at once: spinning there until every
/// member is done would wait on the member under it on its own stack.
fn help_until_done(members_left: &AtomicUsize) {
    if BUSY.with(Cell::get) {
        return;
    }
    busy(|| {
        while members_left.load(Ordering::Acquire) > 0 {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::yield_now();
            }
        }
    });
}

/// Loss and accuracy of a model given by its architecture and flat parameters.
pub fn evaluate_params(arch: &Arch, params: &[f32], rows: &Dataset) -> Evaluation {
    let mut ws = NetworkWorkspace::new(arch, EVAL_CHUNK);
    let sums = evaluate(
        arch,
        params,
        &rows.features,
        rows.targets(),
        &mut ws,
        EVAL_CHUNK,
    );
    let n = rows.len().max(1) as f64;
    Evaluation {
        loss: sums.loss / n,
        accuracy: accuracy(rows.task, sums.correct, n),
    }
}

/// The fraction of `rows` classified correctly; NaN (not defined) for regression.
fn accuracy(task: Task, correct: usize, rows: f64) -> f64 {
    match task {
        Task::Classification => correct as f64 / rows,
        Task::Regression => f64::NAN,
    }
}

/// One epoch of one member over `shuffled` (already in this epoch's order).
fn train_member_epoch(slot: SlotMut<'_>, shuffled: &Dataset, val: &Dataset, batch_size: usize) {
    // Wall time on its thread (`epoch_seconds`): it counts blocks of its GEMMs that idle
    // cores took, and blocks of another member's that its thread ran while waiting for them.
    let started = std::time::Instant::now();
    let SlotMut {
        member,
        params,
        moment1,
        moment2,
    } = slot;
    let arch = &member.spec.arch;
    let hp = member.spec.hparams;
    let d = shuffled.n_features;
    // A batch larger than the data is the whole data: the workspace is sized for the rows
    // a step can really have, not for the request (`batch_size: 2^63` is a full batch).
    let batch_size = batch_size.clamp(1, shuffled.len().max(1));
    let mut ws = NetworkWorkspace::new(arch, batch_size);
    let mut grad = vec![0.0f32; params.len()];
    let trainable = arch.trainable_params();
    let updater = Updater::new(arch, batch_size, trainable);
    let (mut loss_sum, mut correct) = (0.0, 0usize);
    let (mut norm_sum, mut nonfinite, mut steps) = (0.0f64, 0u64, 0usize);
    let epoch = member.epochs + 1;
    let steps_per_epoch = shuffled.len().div_ceil(batch_size.max(1));
    // The member's own augmented copy of each shared minibatch.
    let mut augmented = if hp.augment.is_active() {
        vec![0.0f32; batch_size * d]
    } else {
        Vec::new()
    };
    let (rows, width) = (shuffled.len(), arch.outputs());
    let divergence_limit = divergence_limit(shuffled.task, width);
    for start in (0..rows).step_by(batch_size.max(1)) {
        let n = batch_size.min(rows - start);
        let xs = &shuffled.features[start * d..(start + n) * d];
        let ys = shuffled.targets().slice(start, n, width);
        let dropout = StepDropout {
            rate: hp.dropout,
            attn_rate: hp.attn_dropout,
            seed: member.spec.seed,
            step: member.steps,
        };
        let xs = if hp.augment.is_active() {
            let out = &mut augmented[..xs.len()];
            let key = (member.spec.seed, member.steps);
            augment_batch(hp.augment, key, xs, arch.input_image(), out);
            &*out
        } else {
            xs
        };
        let sums = forward_backward(arch, params, xs, ys, Some(dropout), &mut ws, &mut grad);
        if let Err(reason) = check_batch_loss(sums.loss / n as f64, divergence_limit) {
            member.failure = Some(Divergence {
                epoch,
                step: member.steps,
                reason,
            });
            return;
        }
        steps += 1;
        let step = member.steps + 1;
        let at = UpdateStep {
            optim: &hp.optim,
            step,
            lr_factor: hp.optim.schedule.factor(step, steps_per_epoch),
        };
        // Only the trainable front of the slice; batch norm's running statistics behind
        // it follow the batches instead.
        let t = trainable;
        let moments = (&mut moment1[..t], &mut moment2[..t]);
        let (squares, bad) = updater.step(at, &mut params[..t], &grad[..t], moments);
        norm_sum += squares.sqrt();
        nonfinite += bad;
        update_running_stats(&ws, params);
        member.steps += 1;
        loss_sum += sums.loss;
        correct += sums.correct;
    }
    if let Err(reason) = check_params(params) {
        member.failure = Some(Divergence {
            epoch,
            step: member.steps,
            reason,
        });
        return;
    }
    let n = shuffled.len().max(1) as f64;
    let scored = evaluate_params(arch, params, val);
    member.epochs = epoch;
    member.history.push(EpochMetrics {
        grad_norm: Some(norm_sum / steps.max(1) as f64),
        nonfinite_grads: Some(nonfinite),
        epoch,
        train_loss: loss_sum / n,
        train_accuracy: accuracy(shuffled.task, correct, n),
        val_loss: scored.loss,
        val_accuracy: scored.accuracy,
    });
    member.train_seconds += started.elapsed().as_secs_f64();
}
