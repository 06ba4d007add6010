//! An objective written in Rust with pruning, as an Optuna user writes it: the objective
//! suggests its hyperparameters as it goes, trains for some epochs, reports the validation
//! loss after each and stops when the study's median pruner says so.
//!
//!     cargo run --release --example define_by_run -- [TRIALS] [EPOCHS]
//!
//! The model is a one-hidden-layer MLP on the bundled digits, trained by popsweep's CPU
//! engine as a population of one (a sweep trains many at once; this is the loop a user
//! writes around code of their own).

use popsweep::backend::cpu::CpuBackend;
use popsweep::backend::{Backend, EpochPlan};
use popsweep::data::{digits, split_stratified, SplitFractions};
use popsweep::error::{Error, Result};
use popsweep::model::hparams::OptimHparams;
use popsweep::model::{Arch, Hparams, MemberSpec};
use popsweep::population::Population;
use popsweep::pruning::PrunerSpec;
use popsweep::rng::{permutation, Stream};
use popsweep::space::Space;
use popsweep::storage::TrialState;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let n_trials = args
        .next()
        .transpose()
        .map_err(|e| Error::Run(format!("TRIALS: {e}")))?;
    let epochs = args
        .next()
        .transpose()
        .map_err(|e| Error::Run(format!("EPOCHS: {e}")))?;
    let (n_trials, epochs) = (n_trials.unwrap_or(30), epochs.unwrap_or(10) as u64);

    let (data, _test) = split_stratified(&digits::load()?, SplitFractions::default(), 0);
    let backend = CpuBackend::with_all_cores();
    // Optuna's MedianPruner(n_startup_trials=5, n_warmup_steps=2).
    let pruner =
        PrunerSpec::parse(r#"{"kind": "median", "n_warmup_steps": 2}"#).map_err(Error::Run)?;
    let mut study = Study::in_memory(Space::default(), SamplerKind::Tpe, false, 0)
        .and_then(|s| s.with_pruner(&pruner))
        .map_err(Error::Run)?;

    study.optimize(n_trials, |trial| {
        let lr = trial.suggest_float("lr", 1e-3, 1.0, true)?;
        let momentum = trial.suggest_float("momentum", 0.0, 0.95, false)?;
        let hidden = trial.suggest_int("hidden", 8, 128, true)? as usize;
        let mut model = Population::new();
        model.insert(
            trial.number(),
            MemberSpec {
                arch: Arch::mlp(data.train.n_features, &[hidden], data.train.n_classes),
                hparams: Hparams {
                    optim: OptimHparams::sgd(lr as f32, momentum as f32, 0.0),
                    dropout: 0.0,
                    attn_dropout: 0.0,
                    augment: Default::default(),
                    batch_size: None,
                },
                seed: trial.number() as u64,
                fold: None,
            },
        );
        let mut val_loss = f64::NAN;
        for epoch in 1..=epochs {
            let plan = EpochPlan {
                order: permutation(data.train.len(), epoch, Stream::Shuffle, 0),
                batch_size: 32,
            };
            backend.train_epoch(&mut model, &data.train, &data.val, &plan)?;
            let member = &model.members()[0];
            if !member.is_alive() {
                return Ok(Outcome::Failed); // diverged: the study records it failed
            }
            val_loss = member
                .history
                .last()
                .expect("an epoch was trained")
                .val_loss;
            trial.report(epoch, val_loss)?;
            if trial.should_prune()? {
                return Ok(Outcome::Pruned);
            }
        }
        Ok(Outcome::Complete(val_loss))
    })?;

    let trials = study.trials()?;
    let count = |state| trials.iter().filter(|t| t.state == state).count();
    println!(
        "{} trials: {} complete, {} pruned, {} failed",
        trials.len(),
        count(TrialState::Complete),
        count(TrialState::Pruned),
        count(TrialState::Failed)
    );
    let best = study
        .best()?
        .ok_or_else(|| Error::Run("no trial completed".into()))?;
    println!(
        "best trial {}: validation loss {:.4} with {}",
        best.number,
        best.value.unwrap_or(f64::NAN),
        serde_json::to_string(&best.params).expect("parameters serialize")
    );
    Ok(())
}
