//! Where a study's trials live: in memory, or in an append-only JSONL journal that
//! survives crashes and is shared by several processes. Both replay the same operations
//! into the same [`StudyState`]; the journal is the source of truth.

pub mod journal;
mod records;
mod trial;

pub use journal::Journal;
pub use records::{is_zero, Lineage, RungValue, TrialRecord};
pub use trial::{FrozenTrial, TrialState};

use crate::error::Result;
use crate::space::Params;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What created the study: fixed by the first `ask`, reused by every later one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyHeader {
    /// `minimize` or `maximize`.
    pub direction: String,
    /// `random`, `sobol`, `grid`, `tpe` or `gp`.
    pub sampler: String,
    pub seed: u64,
    /// The `parameters` block as written (YAML or JSON text); empty for define-by-run.
    pub space: String,
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    Study(StudyHeader),
    Enqueue {
        params: Params,
    },
    /// A new trial; it consumes the oldest enqueued configuration when `enqueued` is true.
    Ask {
        trial: usize,
        params: Params,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        enqueued: bool,
    },
    Report {
        trial: usize,
        step: u64,
        value: f64,
    },
    Tell {
        trial: usize,
        state: TrialState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
    },
}

/// The study as replayed from its operations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StudyState {
    pub header: Option<StudyHeader>,
    pub trials: Vec<FrozenTrial>,
    pub queue: VecDeque<Params>,
}

impl StudyState {
    /// Applies one operation. Operations that contradict the state (a tell for a trial
    /// that does not exist or is already finished) are refused with a reason, so a
    /// replay can report and skip them.
    pub fn apply(&mut self, op: &Op) -> std::result::Result<(), String> {
        match op {
            Op::Study(h) => {
                if self.header.is_some() {
                    return Err("a second study header".into());
                }
                self.header = Some(h.clone());
            }
            Op::Enqueue { params } => self.queue.push_back(params.clone()),
            Op::Ask {
                trial,
                params,
                enqueued,
            } => {
                if *trial != self.trials.len() {
                    return Err(format!(
                        "trial {trial} asked out of order (next is {})",
                        self.trials.len()
                    ));
                }
                if *enqueued {
                    self.queue.pop_front();
                }
                self.trials.push(FrozenTrial {
                    number: *trial,
                    params: params.clone(),
                    state: TrialState::Running,
                    value: None,
                    intermediate: Vec::new(),
                });
            }
            Op::Report { trial, step, value } => {
                // A trial restarted after a crash reports its steps again: the new value
                // replaces the old one rather than adding a second value for the step.
                let t = self.running(*trial)?;
                match t.intermediate.iter_mut().find(|(s, _)| s == step) {
                    Some(old) => old.1 = *value,
                    None => t.intermediate.push((*step, *value)),
                }
            }
            Op::Tell {
                trial,
                state,
                value,
            } => {
                if *state == TrialState::Running {
                    return Err("a trial cannot be told `running`".into());
                }
                let t = self.running(*trial)?;
                t.state = *state;
                t.value = *value;
            }
        }
        Ok(())
    }

    fn running(&mut self, trial: usize) -> std::result::Result<&mut FrozenTrial, String> {
        match self.trials.get_mut(trial) {
            None => Err(format!("trial {trial} does not exist")),
            Some(t) if t.state != TrialState::Running => {
                Err(format!("trial {trial} is already {:?}", t.state).to_lowercase())
            }
            Some(t) => Ok(t),
        }
    }
}

/// A study's storage.
pub enum Storage {
    Memory(StudyState),
    Journal(Journal),
}

impl Storage {
    /// Runs `f` on the up-to-date state and records the operations it returns, atomically
    /// with respect to other processes sharing a journal (read, decide and append happen
    /// under one file lock).
    pub fn transact<R>(
        &mut self,
        f: impl FnOnce(&StudyState) -> std::result::Result<(Vec<Op>, R), String>,
    ) -> Result<std::result::Result<R, String>> {
        match self {
            Storage::Memory(state) => Ok(f(state).and_then(|(ops, r)| {
                for op in &ops {
                    state.apply(op)?;
                }
                Ok(r)
            })),
            Storage::Journal(j) => j.transact(f),
        }
    }

    /// The state, refreshed from disk for a journal.
    pub fn state(&mut self) -> Result<&StudyState> {
        match self {
            Storage::Memory(state) => Ok(state),
            Storage::Journal(j) => j.refresh(),
        }
    }
}
