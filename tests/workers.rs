//! Many workers, one study: `popsweep run --storage URL` started several times joins one
//! study in PostgreSQL. A worker killed with SIGKILL loses nothing (its trials' leases
//! lapse and they run again elsewhere), a database restart makes workers wait and go on,
//! and the schedules that cannot run across workers are refused in one line. Without a
//! PostgreSQL server (`POPSWEEP_TEST_PG`) these tests print SKIP.

mod common;

use common::pg::{fresh_database, Cluster};
use common::{ok, popsweep};
use popsweep::storage::{FrozenTrial, PgStorage, Storage, TrialRecord, TrialState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// 200 trials of ASHA on digits, 4 slots per worker: a few seconds of training on two
/// cores, long enough to kill a worker in the middle.
const SWEEP: &str = "\
name: workers
method: random
metric: {name: val_accuracy, goal: maximize}
run_cap: 200
parameters:
  lr: {distribution: log_uniform_values, min: 0.003, max: 0.3}
  momentum: {distribution: uniform, min: 0.5, max: 0.95}
  width: {values: [64, 128, 256]}
data: {dataset: digits}
train: {epochs: 9, batch_size: 32}
seed: 0
scheduler: {type: asha, min_budget: 1, eta: 3, population: 4}
";

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popsweep-workers-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sweep.yaml"), SWEEP).unwrap();
    dir
}

/// Starts worker `k` on the study `name` of `url`, its run directory in `dir`.
fn worker(dir: &std::path::Path, url: &str, name: &str, k: usize) -> Child {
    worker_with(dir, url, name, k, &[])
}

fn worker_with(dir: &std::path::Path, url: &str, name: &str, k: usize, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .arg("run")
        .arg(dir.join("sweep.yaml"))
        .args(["--storage", url, "--study-name", name, "--no-sanity"])
        .args(extra)
        .args(["--threads", "1", "--heartbeat", "0.5", "--out"])
        .arg(dir.join(format!("worker-{k}")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "a worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The study's trials and its records by number (every number recorded once).
fn study(url: &str, name: &str) -> (Vec<FrozenTrial>, BTreeMap<usize, TrialRecord>, usize) {
    let mut storage = PgStorage::open(url, name, false).unwrap();
    let state = storage.state().unwrap().clone();
    assert!(state.queue.is_empty(), "retries were left queued");
    assert!(
        state.claims.contains("final-evaluation"),
        "no worker evaluated the best on the test split"
    );
    let records = storage.records().unwrap();
    let mut by_number = BTreeMap::new();
    for r in records {
        let number = r.number;
        assert!(
            by_number.insert(number, r).is_none(),
            "trial {number} recorded twice"
        );
    }
    (state.trials.clone(), by_number, state.counted_trials())
}

/// How many trials the study has asked so far.
fn asked(url: &str, name: &str) -> usize {
    PgStorage::open(url, name, false)
        .map(|mut s| s.state().unwrap().trials.len())
        .unwrap_or(0)
}

/// What every run of workers must end with, whatever happened on the way.
fn check_the_end(url: &str, name: &str, outputs: &[Output]) -> Vec<FrozenTrial> {
    let (trials, records, counted) = study(url, name);
    assert_eq!(counted, 200, "run_cap holds across workers, retries aside");
    for t in &trials {
        assert_ne!(
            t.state,
            TrialState::Running,
            "trial {} never finished",
            t.number
        );
        let x = t.params["lr"].as_f64().unwrap();
        assert!((0.003..=0.3).contains(&x), "{:?}", t.params);
        match records.get(&t.number) {
            Some(r) => assert_eq!(r.state, t.state, "trial {}", t.number),
            // Only a trial failed by its lapsed lease has no record: its retry has one.
            None => assert_eq!(
                t.state,
                TrialState::Failed,
                "trial {} has no record",
                t.number
            ),
        }
    }
    let best_record = records
        .values()
        .filter(|r| r.state == TrialState::Complete)
        .map(|r| r.rungs.last().unwrap().value)
        .fold(f64::NEG_INFINITY, f64::max);
    let best = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(["best", "--storage", url, "--study-name", name])
        .output()
        .unwrap();
    let best: serde_json::Value =
        serde_json::from_slice(&best.stdout).expect("best prints a trial");
    assert_eq!(best["value"].as_f64().unwrap(), best_record);
    let tested = outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).contains(" on test "))
        .count();
    assert_eq!(tested, 1, "the final test evaluation ran {tested} times");
    trials
}

#[test]
fn a_killed_worker_loses_nothing_and_a_late_one_joins() {
    let Some(url) = fresh_database("kill") else {
        return;
    };
    let dir = scratch("kill");
    let mut workers: Vec<Child> = (0..4).map(|k| worker(&dir, &url, "kill", k)).collect();
    let start = Instant::now();
    while asked(&url, "kill") < 60 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the sweep did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut victim = workers.remove(0);
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    workers.push(worker(&dir, &url, "kill", 4));
    // The killed worker comes back in its own run directory and rejoins the study.
    let back = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .arg("resume")
        .arg(dir.join("worker-0"))
        .args(["--storage", &url, "--heartbeat", "0.5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    workers.push(back);
    let outputs: Vec<Output> = workers.into_iter().map(finish).collect();
    let trials = check_the_end(&url, "kill", &outputs);

    // The killed worker's running trials failed when their leases lapsed, and ran again
    // with the same parameters.
    let lapsed: Vec<&FrozenTrial> = trials
        .iter()
        .filter(|t| t.state == TrialState::Failed)
        .collect();
    assert!(!lapsed.is_empty(), "the killed worker had no trial running");
    for t in lapsed {
        let retried = trials
            .iter()
            .any(|u| u.number > t.number && u.params == t.params && u.state != TrialState::Failed);
        assert!(retried, "trial {} was not run again", t.number);
    }
    let said: String = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert!(said.contains("stopped renewing its lease"), "{said}");
    let came_back = String::from_utf8_lossy(&outputs.last().unwrap().stdout).into_owned();
    assert!(
        came_back.contains("worker of study `kill` starting again"),
        "{came_back}"
    );
    assert!(dir.join("worker-0").join("trials.jsonl").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn workers_wait_out_a_database_restart() {
    let Some(cluster) = Cluster::start("workers") else {
        return;
    };
    let dir = scratch("restart");
    // Each worker sizes its own population: the second trains 2 trials at once, not 4.
    let workers = vec![
        worker(&dir, &cluster.url, "restart", 0),
        worker_with(&dir, &cluster.url, "restart", 1, &["--population", "2"]),
    ];
    let start = Instant::now();
    while asked(&cluster.url, "restart") < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the sweep did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.restart();
    let outputs: Vec<Output> = workers.into_iter().map(finish).collect();
    let trials = check_the_end(&cluster.url, "restart", &outputs);
    assert!(
        trials.iter().all(|t| t.state != TrialState::Failed),
        "a restart failed a trial"
    );
    let said: String = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert!(
        said.contains("lost the database"),
        "no worker noticed the restart: {said}"
    );

    // `report --storage` writes the study as a run directory and reports on it, again
    // and again; a directory holding a run of its own is refused.
    let report = |into: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_popsweep"))
            .arg("report")
            .arg(into)
            .args([
                "--storage",
                &cluster.url,
                "--study-name",
                "restart",
                "--json",
            ])
            .output()
            .unwrap()
    };
    let into = dir.join("study");
    for _ in 0..2 {
        let out = report(&into);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(into.join("report.html").is_file(), "{said}");
        let lines = std::fs::read_to_string(into.join("trials.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), trials.len());
    }
    let small: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("worker-1").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(small["population"], 2);
    let refused = report(&dir.join("worker-0"));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds a run of its own"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// One line on stderr and exit code 2 for a schedule that cannot run across workers.
#[test]
fn schedules_that_cannot_run_across_workers_are_refused() {
    let dir = scratch("refused");
    let url = "postgresql://u:p@127.0.0.1:1/db";
    for (schedule, why) in [
        (
            "{type: hyperband, min_budget: 1, eta: 3}",
            "`hyperband` schedule",
        ),
        ("{type: pbt}", "`pbt` schedule"),
        ("{type: sh, min_budget: 1, eta: 3}", "`sh` schedule"),
    ] {
        let text = SWEEP.replace(
            "{type: asha, min_budget: 1, eta: 3, population: 4}",
            schedule,
        );
        let file = dir.join("refused.yaml");
        std::fs::write(&file, &text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
            .arg("run")
            .arg(&file)
            .args(["--storage", url])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(why) && err.contains("cannot run across workers"),
            "{err}"
        );
        // The sweep file's own `storage` key is refused the same way, at its line.
        std::fs::write(&file, format!("{text}storage: {url}\n")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
            .arg("run")
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("refused.yaml:") && err.contains("storage:"),
            "{err}"
        );
    }
    // --population sizes the slots of asha and median only.
    let hyperband = dir.join("hyperband.yaml");
    let text = SWEEP.replace(
        "{type: asha, min_budget: 1, eta: 3, population: 4}",
        "{type: hyperband, min_budget: 1, eta: 3}",
    );
    std::fs::write(&hyperband, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .arg("run")
        .arg(&hyperband)
        .args(["--population", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--population"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A configuration queued when the study has no room left under `run_cap` is never asked:
/// a worker started then ends at once instead of waiting for it.
#[test]
fn a_worker_does_not_wait_for_what_the_cap_leaves_unasked() {
    let Some(url) = fresh_database("capped") else {
        return;
    };
    let dir = scratch("capped");
    let small = SWEEP
        .replace("run_cap: 200", "run_cap: 6")
        .replace("epochs: 9", "epochs: 1");
    std::fs::write(dir.join("sweep.yaml"), small).unwrap();
    finish(worker(&dir, &url, "capped", 0));
    ok(&popsweep(&[
        "enqueue",
        "--storage",
        &url,
        "--study-name",
        "capped",
        "--params",
        r#"{"lr": 0.01, "momentum": 0.9, "width": 64}"#,
    ]));
    let mut late = worker(&dir, &url, "capped", 1);
    let start = Instant::now();
    let ended = loop {
        if let Some(status) = late.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(60) {
            late.kill().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        ended.is_some_and(|s| s.success()),
        "the late worker waited for ever"
    );
    let mut storage = PgStorage::open(&url, "capped", false).unwrap();
    let state = storage.state().unwrap();
    assert_eq!((state.trials.len(), state.queue.len()), (6, 1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `dashboard --storage` draws the workers' study from the database: every trial it
/// records, read-only; a study that does not exist is one line of error.
#[test]
fn the_dashboard_draws_a_database_study() {
    let Some(url) = fresh_database("dashboard") else {
        return;
    };
    let dir = scratch("dashboard");
    let small = SWEEP
        .replace("run_cap: 200", "run_cap: 8")
        .replace("epochs: 9", "epochs: 3");
    std::fs::write(dir.join("sweep.yaml"), small).unwrap();
    finish(worker(&dir, &url, "shown", 0));
    let server = common::served::dashboard(&["--storage", &url, "--study-name", "shown"]);
    let data: serde_json::Value =
        serde_json::from_str(&common::served::get(&server.url, "/data.json")).unwrap();
    let (_, records, _) = study(&url, "shown");
    let shown: Vec<u64> = (data["trials"].as_array().unwrap().iter())
        .map(|t| t["n"].as_u64().unwrap())
        .collect();
    let recorded: Vec<u64> = records.keys().map(|&n| n as u64).collect();
    assert_eq!(shown, recorded);
    assert_eq!(data["live"], true);
    assert!(common::served::get(&server.url, "/").contains("Sweep <code>workers</code>"));
    let missing = popsweep(&[
        "dashboard",
        "--storage",
        &url,
        "--study-name",
        "none",
        "--port",
        "0",
    ]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
