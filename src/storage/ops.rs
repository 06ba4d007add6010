//! A study as a sequence of operations: what a journal line (or a database row) holds, and
//! the state that replaying them builds. Every storage replays the same operations into
//! the same [`StudyState`].

use super::{FrozenTrial, StudyHeader, TrialState};
use crate::space::Params;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    Study(StudyHeader),
    Enqueue {
        params: Params,
        /// A lapsed trial's parameters queued again (see `lease.rs`): the retry takes the
        /// place of the failed trial, which no longer counts toward a sweep's `run_cap`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retry: bool,
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
        /// Every objective of a multi-objective trial (then `value` is none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<f64>,
        /// Constraint values; the trial is feasible when every one is ≤ 0.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        constraints: Vec<f64>,
    },
    /// A parameter suggested to a running define-by-run trial after its ask (Optuna's
    /// `set_trial_param`): an objective suggests as it goes.
    Suggest {
        trial: usize,
        name: String,
        value: crate::space::ParamValue,
    },
    /// A successive-halving pruner's note that the trial passed `rung` with `value`.
    Rung {
        trial: usize,
        rung: usize,
        value: f64,
    },
    /// Work that one process of a shared study does once (the final test evaluation):
    /// recorded by the first to claim it; a second claim is refused.
    Claim {
        what: String,
    },
}

/// The study as replayed from its operations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StudyState {
    pub header: Option<StudyHeader>,
    pub trials: Vec<FrozenTrial>,
    pub queue: VecDeque<Params>,
    /// Trials whose ask was lost to a damaged line: they stand as failed, with no
    /// parameters, so numbering stays as recorded and no number is issued twice.
    pub lost: BTreeSet<usize>,
    /// Lapsed trials queued again so far (each retry replaces a failed trial).
    pub retries: usize,
    /// What has been claimed (see [`Op::Claim`]).
    pub claims: BTreeSet<String>,
}

impl StudyState {
    /// Trials that count toward a sweep's `run_cap`: every trial asked, less the lapsed
    /// ones whose retries replace them.
    pub fn counted_trials(&self) -> usize {
        self.trials.len().saturating_sub(self.retries)
    }

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
            Op::Enqueue { params, retry } => {
                self.queue.push_back(params.clone());
                self.retries += usize::from(*retry);
            }
            Op::Ask {
                trial,
                params,
                enqueued,
            } => {
                // Asks are recorded in number order; a gap means damaged lines lost the
                // asks between. A lost ask found later (a damaged number that happened
                // to parse came first) fills its place: the replay does not depend on
                // order where order carries no meaning.
                let trial = *trial;
                let filled = self.lost.remove(&trial);
                if trial < self.trials.len() && !filled {
                    return Err(format!("trial {trial} was already asked"));
                }
                if *enqueued {
                    self.queue.pop_front();
                }
                for lost in self.trials.len()..trial {
                    self.lost.insert(lost);
                    self.trials.push(FrozenTrial {
                        number: lost,
                        params: Params::new(),
                        state: TrialState::Failed,
                        value: None,
                        intermediate: Vec::new(),
                        completed_rungs: Vec::new(),
                        values: Vec::new(),
                        constraints: Vec::new(),
                    });
                }
                let asked = FrozenTrial::running(trial, params.clone());
                match filled {
                    true => self.trials[trial] = asked,
                    false => self.trials.push(asked),
                }
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
                values,
                constraints,
            } => {
                if *state == TrialState::Running {
                    return Err("a trial cannot be told `running`".into());
                }
                let t = self.running(*trial)?;
                t.state = *state;
                t.value = *value;
                t.values.clone_from(values);
                t.constraints.clone_from(constraints);
            }
            Op::Suggest { trial, name, value } => {
                let t = self.running(*trial)?;
                if t.params.contains_key(name) {
                    return Err(format!("trial {trial} already has `{name}`"));
                }
                t.params.insert(name.clone(), value.clone());
            }
            Op::Rung { trial, rung, value } => {
                let t = self.running(*trial)?;
                if *rung != t.completed_rungs.len() {
                    return Err(format!(
                        "trial {trial} passed {} rungs, not {rung}",
                        t.completed_rungs.len()
                    ));
                }
                t.completed_rungs.push(*value);
            }
            Op::Claim { what } => {
                if !self.claims.insert(what.clone()) {
                    return Err(format!("`{what}` was already claimed"));
                }
            }
        }
        Ok(())
    }

    fn running(&mut self, trial: usize) -> std::result::Result<&mut FrozenTrial, String> {
        match self.trials.get_mut(trial) {
            None => Err(format!("trial {trial} does not exist")),
            Some(_) if self.lost.contains(&trial) => {
                Err(format!("trial {trial}'s ask was lost to a damaged line"))
            }
            Some(t) if t.state != TrialState::Running => {
                Err(format!("trial {trial} is already {:?}", t.state).to_lowercase())
            }
            Some(t) => Ok(t),
        }
    }
}
