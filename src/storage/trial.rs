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
    /// Every objective of a complete multi-objective trial (`value` is then none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
    /// Constraint values told with the trial: feasible when every one is ≤ 0 (Optuna's
    /// `constraints_func`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<f64>,
}

impl FrozenTrial {
    /// A trial just asked: running, with nothing reported yet.
    pub fn running(number: usize, params: Params) -> FrozenTrial {
        FrozenTrial {
            number,
            params,
            state: TrialState::Running,
            value: None,
            intermediate: Vec::new(),
            completed_rungs: Vec::new(),
            values: Vec::new(),
            constraints: Vec::new(),
        }
    }

    /// The objective of a complete trial with a finite value.
    pub fn finite_value(&self) -> Option<f64> {
        self.value
            .filter(|v| v.is_finite() && self.state == TrialState::Complete)
    }

    /// How far the trial is from feasible: the sum of its positive constraint values (0
    /// when feasible or without constraints; NaN counts as infinitely far).
    pub fn violation(&self) -> f64 {
        self.constraints
            .iter()
            .map(|&c| {
                if c.is_nan() {
                    f64::INFINITY
                } else {
                    c.max(0.0)
                }
            })
            .sum()
    }

    /// The objectives of a complete trial, all finite: its values (several objectives)
    /// or its value (one).
    pub fn objectives(&self) -> Option<&[f64]> {
        if self.state != TrialState::Complete {
            return None;
        }
        let values = match &self.values[..] {
            [] => std::slice::from_ref(self.value.as_ref()?),
            v => v,
        };
        values.iter().all(|v| v.is_finite()).then_some(values)
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
