//! Golden files: what popsweep writes for four sweeps and a scripted ask/tell study, kept
//! byte for byte. They were recorded before the engine was reshaped (issue 18) so that the
//! reshaping can be shown to change no result: the same seeds must give the same trials,
//! the same rung values and the same histories, to the last bit, on the CPU backend.
//!
//! A change that is meant to alter results re-records them with `POPSWEEP_BLESS=1 cargo
//! test --release --test golden` and says why in its commit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popsweep-golden-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Compares `actual` with the golden file `name`, or writes it under `POPSWEEP_BLESS=1`.
/// On a mismatch it names the first differing line, so a failure says where results moved.
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("POPSWEEP_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (record it with POPSWEEP_BLESS=1)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its golden file at line {}: expected {} lines, got {}\n\
             expected: {}\n     got: {}",
            line + 1,
            expected.lines().count(),
            actual.lines().count(),
            expected.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

fn popsweep(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "popsweep {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sweep` on the CPU backend and checks its `trials.jsonl` and its `summary.json`
/// (less the wall time) against the golden files named after `tag`.
fn check_sweep(sweep: &Path, tag: &str) {
    let dir = scratch(tag);
    popsweep(&[
        "run",
        sweep.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let trials = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
    check_golden(&format!("{tag}.trials.jsonl"), &trials);
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    summary.as_object_mut().unwrap().remove("wall_seconds");
    check_golden(
        &format!("{tag}.summary.json"),
        &(serde_json::to_string_pretty(&summary).unwrap() + "\n"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn digits_sweep_matches_its_golden_trials() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/digits.yaml");
    check_sweep(&example, "digits");
}

#[test]
fn digits_asha_sweep_matches_its_golden_trials() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/digits-asha.yaml");
    check_sweep(&example, "digits-asha");
}

#[test]
fn pbt_sweep_matches_its_golden_trials() {
    check_sweep(&golden_dir().join("pbt.yaml"), "pbt");
}

#[test]
fn hyperband_tpe_sweep_matches_its_golden_trials() {
    check_sweep(&golden_dir().join("hyperband-tpe.yaml"), "hyperband-tpe");
}

/// A study scripted through the CLI: a batch of asks, tells of every state (values from a
/// fixed function of the parameters), single asks that the TPE model answers, and `best`.
/// Every line printed is kept.
#[test]
fn scripted_study_matches_its_golden_output() {
    let dir = scratch("study");
    let study = dir.to_str().unwrap();
    let space = r#"{"x": {"min": -2.0, "max": 2.0}, "lr": {"distribution": "log_uniform_values", "min": 0.0001, "max": 0.1}, "act": {"values": ["relu", "tanh"]}}"#;
    let mut transcript = String::new();
    let tell = |line: &str, transcript: &mut String| {
        let asked: serde_json::Value = serde_json::from_str(line).unwrap();
        let trial = asked["trial"].as_u64().unwrap();
        let p = &asked["params"];
        let (x, lr) = (p["x"].as_f64().unwrap(), p["lr"].as_f64().unwrap());
        let value = (x - 0.5).powi(2)
            + (lr.ln() + 5.0).powi(2) / 10.0
            + if p["act"] == "tanh" { 0.3 } else { 0.0 };
        let trial = trial.to_string();
        let value = format!("{value}");
        let args: Vec<&str> = match trial.as_str() {
            "3" => vec![
                "tell", "--study", study, "--trial", &trial, "--state", "failed",
            ],
            "5" => vec![
                "tell", "--study", study, "--trial", &trial, "--state", "pruned",
            ],
            _ => vec![
                "tell", "--study", study, "--trial", &trial, "--value", &value,
            ],
        };
        transcript.push_str(&popsweep(&args));
    };
    let first = popsweep(&[
        "ask",
        "--study",
        study,
        "--space",
        space,
        "--sampler",
        "tpe",
        "--seed",
        "7",
        "--n",
        "12",
    ]);
    transcript.push_str(&first);
    for line in first.lines() {
        tell(line, &mut transcript);
    }
    for _ in 0..6 {
        let next = popsweep(&["ask", "--study", study]);
        transcript.push_str(&next);
        tell(next.trim_end(), &mut transcript);
    }
    transcript.push_str(&popsweep(&["best", "--study", study]));
    check_golden("study.txt", &transcript);
    let _ = std::fs::remove_dir_all(&dir);
}
