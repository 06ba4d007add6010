//! Constrained optimisation against Optuna: the best feasible value after 100 trials on
//! Gardner et al.'s (2014) problem — minimise cos(2·x1)·cos(x2) + sin(x1) subject to
//! cos(x1)·cos(x2) − sin(x1)·sin(x2) ≤ 0.5 over [0, 6]² (optimum −2) — over 20 seeds,
//! popsweep's TPE and NSGA-II next to Optuna 5's TPESampler with `constraints_func` from
//! `bench/reference/optuna_constrained.jsonl` (`bench/optuna_constrained_reference.py`).
//!
//!     cargo bench --bench constrained [-- --seeds 20 --trials 100]

use popsweep::config::parse_space;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};

fn gardner(x1: f64, x2: f64) -> (f64, f64) {
    (
        (2.0 * x1).cos() * x2.cos() + x1.sin(),
        x1.cos() * x2.cos() - x1.sin() * x2.sin() - 0.5,
    )
}

fn run(kind: SamplerKind, seed: u64, trials: usize) -> f64 {
    let space = parse_space(
        r#"{"x1": {"distribution": "uniform", "min": 0.0, "max": 6.0},
            "x2": {"distribution": "uniform", "min": 0.0, "max": 6.0}}"#,
        "bench",
    )
    .unwrap();
    let mut study = Study::in_memory(space, kind, false, seed).unwrap();
    for _ in 0..trials {
        let t = study.ask().unwrap();
        let x = |n: &str| t.params[n].as_f64().unwrap();
        let (f, c) = gardner(x("x1"), x("x2"));
        study
            .tell_constrained(t.number, Outcome::Complete(f), &[c])
            .unwrap();
    }
    study
        .best()
        .unwrap()
        .and_then(|t| t.value)
        .unwrap_or(f64::INFINITY)
}

fn median(mut v: Vec<f64>) -> f64 {
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
    let optuna: Vec<f64> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|r| r["trials"].as_u64() == Some(trials as u64))
        .map(|r| r["best"].as_f64().unwrap_or(f64::INFINITY))
        .collect();
    println!("| sampler | popsweep median best feasible | Optuna TPE median (runs) | P(popsweep ≤ Optuna) |");
    println!("|---|---:|---:|---:|");
    for (label, kind) in [("tpe", SamplerKind::Tpe), ("nsga2", SamplerKind::Nsga2)] {
        let ours: Vec<f64> = (0..seeds as u64).map(|s| run(kind, s, trials)).collect();
        let mut wins = 0.0;
        for a in &ours {
            for b in &optuna {
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
            "| {label} | {:.4} | {:.4} ({}) | {:.2} |",
            median(ours.clone()),
            median(optuna.clone()),
            optuna.len(),
            wins / (ours.len() * optuna.len().max(1)) as f64
        );
    }
}
