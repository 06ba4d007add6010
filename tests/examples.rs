//! Every Rust example runs to completion with a small budget and prints what it promises.
//! `cargo test` builds the examples beside the tests (target/<profile>/examples).

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is not built: run the tests with `cargo test` (which builds the examples)",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name))
        .args(args)
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The numbers in `line` after `prefix`, in order.
fn numbers(line: &str) -> Vec<f64> {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn define_by_run_prunes_and_completes_trials() {
    let out = run("define_by_run", &["20", "6"]);
    let counts = out
        .lines()
        .find(|l| l.contains(" trials: "))
        .expect("a counts line");
    let n = numbers(counts);
    assert_eq!(n[0], 20.0, "{out}");
    assert_eq!(n[1] + n[2] + n[3], 20.0, "every trial ends once: {out}");
    assert!(n[2] >= 1.0, "the median pruner stopped no trial: {out}");
    let best = out.lines().find(|l| l.starts_with("best trial")).unwrap();
    let loss = numbers(best)[1];
    assert!(loss < 0.5, "digits validation loss {loss}: {out}");
}

#[test]
fn ask_tell_finds_a_good_branin_point() {
    let out = run("ask_tell", &["48"]);
    assert!(out.contains("48 trials"), "{out}");
    let best = out.lines().find(|l| l.starts_with("best trial")).unwrap();
    let value = numbers(best)[1];
    assert!(value < 5.0, "Branin's best after 48 trials: {value}");
}

#[test]
fn population_experiment_relays_weights() {
    let out = run("population_experiment", &["8", "4"]);
    assert!(out.contains("takes member"), "no relay happened: {out}");
    let summary = out.lines().last().unwrap();
    assert!(summary.starts_with("best val loss"), "{out}");
    assert_eq!(numbers(summary).len(), 4, "{summary}");
}

#[test]
fn multi_objective_prints_a_feasible_pareto_front() {
    let out = run("multi_objective", &["24", "3"]);
    let rows: Vec<Vec<f64>> = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("trial"))
        .skip(1)
        .map(numbers)
        .collect();
    assert!(!rows.is_empty(), "an empty front: {out}");
    for pair in rows.windows(2) {
        // Sorted by size: each larger model must be more accurate, or it is dominated.
        assert!(pair[0][2] < pair[1][2] && pair[0][1] < pair[1][1], "{out}");
    }
    assert!(
        rows.iter().all(|r| r[2] <= 20_000.0),
        "an infeasible model: {out}"
    );
}
