//! Trials as a study records them: parameters, state, and the values reported. Part of
//! the storage's schema, so the tuner above it and every store read the same type.

use crate::space::Params;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    /// Asked, not yet told: a pending evaluation (the constant liar's "lie" applies here).
    #[default]
    Running,
    Complete,
    Pruned,
    Failed,
}

impl TrialState {
    /// As records and journals write it.
    pub fn name(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Complete => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Failed => "failed",
        }
    }
}

/// One trial's record in a study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrozenTrial {
    pub number: usize,
    pub params: Params,
    pub state: TrialState,
    /// The objective, for a complete trial.
    pub value: Option<f64>,
    /// `(step, value)` pairs reported while running, in report order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intermediate: Vec<(u64, f64)>,
    /// The value a successive-halving pruner recorded as this trial passed each rung
    /// (Optuna's `completed_rung_k` system attributes), by rung.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed_rungs: Vec<f64>,
}

impl FrozenTrial {
    /// The objective of a complete trial with a finite value.
    pub fn finite_value(&self) -> Option<f64> {
        self.value
            .filter(|v| v.is_finite() && self.state == TrialState::Complete)
    }

    /// The largest step reported (Optuna's `last_step`).
    pub fn last_step(&self) -> Option<u64> {
        self.intermediate.iter().map(|&(s, _)| s).max()
    }

    /// The value reported at `step`. Steps are usually reported in order from 0 or 1, so
    /// the slot at `step` is looked at first: O(1) for the common case.
    pub fn intermediate_at(&self, step: u64) -> Option<f64> {
        let guess = usize::try_from(step).ok().and_then(|i| {
            [i, i.wrapping_sub(1)]
                .into_iter()
                .filter_map(|i| self.intermediate.get(i))
                .find(|(s, _)| *s == step)
        });
        guess
            .or_else(|| self.intermediate.iter().find(|(s, _)| *s == step))
            .map(|&(_, v)| v)
    }
}
