//! A study as a sequence of operations: what a journal line (or a database row) holds, and
//! the state that replaying them builds. Every storage replays the same operations into
//! the same [`StudyState`].

use super::{FrozenTrial, StudyHeader, TrialState};
use crate::space::Params;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

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
