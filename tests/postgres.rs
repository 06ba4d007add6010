//! Studies in PostgreSQL (`--storage postgresql://…`): the study commands on a shared
//! database, many processes at once, bad URLs and databases refused in one line, leases
//! that fail and re-queue a dead worker's trials, and workers that ride out a database
//! restart. Each test uses a database of its own on the server `POPSWEEP_TEST_PG` names
//! (`.ci/run` starts one); without it they print SKIP.

mod common;

use common::pg::{fresh_database, Cluster};
use common::{ok, popsweep};
use popsweep::storage::{PgStorage, Storage, TrialRecord, TrialState};
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};
use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

const SPACE: &str =
    r#"{"x": {"distribution": "uniform", "min": -2.0, "max": 3.0}, "k": {"values": [1, 2, 3]}}"#;

fn objective(p: &serde_json::Value) -> f64 {
    let x = p["x"].as_f64().unwrap();
    (x - 0.5).powi(2) + p["k"].as_f64().unwrap()
}

/// The study `name`'s trials as the storage replays them.
fn trials(url: &str, name: &str) -> Vec<popsweep::storage::FrozenTrial> {
    let mut storage = PgStorage::open(url, name, false).unwrap();
    storage.state().unwrap().trials.clone()
}

#[test]
fn the_study_commands_work_on_a_database_and_keep_studies_apart() {
    let Some(url) = fresh_database("commands") else {
        return;
    };
    let at = |name: &'static str| ["--storage", url.as_str(), "--study-name", name];
    let mut first = vec!["ask"];
    first.extend(at("a"));
    first.extend(["--space", SPACE, "--n", "3", "--seed", "7"]);
    let asked = ok(&popsweep(&first));
    let lines: Vec<serde_json::Value> = asked
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let (trial, value) = (
            line["trial"].to_string(),
            objective(&line["params"]).to_string(),
        );
        let mut tell = vec!["tell"];
        tell.extend(at("a"));
        tell.extend(["--trial", &trial, "--value", &value]);
        ok(&popsweep(&tell));
    }
    // Another study in the same database starts at trial 0, untouched by the first.
    let mut other = vec!["ask"];
    other.extend(at("b"));
    other.extend(["--space", SPACE]);
    let b: serde_json::Value = serde_json::from_str(ok(&popsweep(&other)).trim()).unwrap();
    assert_eq!(b["trial"], 0);

    let mut best = vec!["best"];
    best.extend(at("a"));
    let best: serde_json::Value = serde_json::from_str(ok(&popsweep(&best)).trim()).unwrap();
    let want = lines
        .iter()
        .min_by(|p, q| objective(&p["params"]).total_cmp(&objective(&q["params"])))
        .unwrap();
    assert_eq!(best["trial"], want["trial"]);
    assert_eq!(best["value"].as_f64().unwrap(), objective(&want["params"]));

    // An enqueued configuration is the next ask, exactly.
    let mut enqueue = vec!["enqueue"];
    enqueue.extend(at("a"));
    enqueue.extend(["--params", r#"{"x": 0.25, "k": 2}"#]);
    ok(&popsweep(&enqueue));
    let mut ask = vec!["ask"];
    ask.extend(at("a"));
    let next: serde_json::Value = serde_json::from_str(ok(&popsweep(&ask)).trim()).unwrap();
    assert_eq!(next["trial"], 3);
    assert_eq!(next["params"]["x"], 0.25);
    assert_eq!(next["params"]["k"], 2);

    // The export reads the database's study.
    let file =
        std::env::temp_dir().join(format!("popsweep-pg-export-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let mut export = vec!["export"];
    export.extend(at("a"));
    export.extend(["--optuna-journal", file.to_str().unwrap()]);
    let said = ok(&popsweep(&export));
    assert!(said.contains("wrote 4 trials"), "{said}");
    let journal = std::fs::read_to_string(&file).unwrap();
    assert_eq!(journal.lines().count(), 1 + 4);
    let _ = std::fs::remove_file(&file);
    assert_eq!(trials(&url, "a").len(), 4);
    assert_eq!(trials(&url, "b").len(), 1);
}

/// The issue's concurrency check: 8 processes × 250 ask/tell cycles through the CLI.
#[test]
fn eight_processes_of_250_cli_cycles_lose_and_duplicate_nothing() {
    let Some(url) = fresh_database("concurrency") else {
        return;
    };
    let created = popsweep(&[
        "ask",
        "--storage",
        &url,
        "--study-name",
        "race",
        "--space",
        SPACE,
        "--sampler",
        "tpe",
    ]);
    let first: serde_json::Value = serde_json::from_str(ok(&created).trim()).unwrap();
    ok(&popsweep(&[
        "tell",
        "--storage",
        &url,
        "--study-name",
        "race",
        "--trial",
        "0",
        "--value",
        &objective(&first["params"]).to_string(),
    ]));
    const WORKERS: usize = 8;
    const CYCLES: usize = 250;
    let started = std::time::Instant::now();
    let told: Vec<Vec<(u64, f64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let mut told = Vec::new();
                    for _ in 0..CYCLES {
                        let out = popsweep(&["ask", "--storage", &url, "--study-name", "race"]);
                        let t: serde_json::Value = serde_json::from_str(ok(&out).trim()).unwrap();
                        let (n, v) = (t["trial"].as_u64().unwrap(), objective(&t["params"]));
                        ok(&popsweep(&[
                            "tell",
                            "--storage",
                            &url,
                            "--study-name",
                            "race",
                            "--trial",
                            &n.to_string(),
                            "--value",
                            &v.to_string(),
                        ]));
                        told.push((n, v));
                    }
                    told
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!(
        "{} ask/tell cycles by {WORKERS} processes in {:.1} s",
        WORKERS * CYCLES,
        started.elapsed().as_secs_f64()
    );
    let numbers: Vec<u64> = told.iter().flatten().map(|(n, _)| *n).collect();
    let unique: BTreeSet<u64> = numbers.iter().copied().collect();
    assert_eq!(
        unique.len(),
        numbers.len(),
        "a trial number was handed out twice"
    );
    let all = trials(&url, "race");
    assert_eq!(all.len(), 1 + WORKERS * CYCLES, "trials lost or added");
    assert_eq!(
        unique,
        (1..=(WORKERS * CYCLES) as u64).collect::<BTreeSet<_>>()
    );
    for t in &all {
        assert_eq!(
            t.state,
            TrialState::Complete,
            "trial {} is {:?}",
            t.number,
            t.state
        );
        let x = t.params["x"].as_f64().unwrap();
        let k = t.params["k"].as_f64().unwrap();
        assert!(
            (-2.0..=3.0).contains(&x) && [1.0, 2.0, 3.0].contains(&k),
            "{:?}",
            t.params
        );
        assert_eq!(
            t.value.unwrap(),
            (x - 0.5).powi(2) + k,
            "trial {}",
            t.number
        );
    }
}

/// One line on stderr, exit code 2, and the line says `what`.
fn refused(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(what), "expected `{what}` in: {err}");
    assert!(!err.contains("secret"), "the password leaked: {err}");
}

#[test]
fn bad_urls_and_databases_get_one_line_and_exit_2() {
    let Some(url) = fresh_database("refusals") else {
        return;
    };
    let ask = |url: &str, name: &str, space: &str| {
        popsweep(&[
            "ask",
            "--storage",
            url,
            "--study-name",
            name,
            "--space",
            space,
        ])
    };
    // Nothing listens on port 1.
    refused(
        &ask("postgresql://u:secret@127.0.0.1:1/db", "s", SPACE),
        "cannot connect",
    );
    let (user, rest) = url.split_once("://").unwrap().1.split_once('@').unwrap();
    let wrong = format!(
        "postgresql://{}:secret@{rest}",
        user.split(':').next().unwrap()
    );
    refused(&ask(&wrong, "s", SPACE), "wrong user name or password");
    refused(
        &ask("postgresql://[::1", "s", SPACE),
        "not a PostgreSQL URL",
    );

    ok(&ask(&url, "s", SPACE));
    refused(
        &ask(&url, "s", r#"{"y": {"values": [1, 2]}}"#),
        "exists with another search space",
    );
    refused(
        &popsweep(&["best", "--storage", &url, "--study-name", "nobody"]),
        "no study named `nobody`",
    );

    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .execute("UPDATE popsweep_schema SET version = 99", &[])
        .unwrap();
    refused(&ask(&url, "s", SPACE), "schema version 99");
}

fn study_on(storage: PgStorage) -> Study {
    let space = popsweep::config::parse_space(SPACE, "space").unwrap();
    Study::new(Box::new(storage), space, SamplerKind::Random, false, 3).unwrap()
}

#[test]
fn a_lapsed_lease_fails_the_trial_and_requeues_its_parameters() {
    let Some(url) = fresh_database("leases") else {
        return;
    };
    let beat = Duration::from_millis(200);
    let worker = |retries| {
        let storage = PgStorage::open(&url, "lease", true)
            .unwrap()
            .with_heartbeat(beat, retries)
            .unwrap();
        study_on(storage)
    };
    let mut alive = worker(1);
    let kept = alive.ask().unwrap();
    let mut dying = worker(1);
    let lost = dying.ask_batch(2).unwrap();
    // Renewed leases outlast their grace period many times over.
    std::thread::sleep(beat * 5);
    alive.ask().unwrap();
    let states: Vec<TrialState> = alive.trials().unwrap().iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        vec![TrialState::Running; 4],
        "a renewed lease lapsed"
    );

    // The worker stops beating (as when it is killed): its trials lapse after the grace.
    drop(dying);
    std::thread::sleep(beat * 3);
    let retried = alive.ask_batch(2).unwrap();
    let all = alive.trials().unwrap();
    assert_eq!(all[lost[0].number].state, TrialState::Failed);
    assert_eq!(all[lost[1].number].state, TrialState::Failed);
    assert_eq!(all[kept.number].state, TrialState::Running);
    assert_eq!(retried[0].params, lost[0].params);
    assert_eq!(retried[1].params, lost[1].params);
    alive
        .tell(retried[1].number, Outcome::Complete(1.0))
        .unwrap();

    // A retried trial that lapses again has used its one retry: failed, not re-queued.
    let mut again = worker(1);
    let number = again.ask().unwrap().number;
    assert_ne!(number, retried[0].number);
    drop(alive);
    drop(again);
    std::thread::sleep(beat * 3);
    let mut last = study_on(PgStorage::open(&url, "lease", true).unwrap());
    let next = last.ask().unwrap();
    let all = last.trials().unwrap();
    assert_eq!(all[retried[0].number].state, TrialState::Failed);
    assert_ne!(
        next.params, lost[0].params,
        "a trial was retried beyond max_retries"
    );
    assert_eq!(all[retried[1].number].state, TrialState::Complete);
}

#[test]
fn workers_ride_out_a_database_restart_and_record_everything_once() {
    let Some(cluster) = Cluster::start("restart") else {
        return;
    };
    const WORKERS: usize = 4;
    const CYCLES: usize = 60;
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let (url, done) = (&cluster.url, &done);
            s.spawn(move || {
                let mut study = study_on(PgStorage::open(url, "restart", true).unwrap());
                for _ in 0..CYCLES {
                    let t = study.ask().unwrap();
                    let p = serde_json::to_value(&t.params).unwrap();
                    study
                        .tell(t.number, Outcome::Complete(objective(&p)))
                        .unwrap();
                    study
                        .record(&TrialRecord {
                            number: t.number,
                            params: t.params.clone(),
                            state: TrialState::Complete,
                            epochs: w,
                            ..Default::default()
                        })
                        .unwrap();
                    study.sync().unwrap();
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        while done.load(std::sync::atomic::Ordering::Relaxed) < WORKERS * CYCLES / 3 {
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster.restart();
    });
    assert_eq!(done.into_inner(), WORKERS * CYCLES);
    let mut storage = PgStorage::open(&cluster.url, "restart", false).unwrap();
    let all = storage.state().unwrap().trials.clone();
    assert_eq!(all.len(), WORKERS * CYCLES, "trials lost or asked twice");
    assert!(all.iter().all(|t| t.state == TrialState::Complete));
    let records = storage.records().unwrap();
    let numbers: BTreeSet<usize> = records.iter().map(|r| r.number).collect();
    assert_eq!(
        records.len(),
        WORKERS * CYCLES,
        "records lost or stored twice"
    );
    assert_eq!(numbers.len(), WORKERS * CYCLES);
}

/// Optuna itself loads the export of a database study, intermediate values included, and
/// sees the trials the database holds.
#[test]
fn optuna_loads_the_export_of_a_database_study() {
    let Some(url) = fresh_database("interop") else {
        return;
    };
    let at = ["--storage", url.as_str(), "--study-name", "interop"];
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args[..1].to_vec();
        all.extend(at);
        all.extend(&args[1..]);
        ok(&popsweep(&all))
    };
    with(&["ask", "--space", SPACE, "--n", "4"]);
    for (trial, end) in ["0.5", "pruned", "1.5", "failed"].iter().enumerate() {
        let t = trial.to_string();
        for step in 1..=2 {
            let v = format!("{}", trial as f64 + 1.0 / step as f64);
            with(&[
                "tell",
                "--trial",
                &t,
                "--step",
                &step.to_string(),
                "--intermediate",
                &v,
            ]);
        }
        match *end {
            "pruned" | "failed" => with(&["tell", "--trial", &t, "--state", end]),
            value => with(&["tell", "--trial", &t, "--value", value]),
        };
    }
    let journal =
        std::env::temp_dir().join(format!("popsweep-pg-interop-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    with(&["export", "--optuna-journal", journal.to_str().unwrap()]);
    let Some(seen) = common::optuna_reads(&journal) else {
        println!("SKIP: no Python with optuna (set POPSWEEP_OPTUNA_PYTHON)");
        return;
    };
    let _ = std::fs::remove_file(&journal);
    let trials = seen["trials"].as_array().unwrap();
    let states: Vec<&str> = trials
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["complete", "pruned", "complete", "fail"]);
    assert_eq!(trials[2]["value"], 1.5);
    assert_eq!(trials[3]["intermediate"]["2"].as_f64().unwrap(), 3.5);
    assert_eq!(seen["best"], 0);
    let stored = self::trials(&url, "interop");
    for (t, s) in trials.iter().zip(&stored) {
        for name in ["x", "k"] {
            assert_eq!(
                t["params"][name],
                serde_json::to_value(&s.params[name]).unwrap()
            );
        }
    }
}

/// A server that takes only TLS: popsweep connects with `sslmode=require` and the
/// server's CA (`sslrootcert`, as libpq names it), refuses a certificate it cannot verify,
/// and a plain connection is refused by the server.
#[test]
fn tls_connections_verify_the_server() {
    let Some(cluster) = Cluster::start_tls("tls") else {
        return;
    };
    let ca = cluster.dir.join("ca.crt");
    let secure = format!(
        "{}?sslmode=require&sslrootcert={}",
        cluster.url,
        ca.display()
    );
    let ask = |url: &str| {
        popsweep(&[
            "ask",
            "--storage",
            url,
            "--study-name",
            "tls",
            "--space",
            SPACE,
        ])
    };
    let first: serde_json::Value = serde_json::from_str(ok(&ask(&secure)).trim()).unwrap();
    assert_eq!(first["trial"], 0);
    // The system's roots do not know this CA.
    let unverified = ask(&format!("{}?sslmode=require", cluster.url));
    assert_eq!(unverified.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unverified.stderr);
    assert!(err.contains("certificate"), "{err}");
    let plain = ask(&format!("{}?sslmode=disable", cluster.url));
    assert_eq!(
        plain.status.code(),
        Some(2),
        "a plain connection got through"
    );
    // Heartbeats connect the same way: a lease renewed over TLS does not lapse.
    let storage = PgStorage::open(&secure, "tls", true)
        .unwrap()
        .with_heartbeat(Duration::from_millis(200), 1)
        .unwrap();
    let mut study = study_on(storage);
    let t = study.ask().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let mut other = study_on(PgStorage::open(&secure, "tls", false).unwrap());
    other.ask().unwrap();
    let all = other.trials().unwrap();
    assert_eq!(
        all[t.number].state,
        TrialState::Running,
        "a renewed lease lapsed"
    );
}
