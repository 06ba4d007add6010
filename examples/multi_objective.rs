//! Two objectives at once: validation accuracy (maximised) against parameter count
//! (minimised) of MLPs on the bundled digits, tuned by multi-objective TPE, with a
//! constraint (at most 20,000 parameters). Prints the Pareto front: the models no other
//! model beats on both.
//!
//!     cargo run --release --example multi_objective -- [TRIALS] [EPOCHS]
//!
//! The trials are asked with define-by-run suggestions and told one value per objective
//! (`Study::tell_values`); `Study::best_trials` is the feasible front.

use popsweep::backend::cpu::CpuBackend;
use popsweep::backend::{Backend, EpochPlan};
use popsweep::data::{digits, split_stratified, SplitFractions};
use popsweep::error::{Error, Result};
use popsweep::model::hparams::OptimHparams;
use popsweep::model::{Arch, Hparams, MemberSpec};
use popsweep::population::Population;
use popsweep::rng::{permutation, Stream};
use popsweep::space::Space;
use popsweep::storage::Direction;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::Study;

const MAX_PARAMS: f64 = 20_000.0;

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
    let (n_trials, epochs) = (n_trials.unwrap_or(40), epochs.unwrap_or(6) as u64);
    let (data, _test) = split_stratified(&digits::load()?, SplitFractions::default(), 0);
    let backend = CpuBackend::with_all_cores();
    let mut study = Study::in_memory(Space::default(), SamplerKind::Tpe, true, 0)
        .and_then(|s| s.with_directions(&[Direction::Maximize, Direction::Minimize]))
        .map_err(Error::Run)?;

    for _ in 0..n_trials {
        let (trial, (lr, widths)) = study.ask_with(|t| {
            let lr = t.suggest_float("lr", 0.01, 1.0, true);
            let layers = t.suggest_int("layers", 1, 3, false);
            let widths: Vec<usize> = (0..layers)
                .map(|i| t.suggest_int(&format!("width{i}"), 4, 256, true) as usize)
                .collect();
            (lr, widths)
        })?;
        let arch = Arch::mlp(data.train.n_features, &widths, data.train.n_classes);
        let params = arch.param_count() as f64;
        let mut model = Population::new();
        model.insert(
            trial.number,
            MemberSpec {
                arch,
                hparams: Hparams {
                    optim: OptimHparams::sgd(lr as f32, 0.9, 0.0),
                    dropout: 0.0,
                    attn_dropout: 0.0,
                    augment: Default::default(),
                    batch_size: None,
                },
                seed: trial.number as u64,
                fold: None,
            },
        );
        for epoch in 1..=epochs {
            let plan = EpochPlan {
                order: permutation(data.train.len(), epoch, Stream::Shuffle, 0),
                batch_size: 32,
            };
            backend.train_epoch(&mut model, &data.train, &data.val, &plan)?;
        }
        let member = &model.members()[0];
        let accuracy = match (member.is_alive(), member.history.last()) {
            (true, Some(e)) => e.val_accuracy,
            _ => f64::NAN, // diverged: recorded failed
        };
        // Feasible when the constraint value is ≤ 0.
        study.tell_values(trial.number, &[accuracy, params], &[params - MAX_PARAMS])?;
    }

    let mut front = study.best_trials()?;
    front.sort_by(|a, b| a.values[1].total_cmp(&b.values[1]));
    println!("Pareto front of {n_trials} trials (at most {MAX_PARAMS} parameters):");
    println!(
        "{:>6}  {:>8}  {:>10}  widths",
        "trial", "accuracy", "parameters"
    );
    for t in &front {
        let widths: Vec<String> = (0..3)
            .filter_map(|i| t.params.get(&format!("width{i}")).map(|w| w.to_string()))
            .collect();
        println!(
            "{:>6}  {:>8.4}  {:>10}  {}",
            t.number,
            t.values[0],
            t.values[1],
            widths.join("-")
        );
    }
    Ok(())
}
