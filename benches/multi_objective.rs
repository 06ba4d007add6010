//! Multi-objective quality against Optuna: the hypervolume of the Pareto front after 100
//! trials on ZDT1, ZDT2 (10 variables) and DTLZ2 (7 variables, 3 objectives), over 20
//! seeds, for popsweep's NSGA-II and TPE, next to Optuna 5's NSGAIISampler and
//! TPESampler from `bench/reference/optuna_mo.jsonl` (`bench/optuna_mo_reference.py`;
//! the functions and reference points are those of `bench/mo_functions.py`).
//!
//!     cargo bench --bench multi_objective [-- --seeds 20 --trials 100]
//!
//! P(popsweep > Optuna) is how often a popsweep run's hypervolume beats an Optuna run's
//! (0.5 for equally good samplers; ties count half).

use popsweep::config::parse_space;
use popsweep::storage::Direction;
use popsweep::tuner::pareto::hypervolume;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::Study;
use std::collections::BTreeMap;
use std::f64::consts::PI;

type Objective = fn(&[f64]) -> Vec<f64>;

fn zdt_g(x: &[f64]) -> f64 {
    1.0 + 9.0 * x[1..].iter().sum::<f64>() / (x.len() - 1) as f64
}

fn zdt1(x: &[f64]) -> Vec<f64> {
    let g = zdt_g(x);
    vec![x[0], g * (1.0 - (x[0] / g).sqrt())]
}

fn zdt2(x: &[f64]) -> Vec<f64> {
    let g = zdt_g(x);
    vec![x[0], g * (1.0 - (x[0] / g).powi(2))]
}

fn dtlz2(x: &[f64]) -> Vec<f64> {
    let m = 3;
    let g: f64 = x[m - 1..].iter().map(|v| (v - 0.5).powi(2)).sum();
    (0..m)
        .map(|i| {
            let mut v = 1.0 + g;
            for xj in &x[..m - 1 - i] {
                v *= (xj * PI / 2.0).cos();
            }
            if i > 0 {
                v *= (x[m - 1 - i] * PI / 2.0).sin();
            }
            v
        })
        .collect()
}

const FUNCTIONS: [(&str, Objective, usize, &[f64]); 3] = [
    ("zdt1", zdt1, 10, &[1.1, 11.0]),
    ("zdt2", zdt2, 10, &[1.1, 11.0]),
    ("dtlz2", dtlz2, 7, &[2.5, 2.5, 2.5]),
];

fn run(
    kind: SamplerKind,
    f: Objective,
    dims: usize,
    reference: &[f64],
    seed: u64,
    trials: usize,
) -> f64 {
    let space = (0..dims)
        .map(|i| format!("\"x{i}\": {{\"distribution\": \"uniform\", \"min\": 0.0, \"max\": 1.0}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let space = parse_space(&format!("{{{space}}}"), "bench").unwrap();
    let directions = vec![Direction::Minimize; reference.len()];
    let mut study = Study::in_memory(space, kind, false, seed)
        .unwrap()
        .with_directions(&directions)
        .unwrap();
    for _ in 0..trials {
        let t = study.ask().unwrap();
        let x: Vec<f64> = (0..dims)
            .map(|i| t.params[&format!("x{i}")].as_f64().unwrap())
            .collect();
        study.tell_values(t.number, &f(&x), &[]).unwrap();
    }
    let front = study.best_trials().unwrap();
    let points: Vec<&[f64]> = front.iter().map(|t| &t.values[..]).collect();
    hypervolume(&points, reference)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn p_better(ours: &[f64], theirs: &[f64]) -> f64 {
    let mut wins = 0.0;
    for a in ours {
        for b in theirs {
            wins += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (ours.len() * theirs.len()) as f64
}

fn reference_runs(trials: usize) -> BTreeMap<(String, String), Vec<f64>> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/reference/optuna_mo.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut runs: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if r["trials"].as_u64() == Some(trials as u64) {
            let key = (
                r["function"].as_str().unwrap().to_string(),
                r["sampler"].as_str().unwrap().to_string(),
            );
            runs.entry(key)
                .or_default()
                .push(r["hypervolume"].as_f64().unwrap());
        }
    }
    runs
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
    let optuna = reference_runs(trials);
    println!("| function | sampler | popsweep median HV | Optuna NSGA-II median (runs) | Optuna TPE median (runs) | P(> Optuna's same sampler) | P(> Optuna's better sampler) |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (name, f, dims, reference) in FUNCTIONS {
        let theirs = |s: &str| {
            optuna
                .get(&(name.to_string(), s.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        let (nsga2, tpe) = (theirs("nsga2"), theirs("tpe"));
        let best_theirs = if median(nsga2.clone()) >= median(tpe.clone()) {
            &nsga2
        } else {
            &tpe
        };
        for (label, kind) in [("nsga2", SamplerKind::Nsga2), ("tpe", SamplerKind::Tpe)] {
            let ours: Vec<f64> = (0..seeds as u64)
                .map(|seed| run(kind, f, dims, reference, seed, trials))
                .collect();
            let same = if label == "nsga2" { &nsga2 } else { &tpe };
            println!(
                "| {name} | {label} | {:.4} | {:.4} ({}) | {:.4} ({}) | {:.2} | {:.2} |",
                median(ours.clone()),
                median(nsga2.clone()),
                nsga2.len(),
                median(tpe.clone()),
                tpe.len(),
                p_better(&ours, same),
                p_better(&ours, best_theirs)
            );
        }
    }
}
