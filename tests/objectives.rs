//! Several objectives in a sweep file: `metric` as a list trains as usual (ranked by the
//! first), tells the study every objective, and `summary.pareto_front` is the front of the
//! complete trials; bad lists get one line and exit 2.

mod common;

use common::{record_values, run_sweep_text};
use std::path::PathBuf;
use std::process::Output;

fn run(name: &str, yaml: &str) -> (Output, PathBuf) {
    run_sweep_text("objectives", name, yaml)
}

const SPACE: &str = "parameters:\n  lr:\n    distribution: log_uniform_values\n    min: 0.01\n    max: 0.5\n  depth:\n    values: [1, 2]\n  width:\n    values: [8, 32, 128]\ntrain:\n  epochs: 3\n";

#[test]
fn accuracy_against_size_gives_a_pareto_front() {
    let yaml = format!(
        "method: tpe\nrun_cap: 16\nmetric:\n  - {{name: val_accuracy, goal: maximize}}\n  - {{name: param_count, goal: minimize}}\n\
         scheduler: {{type: asha, min_budget: 1, eta: 3, population: 6}}\n{SPACE}"
    );
    let (out, dir) = run("front", &yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let front = summary["pareto_front"].as_array().expect("a front");
    assert!(!front.is_empty(), "{summary}");
    let point = |p: &serde_json::Value| {
        (
            p["values"]["val_accuracy"].as_f64().unwrap(),
            p["values"]["param_count"].as_f64().unwrap(),
        )
    };
    // Every complete record: none dominates a front point, and every record off the
    // front is dominated by one on it.
    let records: Vec<serde_json::Value> = record_values(&dir)
        .into_iter()
        .filter(|r| r["state"] == "complete")
        .collect();
    let dominates = |a: (f64, f64), b: (f64, f64)| a.0 >= b.0 && a.1 <= b.1 && a != b;
    let on_front: Vec<(f64, f64)> = front.iter().map(point).collect();
    for r in &records {
        let rung = r["rungs"].as_array().unwrap().last().unwrap()["value"]
            .as_f64()
            .unwrap();
        let p = (rung, r["param_count"].as_f64().unwrap());
        let number = r["number"].as_u64().unwrap();
        let listed = front.iter().any(|f| f["trial"].as_u64() == Some(number));
        assert_eq!(
            listed,
            !on_front.iter().any(|&f| dominates(f, p)),
            "trial {number} at {p:?}: front {on_front:?}"
        );
    }
    // The front's best accuracy is the best trial's.
    let best = summary["best"]["val"].as_f64().unwrap();
    assert!(on_front.iter().any(|f| f.0 == best), "{summary}");
}

#[test]
fn bad_objective_lists_are_refused() {
    for (name, metric, needle) in [
        (
            "size-first",
            "  - {name: param_count, goal: minimize}\n  - {name: val_loss}\n",
            "cannot come first",
        ),
        (
            "twice",
            "  - {name: val_loss}\n  - {name: val_loss, goal: minimize}\n",
            "listed twice",
        ),
        (
            "target",
            "  - {name: val_loss}\n  - {name: param_count, target: 10}\n",
            "only the first metric takes a target",
        ),
        (
            "unknown",
            "  - {name: val_loss}\n  - {name: latency}\n",
            "unknown metric `latency`",
        ),
        ("empty", " []\n", "names no metric"),
    ] {
        let (out, dir) = run(
            name,
            &format!("method: tpe\nrun_cap: 4\nmetric:\n{metric}{SPACE}"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{name}: {stderr}");
        assert!(!dir.exists());
    }
    let (out, _) = run(
        "gp",
        &format!("method: gp\nrun_cap: 4\nmetric:\n  - {{name: val_loss}}\n  - {{name: param_count}}\n{SPACE}"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gp models one objective"));
}

#[test]
fn a_constraint_keeps_large_models_out_of_the_best_and_the_front() {
    let yaml = format!(
        "method: tpe\nrun_cap: 12\nmetric: {{name: val_accuracy, goal: maximize}}\n\
         constraints:\n  - {{name: param_count, max: 2000}}\n{SPACE}"
    );
    let (out, dir) = run("constrained", &yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["infeasible"].as_u64().unwrap_or(0) >= 1,
        "{summary}"
    );
    let best = summary["best"]["trial"].as_u64().unwrap();
    let record = record_values(&dir)
        .into_iter()
        .find(|r| r["number"].as_u64() == Some(best))
        .unwrap();
    assert!(record["param_count"].as_u64().unwrap() <= 2000, "{record}");

    for (name, constraints, needle) in [
        (
            "constraint-no-bound",
            "  - {name: param_count}\n",
            "needs a finite `max` or `min`",
        ),
        (
            "constraint-unknown",
            "  - {name: latency, max: 3}\n",
            "unknown metric `latency`",
        ),
    ] {
        let yaml = format!(
            "method: tpe\nrun_cap: 4\nmetric: {{name: val_loss}}\nconstraints:\n{constraints}{SPACE}"
        );
        let (out, _) = run(name, &yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
    }
}

/// `epoch_seconds`: each member's own training time per epoch (CPU backend), recorded
/// only when asked for; a faster model is not dominated by a slower one as accurate.
#[test]
fn measured_epoch_time_is_an_objective_on_the_cpu() {
    let yaml = format!(
        "method: random\nrun_cap: 8\nbackend: cpu\nmetric:\n  - {{name: val_accuracy, goal: maximize}}\n  - {{name: epoch_seconds, goal: minimize}}\n{SPACE}"
    );
    let (out, dir) = run("timed", &yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in record_values(&dir)
        .into_iter()
        .filter(|r| r["state"] == "complete")
    {
        let t = r["epoch_seconds"].as_f64().expect("a time per epoch");
        assert!(t > 0.0 && t < 60.0, "{r}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let front = summary["pareto_front"].as_array().unwrap();
    assert!(front
        .iter()
        .all(|p| p["values"]["epoch_seconds"].as_f64().is_some()));
    // Without the objective, records carry no time (they are reproducible to the bit).
    let (out, dir) = run(
        "untimed",
        &format!("method: random\nrun_cap: 2\nmetric: {{name: val_loss}}\n{SPACE}"),
    );
    assert!(out.status.success());
    assert!(!std::fs::read_to_string(dir.join("trials.jsonl"))
        .unwrap()
        .contains("epoch_seconds"));
}
