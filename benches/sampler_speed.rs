//! In-process cost of one suggestion with a long history, as Optuna's `study.ask()`:
//! TPE with 1,000 complete trials, GP-EI with 300, and a GP-EI batch of 64 at 300, on a
//! 10-dimensional continuous space; NSGA-II with 1,000 trials of two objectives. `bench/optuna_speed.py` measures Optuna the same way;
//! run both back to back and compare the ratio.
//!
//!     cargo bench --bench sampler_speed [-- --only tpe] [--reps N]
//!
//! `--reps N` times N asks per case instead of the default (to profile the ask, not the
//! setup).

use popsweep::config::parse_space;
use popsweep::space::Params;
use popsweep::storage::Direction;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};
use std::time::Instant;

fn objective(p: &Params) -> f64 {
    p.values()
        .map(|v| v.as_f64().unwrap_or(0.0))
        .map(|x| (x - 0.3) * (x - 0.3))
        .sum()
}

/// The second objective of the NSGA-II case (its optimum away from the first's).
fn objective2(p: &Params) -> f64 {
    p.values()
        .map(|v| v.as_f64().unwrap_or(0.0))
        .map(|x| (x + 0.3) * (x + 0.3))
        .sum()
}

/// Tells `t` its objective value, or both values in a study of two objectives.
fn tell(study: &mut Study, t: &popsweep::storage::FrozenTrial) {
    match study.directions().len() {
        1 => study.tell(t.number, Outcome::Complete(objective(&t.params))),
        _ => study.tell_values(
            t.number,
            &[objective(&t.params), objective2(&t.params)],
            &[],
        ),
    }
    .unwrap();
}

/// A study with `n` complete trials drawn at random (the history every sampler sees).
fn study_with_history(kind: SamplerKind, n: usize) -> Study {
    let space_text = format!(
        "{{{}}}",
        (0..10)
            .map(|i| format!(
                "\"x{i}\": {{\"distribution\": \"uniform\", \"min\": -1.0, \"max\": 1.0}}"
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let space = parse_space(&space_text, "bench").unwrap();
    let mut warmup = Study::in_memory(space.clone(), SamplerKind::Random, false, 1).unwrap();
    let mut study = Study::in_memory(space, kind, false, 2).unwrap();
    if kind == SamplerKind::Nsga2 {
        study = study
            .with_directions(&[Direction::Minimize, Direction::Minimize])
            .unwrap();
    }
    for t in warmup.ask_batch(n).unwrap() {
        study.enqueue(t.params.clone()).unwrap();
    }
    for t in study.ask_batch(n).unwrap() {
        tell(&mut study, &t);
    }
    study
}

/// Median milliseconds of `reps` calls of `ask_batch(batch)`, each told afterwards.
fn time_ask(study: &mut Study, batch: usize, reps: usize) -> f64 {
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            let trials = study.ask_batch(batch).unwrap();
            let ms = start.elapsed().as_secs_f64() * 1e3;
            for t in trials {
                tell(study, &t);
            }
            ms
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let cases: [(&str, SamplerKind, usize, usize, usize); 5] = [
        ("tpe ask @1000", SamplerKind::Tpe, 1000, 1, 21),
        (
            "tpe-univariate ask @1000",
            SamplerKind::TpeUnivariate,
            1000,
            1,
            21,
        ),
        ("gp ask @300", SamplerKind::Gp, 300, 1, 7),
        ("gp ask_batch(64) @300", SamplerKind::Gp, 300, 64, 3),
        (
            "nsga2 ask @1000 (2 objectives)",
            SamplerKind::Nsga2,
            1000,
            1,
            21,
        ),
    ];
    let arg = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let only = arg("--only");
    let reps_override = arg("--reps").map(|r| r.parse::<usize>().expect("--reps N"));
    println!("| case | median ms |");
    println!("| --- | --- |");
    for (name, kind, history, batch, reps) in cases {
        if only.as_ref().is_some_and(|o| !name.starts_with(o.as_str())) {
            continue;
        }
        let mut study = study_with_history(kind, history);
        println!(
            "| {name} | {:.2} |",
            time_ask(&mut study, batch, reps_override.unwrap_or(reps))
        );
    }
}
