//! The journal under real processes: SIGKILL in the middle of an ask/tell loop loses no
//! told trial; two processes sharing one study never duplicate or lose a trial.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popsweep-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const SPACE: &str =
    r#"{"x": {"distribution": "uniform", "min": -5, "max": 5}, "k": {"values": [1, 2, 3]}}"#;

/// A shell loop of `n` ask/tell pairs; after each successful tell it appends
/// "trial value" to `told`. The value is a function of the trial number.
fn ask_tell_loop(study: &Path, told: &Path, n: usize) -> Child {
    let exe = env!("CARGO_BIN_EXE_popsweep");
    let script = format!(
        r#"for i in $(seq 1 {n}); do
  line=$("{exe}" ask --study "{study}" --space '{SPACE}' --sampler tpe) || exit 1
  t=$(printf '%s' "$line" | sed 's/^{{"trial":\([0-9]*\),.*/\1/')
  v="-$t.25"
  "{exe}" tell --study "{study}" --trial "$t" --value "$v" || exit 1
  echo "$t $v" >> "{told}"
done"#,
        study = study.display(),
        told = told.display(),
    );
    // Its own process group, so a kill reaches the popsweep process mid-flight too.
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// Trial number → (state, value) from `popsweep`'s own reader, through `best` and the journal.
fn journal_trials(study: &Path) -> BTreeMap<usize, (String, Option<f64>)> {
    let text = std::fs::read_to_string(study.join("journal.jsonl")).unwrap();
    let mut trials = BTreeMap::new();
    for line in text.lines() {
        let Ok(op) = serde_json::from_str::<serde_json::Value>(line) else {
            continue; // a torn last line: the reader reports and skips it too
        };
        let n = op["trial"].as_u64().map(|n| n as usize);
        match op["op"].as_str() {
            Some("ask") => assert!(
                trials
                    .insert(n.unwrap(), ("running".into(), None))
                    .is_none(),
                "trial {n:?} asked twice"
            ),
            Some("tell") => {
                let entry = trials.get_mut(&n.unwrap()).expect("tell of an asked trial");
                *entry = (op["state"].as_str().unwrap().into(), op["value"].as_f64());
            }
            _ => {}
        }
    }
    trials
}

fn told(path: &Path) -> Vec<(usize, f64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (t, v) = l.split_once(' ')?;
            Some((t.parse().ok()?, v.parse().ok()?))
        })
        .collect()
}

#[test]
fn sigkill_during_ask_tell_loses_no_told_trial() {
    let dir = temp("kill");
    let (study, log) = (dir.join("study"), dir.join("told.log"));
    let mut child = ask_tell_loop(&study, &log, 500);
    // Let it get well into the loop, then kill it without warning.
    let start = Instant::now();
    while told(&log).len() < 40 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL to the whole group: the shell and whichever popsweep is running.
    let group = format!("-{}", child.id());
    assert!(Command::new("kill")
        .args(["-9", "--", &group])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap();
    let told = told(&log);
    assert!(
        told.len() >= 40,
        "the loop made too little progress: {}",
        told.len()
    );
    // Reopen through the CLI (replays the journal) and check every told value.
    let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(["best", "--study"])
        .arg(&study)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let best: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let trials = journal_trials(&study);
    for (t, v) in &told {
        assert_eq!(trials[t], ("complete".to_string(), Some(*v)), "trial {t}");
    }
    let lowest = told.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
    assert!(best["value"].as_f64().unwrap() <= lowest);
    // The study goes on after the crash.
    let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(["ask", "--study"])
        .arg(&study)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_processes_share_a_study_without_duplicates_or_losses() {
    let dir = temp("two");
    let study = dir.join("study");
    let logs = [dir.join("a.log"), dir.join("b.log")];
    let mut children: Vec<Child> = logs
        .iter()
        .map(|log| ask_tell_loop(&study, log, 200))
        .collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    let trials = journal_trials(&study);
    assert_eq!(trials.len(), 400);
    assert_eq!(
        trials.keys().copied().collect::<Vec<_>>(),
        (0..400).collect::<Vec<_>>()
    );
    let mut all_told: Vec<(usize, f64)> = logs.iter().flat_map(|l| told(l)).collect();
    all_told.sort_by_key(|(t, _)| *t);
    assert_eq!(all_told.len(), 400, "each trial told exactly once");
    for (t, v) in all_told {
        assert_eq!(trials[&t], ("complete".to_string(), Some(v)));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
