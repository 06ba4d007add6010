//! A finished (or interrupted) run read back from its directory: the sweep file it used,
//! `summary.json` when the run got that far, and every trial of `trials.jsonl` — the input
//! of `popsweep report` and of the regularisation diagnostics.

use crate::config::{self, Sweep};
use crate::error::{Error, Result};
use crate::space::Params;
use crate::storage::{RunStorage, Storage, TrialRecord};
use crate::tuner::scheduler::{by_standing, Standing};
use std::path::{Path, PathBuf};

pub struct RunData {
    pub dir: PathBuf,
    pub sweep: Sweep,
    /// `summary.json`, absent when the run stopped before the end.
    pub summary: Option<serde_json::Value>,
    pub trials: Vec<TrialRecord>,
}

impl RunData {
    /// The run in `dir`; a line torn by a crash is skipped with a warning on stderr, as a
    /// resume does.
    pub fn load(dir: &Path) -> Result<RunData> {
        let (run, warnings) = RunData::read(dir)?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(run)
    }

    /// The run in `dir` and the problems met reading it (skipped lines).
    pub fn read(dir: &Path) -> Result<(RunData, Vec<String>)> {
        let read = |name: &str| -> Result<String> {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))
        };
        let sweep_path = dir.join("sweep.yaml");
        let sweep_text = crate::limits::read_input_text(
            &sweep_path,
            "run directory",
            crate::limits::MAX_SWEEP_FILE_BYTES,
        )?;
        let sweep = config::parse(&sweep_text, &dir.join("sweep.yaml").display().to_string())?;
        let summary = match read("summary.json") {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| Error::Data {
                file: dir.join("summary.json").display().to_string(),
                location: format!("line {}", e.line()),
                message: e.to_string(),
            })?),
            Err(_) => None,
        };
        let mut storage = RunStorage::read(dir)?;
        let mut trials = storage.records()?;
        trials.sort_by_key(|t| t.number);
        let run = RunData {
            dir: dir.to_path_buf(),
            sweep,
            summary,
            trials,
        };
        Ok((run, storage.take_warnings()))
    }

    /// Whether this is an ask/tell study directory seen as a run (`study_view`): no
    /// sweep ran there, so there is no summary to wait for and no test split.
    pub fn is_study(&self) -> bool {
        (self.file("journal.jsonl")).is_some_and(|j| j.is_file())
            && !self.dir.join("trials.jsonl").exists()
    }

    /// The path of a file of the run directory; none for a run read from a database,
    /// which has no directory (so nothing is read from wherever the process runs).
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        (!self.dir.as_os_str().is_empty()).then(|| self.dir.join(name))
    }

    /// `(params, value)` of every trial with a finite final value.
    pub fn observations(&self) -> Vec<(Params, f64)> {
        self.trials
            .iter()
            .filter_map(|t| Some((t.params.clone(), t.last_value()?)))
            .collect()
    }

    /// Trials with a value, best first.
    pub fn ranked(&self) -> Vec<&TrialRecord> {
        let mut out: Vec<&TrialRecord> = self
            .trials
            .iter()
            .filter(|t| t.last_value().is_some())
            .collect();
        let maximize = self.sweep.metric.maximize;
        let standing = |t: &TrialRecord| Standing {
            epochs: t.epochs,
            value: t.last_value().unwrap_or(f64::NAN),
            val_loss: t.history.last().map_or(f64::INFINITY, |h| h.val_loss),
            number: t.number,
        };
        out.sort_by(|a, b| by_standing(standing(a), standing(b), maximize));
        out
    }
}
