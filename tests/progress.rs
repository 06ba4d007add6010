//! Progress a user can watch, and time as a budget: a full-budget sweep (one rung of
//! several slow epochs) prints a line at least every 5 s of training, not only when the
//! rung closes; `budget.wall_seconds` ends a sweep planned for longer at the budget, with
//! every trial complete where it stood and the best one tested.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 24 members of 64-512-512-512-10 on digits: an epoch of the population takes about a
/// second on two cores.
const SLOW: &str = "method: random\nmetric: {name: val_accuracy, goal: maximize}\nrun_cap: 24\n\
    parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n  \
    width: {values: [512]}\n  depth: {values: [3]}\n";

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("popsweep-progress-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_full_budget_sweep_prints_progress_at_least_every_five_seconds() {
    let dir = temp("lines");
    let sweep = dir.join("full.yaml");
    std::fs::write(
        &sweep,
        format!("{SLOW}train: {{epochs: 6, batch_size: 16}}\n"),
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
    // The rung's closing line says the best validation any trial showed at any epoch: the
    // largest in the records, with its trial and epoch.
    let seen = lines[last].1.split("| seen ").nth(1).expect("a seen value");
    let (value, rest) = seen.split_once(" (trial ").unwrap();
    let (trial, rest) = rest.split_once(" at ").unwrap();
    let epochs: f64 = rest.split_once(" epochs").unwrap().0.parse().unwrap();
    let records = std::fs::read_to_string(run.join("trials.jsonl")).unwrap();
    // (value, trial, epoch) of every epoch of every trial.
    let shown: Vec<(f64, String, f64)> = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .flat_map(|t| {
            let n = t["number"].to_string();
            let h = t["history"].as_array().unwrap().clone();
            h.into_iter().map(move |e| {
                let epoch = e["epoch"].as_f64().unwrap();
                (e["val_accuracy"].as_f64().unwrap(), n.clone(), epoch)
            })
        })
        .collect();
    let best = shown.iter().map(|s| s.0).fold(f64::MIN, f64::max);
    assert_eq!(value, format!("{best:.4}"), "{}", lines[last].1);
    // Ties are common on 270 validation rows: the one named showed the best there.
    assert!(
        shown.contains(&(best, trial.to_string(), epochs)),
        "{}",
        lines[last].1
    );
}

/// Under a bracket schedule (the full budget) and a slot schedule (ASHA) alike.
#[test]
fn a_wall_budget_ends_a_longer_sweep_on_time_with_a_tested_best() {
    for (name, schedule) in [
        ("full", ""),
        (
            "asha",
            "scheduler: {type: asha, min_budget: 2, population: 8}\n",
        ),
    ] {
        let dir = temp(&format!("wall-{name}"));
        let sweep = dir.join("wall.yaml");
        std::fs::write(
            &sweep,
            format!(
                "{SLOW}{schedule}train: {{epochs: 30, batch_size: 16}}\nbudget: {{wall_seconds: 3}}\n"
            ),
        )
        .unwrap();
        let run = dir.join("run");
        let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
            .args([
                "run",
                sweep.to_str().unwrap(),
                "--out",
                run.to_str().unwrap(),
                "--no-sanity",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("the wall budget of 3 s ran out"),
            "{name}: {stdout}"
        );
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["wall_budget_cut"], true, "{name}: {summary}");
        // Planned for 30 epochs (about 30 s); ended at the budget, give or take an epoch
        // (two on a machine busy with other tests).
        let wall = summary["wall_seconds"].as_f64().unwrap();
        assert!(wall < 3.0 + 3.0, "{name}: {wall} s");
        assert!(summary["best"]["test"].is_number(), "{name}: {summary}");
        let epochs = summary["epochs_total"].as_u64().unwrap();
        assert!(epochs > 0 && epochs < 24 * 30, "{name}: {epochs}");
        let trials = std::fs::read_to_string(run.join("trials.jsonl")).unwrap();
        let mut cut = 0;
        for line in trials.lines() {
            let t: serde_json::Value = serde_json::from_str(line).unwrap();
            // Only ASHA stops trials at its rungs; every trial training at the cut
            // ends complete short of its 30 epochs, with its value there as a rung.
            let stopped = name == "asha" && t["state"] == "pruned";
            assert!(
                stopped || t["state"] == "complete" || t["state"] == "failed",
                "{t}"
            );
            if t["state"] == "complete" {
                let epochs = t["epochs"].as_u64().unwrap();
                assert!(epochs < 30, "{name}: {t}");
                assert_eq!(
                    t["rungs"].as_array().unwrap().last().unwrap()["epochs"],
                    epochs
                );
                cut += 1;
            }
        }
        assert!(cut > 0, "{name}: {trials}");
        // ASHA would have started all 24 trials in its 8 slots; the cut started no more.
        if name == "asha" {
            assert!(trials.lines().count() < 24, "{trials}");
        }
    }
}

/// A budget the sweep does not reach changes nothing: the same trials, no cut reported.
#[test]
fn a_wall_budget_not_reached_changes_nothing() {
    let dir = temp("roomy");
    let plain = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/digits.yaml"),
    )
    .unwrap();
    let mut runs = Vec::new();
    for (name, text) in [
        ("plain", plain.clone()),
        ("roomy", format!("{plain}budget: {{wall_seconds: 600}}\n")),
    ] {
        let sweep = dir.join(format!("{name}.yaml"));
        std::fs::write(&sweep, text).unwrap();
        let run = dir.join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
            .args([
                "run",
                sweep.to_str().unwrap(),
                "--out",
                run.to_str().unwrap(),
            ])
            .args(["--no-sanity", "--quiet"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                .unwrap();
        assert!(summary.get("wall_budget_cut").is_none(), "{summary}");
        runs.push(std::fs::read_to_string(run.join("trials.jsonl")).unwrap());
    }
    assert_eq!(runs[0], runs[1], "the same records");
}
