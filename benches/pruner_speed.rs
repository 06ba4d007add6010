//! The cost of `should_prune` in a study holding 1,000 complete trials of 100 steps each
//! (with successive-halving rung values at steps 1, 4, 16 and 64), as a training loop
//! calls it: a new trial reports steps 0..100 and asks after each. Every pruner of Optuna
//! 5 at its defaults. `bench/pruner_speed.py` runs Optuna's side and this one alternately
//! and prints the ratios.
//!
//!     cargo bench --bench pruner_speed [-- --trials N]
//!
//! Prints one JSON line per pruner: {"pruner": NAME, "us_per_call": MICROSECONDS}.

use popsweep::pruning::PrunerSpec;
use popsweep::space::Space;
use popsweep::storage::{MemoryStorage, Op, Storage, TrialState};
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};
use std::time::Instant;

pub const PRUNERS: [&str; 7] = [
    "median",
    "percentile",
    "successive_halving",
    "hyperband",
    "threshold",
    "patient",
    "wilcoxon",
];

/// The same curves as bench/pruner_speed.py: a loss decaying to a trial-specific floor.
fn value(trial: usize, step: u64) -> f64 {
    let floor = (trial * 7919 % 1000) as f64 / 1000.0;
    floor + (-(step as f64) / 30.0).exp() + 0.01 * ((trial as f64) * (step as f64)).sin()
}

fn spec(name: &str) -> PrunerSpec {
    match name {
        "percentile" => PrunerSpec::parse(r#"{"kind": "percentile", "percentile": 25}"#),
        "threshold" => PrunerSpec::parse(r#"{"kind": "threshold", "upper": 10}"#),
        "patient" => PrunerSpec::parse(r#"{"kind": "patient", "patience": 5}"#),
        other => PrunerSpec::parse(other),
    }
    .expect("a valid pruner")
}

fn study(pruner: &PrunerSpec, n: usize) -> Study {
    let mut storage = MemoryStorage::default();
    let storage_ref: &mut dyn Storage = &mut storage;
    for trial in 0..n {
        storage_ref
            .transact(|_| {
                let mut ops = vec![Op::Ask {
                    trial,
                    params: Default::default(),
                    enqueued: false,
                }];
                ops.extend((0..100).map(|step| Op::Report {
                    trial,
                    step,
                    value: value(trial, step),
                }));
                ops.extend(
                    [1, 4, 16, 64]
                        .iter()
                        .enumerate()
                        .map(|(rung, &step)| Op::Rung {
                            trial,
                            rung,
                            value: value(trial, step),
                        }),
                );
                ops.push(Op::Tell {
                    trial,
                    state: TrialState::Complete,
                    value: Some(value(trial, 99)),
                    values: Vec::new(),
                    constraints: Vec::new(),
                });
                Ok((ops, ()))
            })
            .unwrap()
            .unwrap();
    }
    Study::new(
        Box::new(storage),
        Space::default(),
        SamplerKind::Random,
        false,
        0,
    )
    .unwrap()
    .with_name("speed")
    .with_pruner(pruner)
    .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let timed_trials = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .map_or(50, |n| n.parse().expect("--trials N"));
    for name in PRUNERS {
        let mut study = study(&spec(name), 1000);
        let mut elapsed = 0.0;
        let mut calls = 0;
        for _ in 0..timed_trials {
            let trial = study.ask().unwrap().number;
            for step in 0..100 {
                study.report_first(trial, step, value(trial, step)).unwrap();
                let start = Instant::now();
                std::hint::black_box(study.should_prune(trial).unwrap());
                elapsed += start.elapsed().as_secs_f64();
                calls += 1;
            }
            study
                .tell(trial, Outcome::Complete(value(trial, 99)))
                .unwrap();
        }
        println!(
            "{{\"pruner\": \"{name}\", \"us_per_call\": {:.3}}}",
            elapsed / calls as f64 * 1e6
        );
    }
}
