//! Constrained optimisation against Optuna: the best feasible value after 100 trials, over
//! 20 seeds, on two problems — Gardner et al. (2014): minimise cos(2·x1)·cos(x2) + sin(x1)
//! subject to cos(x1)·cos(x2) − sin(x1)·sin(x2) ≤ 0.5 over [0, 6]² (optimum −2, where the
//! constraint seldom binds); Gramacy et al. (2016): minimise x1 + x2 subject to
//! 1.5 − x1 − 2·x2 − 0.5·sin(2π(x1² − 2·x2)) ≤ 0 and x1² + x2² ≤ 1.5 over [0, 1]²
//! (optimum 0.5998, on the boundary) — popsweep's TPE, NSGA-II and GP-EI next to Optuna
//! 5's TPESampler and GPSampler with `constraints_func`, stored in
//! `bench/reference/optuna_constrained.jsonl` (`bench/optuna_constrained_reference.py`).
//!
//!     cargo bench --bench constrained [-- --seeds 20 --trials 100]

use popsweep::config::parse_space;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};
use std::f64::consts::PI;

type Problem = fn(f64, f64) -> (f64, Vec<f64>);

fn gardner(x1: f64, x2: f64) -> (f64, Vec<f64>) {
    (
        (2.0 * x1).cos() * x2.cos() + x1.sin(),
        vec![x1.cos() * x2.cos() - x1.sin() * x2.sin() - 0.5],
    )
}

fn gramacy(x1: f64, x2: f64) -> (f64, Vec<f64>) {
    (
        x1 + x2,
        vec![
            1.5 - x1 - 2.0 * x2 - 0.5 * (2.0 * PI * (x1 * x1 - 2.0 * x2)).sin(),
            x1 * x1 + x2 * x2 - 1.5,
        ],
    )
}

const PROBLEMS: [(&str, Problem, f64); 2] = [("gardner", gardner, 6.0), ("gramacy", gramacy, 1.0)];

fn run(kind: SamplerKind, (f, high): (Problem, f64), seed: u64, trials: usize) -> f64 {
    let space = parse_space(
        &format!(
            r#"{{"x1": {{"distribution": "uniform", "min": 0.0, "max": {high:?}}},
                "x2": {{"distribution": "uniform", "min": 0.0, "max": {high:?}}}}}"#
        ),
        "bench",
    )
    .unwrap();
    let mut study = Study::in_memory(space, kind, false, seed).unwrap();
    for _ in 0..trials {
        let t = study.ask().unwrap();
        let x = |n: &str| t.params[n].as_f64().unwrap();
        let (value, c) = f(x("x1"), x("x2"));
        study
            .tell_constrained(t.number, Outcome::Complete(value), &c)
            .unwrap();
    }
    study
        .best()
        .unwrap()
        .and_then(|t| t.value)
        .unwrap_or(f64::INFINITY)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n % 2 {
        1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let (seeds, trials) = (arg("--seeds", 20), arg("--trials", 100));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/reference/optuna_constrained.jsonl");
    let stored: Vec<serde_json::Value> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .filter(|r: &serde_json::Value| r["trials"].as_u64() == Some(trials as u64))
        .collect();
    println!("| problem | sampler | popsweep median best feasible | Optuna TPE median (runs) | Optuna GP median (runs) | P(popsweep ≤ Optuna's better) |");
    println!("|---|---|---:|---:|---:|---:|");
    for (name, f, high) in PROBLEMS {
        let optuna = |sampler: &str| -> Vec<f64> {
            stored
                .iter()
                .filter(|r| r["function"] == name && r["sampler"] == sampler)
                .map(|r| r["best"].as_f64().unwrap_or(f64::INFINITY))
                .collect()
        };
        let (tpe, gp) = (optuna("tpe"), optuna("gp"));
        let better = match median(gp.clone()) < median(tpe.clone()) {
            true => &gp,
            false => &tpe,
        };
        for (label, kind) in [
            ("tpe", SamplerKind::Tpe),
            ("nsga2", SamplerKind::Nsga2),
            ("gp", SamplerKind::Gp),
        ] {
            let ours: Vec<f64> = (0..seeds as u64)
                .map(|s| run(kind, (f, high), s, trials))
                .collect();
            let mut wins = 0.0;
            for a in &ours {
                for b in better {
                    wins += if a < b {
                        1.0
                    } else if a == b {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
            println!(
                "| {name} | {label} | {:.4} | {:.4} ({}) | {:.4} ({}) | {:.2} |",
                median(ours.clone()),
                median(tpe.clone()),
                tpe.len(),
                median(gp.clone()),
                gp.len(),
                wins / (ours.len() * better.len().max(1)) as f64
            );
        }
    }
}
