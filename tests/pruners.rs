//! Pruner equivalence with Optuna 5: the corpus of tests/data/pruner_corpus.json
//! (bench/pruner_corpus.py: 298 curves of several shapes, with ties, NaN, infinities,
//! skipped steps and shuffled instance ids) replayed through popsweep's study, every
//! `should_prune` answer compared with Optuna's, in call order.

use popsweep::pruning::PrunerSpec;
use popsweep::space::Space;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};
use serde_json::Value;

struct Curve {
    points: Vec<(u64, f64)>,
    fails: bool,
    final_value: f64,
}

struct Scenario {
    name: String,
    maximize: bool,
    concurrency: usize,
    curves: Vec<Curve>,
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().expect("nan, inf or -inf"),
        v => v.as_f64().expect("a number"),
    }
}

fn corpus() -> (Vec<Scenario>, Vec<(Value, Vec<String>)>) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pruner_corpus.json"),
    )
    .expect("the corpus is committed");
    let data: Value = serde_json::from_str(&text).expect("the corpus is JSON");
    let scenarios = data["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Scenario {
            name: s["name"].as_str().unwrap().into(),
            maximize: s["maximize"].as_bool().unwrap(),
            concurrency: s["concurrency"].as_u64().unwrap() as usize,
            curves: s["curves"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| Curve {
                    points: c["points"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (p[0].as_u64().unwrap(), number(&p[1])))
                        .collect(),
                    fails: c["end"] == "fail",
                    final_value: number(&c["final"]),
                })
                .collect(),
        })
        .collect();
    let answers = data["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let decisions = a["decisions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect();
            (a["pruner"].clone(), decisions)
        })
        .collect();
    (scenarios, answers)
}

/// The corpus replay (the same as bench/pruner_corpus.py's), answers in call order.
fn replay(scenario: &Scenario, spec: &PrunerSpec) -> String {
    let mut study = Study::in_memory(Space::default(), SamplerKind::Random, scenario.maximize, 0)
        .unwrap()
        .with_name(&scenario.name)
        .with_pruner(spec)
        .unwrap();
    let mut decisions = String::new();
    let mut queue = scenario.curves.iter();
    let mut running: Vec<(usize, &Curve, usize)> = Vec::new();
    loop {
        while running.len() < scenario.concurrency {
            let Some(curve) = queue.next() else { break };
            running.push((study.ask().unwrap().number, curve, 0));
        }
        if running.is_empty() {
            return decisions;
        }
        let mut still = Vec::new();
        for (trial, curve, i) in running {
            if let Some(&(step, value)) = curve.points.get(i) {
                study.report_first(trial, step, value).unwrap();
                let prune = study.should_prune(trial).unwrap();
                decisions.push(if prune { '1' } else { '0' });
                match prune {
                    true => study.tell(trial, Outcome::Pruned).unwrap(),
                    false => still.push((trial, curve, i + 1)),
                }
            } else if curve.fails || !curve.final_value.is_finite() {
                study.tell(trial, Outcome::Failed).unwrap();
            } else {
                study
                    .tell(trial, Outcome::Complete(curve.final_value))
                    .unwrap();
            }
        }
        running = still;
    }
}

#[test]
fn every_pruner_decides_as_optuna_does_on_the_corpus() {
    let (scenarios, answers) = corpus();
    let curves: usize = scenarios.iter().map(|s| s.curves.len()).sum();
    assert!(curves >= 200, "the corpus has {curves} curves");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (spec_json, want) in &answers {
        let spec: PrunerSpec = serde_json::from_value(spec_json.clone()).expect("a pruner");
        for (scenario, want) in scenarios.iter().zip(want) {
            let got = replay(scenario, &spec);
            checked += want.len();
            if &got != want {
                let at = got
                    .chars()
                    .zip(want.chars())
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.len().min(want.len()));
                mismatches.push(format!(
                    "{spec_json} on {}: first difference at decision {at} of {} (popsweep {}, \
                     Optuna {})",
                    scenario.name,
                    want.len(),
                    got.get(at..at + 1).unwrap_or("end"),
                    want.get(at..at + 1).unwrap_or("end"),
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(checked > 20_000, "{checked} decisions");
}
