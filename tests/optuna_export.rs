//! `popsweep export --optuna-journal`: Optuna 5 itself loads the exported journal and
//! sees the same trials, states, values, intermediate values and parameters. Needs a
//! Python with optuna: `POPSWEEP_OPTUNA_PYTHON` (`.ci/run` installs one outside the work
//! tree); without it the test prints SKIP.

mod common;

use common::{ok, optuna_reads, popsweep};
use popsweep::storage::{RunStorage, Storage};
use std::path::{Path, PathBuf};

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("popsweep-optuna-export-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

const SPACE: &str = r#"{
    "lr": {"distribution": "log_uniform_values", "min": 0.0001, "max": 0.1},
    "width": {"distribution": "int_uniform", "min": 8, "max": 64},
    "act": {"values": ["relu", "tanh"]},
    "noise": {"distribution": "normal", "mu": 0.0, "sigma": 0.1}
}"#;

/// A study with complete, pruned, failed and running trials and intermediate values.
fn scripted_study(dir: &Path) {
    let d = dir.to_str().unwrap();
    ok(&popsweep(&[
        "ask", "--study", d, "--space", SPACE, "--pruner", "nop", "--n", "5",
    ]));
    for (trial, outcome) in ["complete", "pruned", "complete", "failed"]
        .iter()
        .enumerate()
    {
        let t = trial.to_string();
        for step in 1..=3 {
            let v = format!("{}", 1.0 / (step as f64) + trial as f64 * 0.1);
            let s = step.to_string();
            ok(&popsweep(&[
                "tell",
                "--study",
                d,
                "--trial",
                &t,
                "--step",
                &s,
                "--intermediate",
                &v,
            ]));
        }
        let args: Vec<String> = match *outcome {
            "complete" => vec!["--value".into(), format!("{}", 0.5 + trial as f64)],
            other => vec!["--state".into(), other.into()],
        };
        let mut tell = vec!["tell", "--study", d, "--trial", &t];
        tell.extend(args.iter().map(String::as_str));
        ok(&popsweep(&tell));
    }
}

#[test]
fn optuna_loads_an_exported_study_with_the_same_trials() {
    let dir = fresh("study");
    scripted_study(&dir);
    let journal = dir.with_extension("optuna.jsonl");
    let out = popsweep(&[
        "export",
        "--optuna-journal",
        journal.to_str().unwrap(),
        "--study",
        dir.to_str().unwrap(),
    ]);
    let stdout = ok(&out);
    assert!(stdout.contains("wrote 5 trials"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`noise`: W&B's Normal"),
        "the shaped prior is named: {stderr}"
    );
    // A second export to the same file is refused: Optuna appends to journals.
    let again = popsweep(&[
        "export",
        "--optuna-journal",
        journal.to_str().unwrap(),
        "--study",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));

    let Some(seen) = optuna_reads(&journal) else {
        println!("SKIP: no Python with optuna (set POPSWEEP_OPTUNA_PYTHON)");
        return;
    };
    let trials = seen["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 5, "{seen}");
    let states: Vec<&str> = trials
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["complete", "pruned", "complete", "fail", "running"]
    );
    assert_eq!(trials[0]["value"], 0.5);
    assert_eq!(trials[2]["value"], 2.5);
    assert_eq!(seen["best"], 0, "Optuna's best trial is popsweep's");
    assert_eq!(
        trials[1]["intermediate"]["3"].as_f64().unwrap(),
        1.0 / 3.0 + 0.1
    );
    // Parameters as popsweep asked them, every one of them.
    let mut study = RunStorage::study(&dir).unwrap();
    let asked = &study.state().unwrap().trials;
    for (t, ask) in trials.iter().zip(asked) {
        for name in ["lr", "width", "act", "noise"] {
            let want = serde_json::to_value(&ask.params[name]).unwrap();
            assert_eq!(t["params"][name], want, "{name} of {t}");
        }
    }
}

#[test]
fn a_missing_study_is_refused() {
    let out = popsweep(&[
        "export",
        "--optuna-journal",
        "/tmp/never.jsonl",
        "--study",
        "/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a run directory"));
}

#[test]
fn optuna_loads_an_exported_run_and_agrees_on_its_best_trial() {
    let sweep = "method: tpe\nrun_cap: 6\nmetric: {name: val_accuracy, goal: maximize}\n\
         scheduler: {type: asha, min_budget: 1, eta: 3, population: 3}\n\
         parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n  width: {values: [8, 32]}\n\
         train: {epochs: 3}\n";
    let Some((seen, summary)) = run_and_export("run", sweep) else {
        return;
    };
    assert_eq!(seen["trials"].as_array().unwrap().len(), 6);
    assert_eq!(seen["directions"], serde_json::json!(["maximize"]));
    assert_eq!(seen["best"], summary["best"]["trial"], "{seen}");
}

/// A run of several objectives exports each complete trial's values, and Optuna's Pareto
/// front of them is the run's `summary.pareto_front`.
#[test]
fn optuna_loads_an_exported_run_of_several_objectives() {
    let sweep = "method: tpe\nrun_cap: 8\n\
         metric:\n  - {name: val_accuracy, goal: maximize}\n  - {name: param_count, goal: minimize}\n\
         parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n  width: {values: [8, 16, 32, 64]}\n\
         train: {epochs: 2}\n";
    let Some((seen, summary)) = run_and_export("pareto", sweep) else {
        return;
    };
    assert_eq!(
        seen["directions"],
        serde_json::json!(["maximize", "minimize"])
    );
    let front: Vec<u64> = summary["pareto_front"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["trial"].as_u64().unwrap())
        .collect();
    assert!(!front.is_empty());
    for p in summary["pareto_front"].as_array().unwrap() {
        let t = &seen["trials"][p["trial"].as_u64().unwrap() as usize];
        assert_eq!(t["values"][0], p["values"]["val_accuracy"], "{t}");
        assert_eq!(t["values"][1], p["values"]["param_count"], "{t}");
    }
    assert_eq!(seen["best_trials"], serde_json::json!(front), "{seen}");
}

/// Runs the sweep `yaml` and exports the run: what Optuna reads of the export, and the
/// run's summary; `None` (SKIP printed) without a Python that has optuna.
fn run_and_export(name: &str, yaml: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    let dir = fresh(name);
    let sweep = dir.with_extension("yaml");
    std::fs::write(&sweep, yaml).unwrap();
    ok(&popsweep(&[
        "run",
        sweep.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]));
    let journal = dir.with_extension("optuna.jsonl");
    ok(&popsweep(&[
        "export",
        "--optuna-journal",
        journal.to_str().unwrap(),
        "--study",
        dir.to_str().unwrap(),
    ]));
    let Some(seen) = optuna_reads(&journal) else {
        println!("SKIP: no Python with optuna (set POPSWEEP_OPTUNA_PYTHON)");
        return None;
    };
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    Some((seen, serde_json::from_str(&summary).unwrap()))
}
