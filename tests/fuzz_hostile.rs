//! Fuzz classes for hostile scale (issue 25), beside the mutation fuzzing of
//! `fuzz_inputs.rs`: sizes, concurrency, degenerate data and full disks. Each class draws
//! its cases from a fixed seed, so a failure reproduces; the budgets grow from the
//! environment for a deeper run (`POPSWEEP_FUZZ_SIZES=5000 POPSWEEP_FUZZ_CONCURRENT=8
//! POPSWEEP_FUZZ_DATA=400 POPSWEEP_FUZZ_DISKS=10`).

use popsweep::backend::cpu::CpuBackend;
use popsweep::config;
use popsweep::data::digits;
use popsweep::sweep::{check_resources, prepare_data};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_popsweep");

fn budget(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("popsweep-fuzz-hostile-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A size spread over 15 decades, as a careless or hostile file writes them.
fn size(rng: &mut ChaCha8Rng) -> u64 {
    let decades = rng.random_range(0.0..15.0f64);
    10f64.powf(decades).round() as u64
}

/// Sizes: random trial counts, widths, depths and batch sizes. Each request is accepted
/// or refused by the resource check in under a second and without a panic, and the check
/// is monotone: a request no smaller in any size than a refused one is refused too.
#[test]
fn sizes_are_decided_at_once_and_monotonically() {
    let data = digits::load().unwrap();
    let backend = CpuBackend::new(2);
    let mut rng = ChaCha8Rng::seed_from_u64(25);
    let mut refused: Vec<[u64; 4]> = Vec::new();
    let mut accepted: Vec<[u64; 4]> = Vec::new();
    for _ in 0..budget("POPSWEEP_FUZZ_SIZES", 300) {
        let request = [
            size(&mut rng),
            size(&mut rng),
            rng.random_range(1..40),
            size(&mut rng),
        ];
        let [run_cap, width, depth, batch] = request;
        let text = format!(
            "method: random\nmetric: {{name: val_accuracy, goal: maximize}}\nrun_cap: {run_cap}\n\
             parameters:\n  width: {{values: [{width}]}}\n  depth: {{values: [{depth}]}}\n\
             train: {{batch_size: {batch}}}\n"
        );
        let started = Instant::now();
        let decided = config::parse(&text, "fuzz").and_then(|sweep| {
            let (tuning, _) = prepare_data(&sweep, &data);
            check_resources(&sweep, &tuning, &backend)
        });
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{request:?} took {:?}",
            started.elapsed()
        );
        match decided {
            Ok(()) => accepted.push(request),
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{request:?}: {e}");
                refused.push(request);
            }
        }
    }
    // Batches beyond the training split count as the split, so only the other sizes are
    // compared for a batch beyond it.
    let rows = 1258;
    let covers = |big: &[u64; 4], small: &[u64; 4]| {
        big[..3].iter().zip(&small[..3]).all(|(b, s)| b >= s)
            && big[3].min(rows) >= small[3].min(rows)
    };
    for a in &accepted {
        assert!(
            !refused.iter().any(|r| covers(a, r)),
            "{a:?} accepted though a smaller request was refused"
        );
    }
    assert!(
        !accepted.is_empty() && !refused.is_empty(),
        "{} accepted, {} refused",
        accepted.len(),
        refused.len()
    );
    println!(
        "sizes: {} accepted, {} refused",
        accepted.len(),
        refused.len()
    );
}

/// Concurrency: processes asking, telling and reading one study at once. Every trial
/// number is issued once, every tell is recorded once, and the journal replays with no
/// warning (no torn or interleaved line).
#[test]
fn concurrent_ask_tell_best_keep_the_study_whole() {
    let dir = temp("concurrent");
    let study = dir.join("study");
    let s = study.to_str().unwrap().to_string();
    let space = r#"{"x": {"distribution": "uniform", "min": -2, "max": 2}}"#;
    let first = Command::new(BIN)
        .args([
            "ask",
            "--study",
            &s,
            "--space",
            space,
            "--sampler",
            "random",
        ])
        .output()
        .unwrap();
    assert!(first.status.success());
    let workers = budget("POPSWEEP_FUZZ_CONCURRENT", 4);
    let cycles = 15;
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut told = Vec::new();
                for c in 0..cycles {
                    let out = Command::new(BIN)
                        .args(["ask", "--study", &s])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                    let trial = line["trial"].as_u64().unwrap();
                    let x = line["params"]["x"].as_f64().unwrap();
                    assert!((-2.0..=2.0).contains(&x), "{line}");
                    let value = (x * x).to_string();
                    let out = Command::new(BIN)
                        .args([
                            "tell",
                            "--study",
                            &s,
                            "--trial",
                            &trial.to_string(),
                            "--value",
                            &value,
                        ])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    if (w + c) % 5 == 0 {
                        let best = Command::new(BIN)
                            .args(["best", "--study", &s])
                            .output()
                            .unwrap();
                        assert!(best.status.success());
                    }
                    told.push(trial);
                }
                told
            })
        })
        .collect();
    let mut told: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    told.sort_unstable();
    let before = told.len();
    told.dedup();
    assert_eq!(told.len(), before, "a trial number issued twice");
    assert_eq!(told.len(), workers * cycles);
    let best = Command::new(BIN)
        .args(["best", "--study", &s])
        .output()
        .unwrap();
    assert!(
        best.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&best.stderr)
    );
    let journal = std::fs::read_to_string(study.join("journal.jsonl")).unwrap();
    let tells = journal
        .lines()
        .filter(|l| l.contains("\"op\":\"tell\""))
        .count();
    assert_eq!(tells, workers * cycles, "every tell recorded once");
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Degenerate data: random small CSVs (1–60 rows, 1–4 classes with sparse or huge label
/// values, constant columns, regression targets that may be constant). Each is refused
/// with one line and exit 2, or runs with every split large enough to score.
#[test]
fn degenerate_data_is_refused_or_split_into_scorable_parts() {
    let dir = temp("data");
    let mut rng = ChaCha8Rng::seed_from_u64(2525);
    let (mut refused, mut ran) = (0, 0);
    for case in 0..budget("POPSWEEP_FUZZ_DATA", 30) {
        let rows = rng.random_range(1..=60);
        let regression = rng.random_bool(0.25);
        let classes: Vec<u64> = (0..rng.random_range(1..=4))
            .map(|_| {
                if rng.random_bool(0.2) {
                    rng.random_range(0..70_000)
                } else {
                    rng.random_range(0..5)
                }
            })
            .collect();
        let constant_target = rng.random_bool(0.3);
        let mut text = String::from("a,b,y\n");
        for i in 0..rows {
            let a = if rng.random_bool(0.1) {
                1.0
            } else {
                rng.random_range(-1.0..1.0f64)
            };
            let y = match (regression, constant_target) {
                (true, true) => "2.5".to_string(),
                (true, false) => format!("{}", rng.random_range(-1.0..1.0f64)),
                (false, _) => classes[i % classes.len()].to_string(),
            };
            text.push_str(&format!("{a},{},{y}\n", i % 3));
        }
        let csv = dir.join(format!("{case}.csv"));
        std::fs::write(&csv, text).unwrap();
        let (task, metric) = if regression {
            ("regression", "val_loss")
        } else {
            ("classification", "val_loss")
        };
        let sweep = dir.join(format!("{case}.yaml"));
        std::fs::write(
            &sweep,
            format!(
                "method: random\nmetric: {{name: {metric}, goal: minimize}}\nrun_cap: 2\n\
                 parameters:\n  lr: {{values: [0.01]}}\ntrain: {{epochs: 1}}\n\
                 data: {{format: csv, path: {}, task: {task}}}\n",
                csv.display()
            ),
        )
        .unwrap();
        let out_dir = dir.join(format!("{case}-run"));
        let out = run(&[
            "run",
            sweep.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--no-sanity",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors = stderr.lines().filter(|l| l.starts_with("error: ")).count();
        match out.status.code() {
            Some(2) => {
                assert_eq!(errors, 1, "case {case}: {stderr}");
                refused += 1;
            }
            Some(0) | Some(1) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let line = stdout
                    .lines()
                    .find(|l| l.starts_with("data: "))
                    .unwrap_or_else(|| panic!("case {case}: {stdout}{stderr}"));
                let counts: Vec<usize> = line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|w| w.parse().ok())
                    .collect();
                let n = counts.len();
                let (train, val, test) = (counts[n - 3], counts[n - 2], counts[n - 1]);
                assert!(train >= 10 && val >= 5 && test >= 5, "case {case}: {line}");
                ran += 1;
            }
            other => panic!("case {case}: exit {other:?}: {stderr}"),
        }
    }
    println!("degenerate data: {refused} refused, {ran} ran");
    assert!(refused > 0, "no case was degenerate");
}

/// A full disk at random points of a sweep (a tmpfs of 8–64 KB): the sweep ends with a
/// resumable directory and says so, and a resume with room finishes it with valid JSON
/// lines and every trial once. Needs root to mount; SKIPs otherwise.
#[test]
fn a_disk_full_at_any_point_leaves_a_resumable_directory() {
    let mut rng = ChaCha8Rng::seed_from_u64(28);
    for case in 0..budget("POPSWEEP_FUZZ_DISKS", 3) {
        let dir = temp(&format!("disk{case}"));
        let kb = rng.random_range(8..=64);
        let mount = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kb}k"),
                "tmpfs",
                dir.to_str().unwrap(),
            ])
            .output();
        if !mount.is_ok_and(|o| o.status.success()) {
            println!("SKIP: cannot mount a small tmpfs here (needs root)");
            return;
        }
        let run_dir = dir.join("run");
        let first = run(&[
            "run",
            "--out",
            run_dir.to_str().unwrap(),
            "--quiet",
            "--no-sanity",
        ]);
        let grown = Command::new("mount")
            .args(["-o", "remount,size=10m", dir.to_str().unwrap()])
            .output();
        let resumed = (!first.status.success() && run_dir.join("trials.jsonl").exists())
            .then(|| run(&["resume", run_dir.to_str().unwrap(), "--quiet"]));
        let trials = std::fs::read_to_string(run_dir.join("trials.jsonl")).unwrap_or_default();
        let _ = Command::new("umount").arg(&dir).output();
        assert!(grown.unwrap().status.success());
        let stderr = String::from_utf8_lossy(&first.stderr);
        match (first.status.code(), resumed) {
            (Some(0), None) => {}
            (Some(1), Some(resumed)) => {
                assert!(
                    stderr.contains("make room, then resume with"),
                    "case {case} ({kb} KB): {stderr}"
                );
                assert!(
                    resumed.status.success(),
                    "case {case}: {}",
                    String::from_utf8_lossy(&resumed.stderr)
                );
            }
            // The disk filled before the run directory held a study: nothing to resume.
            (Some(1), None) => {
                assert!(
                    stderr.contains("No space left on device"),
                    "case {case}: {stderr}"
                );
                continue;
            }
            (code, _) => panic!("case {case} ({kb} KB): exit {code:?}: {stderr}"),
        }
        let mut numbers: Vec<u64> = trials
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("valid JSON lines")["number"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), 81, "case {case}: every trial once");
    }
}

/// Hostile files where a sweep file or a data file belongs: a directory, devices that never
/// end, a FIFO with no writer (opening it would block), a symlink loop, a 1 TB sparse file,
/// an empty file. Each is refused with one line, exit 2, in under a second, for either role.
#[test]
fn hostile_files_are_refused_at_once_as_sweep_or_data() {
    let dir = temp("files");
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    let lp = dir.join("loop");
    std::os::unix::fs::symlink(&lp, &lp).unwrap();
    let sparse = dir.join("sparse.csv");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let mut files: Vec<PathBuf> = vec![
        dir.clone(),
        "/dev/zero".into(),
        "/dev/urandom".into(),
        lp,
        sparse,
        empty,
    ];
    if made.is_ok_and(|s| s.success()) {
        files.push(fifo);
    }
    for file in &files {
        let sweep = dir.join("on.yaml");
        std::fs::write(
            &sweep,
            format!(
                "method: random\nmetric: {{name: val_loss, goal: minimize}}\n\
                 parameters:\n  lr: {{values: [0.01]}}\ndata: {{format: csv, path: {}}}\n",
                file.display()
            ),
        )
        .unwrap();
        for args in [
            vec!["run", file.to_str().unwrap()],
            vec!["run", sweep.to_str().unwrap()],
        ] {
            let started = Instant::now();
            let out = run(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{args:?}: {:?}",
                started.elapsed()
            );
        }
    }
}
