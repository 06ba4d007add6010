//! One trial's program as a child process, under a guard (`guard.rs`) that leads its own
//! process group (so a pruned trial, or any trial of a popsweep that died, is killed with
//! everything it started), stdout read line by line on a thread (kept
//! verbatim in the trial's `stdout.log`, JSON lines carrying the metric sent to the sweep),
//! stderr straight to `stderr.log`.
//!
//! Every process a trial starts inherits `POPSWEEP_TRIAL_DIR`; after a crash of popsweep
//! itself, `kill_leftovers` finds them by it (and by nothing else, so it never touches an
//! unrelated process that reused a process-group number).

use crate::space::Params;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Sender;
use std::time::Instant;

/// What a trial's stdout reader tells the sweep.
#[derive(Debug)]
pub enum Event {
    /// The metric's next value (NaN when the program printed NaN, null or a non-number).
    Metric {
        trial: usize,
        attempt: usize,
        value: f64,
    },
    /// A line that was not UTF-8 (kept in the log, ignored otherwise).
    Garbled { trial: usize, attempt: usize },
    /// stdout closed: the program exited or closed it.
    Closed { trial: usize, attempt: usize },
}

pub struct TrialProcess {
    pub trial: usize,
    pub attempt: usize,
    /// The configuration it runs.
    pub params: Params,
    child: Child,
    pub started: Instant,
    /// The metric's values so far, one per report (iteration i is `history[i - 1]`).
    pub history: Vec<f64>,
    pub garbled_lines: usize,
    pub stdout_closed: bool,
    /// Set once the sweep has decided the trial's fate (pruned, timed out).
    pub killed: Option<Killed>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Killed {
    Pruned,
    TimedOut,
    Interrupted,
}

/// The environment variable that marks every process of a trial.
pub const TRIAL_DIR_VAR: &str = "POPSWEEP_TRIAL_DIR";

impl TrialProcess {
    /// Starts `argv` in `cwd`, logging to `trial_dir`; metric lines go to `events`.
    pub fn spawn(
        argv: &[String],
        cwd: &Path,
        trial_dir: &Path,
        (trial, attempt): (usize, usize),
        params: &Params,
        metric: &str,
        events: Sender<Event>,
    ) -> std::io::Result<TrialProcess> {
        let suffix = if attempt == 0 {
            String::new()
        } else {
            format!(".retry{attempt}")
        };
        let stderr = std::fs::File::create(trial_dir.join(format!("stderr{suffix}.log")))?;
        let stdout_log = std::fs::File::create(trial_dir.join(format!("stdout{suffix}.log")))?;
        // The program runs under a guard (`popsweep __trial-guard PROGRAM…`, see
        // `guard.rs`) that takes the trial's descendants down with it.
        let mut command = match std::env::current_exe() {
            Ok(exe) => {
                let mut c = Command::new(exe);
                c.arg(super::guard::GUARD_ARG)
                    .args(argv)
                    .env(super::guard::PARENT_VAR, std::process::id().to_string());
                c
            }
            Err(_) => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        command
            .current_dir(cwd)
            .env(TRIAL_DIR_VAR, trial_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent; it asks
        // the kernel to signal the guard if popsweep dies (even by SIGKILL): SIGTERM, which
        // the guard answers by killing every process of the trial.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        std::fs::write(trial_dir.join("pgid"), format!("{}\n", child.id()))?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let metric = metric.to_string();
        std::thread::spawn(move || {
            read_stdout(stdout, stdout_log, &metric, (trial, attempt), events)
        });
        Ok(TrialProcess {
            trial,
            attempt,
            params: params.clone(),
            child,
            started: Instant::now(),
            history: Vec::new(),
            garbled_lines: 0,
            stdout_closed: false,
            killed: None,
        })
    }

    /// The exit status, once the program has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the trial: its guard first (SIGTERM: it kills every descendant, including
    /// those that left the process group), then the whole group; reaps the guard.
    pub fn kill(&mut self, why: Killed) {
        self.killed.get_or_insert(why);
        let guard = self.child.id() as i32;
        // SAFETY: kill(2) of our own child; no memory involved.
        unsafe {
            libc::kill(guard, libc::SIGTERM);
        }
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        while self.try_wait().is_none() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        kill_group(guard);
        let _ = self.child.wait();
    }
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn read_stdout(
    stdout: std::process::ChildStdout,
    mut log: std::fs::File,
    metric: &str,
    (trial, attempt): (usize, usize),
    events: Sender<Event>,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let _ = log.write_all(&line);
        let event = match std::str::from_utf8(&line) {
            Err(_) => Some(Event::Garbled { trial, attempt }),
            Ok(text) => metric_value(text, metric).map(|value| Event::Metric {
                trial,
                attempt,
                value,
            }),
        };
        if let Some(e) = event {
            if events.send(e).is_err() {
                return;
            }
        }
    }
    let _ = log.flush();
    let _ = events.send(Event::Closed { trial, attempt });
}

/// The metric's value in one stdout line, if the line is a JSON object that has it.
/// Python's `json.dumps` writes NaN and Infinity bare, which JSON forbids: they are read
/// as the numbers they mean. A value that is not a number is NaN (a failed trial).
pub fn metric_value(line: &str, metric: &str) -> Option<f64> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
        .or_else(|_| {
            let patched = line
                .replace("-Infinity", "\"-inf\"")
                .replace("Infinity", "\"inf\"")
                .replace("NaN", "\"NaN\"");
            serde_json::from_str(&patched)
        })
        .ok()?;
    let value = object.get(metric)?;
    Some(match value {
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        serde_json::Value::String(s) => s.parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    })
}

/// Kills every process still marked with `trial_dir` (left by a popsweep that was killed).
/// Returns how many it signalled. Linux only: it reads /proc.
pub fn kill_leftovers(trial_dir: &Path) -> usize {
    let marker = format!("{TRIAL_DIR_VAR}={}", trial_dir.display());
    let mut killed = 0;
    for (pid, dir) in super::guard::processes() {
        let Ok(bytes) = std::fs::read(dir.join("environ")) else {
            continue;
        };
        if bytes.split(|&b| b == 0).any(|v| v == marker.as_bytes()) {
            // SAFETY: kill(2) on a process found above; no memory involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed += 1;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_are_read_as_python_writes_them() {
        assert_eq!(
            metric_value(r#"{"epoch": 3, "val_loss": 0.41}"#, "val_loss"),
            Some(0.41)
        );
        assert_eq!(metric_value(r#"{"epoch": 3}"#, "val_loss"), None);
        assert_eq!(metric_value("loss 0.4", "val_loss"), None);
        assert!(metric_value(r#"{"val_loss": NaN}"#, "val_loss")
            .unwrap()
            .is_nan());
        assert_eq!(
            metric_value(r#"{"val_loss": -Infinity}"#, "val_loss"),
            Some(f64::NEG_INFINITY)
        );
        assert!(metric_value(r#"{"val_loss": "high"}"#, "val_loss")
            .unwrap()
            .is_nan());
        assert!(metric_value(r#"{"val_loss": null}"#, "val_loss")
            .unwrap()
            .is_nan());
    }
}
