//! The one record of a finished trial: a line of a run directory's `trials.jsonl`, for
//! every kind of sweep (built-in, external program, nested cross-validation). One type
//! writes it (through [`super::Storage::record`]) and every reader — `resume`, `report`,
//! the diagnostics — reads it back; fields a kind of sweep does not have are left out of
//! its lines.

use super::TrialState;
use crate::population::EpochMetrics;
use crate::space::Params;
use serde::{Deserialize, Serialize};

/// The sweep metric of a trial at one rung (for an external program, a band of W&B's
/// rule, then its last report; for cross-validation, the mean inner score).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RungValue {
    /// 0-based among the rungs the trial reached (written by every kind since the record
    /// became one; an older external line without it reads as 0).
    #[serde(default)]
    pub rung: usize,
    pub epochs: usize,
    pub value: f64,
}

/// One line of `trials.jsonl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub number: usize,
    /// Cross-validation: the outer fold this line scores the configuration in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer: Option<usize>,
    /// The configuration as sampled (PBT's later changes are in `lineage`).
    pub params: Params,
    pub state: TrialState,
    /// Epochs trained (completed epochs; a failed trial's partial epoch is not counted);
    /// for an external program, the metric's reports.
    pub epochs: usize,
    pub rungs: Vec<RungValue>,
    /// Per epoch: losses, accuracies and gradient health (built-in model; empty for an
    /// external program, whose reports are its rungs).
    #[serde(default)]
    pub history: Vec<EpochMetrics>,
    /// External program: the objective of a complete trial (its last report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// External program: how many times it was started (1 + retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<usize>,
    /// External program: wall time of its last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Cross-validation: the score in each inner fold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inner_values: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// PBT: every exploit/explore this trial went through, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<Lineage>,
    /// The unit of the population's clock its first epoch trained in: each epoch's
    /// minibatch order follows that clock, so rebuilding the trial means starting there.
    /// 0 under the bracket schedules; a slot schedule starts a trial when a slot frees.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_unit: usize,
    /// Built-in model: the architecture's parameters and forward FLOPs per sample (2 per
    /// multiply-add); 0 for an external program or an architecture that could not be built.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub param_count: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flops_per_sample: usize,
    /// Mean wall seconds per epoch this trial's member spent training on its own thread,
    /// recorded only when a sweep asks for it (the `epoch_seconds` objective or
    /// constraint: a time is not reproducible, and records otherwise are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_seconds: Option<f64>,
}

/// serde's `skip_serializing_if` for counts that are usually 0.
pub fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl TrialRecord {
    /// The sweep metric at the trial's last rung, if finite.
    pub fn last_value(&self) -> Option<f64> {
        self.rungs.last().map(|r| r.value).filter(|v| v.is_finite())
    }

    /// A failed trial whose training diverged (a non-finite or exploding loss or weights):
    /// a result about its configuration, unlike a fault (a model that could not be built,
    /// a program that crashed).
    pub fn diverged(&self) -> bool {
        self.state == TrialState::Failed
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("diverged"))
    }
}

/// One PBT exploit/explore step of a trial: at `epoch` it took the weights of trial `from`
/// and continued with `params`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub epoch: usize,
    pub from: usize,
    pub params: Params,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written_and_leaves_out_what_its_kind_lacks() {
        let builtin = TrialRecord {
            number: 3,
            state: TrialState::Pruned,
            epochs: 1,
            rungs: vec![RungValue {
                rung: 0,
                epochs: 1,
                value: 0.5,
            }],
            ..TrialRecord::default()
        };
        let line = serde_json::to_string(&builtin).unwrap();
        assert_eq!(
            line,
            r#"{"number":3,"params":{},"state":"pruned","epochs":1,"rungs":[{"rung":0,"epochs":1,"value":0.5}],"history":[]}"#
        );
        assert_eq!(serde_json::from_str::<TrialRecord>(&line).unwrap(), builtin);
        let external = TrialRecord {
            value: Some(0.25),
            attempts: Some(2),
            ..builtin.clone()
        };
        let line = serde_json::to_string(&external).unwrap();
        assert!(line.contains(r#""value":0.25,"attempts":2"#), "{line}");
        assert_eq!(
            serde_json::from_str::<TrialRecord>(&line).unwrap(),
            external
        );
        // An external line written before rungs carried their index still reads.
        let old = r#"{"number":0,"params":{},"state":"complete","epochs":2,"rungs":[{"epochs":2,"value":1.0}],"value":1.0,"attempts":1}"#;
        assert_eq!(
            serde_json::from_str::<TrialRecord>(old).unwrap().rungs[0].rung,
            0
        );
    }
}
