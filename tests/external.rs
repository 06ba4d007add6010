//! External-program sweeps end to end: the example training script under Hyperband with
//! no orphaned process left behind (checked by process group), `kill -9` of popsweep then
//! `popsweep resume` (every finished trial kept, none run twice), Ctrl-C, and a sweep file
//! for each W&B feature (methods, metric target, nested parameters, `command` macros,
//! `early_terminate` forms) that must parse and run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_popsweep"));
    c.env("RUST_BACKTRACE", "1");
    c
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("popsweep-ext-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Writes `yaml` next to a copy of the echo fixture and returns the sweep path.
fn echo_sweep(dir: &Path, yaml: &str) -> PathBuf {
    std::fs::copy(repo("tests/fixtures/echo.py"), dir.join("echo.py")).unwrap();
    let path = dir.join("sweep.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn run(sweep: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.args([
        "run",
        sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn trial_lines(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("trials.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Processes still alive in `pgid`'s group (kill with signal 0 probes without harm).
fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// Every process whose environment marks it as belonging to a trial under `run_dir`.
fn marked_processes(run_dir: &Path) -> Vec<i32> {
    let marker = format!("POPSWEEP_TRIAL_DIR={}", run_dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let env = std::fs::read(e.path().join("environ")).ok()?;
            env.split(|&b| b == 0)
                .any(|v| v.starts_with(marker.as_bytes()))
                .then_some(pid)
        })
        .collect()
}

fn pgids(run_dir: &Path) -> Vec<i32> {
    std::fs::read_dir(run_dir.join("trials"))
        .unwrap()
        .flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("pgid")).ok())
        .map(|s| s.trim().parse().unwrap())
        .collect()
}

/// Waits up to 5 s for the kernel to finish reaping what was killed.
fn eventually_none_alive(run_dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i32> = pgids(run_dir)
            .into_iter()
            .filter(|&g| group_alive(g))
            .collect();
        let marked = marked_processes(run_dir);
        if alive.is_empty() && marked.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "orphans: groups {alive:?}, processes {marked:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn example_sweep(dir: &Path, run_cap: usize, population: usize) -> PathBuf {
    std::fs::copy(repo("examples/external/train.py"), dir.join("train.py")).unwrap();
    let text = std::fs::read_to_string(repo("examples/external/sweep.yaml"))
        .unwrap()
        .replace("run_cap: 27", &format!("run_cap: {run_cap}"))
        .replace("population: 3", &format!("population: {population}"));
    let path = dir.join("sweep.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn hyperband_prunes_the_example_and_kills_whole_process_groups() {
    let dir = temp("hyperband");
    let sweep = example_sweep(&dir, 12, 3);
    let out_dir = dir.join("run");
    let out = run(&sweep, &out_dir, &[]);
    ok(&out);
    let summary = json(&out_dir.join("summary.json"));
    let trials = &summary["trials"];
    assert_eq!(
        trials["complete"].as_u64().unwrap() + trials["pruned"].as_u64().unwrap(),
        12,
        "{summary}"
    );
    assert!(trials["pruned"].as_u64().unwrap() >= 3, "{summary}");
    // A pruned trial stopped early, at a band.
    let lines = trial_lines(&out_dir);
    assert!(lines
        .iter()
        .any(|t| t["state"] == "pruned" && t["epochs"].as_u64().unwrap() < 9));
    // Each trial started a worker process; none may outlive its trial.
    eventually_none_alive(&out_dir);
    // Every trial kept its output.
    for t in &lines {
        let d = out_dir.join("trials").join(t["number"].to_string());
        assert!(d.join("stdout.log").is_file() && d.join("stderr.log").is_file());
    }
}

#[test]
fn kill_9_then_resume_keeps_every_finished_trial_and_runs_none_twice() {
    let dir = temp("resume");
    let sweep = example_sweep(&dir, 10, 2);
    let out_dir = dir.join("run");
    let mut child = bin()
        .args([
            "run",
            sweep.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .env("EXAMPLE_EPOCH_SECONDS", "0.05")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while trial_lines(&out_dir).len() < 3 {
        assert!(Instant::now() < deadline, "no trial finished in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = trial_lines(&out_dir);
    assert!(before.len() < 10, "the sweep ended before the kill");
    let logs_before: Vec<(String, Vec<u8>)> = before
        .iter()
        .map(|t| {
            let n = t["number"].to_string();
            let log = std::fs::read(out_dir.join("trials").join(&n).join("stdout.log")).unwrap();
            (n, log)
        })
        .collect();

    let out = bin()
        .args(["resume", out_dir.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&out);
    let after = trial_lines(&out_dir);
    let numbers: Vec<u64> = after
        .iter()
        .map(|t| t["number"].as_u64().unwrap())
        .collect();
    let unique: BTreeSet<u64> = numbers.iter().copied().collect();
    assert_eq!(
        unique.len(),
        numbers.len(),
        "a trial recorded twice: {numbers:?}"
    );
    assert_eq!(unique, (0..10).collect(), "every trial once");
    // The finished trials are unchanged: same records, and their programs did not run
    // again (their stdout logs are byte-for-byte what they were).
    for t in &before {
        assert!(after.contains(t), "trial {} changed", t["number"]);
    }
    for (n, log) in logs_before {
        let now = std::fs::read(out_dir.join("trials").join(&n).join("stdout.log")).unwrap();
        assert_eq!(now, log, "trial {n} ran again");
    }
    let summary = json(&out_dir.join("summary.json"));
    assert_eq!(
        summary["trials"]["complete"].as_u64().unwrap()
            + summary["trials"]["pruned"].as_u64().unwrap(),
        10
    );
    eventually_none_alive(&out_dir);
}

/// SIGKILL of popsweep takes every process of its trials down with it, without a
/// `resume`: the program, a helper in its process group, and one that left the group for a
/// session of its own (each trial's guard adopts and kills them).
#[test]
fn kill_9_of_popsweep_leaves_no_grandchild_alive() {
    let dir = temp("orphans");
    std::fs::copy(repo("tests/fixtures/spawner.py"), dir.join("spawner.py")).unwrap();
    let sweep = dir.join("sweep.yaml");
    std::fs::write(
        &sweep,
        "program: spawner.py\nmethod: random\nmetric: {name: loss, goal: minimize}\n\
         run_cap: 4\npopulation: 2\nparameters:\n  iters: {value: 400}\n",
    )
    .unwrap();
    let out_dir = dir.join("run");
    let mut child = bin()
        .args([
            "run",
            sweep.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Two trials, each with its guard, program and two helpers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while marked_processes(&out_dir).len() < 8 {
        assert!(Instant::now() < deadline, "the helpers never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    eventually_none_alive(&out_dir);
}

#[test]
fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    let dir = temp("sigint");
    let sweep = example_sweep(&dir, 20, 2);
    let out_dir = dir.join("run");
    let child = bin()
        .args([
            "run",
            sweep.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .env("EXAMPLE_EPOCH_SECONDS", "0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while trial_lines(&out_dir).is_empty() {
        assert!(Instant::now() < deadline, "no trial finished in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("popsweep resume {}", out_dir.display())),
        "{stderr}"
    );
    eventually_none_alive(&out_dir);
    let out = bin()
        .args(["resume", out_dir.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(trial_lines(&out_dir).len(), 20);
}

const ECHO_HEAD: &str = "program: echo.py\nmetric: {name: loss, goal: minimize}\n";

/// One sweep file per documented W&B feature; each parses and runs to a summary.
#[test]
fn every_wandb_sweep_feature_parses_and_runs() {
    let cases: Vec<(&str, String)> = vec![
        ("grid", "method: grid\nparameters:\n  x: {values: [0.5, 1.0, 2.0]}\n  mode: {value: a}\n".into()),
        ("random", "method: random\nrun_cap: 4\nparameters:\n  x: {distribution: uniform, min: 0, max: 2}\n".into()),
        ("bayes", "method: bayes\nrun_cap: 12\nparameters:\n  x: {min: 0.0, max: 2.0}\n".into()),
        ("target", "method: grid\nmetric: {name: loss, goal: minimize, target: 0.5}\nparameters:\n  x: {values: [1.0, 3.0, 5.0, 7.0]}\npopulation: 1\n".into()),
        ("nested", "method: random\nrun_cap: 3\nparameters:\n  opt:\n    parameters:\n      lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}\n      kind: {values: [sgd, adam]}\n".into()),
        ("hyperband_max_iter", "method: random\nrun_cap: 6\nearly_terminate: {type: hyperband, max_iter: 9, s: 2, eta: 3, strict: true}\nparameters:\n  x: {distribution: uniform, min: 0, max: 3}\n  iters: {value: 9}\n".into()),
        ("pruner", "method: grid\npopulation: 1\npruner: {kind: median, n_startup_trials: 2}\nparameters:\n  x: {values: [1.0, 1.1, 1.2, 3.0, 2.5]}\n  iters: {value: 6}\n".into()),
        ("command_macros", "method: grid\ncommand: [\"${env}\", \"${interpreter}\", \"${program}\", \"${args}\", \"--cfg=${args_json_file}\", \"${args_json}\"]\nparameters:\n  x: {values: [1.5]}\n".into()),
        ("args_no_hyphens", "method: grid\ncommand: [python3, \"${program}\", \"${args_no_hyphens}\"]\nparameters:\n  x: {values: [1.5]}\n".into()),
        ("auto", "method: auto\nrun_cap: 4\nparameters:\n  x: {min: 0.0, max: 2.0}\n".into()),
        ("description", "description: a sweep\nproject: p\nentity: e\nname: named\nmethod: random\nrun_cap: 2\nparameters:\n  x: {distribution: q_uniform, min: 0, max: 2, q: 0.5}\n".into()),
    ];
    for (name, body) in cases {
        let dir = temp(&format!("feature-{name}"));
        let yaml = if body.contains("metric:") {
            format!("program: echo.py\n{body}")
        } else {
            format!("{ECHO_HEAD}{body}")
        };
        let sweep = echo_sweep(&dir, &yaml);
        let out_dir = dir.join("run");
        let out = run(&sweep, &out_dir, &[]);
        ok(&out);
        let summary = json(&out_dir.join("summary.json"));
        let lines = trial_lines(&out_dir);
        let stdout0 = std::fs::read_to_string(out_dir.join("trials/0/stdout.log")).unwrap();
        let echoed: serde_json::Value =
            serde_json::from_str(stdout0.lines().next().unwrap()).unwrap();
        match name {
            "grid" => assert_eq!(lines.len(), 3, "the grid's 3 points"),
            "bayes" => assert_eq!(summary["sampler"], "gp"),
            "target" => {
                // Trial 0 (x = 1) reaches loss 1/3 ≤ 0.5: no trial starts after it.
                assert_eq!(summary["target_reached"], true);
                assert_eq!(lines.len(), 1, "{lines:?}");
            }
            "nested" => {
                let arg = echoed["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a.as_str().unwrap().starts_with("--opt="))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string();
                let v: serde_json::Value = serde_json::from_str(&arg["--opt=".len()..]).unwrap();
                assert!(v["lr"].is_f64() && v["kind"].is_string(), "{arg}");
            }
            // Sequential trials: once two are complete, the later, worse ones fall behind
            // the median at their first report.
            "pruner" => {
                assert_eq!(summary["trials"]["complete"], 2, "{summary}");
                assert_eq!(summary["trials"]["pruned"], 3, "{summary}");
            }
            "hyperband_max_iter" => assert!(
                summary["trials"]["pruned"].as_u64().unwrap() >= 1,
                "{summary}"
            ),
            "command_macros" => {
                let argv = echoed["argv"].as_array().unwrap();
                assert_eq!(argv[0], "--x=1.5");
                assert_eq!(echoed["file"]["x"], 1.5);
                let inline: serde_json::Value =
                    serde_json::from_str(argv.last().unwrap().as_str().unwrap()).unwrap();
                assert_eq!(inline["x"], 1.5);
            }
            "args_no_hyphens" => assert_eq!(echoed["argv"][0], "x=1.5"),
            "description" => assert_eq!(summary["name"], "named"),
            "auto" => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    stdout.contains("method auto chose random: 4 trials"),
                    "{stdout}"
                );
                assert_eq!(summary["sampler"], "random");
            }
            _ => {}
        }
        assert!(summary["best"]["val"].is_f64(), "{name}: {summary}");
    }
}
