//! Ask + tell throughput of a study in PostgreSQL, against Optuna's RDBStorage on the same
//! server (`bench/storage_race.py` runs both, alternating, and prints the ratios).
//!
//! A study over three parameters already holds 1,000 complete trials; then `W` workers,
//! each with a connection and a TPE study of its own, ask and tell as fast as they can for
//! `--seconds`. One worker is one thread here (each blocks on its own connection, as an
//! Optuna worker process does).
//!
//!     POPSWEEP_BENCH_PG=postgresql://… cargo bench --bench storage_race -- --workers 8
//!
//! Prints one JSON line: {"system": "popsweep", "workers": W, "cycles": N,
//! "per_second": …, "median_ms": …, "p99_ms": …}.

use popsweep::storage::PgStorage;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};
use std::time::{Duration, Instant};

const SPACE: &str = r#"{"x": {"distribution": "uniform", "min": -5.0, "max": 5.0},
 "y": {"distribution": "log_uniform_values", "min": 0.001, "max": 1.0},
 "k": {"values": [1, 2, 3, 4]}}"#;

fn objective(p: &popsweep::space::Params) -> f64 {
    let x = p["x"].as_f64().unwrap();
    let y = p["y"].as_f64().unwrap();
    x * x + y.ln().abs() + p["k"].as_f64().unwrap()
}

fn study(url: &str, name: &str, sampler: SamplerKind, seed: u64) -> Study {
    let space = popsweep::config::parse_space(SPACE, "space").unwrap();
    let storage = PgStorage::open(url, name, true).unwrap();
    Study::new(Box::new(storage), space, sampler, false, seed).unwrap()
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let Ok(url) = std::env::var("POPSWEEP_BENCH_PG") else {
        println!("SKIP: set POPSWEEP_BENCH_PG to a PostgreSQL URL (scripts/pg-cluster.sh)");
        return;
    };
    let workers = arg("--workers", 1.0) as usize;
    let seconds = arg("--seconds", 10.0);
    let prefill = arg("--prefill", 1000.0) as usize;
    let name = format!("race-{}-{}", std::process::id(), workers);
    let mut first = study(&url, &name, SamplerKind::Random, 0);
    for _ in 0..prefill {
        let t = first.ask().unwrap();
        first
            .tell(t.number, Outcome::Complete(objective(&t.params)))
            .unwrap();
    }
    drop(first);
    // Every worker connects and reads the study before the clock starts, as in Optuna's.
    let ready = std::sync::Barrier::new(workers + 1);
    let (latencies, elapsed): (Vec<Vec<f64>>, f64) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (url, name, ready) = (&url, &name, &ready);
                s.spawn(move || {
                    let mut study = study(url, name, SamplerKind::Tpe, w as u64 + 1);
                    ready.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
                    let mut took = Vec::new();
                    while Instant::now() < deadline {
                        let cycle = Instant::now();
                        let t = study.ask().unwrap();
                        study
                            .tell(t.number, Outcome::Complete(objective(&t.params)))
                            .unwrap();
                        took.push(cycle.elapsed().as_secs_f64() * 1e3);
                    }
                    took
                })
            })
            .collect();
        ready.wait();
        let started = Instant::now();
        let took = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (took, started.elapsed().as_secs_f64())
    });
    let mut all: Vec<f64> = latencies.into_iter().flatten().collect();
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
    println!(
        "{}",
        serde_json::json!({
            "system": "popsweep",
            "workers": workers,
            "cycles": all.len(),
            "per_second": all.len() as f64 / elapsed,
            "median_ms": at(0.5),
            "p99_ms": at(0.99),
        })
    );
}
