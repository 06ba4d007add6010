//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use popsweep::backend::cpu::optim::OptimHparams;
use popsweep::backend::cpu::CpuBackend;
use popsweep::backend::{Backend, EpochPlan};
use popsweep::data::{digits, split_stratified, SplitFractions, TuningData};
use popsweep::model::{Hparams, MemberSpec, MlpArch};
use popsweep::rng::{permutation, Stream};
use popsweep::train::Population;

pub fn digits_tuning() -> TuningData {
    split_stratified(&digits::load().unwrap(), SplitFractions::default(), 11).0
}

pub fn spec(hidden: &[usize], lr: f32, momentum: f32, dropout: f32, seed: u64) -> MemberSpec {
    MemberSpec {
        arch: MlpArch::new(64, hidden, 10),
        hparams: Hparams {
            optim: OptimHparams::sgd(lr, momentum, 1e-4),
            dropout,
            augment: Default::default(),
            batch_size: None,
        },
        seed,
        fold: None,
    }
}

/// Trains `specs` together as one population for `epochs` epochs with shared minibatches.
pub fn train_together(
    specs: &[MemberSpec],
    data: &TuningData,
    epochs: usize,
    threads: usize,
) -> Population {
    train_on(&CpuBackend::new(threads), specs, data, epochs)
}

/// As [`train_together`], on any backend.
pub fn train_on(
    backend: &dyn Backend,
    specs: &[MemberSpec],
    data: &TuningData,
    epochs: usize,
) -> Population {
    let mut pop = Population::new();
    for (trial, spec) in specs.iter().enumerate() {
        pop.insert(trial, spec.clone());
    }
    for epoch in 0..epochs {
        let plan = EpochPlan {
            order: permutation(data.train.len(), 99, Stream::Shuffle, epoch as u32),
            batch_size: 32,
        };
        backend
            .train_epoch(&mut pop, &data.train, &data.val, &plan)
            .unwrap();
    }
    pop
}
