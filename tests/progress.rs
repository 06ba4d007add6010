//! Progress a user can watch: a full-budget sweep (one rung of several slow epochs) prints
//! a line at least every 5 s of training, not only when the rung closes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_full_budget_sweep_prints_progress_at_least_every_five_seconds() {
    let dir = std::env::temp_dir().join(format!("popsweep-progress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sweep = dir.join("full.yaml");
    std::fs::write(
        &sweep,
        "method: random\nmetric: {name: val_accuracy, goal: maximize}\nrun_cap: 24\n\
         parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n  \
         width: {values: [512]}\n  depth: {values: [3]}\ntrain: {epochs: 6, batch_size: 16}\n",
    )
    .unwrap();
    let run = dir.join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args([
            "run",
            sweep.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--no-sanity",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines: Vec<(Duration, String)> = Vec::new();
    let started = Instant::now();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        lines.push((started.elapsed(), line.unwrap()));
    }
    assert!(child.wait().unwrap().success());
    // From the line announcing the sweep to the one closing its only rung.
    let first = lines
        .iter()
        .position(|(_, l)| l.starts_with("sweep `"))
        .unwrap();
    let last = lines
        .iter()
        .position(|(_, l)| l.starts_with("rung 1/1 (6 epochs)"))
        .unwrap();
    let inside: Vec<&String> = lines[first + 1..last].iter().map(|(_, l)| l).collect();
    assert!(
        inside
            .iter()
            .any(|l| l.starts_with("  rung 1/1 (6 epochs): at ")),
        "no progress inside the rung: {lines:?}"
    );
    for pair in lines[first..=last].windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap < Duration::from_secs(5),
            "{gap:?} of silence before {:?}",
            pair[1].1
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
