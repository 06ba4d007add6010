//! External-program sweeps: a sweep file with `program`/`command` (W&B's agent model) runs
//! that program once per trial instead of training the built-in model.
//!
//! - Up to `population` trials run at once, each a child process in its own process group
//!   (see [`child`]); parameters on its command line as W&B's agent passes them (see
//!   `command.rs`); its stdout read as JSON lines for the metric, each value reported to the
//!   study as an intermediate value at iteration 1, 2, ….
//! - `early_terminate: {type: hyperband}` judges a trial each time it reaches a band; a
//!   stopped trial's process group is killed and the trial recorded `pruned`.
//! - A trial fails when its program exits non-zero (after `max_retries` reruns), never
//!   prints the metric, prints NaN for it, or runs past `trial_timeout`.
//! - Everything goes through the study's journal (`journal.jsonl`, fsync'd per append):
//!   `popsweep resume RUN_DIR` replays it, reruns the trials that were running when the
//!   sweep stopped (after killing anything they left behind) and never reruns a finished one.
//! - Ctrl-C (or SIGTERM) kills the running trials, leaves them `running` in the journal
//!   for a resume, and prints the command that resumes.

pub mod child;
mod command;
pub mod guard;

pub use command::{argv, params_json};

use crate::config::{External, Sweep};
use crate::error::{Error, Result};
use crate::report::progress::format_seconds;
use crate::report::run_files::RunFiles;
use crate::space::Params;
use crate::storage::TrialState;
use crate::storage::{OpsIn, RunStorage, RungValue, Storage, TrialRecord};
use crate::tuner::scheduler::{Arrival, BandScheduler, Decision, Scheduler, Score};
use crate::tuner::study::{Outcome, Study};
use child::{Event, Killed, TrialProcess};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How the sweep ended.
pub enum Ending {
    /// Every trial ran (or the metric's target was reached): the summary.
    Finished(serde_json::Value),
    /// Interrupted by a signal; the journal holds everything finished so far.
    Interrupted,
}

/// Runs (or, with `resume`, continues) the external sweep in `run_dir`; programs start in
/// `cwd` (the sweep file's directory).
pub fn run(sweep: &Sweep, run_dir: &Path, cwd: &Path, resume: bool, quiet: bool) -> Result<Ending> {
    let ext = sweep.external.as_ref().expect("an external sweep");
    if let Some(program) = &ext.program {
        let path = cwd.join(program);
        if ext.command.iter().any(|a| a.contains("${program}")) && !path.exists() {
            return Err(Error::Config {
                file: run_dir.join("sweep.yaml").display().to_string(),
                line: None,
                field: "program".into(),
                message: format!("`{program}` does not exist (looked in {})", cwd.display()),
            });
        }
    }
    let mut storage = match resume {
        true => RunStorage::resume(run_dir, OpsIn::Journal)?,
        false => RunStorage::create(run_dir, OpsIn::Journal)?,
    };
    for w in storage.take_warnings() {
        eprintln!("warning: {w}");
    }
    let files = RunFiles::new(run_dir);
    let mut study = Study::new(
        Box::new(storage),
        sweep.space.clone(),
        sweep.sampler,
        sweep.metric.maximize,
        sweep.seed,
    )
    .map_err(Error::Run)?;
    if let Some(spec) = &ext.pruner {
        study = study.with_pruner(spec).map_err(Error::Run)?;
    }
    crate::sweep::warm::seed(&mut study, sweep)?;
    let mut driver = Driver {
        sweep,
        ext,
        run_dir,
        cwd,
        quiet,
        started: Instant::now(),
        stopping: ext.stopping.clone().map(BandScheduler::new),
        running: Vec::new(),
        busy_seconds: 0.0,
        target_reached: false,
        rerun: Vec::new(),
        finished: 0,
    };
    driver.recover(&mut study)?;
    crate::interrupt::install();
    let interrupted = driver.drive(&mut study)?;
    study.sync()?;
    if interrupted {
        return Ok(Ending::Interrupted);
    }
    Ok(Ending::Finished(driver.summary(&mut study, &files)?))
}

struct Driver<'a> {
    sweep: &'a Sweep,
    ext: &'a External,
    run_dir: &'a Path,
    cwd: &'a Path,
    quiet: bool,
    started: Instant,
    /// W&B's band rule, when `early_terminate` asks for it; it keeps every trial's curve.
    stopping: Option<BandScheduler>,
    running: Vec<TrialProcess>,
    busy_seconds: f64,
    target_reached: bool,
    /// Trials that were running when an earlier process stopped: run again first.
    rerun: Vec<(usize, Params)>,
    /// Trials finished in this process (for the progress line's ETA).
    finished: usize,
}

impl Driver<'_> {
    fn signed(&self, v: f64) -> f64 {
        if self.sweep.metric.maximize {
            -v
        } else {
            v
        }
    }

    fn trial_dir(&self, trial: usize) -> PathBuf {
        self.run_dir.join("trials").join(trial.to_string())
    }

    /// Replays the journal: finished trials keep their results (and get their record if
    /// a crash came between the journal's tell and the record); trials that were running
    /// are queued to run again, after killing whatever they left behind.
    fn recover(&mut self, study: &mut Study) -> Result<()> {
        let logged = study.records()?;
        for w in study.take_warnings() {
            eprintln!("warning: {w}");
        }
        for t in study.trials()? {
            let mut values: Vec<(u64, f64)> = t.intermediate.clone();
            values.sort_by_key(|(step, _)| *step);
            let curve: Vec<f64> = values.iter().map(|&(_, v)| v).collect();
            match t.state {
                TrialState::Running => {
                    let killed = child::kill_leftovers(&self.trial_dir(t.number));
                    if killed > 0 && !self.quiet {
                        println!(
                            "resume: killed {killed} process(es) left by trial {}",
                            t.number
                        );
                    }
                    self.rerun.push((t.number, t.params.clone()));
                }
                state if !logged.contains_key(&t.number) => {
                    let raw: Vec<f64> = values.iter().map(|&(_, v)| v).collect();
                    let record = self.record(t.number, &t.params, state, &raw, 1, None, None);
                    study.record(&record)?;
                }
                _ => {}
            }
            if let Some(rule) = &mut self.stopping {
                rule.restart(t.number, &curve, self.sweep.metric.maximize);
            }
        }
        if let Some(target) = self.sweep.metric.target {
            self.target_reached = study
                .trials()?
                .iter()
                .filter_map(|t| t.finite_value())
                .any(|v| self.signed(v) <= self.signed(target));
        }
        Ok(())
    }

    /// The main loop; returns whether it was interrupted.
    fn drive(&mut self, study: &mut Study) -> Result<bool> {
        let (tx, rx) = mpsc::channel::<Event>();
        let mut asked = study.trials()?.len();
        let mut exited: BTreeMap<(usize, usize), std::process::ExitStatus> = BTreeMap::new();
        loop {
            if crate::interrupt::requested() {
                for p in &mut self.running {
                    p.kill(Killed::Interrupted);
                }
                return Ok(true);
            }
            // Fill free slots: interrupted trials first, then new ones.
            while self.running.len() < self.ext.parallel {
                let next = if let Some(t) = self.rerun.pop() {
                    Some(t)
                } else if asked < self.sweep.run_cap && !self.target_reached {
                    let t = match study.ask() {
                        // Ctrl-C during the ask: stop as at the top of the loop.
                        Err(Error::Interrupted(_)) => {
                            for p in &mut self.running {
                                p.kill(Killed::Interrupted);
                            }
                            return Ok(true);
                        }
                        asked => asked?,
                    };
                    asked += 1;
                    Some((t.number, t.params))
                } else {
                    None
                };
                let Some((trial, params)) = next else { break };
                if let Some(rule) = &mut self.stopping {
                    rule.restart(trial, &[], self.sweep.metric.maximize);
                }
                let p = self.spawn(trial, 0, &params, &tx)?;
                self.running.push(p);
            }
            if self.running.is_empty() {
                return Ok(false);
            }
            // Metric lines, at most 50 ms apart.
            let mut events: Vec<Event> = rx
                .recv_timeout(Duration::from_millis(50))
                .into_iter()
                .collect();
            events.extend(rx.try_iter());
            for e in events {
                self.on_event(e, study)?;
            }
            // Exits, time-outs and decisions.
            let mut i = 0;
            while i < self.running.len() {
                let p = &mut self.running[i];
                let key = (p.trial, p.attempt);
                if let Some(status) = p.try_wait() {
                    exited.insert(key, status);
                }
                let timed_out = self
                    .ext
                    .trial_timeout
                    .is_some_and(|t| p.started.elapsed().as_secs_f64() > t);
                if timed_out && p.killed.is_none() {
                    p.kill(Killed::TimedOut);
                }
                // A trial is done once its program has exited and its stdout is drained
                // (or it was killed, when nothing more it says matters).
                let done = p.killed.is_some() || (exited.contains_key(&key) && p.stdout_closed);
                if done {
                    let p = self.running.swap_remove(i);
                    let status = exited.remove(&key);
                    self.finish(p, status, study, &tx)?;
                } else {
                    i += 1;
                }
            }
        }
    }

    fn spawn(
        &self,
        trial: usize,
        attempt: usize,
        params: &Params,
        tx: &mpsc::Sender<Event>,
    ) -> Result<TrialProcess> {
        let dir = self.trial_dir(trial);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let params_file = dir.join("params.json");
        let json = serde_json::Value::Object(params_json(params)).to_string();
        std::fs::write(&params_file, json).map_err(|e| Error::io(&params_file, e))?;
        let argv = argv(
            &self.ext.command,
            self.ext.program.as_deref(),
            params,
            &params_file,
        );
        if argv.is_empty() {
            return Err(Error::Config {
                file: self.run_dir.join("sweep.yaml").display().to_string(),
                line: None,
                field: "command".into(),
                message: "expands to nothing: name a program to run".into(),
            });
        }
        TrialProcess::spawn(
            &argv,
            self.cwd,
            &dir,
            (trial, attempt),
            params,
            self.sweep.metric.name.as_str(),
            tx.clone(),
        )
        .map_err(|e| Error::Config {
            file: self.run_dir.join("sweep.yaml").display().to_string(),
            line: None,
            field: "command".into(),
            message: format!("cannot start `{}`: {e}", argv.join(" ")),
        })
    }

    fn on_event(&mut self, e: Event, study: &mut Study) -> Result<()> {
        let (trial, attempt) = match e {
            Event::Metric { trial, attempt, .. }
            | Event::Garbled { trial, attempt }
            | Event::Closed { trial, attempt } => (trial, attempt),
        };
        let Some(idx) = self
            .running
            .iter()
            .position(|p| p.trial == trial && p.attempt == attempt)
        else {
            return Ok(()); // from an attempt already finished
        };
        match e {
            Event::Closed { .. } => self.running[idx].stdout_closed = true,
            Event::Garbled { .. } => self.running[idx].garbled_lines += 1,
            Event::Metric { value, .. } => {
                if self.running[idx].killed.is_some() {
                    return Ok(());
                }
                let p = &mut self.running[idx];
                p.history.push(value);
                let step = p.history.len() as u64;
                study.report(trial, step, value)?;
                // Every value reaches the rule, a NaN too: it then counts as the worst at
                // its band when later trials are judged.
                let stop = self.stopping.as_mut().is_some_and(|rule| {
                    let arrival = Arrival {
                        trial,
                        curve: &p.history,
                        score: (!value.is_nan()).then(|| Score::plain(value)),
                        params: &p.params,
                    };
                    let decisions = rule.decide(&[arrival], self.sweep.metric.maximize);
                    decisions.iter().any(|(_, d)| *d == Decision::Stop)
                });
                // Optuna's pruners decide from the study's records (a study without one
                // never prunes).
                let stop = stop || (self.ext.pruner.is_some() && study.should_prune(trial)?);
                // A diverged program is failed at once; its siblings are untouched.
                if stop || value.is_nan() {
                    p.kill(Killed::Pruned);
                }
            }
        }
        Ok(())
    }

    fn finish(
        &mut self,
        mut p: TrialProcess,
        status: Option<std::process::ExitStatus>,
        study: &mut Study,
        tx: &mpsc::Sender<Event>,
    ) -> Result<()> {
        let metric = &self.sweep.metric.name;
        let seconds = p.started.elapsed().as_secs_f64();
        self.busy_seconds += seconds;
        let stderr_log = self.trial_dir(p.trial).join(if p.attempt == 0 {
            "stderr.log".to_string()
        } else {
            format!("stderr.retry{}.log", p.attempt)
        });
        let last = p.history.last().copied();
        let (state, error) = match (p.killed, status) {
            (Some(Killed::Interrupted), _) => return Ok(()),
            (Some(Killed::TimedOut), _) => (
                TrialState::Failed,
                Some(format!(
                    "timed out after {:.0} s",
                    self.ext.trial_timeout.unwrap_or(0.0)
                )),
            ),
            (Some(Killed::Pruned), _) if last.is_some_and(f64::is_nan) => (
                TrialState::Failed,
                Some(format!("{metric} is NaN at iteration {}", p.history.len())),
            ),
            (Some(Killed::Pruned), _) => (TrialState::Pruned, None),
            (None, Some(s)) if !s.success() => {
                if p.attempt < self.ext.max_retries {
                    let params = study.trials()?[p.trial].params.clone();
                    if !self.quiet {
                        println!(
                            "trial {} exited with {s}; retry {} of {}",
                            p.trial,
                            p.attempt + 1,
                            self.ext.max_retries
                        );
                    }
                    if let Some(rule) = &mut self.stopping {
                        rule.restart(p.trial, &[], self.sweep.metric.maximize);
                    }
                    let next = self.spawn(p.trial, p.attempt + 1, &params, tx)?;
                    self.running.push(next);
                    return Ok(());
                }
                (
                    TrialState::Failed,
                    Some(format!(
                        "the program exited with {s} (see {})",
                        stderr_log.display()
                    )),
                )
            }
            (None, _) if last.is_none() => (
                TrialState::Failed,
                Some(format!(
                    "the program never printed {metric} as a JSON line (see {})",
                    self.trial_dir(p.trial).join("stdout.log").display()
                )),
            ),
            (None, _) if !last.is_some_and(f64::is_finite) => (
                TrialState::Failed,
                Some(format!(
                    "{metric} is {} at iteration {}",
                    last.unwrap_or(f64::NAN),
                    p.history.len()
                )),
            ),
            (None, _) => (TrialState::Complete, None),
        };
        let outcome = match state {
            TrialState::Complete => Outcome::Complete(last.expect("a complete trial has a value")),
            TrialState::Pruned => Outcome::Pruned,
            _ => Outcome::Failed,
        };
        study.tell(p.trial, outcome)?;
        let params = study.trials()?[p.trial].params.clone();
        let mut record = self.record(
            p.trial,
            &params,
            state,
            &p.history,
            p.attempt + 1,
            Some(seconds),
            error.clone(),
        );
        if p.garbled_lines > 0 && record.error.is_none() {
            record.error = Some(format!(
                "{} stdout line(s) were not UTF-8 and were ignored",
                p.garbled_lines
            ));
        }
        study.record(&record)?;
        study.sync()?;
        self.finished += 1;
        if let (Some(target), TrialState::Complete) = (self.sweep.metric.target, state) {
            let v = last.expect("complete");
            if self.signed(v) <= self.signed(target) && !self.target_reached {
                self.target_reached = true;
                if !self.quiet {
                    println!(
                        "trial {} reached the target {metric} {target}: no new trials start",
                        p.trial
                    );
                }
            }
        }
        if !self.quiet {
            self.progress(study, p.trial, state, last, error.as_deref())?;
        }
        p.history.clear();
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        number: usize,
        params: &Params,
        state: TrialState,
        history: &[f64],
        attempts: usize,
        seconds: Option<f64>,
        error: Option<String>,
    ) -> TrialRecord {
        let bands: Vec<usize> = self
            .ext
            .stopping
            .as_ref()
            .map_or(Vec::new(), |r| r.bands.clone());
        let rungs: Vec<RungValue> = bands
            .iter()
            .filter(|&&b| b < history.len())
            .map(|&b| (b, history[b - 1]))
            .chain(history.last().map(|&v| (history.len(), v)))
            .enumerate()
            .map(|(rung, (epochs, value))| RungValue {
                rung,
                epochs,
                value,
            })
            .collect();
        TrialRecord {
            number,
            params: params.clone(),
            state,
            epochs: history.len(),
            rungs,
            value: (state == TrialState::Complete)
                .then(|| history.last().copied())
                .flatten(),
            attempts: Some(attempts),
            seconds,
            error,
            ..TrialRecord::default()
        }
    }

    /// One line per finished trial; on a terminal, also the line that counts, shows the
    /// best so far and estimates the time left.
    fn progress(
        &self,
        study: &mut Study,
        trial: usize,
        state: TrialState,
        last: Option<f64>,
        error: Option<&str>,
    ) -> Result<()> {
        let metric = &self.sweep.metric.name;
        let what = match (state, last) {
            (TrialState::Failed, _) => format!("failed: {}", error.unwrap_or("")),
            (s, Some(v)) => format!("{} {metric} {v:.4}", format!("{s:?}").to_lowercase()),
            (s, None) => format!("{s:?}").to_lowercase(),
        };
        let trials = study.trials()?;
        let done = trials
            .iter()
            .filter(|t| t.state != TrialState::Running)
            .count();
        let best = study.best()?.map_or("none yet".to_string(), |b| {
            format!("{:.4} (trial {})", b.value.unwrap_or(f64::NAN), b.number)
        });
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = self.sweep.run_cap.saturating_sub(done);
        let eta = elapsed / self.finished.max(1) as f64 * left as f64;
        let line = format!(
            "[{done}/{}] trial {trial} {what} | best {metric} {best} | ETA {}",
            self.sweep.run_cap,
            format_seconds(eta)
        );
        if std::io::stdout().is_terminal() {
            println!("\r\x1b[2K{line}");
        } else {
            println!("{line}");
        }
        Ok(())
    }

    fn summary(&self, study: &mut Study, files: &RunFiles) -> Result<serde_json::Value> {
        let trials = study.trials()?;
        let count = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
        let best = study.best()?;
        let wall = self.started.elapsed().as_secs_f64();
        let summary = serde_json::json!({
            "name": self.sweep.name,
            "program": self.ext.program,
            "metric": {"name": self.sweep.metric.name, "goal": if self.sweep.metric.maximize { "maximize" } else { "minimize" }},
            "sampler": format!("{:?}", self.sweep.sampler).to_lowercase(),
            "run_cap": self.sweep.run_cap,
            "population": self.ext.parallel,
            "trials": {
                "complete": count(TrialState::Complete),
                "pruned": count(TrialState::Pruned),
                "failed": count(TrialState::Failed),
            },
            "best": best.as_ref().map(|b| serde_json::json!({
                "trial": b.number,
                "params": b.params,
                "val": b.value,
            })),
            "epochs_total": trials.iter().map(|t| t.intermediate.len()).sum::<usize>(),
            "utilisation": if wall > 0.0 { (self.busy_seconds / (wall * self.ext.parallel as f64)).min(1.0) } else { 0.0 },
            "target_reached": self.target_reached,
            "wall_seconds": wall,
            "seed": self.sweep.seed,
        });
        files.write_summary(&summary)?;
        if best.is_none() {
            let first = study
                .records()?
                .into_values()
                .find_map(|r| Some((r.number, r.error?)));
            return Err(Error::Run(format!(
                "no trial completed{}",
                first
                    .map(|e| format!("; trial {}: {}", e.0, e.1))
                    .unwrap_or_default()
            )));
        }
        Ok(summary)
    }
}
