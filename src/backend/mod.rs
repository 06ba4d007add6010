//! Backends: where a population trains. One trait, population-first; the CPU backend is
//! always compiled and is the reference every other backend is checked against.

pub mod cpu;

use crate::data::Dataset;
use crate::train::{Evaluation, Population};

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

    /// Trains every alive member for one epoch over `train` in `plan`'s order, then scores
    /// it on `val`, appending one [`crate::train::EpochMetrics`] to its history. A member
    /// that diverges gets its `failure` set and stops; no other member is affected.
    fn train_epoch(&self, pop: &mut Population, train: &Dataset, val: &Dataset, plan: &EpochPlan);

    /// Loss and accuracy of the member in `slot` on `rows`, without dropout.
    fn evaluate(&self, pop: &Population, slot: usize, rows: &Dataset) -> Evaluation;
}
