//! A finished (or interrupted) run read back from its directory: the sweep file it used,
//! `summary.json` when the run got that far, and every trial of `trials.jsonl` — the input
//! of `popsweep report` and of the regularisation diagnostics.

use crate::config::{self, Sweep};
use crate::error::{Error, Result};
use crate::population::EpochMetrics;
use crate::space::Params;
use crate::tuner::scheduler::{by_standing, Standing};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One line of `trials.jsonl`, as the report needs it.
#[derive(Clone, Debug, Deserialize)]
pub struct TrialView {
    pub number: usize,
    pub params: Params,
    pub state: String,
    pub epochs: usize,
    #[serde(default)]
    pub rungs: Vec<RungView>,
    #[serde(default)]
    pub history: Vec<EpochMetrics>,
    #[serde(default)]
    pub lineage: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RungView {
    pub epochs: usize,
    pub value: f64,
}

impl TrialView {
    /// The sweep metric at the trial's last rung.
    pub fn value(&self) -> Option<f64> {
        self.rungs.last().map(|r| r.value).filter(|v| v.is_finite())
    }
}

pub struct RunData {
    pub dir: PathBuf,
    pub sweep: Sweep,
    /// `summary.json`, absent when the run stopped before the end.
    pub summary: Option<serde_json::Value>,
    pub trials: Vec<TrialView>,
}

impl RunData {
    pub fn load(dir: &Path) -> Result<RunData> {
        let read = |name: &str| -> Result<String> {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))
        };
        let sweep_text = read("sweep.yaml")?;
        let sweep = config::parse(&sweep_text, &dir.join("sweep.yaml").display().to_string())?;
        let summary = match read("summary.json") {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| Error::Data {
                file: dir.join("summary.json").display().to_string(),
                location: format!("line {}", e.line()),
                message: e.to_string(),
            })?),
            Err(_) => None,
        };
        let mut trials = Vec::new();
        for (i, line) in read("trials.jsonl")?.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // A line torn by a crash is skipped with a warning, as the journal does.
            match serde_json::from_str::<TrialView>(line) {
                Ok(t) => trials.push(t),
                Err(e) => eprintln!(
                    "warning: {}:{}: skipped an unreadable trial line ({e})",
                    dir.join("trials.jsonl").display(),
                    i + 1
                ),
            }
        }
        trials.sort_by_key(|t| t.number);
        Ok(RunData {
            dir: dir.to_path_buf(),
            sweep,
            summary,
            trials,
        })
    }

    /// `(params, value)` of every trial with a finite final value.
    pub fn observations(&self) -> Vec<(Params, f64)> {
        self.trials
            .iter()
            .filter_map(|t| Some((t.params.clone(), t.value()?)))
            .collect()
    }

    /// Trials with a value, best first.
    pub fn ranked(&self) -> Vec<&TrialView> {
        let mut out: Vec<&TrialView> = self.trials.iter().filter(|t| t.value().is_some()).collect();
        let maximize = self.sweep.metric.maximize;
        let standing = |t: &TrialView| Standing {
            epochs: t.epochs,
            value: t.value().unwrap_or(f64::NAN),
            val_loss: t.history.last().map_or(f64::INFINITY, |h| h.val_loss),
            number: t.number,
        };
        out.sort_by(|a, b| by_standing(standing(a), standing(b), maximize));
        out
    }
}
