//! The population as the sweep sees it: one that lives where it trains. The driver speaks
//! the scheduler's verbs — insert, retain, copy, set hyperparameters, train, evaluate — and
//! a member's weights and optimizer state leave the backend only through `export`. A
//! backend that keeps its population on a device keeps it there between these calls.
//!
//! [`HostPopulation`] is the population of a backend that trains from host memory (the CPU
//! backend). The CUDA backend's own, `backend::cuda::CudaPopulation`, stays on the device.

use super::{Backend, EpochPlan};
use crate::data::Dataset;
use crate::error::Result;
use crate::model::{Fold, Hparams, MemberSpec};
use crate::population::{Evaluation, ExportedMember, Member, Population};
use std::sync::Arc;

pub trait TrainingPopulation {
    /// Every slot's bookkeeping and per-epoch metrics, in slot order.
    fn members(&self) -> &[Member];

    fn len(&self) -> usize {
        self.members().len()
    }

    fn is_empty(&self) -> bool {
        self.members().is_empty()
    }

    /// A new member in a new last slot, with weights drawn from its seed and zero optimizer
    /// state; returns the slot.
    fn insert(&mut self, trial: usize, spec: MemberSpec) -> usize;

    /// A member exported elsewhere, whole, in a new last slot; returns the slot.
    fn import(&mut self, state: ExportedMember) -> Result<usize>;

    /// Slot `slot`'s whole state: the only way weights leave the backend.
    fn export(&self, slot: usize) -> Result<ExportedMember>;

    /// Keeps the slots for which `keep` holds, in order; the kept members are unchanged.
    fn retain(&mut self, keep: &dyn Fn(&Member) -> bool);

    /// PBT's exploit: slot `to` takes slot `from`'s architecture, weights, optimizer state
    /// and step count, keeping its own trial, seed, hyperparameters and history.
    fn copy(&mut self, from: usize, to: usize);

    /// PBT's explore: new hyperparameters for a slot, its architecture unchanged.
    fn set_hparams(&mut self, slot: usize, hparams: Hparams);

    /// Cross-validation: the view of the data the member in `slot` trains and is
    /// validated on.
    fn set_fold(&mut self, slot: usize, fold: Arc<Fold>);

    /// Marks a member failed without training it (over the sweep's parameter budget).
    fn refuse(&mut self, slot: usize, reason: String);

    /// One unit of training of every alive member in `plan`'s order, then validation;
    /// each member's metrics are appended to its history. An error is the device's, never
    /// a member's numbers.
    fn train(&mut self, plan: &EpochPlan) -> Result<()>;

    /// Loss and accuracy of the member in `slot` on `rows`, without dropout.
    fn evaluate(&self, slot: usize, rows: &Dataset) -> Result<Evaluation>;
}

/// A population held in host memory and trained by `backend` one epoch at a time.
pub struct HostPopulation<'d, B: Backend + ?Sized> {
    backend: &'d B,
    train: &'d Dataset,
    val: &'d Dataset,
    pop: Population,
}

impl<'d, B: Backend + ?Sized> HostPopulation<'d, B> {
    pub fn new(backend: &'d B, train: &'d Dataset, val: &'d Dataset) -> Self {
        HostPopulation {
            backend,
            train,
            val,
            pop: Population::new(),
        }
    }
}

impl<B: Backend + ?Sized> TrainingPopulation for HostPopulation<'_, B> {
    fn members(&self) -> &[Member] {
        self.pop.members()
    }

    fn insert(&mut self, trial: usize, spec: MemberSpec) -> usize {
        self.pop.insert(trial, spec)
    }

    fn import(&mut self, state: ExportedMember) -> Result<usize> {
        Ok(self.pop.import(state))
    }

    fn export(&self, slot: usize) -> Result<ExportedMember> {
        Ok(self.pop.export(slot))
    }

    fn retain(&mut self, keep: &dyn Fn(&Member) -> bool) {
        self.pop.retain(keep);
    }

    fn copy(&mut self, from: usize, to: usize) {
        self.pop.copy_weights(from, to);
    }

    fn set_hparams(&mut self, slot: usize, hparams: Hparams) {
        self.pop.set_hparams(slot, hparams);
    }

    fn set_fold(&mut self, slot: usize, fold: Arc<Fold>) {
        self.pop.set_fold(slot, fold);
    }

    fn refuse(&mut self, slot: usize, reason: String) {
        self.pop.refuse(slot, reason);
    }

    fn train(&mut self, plan: &EpochPlan) -> Result<()> {
        self.backend
            .train_epoch(&mut self.pop, self.train, self.val, plan)
    }

    fn evaluate(&self, slot: usize, rows: &Dataset) -> Result<Evaluation> {
        self.backend.evaluate(&self.pop, slot, rows)
    }
}
