//! Warm starts of sweeps: `enqueue` configurations come first; `warm_start: {from}`
//! seeds the sampler with an earlier run's or study's finished trials, and refuses those
//! of another space or metric before a run directory exists.

mod common;

use common::{record_values as records, run_sweep_text};
use std::path::PathBuf;
use std::process::Output;

fn run(name: &str, yaml: &str) -> (Output, PathBuf) {
    run_sweep_text("warm", name, yaml)
}

fn sweep(lr_max: &str, extra: &str) -> String {
    format!(
        "method: tpe\nmetric:\n  name: val_loss\n  goal: minimize\nrun_cap: 8\n\
         parameters:\n  lr:\n    distribution: log_uniform_values\n    min: 0.01\n    max: {lr_max}\n\
         \x20 width:\n    values: [16, 32]\n\
         train:\n  epochs: 2\n{extra}"
    )
}

#[test]
fn a_warm_started_sweep_asks_the_queue_first_and_numbers_after_the_earlier_trials() {
    let (out, first) = run("first", &sweep("0.5", ""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let extra = format!(
        "warm_start:\n  from: {}\nenqueue:\n  - {{lr: 0.1, width: 32}}\n  - {{lr: 0.02, width: 16}}\n",
        first.display()
    );
    let (out, second) = run("second", &sweep("0.5", &extra));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warm start: 8 finished trials"), "{stderr}");
    let mut recs = records(&second);
    recs.sort_by_key(|r| r["number"].as_u64());
    assert_eq!(recs.len(), 8, "run_cap new trials");
    assert_eq!(recs[0]["number"], 8, "numbered after the earlier trials");
    assert_eq!(recs[0]["params"]["lr"], 0.1);
    assert_eq!(recs[0]["params"]["width"], 32);
    assert_eq!(recs[1]["params"]["lr"], 0.02);

    // Another space, another metric: refused, and no run directory is made.
    for (name, yaml, needle) in [
        (
            "other-space",
            sweep(
                "0.9",
                &format!("warm_start:\n  from: {}\n", first.display()),
            ),
            "part at `lr`",
        ),
        (
            "other-metric",
            sweep(
                "0.5",
                &format!("warm_start:\n  from: {}\n", first.display()),
            )
            .replace(
                "val_loss\n  goal: minimize",
                "val_accuracy\n  goal: maximize",
            ),
            "it tuned for val_loss (minimize)",
        ),
        (
            "nowhere",
            sweep("0.5", "warm_start:\n  from: /nonexistent/run\n"),
            "neither a run directory",
        ),
    ] {
        let (out, dir) = run(name, &yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(!dir.exists(), "{name}: a run directory was made");
    }
}

#[test]
fn an_enqueued_configuration_outside_the_space_is_refused() {
    let (out, _) = run(
        "bad-queue",
        &sweep("0.5", "enqueue:\n  - {lr: 3.0, width: 32}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("enqueue") && stderr.contains("entry 1"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// An Optuna study as a journal file (tests/data/optuna_study.jsonl, written by Optuna 5.0:
/// 8 complete, 1 pruned and 1 failed trial over `lr` and `width`) seeds a sweep of the
/// same space; trials outside this sweep's space, or another direction, are refused.
#[test]
fn an_optuna_journal_seeds_a_sweep_of_the_same_space() {
    let journal =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/optuna_study.jsonl");
    let from = format!("warm_start:\n  from: {}\n", journal.display());
    let (out, dir) = run("from-optuna", &sweep("0.5", &from));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warm start: 9 finished trials"), "{stderr}");
    let mut recs = records(&dir);
    recs.sort_by_key(|r| r["number"].as_u64());
    assert_eq!(
        recs[0]["number"], 9,
        "numbered after Optuna's finished trials"
    );

    let (out, dir) = run("from-optuna-narrow", &sweep("0.05", &from));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not of this sweep's space") && stderr.contains("`lr`"),
        "{stderr}"
    );
    assert!(!dir.exists());
    let maximize = sweep("0.5", &from).replace(
        "val_loss\n  goal: minimize",
        "val_accuracy\n  goal: maximize",
    );
    let (out, _) = run("from-optuna-max", &maximize);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the Optuna study's objectives go minimize"),
        "{stderr}"
    );
}
