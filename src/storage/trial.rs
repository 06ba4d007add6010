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
}

impl FrozenTrial {
    /// The objective of a complete trial with a finite value.
    pub fn finite_value(&self) -> Option<f64> {
        self.value
            .filter(|v| v.is_finite() && self.state == TrialState::Complete)
    }
}
