//! Studies from the command line beyond ask/tell/best: `ask --pruner` fixes a study's
//! pruner and `tell --step S --intermediate V` prints its verdict (equal to the library's
//! on the same reports); `ask --directions` and `tell --values --constraints` make a study
//! of several objectives whose `best` is the feasible Pareto front.

use popsweep::pruning::PrunerSpec;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};
use std::path::PathBuf;
use std::process::{Command, Output};

fn popsweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(args)
        .output()
        .unwrap()
}

fn fresh_study(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("popsweep-study-cli-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const SPACE: &str = r#"{"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}}"#;
const PRUNER: &str = r#"{"kind": "median", "n_startup_trials": 2, "n_warmup_steps": 1}"#;

/// Trial k's loss at step s: trials differ by a constant offset, so the later, worse ones
/// fall behind the median.
fn loss(trial: usize, step: u64) -> f64 {
    1.0 / (step as f64 + 1.0) + [0.3, 0.1, 0.5, 0.05, 0.8, 0.2][trial]
}

#[test]
fn tell_intermediate_prints_the_verdict_the_library_gives() {
    let dir = fresh_study("median");
    let d = dir.to_str().unwrap();
    let mut library = Study::in_memory(
        popsweep::config::parse_space(SPACE, "space").unwrap(),
        SamplerKind::Random,
        false,
        0,
    )
    .unwrap()
    .with_pruner(&PrunerSpec::parse(PRUNER).unwrap())
    .unwrap();
    let mut verdicts = Vec::new();
    for trial in 0..6 {
        let mut args = vec!["ask", "--study", d];
        if trial == 0 {
            args.extend(["--space", SPACE, "--pruner", PRUNER]);
        }
        let out = popsweep(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        library.ask().unwrap();
        let mut pruned = false;
        for step in 0..5u64 {
            let (v, s) = (loss(trial, step).to_string(), step.to_string());
            let t = trial.to_string();
            let out = popsweep(&[
                "tell",
                "--study",
                d,
                "--trial",
                &t,
                "--step",
                &s,
                "--intermediate",
                &v,
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            library
                .report_first(trial, step, loss(trial, step))
                .unwrap();
            let want = library.should_prune(trial).unwrap();
            assert_eq!(verdict["prune"], want, "trial {trial} step {step}");
            verdicts.push(want);
            if want {
                pruned = true;
                break;
            }
        }
        let t = trial.to_string();
        let (outcome, args) = match pruned {
            true => (Outcome::Pruned, vec!["--state", "pruned"]),
            false => (Outcome::Complete(loss(trial, 4)), vec!["--value"]),
        };
        let value = loss(trial, 4).to_string();
        let mut tell = vec!["tell", "--study", d, "--trial", &t];
        tell.extend(args);
        if !pruned {
            tell.push(&value);
        }
        assert!(popsweep(&tell).status.success());
        library.tell(trial, outcome).unwrap();
    }
    assert!(
        verdicts.contains(&true),
        "no trial was pruned: {verdicts:?}"
    );
    assert!(verdicts.contains(&false));
}

#[test]
fn a_step_reported_twice_keeps_its_first_value() {
    let dir = fresh_study("twice");
    let d = dir.to_str().unwrap();
    assert!(
        popsweep(&["ask", "--study", d, "--space", SPACE, "--pruner", "median"])
            .status
            .success()
    );
    for v in ["0.5", "0.9"] {
        let out = popsweep(&[
            "tell",
            "--study",
            d,
            "--trial",
            "0",
            "--step",
            "3",
            "--intermediate",
            v,
        ]);
        assert!(out.status.success());
    }
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert_eq!(journal.matches(r#""op":"report""#).count(), 1, "{journal}");
    assert!(journal.contains(r#""value":0.5"#), "{journal}");
}

#[test]
fn bad_pruner_settings_and_flags_give_one_line_and_exit_2() {
    for (pruner, needle) in [
        ("medain", "unknown pruner `medain`"),
        (
            r#"{"kind": "percentile", "percentile": -1}"#,
            "between 0 and 100",
        ),
        ("{not json", "--pruner"),
    ] {
        let dir = fresh_study("bad");
        let d = dir.to_str().unwrap();
        let out = popsweep(&["ask", "--study", d, "--space", SPACE, "--pruner", pruner]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{pruner}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{pruner}: {stderr}");
    }
    let dir = fresh_study("flags");
    let d = dir.to_str().unwrap();
    assert!(popsweep(&["ask", "--study", d, "--space", SPACE])
        .status
        .success());
    // --intermediate needs --step, and excludes --value.
    let out = popsweep(&["tell", "--study", d, "--trial", "0", "--intermediate", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let out = popsweep(&[
        "tell",
        "--study",
        d,
        "--trial",
        "0",
        "--step",
        "1",
        "--intermediate",
        "1",
        "--value",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // A study without a pruner never prunes.
    let out = popsweep(&[
        "tell",
        "--study",
        d,
        "--trial",
        "0",
        "--step",
        "1",
        "--intermediate",
        "1e9",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"prune":false}"#
    );
}

/// Several objectives and constraints from the command line: `--directions` makes the
/// study, `--values` and `--constraints` tell it, `best` prints the feasible Pareto front.
#[test]
fn several_objectives_and_constraints_over_ask_and_tell() {
    let dir = fresh_study("pareto");
    let d = dir.to_str().unwrap();
    let out = popsweep(&[
        "ask",
        "--study",
        d,
        "--space",
        SPACE,
        "--directions",
        "minimize,maximize",
        "--sampler",
        "nsga2",
        "--n",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (loss, accuracy, constraint): 0 and 1 trade off, 2 is dominated, 3 is infeasible,
    // 4 is not finite (failed).
    for (trial, values, constraint) in [
        ("0", "1.0,0.5", "0"),
        ("1", "2.0,0.9", "-1"),
        ("2", "2.5,0.8", "0"),
        ("3", "0.1,0.99", "3"),
        ("4", "nan,1", "0"),
    ] {
        let out = popsweep(&[
            "tell",
            "--study",
            d,
            "--trial",
            trial,
            "--values",
            values,
            "--constraints",
            constraint,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = popsweep(&["best", "--study", d]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let front: Vec<u64> = lines.iter().map(|l| l["trial"].as_u64().unwrap()).collect();
    assert_eq!(front, vec![0, 1], "{lines:?}");
    assert_eq!(lines[1]["values"], serde_json::json!([2.0, 0.9]));
    // One value for two objectives, and an objective list with a typo, are refused.
    let out = popsweep(&["ask", "--study", d]);
    let next: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = next["trial"].to_string();
    let out = popsweep(&["tell", "--study", d, "--trial", &n, "--value", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 objectives"));
    let out = popsweep(&["tell", "--study", d, "--trial", &n, "--values", "1,x"]);
    assert_eq!(out.status.code(), Some(2));
    let other = fresh_study("typo");
    let out = popsweep(&[
        "ask",
        "--study",
        other.to_str().unwrap(),
        "--space",
        SPACE,
        "--directions",
        "minimize,maximise",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`maximise` must be minimize or maximize")
    );
}

/// `enqueue` queues a configuration (checked against the space) for the next ask.
#[test]
fn an_enqueued_configuration_is_the_next_ask() {
    let dir = fresh_study("enqueue");
    let d = dir.to_str().unwrap();
    assert!(popsweep(&["ask", "--study", d, "--space", SPACE])
        .status
        .success());
    let out = popsweep(&["enqueue", "--study", d, "--params", r#"{"x": 0.25}"#]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = popsweep(&["ask", "--study", d]);
    let next: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(next["params"]["x"], 0.25, "{next}");
    for bad in [r#"{"x": 2.0}"#, r#"{"y": 0.5}"#, "x=1"] {
        let out = popsweep(&["enqueue", "--study", d, "--params", bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--params"), "{stderr}");
    }
}
