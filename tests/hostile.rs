//! Hostile scale and concurrency, end to end through the binary: each reproduction of
//! issue 25 (oversize requests, two writers on one run directory, damaged and torn
//! records, degenerate data, unbounded inputs, a full disk, read-only run directories).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_popsweep");

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("popsweep-hostile-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn popsweep(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn default_sweep() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/digits.yaml"))
        .unwrap()
}

/// Runs the binary, returning its exit code, wall time and peak resident memory (from
/// `wait4`, the child's own, not the test's).
fn measured(args: &[&str]) -> (i32, Duration, u64, String) {
    let started = Instant::now();
    // Reaped by wait4 below (for its rusage), not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut err = child.stderr.take().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut err, &mut text).unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child; both out-pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    // ru_maxrss is in KiB on Linux.
    (code, started.elapsed(), usage.ru_maxrss as u64 * 1024, text)
}

#[test]
fn every_oversize_request_is_refused_at_once_in_little_memory() {
    let dir = temp("oversize");
    let write = |name: &str, text: &str| -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let sweep = default_sweep();
    let trillion = write(
        "trillion.yaml",
        &sweep.replace("run_cap: 81", "run_cap: 1000000000000"),
    );
    let wide_space = sweep.replace("run_cap: 81", "run_cap: 200000");
    let many = write("many.yaml", &wide_space);
    let huge_member = write(
        "huge.yaml",
        "method: random\nmetric: {name: val_accuracy, goal: maximize}\nrun_cap: 4\n\
         parameters:\n  width: {values: [65536]}\n  depth: {values: [8]}\n",
    );
    let big_file = write("big.yaml", &format!("# {}\n{sweep}", "x".repeat(5 << 20)));
    // IDX images declaring 40,000 × 100 × 100 pixels, all zeros: 400 MB that gzip to
    // ~400 KB, a ratio past any real data set's.
    let bomb = dir.join("bomb-images.gz");
    {
        let file = std::fs::File::create(&bomb).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
        for word in [0x0803u32, 40_000, 100, 100] {
            gz.write_all(&word.to_be_bytes()).unwrap();
        }
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..400 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
    }
    let labels = write("labels.idx", "");
    let bomb_sweep = write(
        "bomb.yaml",
        &format!(
            "method: random\nmetric: {{name: val_accuracy, goal: maximize}}\n\
             parameters:\n  lr: {{values: [0.1]}}\n\
             data: {{format: idx, train_images: {}, train_labels: {labels}}}\n",
            bomb.display()
        ),
    );
    let study = dir.join("study").display().to_string();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "a trillion trials",
            vec!["run", &trillion],
            "more than a study holds",
        ),
        ("200,000 trials", vec!["run", &many], "population: needs"),
        (
            "a 34 G-parameter member",
            vec!["run", &huge_member],
            "population: needs",
        ),
        (
            "a batch ask of 10^8",
            vec![
                "ask",
                "--study",
                &study,
                "--space",
                r#"{"x": {"min": 0, "max": 1}}"#,
                "--n",
                "100000000",
            ],
            "--n: 100000000 trials",
        ),
        (
            "a gzip bomb",
            vec!["run", &bomb_sweep],
            "gzip: declares 419.4 MB",
        ),
        (
            "a character device",
            vec!["run", "/dev/zero"],
            "is a character device",
        ),
        (
            "a 5 MB sweep file",
            vec!["run", &big_file],
            "at most 4.2 MB is read",
        ),
    ];
    for (what, args, expected) in cases {
        let (code, took, peak, text) = measured(&args);
        assert_eq!(code, 2, "{what}: {text}");
        assert!(text.contains(expected), "{what}: {text}");
        assert_eq!(text.lines().count(), 1, "{what}: one line: {text}");
        assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
        assert!(peak < 100 << 20, "{what}: peak memory {} MB", peak >> 20);
    }
    assert!(
        !Path::new(&study).join("journal.jsonl").exists(),
        "refused before any write"
    );
}

/// Starts a Hyperband sweep of `trials` wide three-layer members on digits (slow enough to
/// be caught mid-way), its stderr to `stderr`; returns it and its run directory.
fn start_slow_run(
    dir: &Path,
    trials: usize,
    width: usize,
    epochs: usize,
    stderr: Stdio,
) -> (std::process::Child, PathBuf) {
    let sweep = dir.join("slow.yaml");
    std::fs::write(
        &sweep,
        format!(
            "method: random\nmetric: {{name: val_accuracy, goal: maximize}}\nrun_cap: {trials}\n\
             early_terminate: {{type: hyperband, min_iter: 1, eta: 3}}\n\
             parameters:\n  lr: {{distribution: log_uniform_values, min: 0.01, max: 0.3}}\n  \
             width: {{values: [{width}]}}\n  depth: {{values: [3]}}\n\
             train: {{epochs: {epochs}, batch_size: 8}}\n"
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let child = Command::new(BIN)
        .args([
            "run",
            sweep.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--no-sanity",
        ])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    (child, run)
}

#[test]
fn four_resumes_at_once_one_proceeds_and_no_record_is_doubled() {
    let dir = temp("resumes");
    let (mut first, run) = start_slow_run(&dir, 12, 256, 27, Stdio::null());
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(run.join("trials.jsonl")).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "no trial finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let resumes: Vec<_> = (0..4)
        .map(|_| {
            Command::new(BIN)
                .args(["resume", run.to_str().unwrap(), "--quiet"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<Output> = resumes
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let succeeded = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        succeeded,
        1,
        "{:?}",
        outcomes.iter().map(stderr).collect::<Vec<_>>()
    );
    for refused in outcomes.iter().filter(|o| !o.status.success()) {
        let text = stderr(refused);
        assert!(text.contains("in use by popsweep process"), "{text}");
        assert_eq!(refused.status.code(), Some(1), "{text}");
    }
    let text = std::fs::read_to_string(run.join("trials.jsonl")).unwrap();
    let mut numbers: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["number"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let lines = numbers.len();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!((lines, numbers.len()), (12, 12), "every trial exactly once");
}

#[test]
fn a_damaged_ask_line_loses_only_its_trial() {
    let dir = temp("journal");
    let study = dir.display().to_string();
    let space = r#"{"x": {"distribution": "uniform", "min": 0, "max": 1}}"#;
    assert!(
        popsweep(&["ask", "--study", &study, "--space", space, "--n", "5"])
            .status
            .success()
    );
    for t in 0..5 {
        let value = (t as f64 - 2.2).abs().to_string();
        let out = popsweep(&[
            "tell",
            "--study",
            &study,
            "--trial",
            &t.to_string(),
            "--value",
            &value,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Damage trial 1's ask (the third line: the header, trial 0, trial 1).
    let path = dir.join("journal.jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines[2] = lines[2].replacen("\"x\":0.", "\"x\":9.", 1);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let best = popsweep(&["best", "--study", &study]);
    assert!(best.status.success(), "{}", stderr(&best));
    let best: serde_json::Value = serde_json::from_slice(&best.stdout).unwrap();
    assert_eq!(best["trial"], 2, "{best}");
    let warned = stderr(&popsweep(&["best", "--study", &study]));
    assert!(
        warned.contains("journal.jsonl:3: invalid line skipped"),
        "{warned}"
    );
    let next = popsweep(&["ask", "--study", &study]);
    let next: serde_json::Value = serde_json::from_slice(&next.stdout).unwrap();
    assert_eq!(next["trial"], 5, "no number is issued twice: {next}");
}

#[test]
fn a_torn_trials_line_is_set_aside_by_resume() {
    let dir = temp("torn");
    let run = dir.join("run");
    let out = popsweep(&[
        "run",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
        "--no-sanity",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = run.join("trials.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text.lines().take(40).collect();
    std::fs::write(&path, kept.join("\n") + "\n{\"number\":77,\"params\":{\"de").unwrap();
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let out = popsweep(&["resume", run.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a torn last line set aside"),
        "{}",
        stderr(&out)
    );
    let repaired = std::fs::read_to_string(&path).unwrap();
    for line in repaired.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("valid JSON lines");
    }
    assert_eq!(repaired.lines().count(), 81);
    let same: Vec<&str> = repaired.lines().take(40).collect();
    assert_eq!(
        same, kept,
        "the records before the tear are kept as they were"
    );
}

/// Writes a CSV of `rows` (two features, the label last) and runs a short sweep on it.
fn run_on_csv(dir: &Path, name: &str, rows: &[(f32, f32, String)]) -> Output {
    let mut text = String::from("a,b,label\n");
    for (a, b, label) in rows {
        text.push_str(&format!("{a},{b},{label}\n"));
    }
    let csv = dir.join(format!("{name}.csv"));
    std::fs::write(&csv, text).unwrap();
    let sweep = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &sweep,
        format!(
            "method: random\nmetric: {{name: val_loss, goal: minimize}}\nrun_cap: 2\n\
             parameters:\n  lr: {{values: [0.05]}}\ntrain: {{epochs: 2}}\n\
             data: {{format: csv, path: {}}}\n",
            csv.display()
        ),
    )
    .unwrap();
    let out = dir.join(format!("{name}-run"));
    popsweep(&[
        "run",
        sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--no-sanity",
    ])
}

#[test]
fn degenerate_data_is_refused_with_the_numbers() {
    let dir = temp("degenerate");
    let rows = |n: usize, label: &dyn Fn(usize) -> String| -> Vec<(f32, f32, String)> {
        (0..n)
            .map(|i| ((i % 13) as f32 / 13.0, (i * 7 % 5) as f32 / 5.0, label(i)))
            .collect()
    };
    type Case<'a> = (&'a str, Vec<(f32, f32, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "ten",
            rows(10, &|i| (i % 2).to_string()),
            "class 0 has 5 rows, none of them in the test split",
        ),
        (
            "one-class",
            rows(200, &|_| "3".into()),
            "200 rows of one class (label 3)",
        ),
        ("one-row", rows(1, &|_| "0".into()), "1 rows of one class"),
        (
            "thin-classes",
            rows(30, &|i| (i % 2).to_string()),
            "the validation split needs at least 5 rows",
        ),
    ];
    for (name, data, expected) in cases {
        let out = run_on_csv(&dir, name, &data);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
        assert!(
            !dir.join(format!("{name}-run")).exists(),
            "{name}: refused before the run"
        );
    }
    // Labels {0..9, 1000}: remapped to 0..10 with a warning, and the sweep runs.
    let sparse = rows(1100, &|i| {
        if i % 100 == 99 {
            "1000".into()
        } else {
            (i % 10).to_string()
        }
    });
    let out = run_on_csv(&dir, "sparse", &sparse);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("remapped to 0..10"),
        "{}",
        stderr(&out)
    );
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("sparse-run/summary.json")).unwrap(),
    )
    .unwrap();
    assert!(summary["best"].is_object(), "{summary}");
}

/// A full disk mid-sweep (a 40 KB tmpfs): the error says the directory is resumable, and a
/// resume once there is room finishes the same sweep with valid JSON lines.
#[test]
fn a_full_disk_leaves_a_resumable_directory() {
    let dir = temp("full");
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=40k",
            "tmpfs",
            dir.to_str().unwrap(),
        ])
        .output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        println!("SKIP: cannot mount a small tmpfs here (needs root)");
        return;
    }
    let run = dir.join("run");
    let out = popsweep(&[
        "run",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
        "--no-sanity",
    ]);
    let grow = Command::new("mount")
        .args(["-o", "remount,size=10m", dir.to_str().unwrap()])
        .output();
    let resumed = popsweep(&["resume", run.to_str().unwrap(), "--quiet"]);
    let trials = std::fs::read_to_string(run.join("trials.jsonl")).unwrap_or_default();
    let _ = Command::new("umount").arg(&dir).output();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("make room, then resume with: popsweep resume"),
        "{}",
        stderr(&out)
    );
    assert!(grow.unwrap().status.success());
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    for line in trials.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("valid JSON lines");
    }
    assert_eq!(trials.lines().count(), 81);
}

/// `best` and `report` read a run or study they cannot write: run as an unprivileged user
/// (root writes anywhere) over directories it may only read.
#[test]
fn best_and_report_work_on_read_only_directories() {
    // SAFETY: getuid has no arguments and cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    let dir = temp("readonly");
    let run = dir.join("run");
    assert!(popsweep(&[
        "run",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
        "--no-sanity"
    ])
    .status
    .success());
    let study = dir.join("study");
    let s = study.to_str().unwrap();
    assert!(popsweep(&[
        "ask",
        "--study",
        s,
        "--space",
        r#"{"x": {"min": 0, "max": 1}}"#
    ])
    .status
    .success());
    assert!(
        popsweep(&["tell", "--study", s, "--trial", "0", "--value", "0.5"])
            .status
            .success()
    );
    let as_reader = |args: &[&str]| -> Output {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        c.args(args).output().unwrap()
    };
    if root && Command::new("setpriv").arg("--version").output().is_err() {
        println!("SKIP: running as root without setpriv to drop privileges");
        return;
    }
    let chmod = |mode: &str| {
        for p in [&dir, &run, &study] {
            let ok = Command::new("chmod")
                .args([mode, p.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        for f in ["trials.jsonl", "sweep.yaml", "summary.json", "report.html"] {
            let _ = Command::new("chmod")
                .args([mode, run.join(f).to_str().unwrap()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("chmod")
            .args([mode, study.join("journal.jsonl").to_str().unwrap()])
            .status();
    };
    chmod("a=rX");
    let best = as_reader(&["best", "--study", s]);
    let report = as_reader(&["report", run.to_str().unwrap(), "--json"]);
    let tell = as_reader(&["ask", "--study", s]);
    chmod("u+w");
    assert!(best.status.success(), "best: {}", stderr(&best));
    assert!(String::from_utf8_lossy(&best.stdout).starts_with(r#"{"trial":0,"value":0.5"#));
    assert!(report.status.success(), "report: {}", stderr(&report));
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(report["summary"]["best"].is_object(), "{report}");
    assert!(
        !tell.status.success(),
        "an ask cannot be recorded read-only"
    );
    assert!(stderr(&tell).contains("read-only"), "{}", stderr(&tell));
}

/// The first Ctrl-C says what it does and waits for the epoch; a second exits at once with
/// 130, and the directory resumes to the end.
#[test]
fn a_second_ctrl_c_exits_at_once_and_the_run_resumes() {
    let dir = temp("ctrl-c");
    let (mut child, run) = start_slow_run(&dir, 24, 512, 9, Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !run.join("trials.jsonl").exists() {
        assert!(Instant::now() < deadline, "the sweep never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id() as i32;
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(100));
    let second = Instant::now();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let status = child.wait().unwrap();
    let waited = second.elapsed();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut text).unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(
        waited < Duration::from_secs(1),
        "took {waited:?} after the second Ctrl-C"
    );
    assert!(
        text.contains("stopping after this epoch; Ctrl-C again to abort"),
        "{text}"
    );
    let out = popsweep(&["resume", run.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trials = std::fs::read_to_string(run.join("trials.jsonl")).unwrap();
    let mut numbers: Vec<u64> = trials
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["number"]
                .as_u64()
                .unwrap()
        })
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 24, "every trial once: {numbers:?}");
}
