//! What a finished sweep writes besides its records: `summary.json` and `trials.csv`.

use super::{BracketPlan, FinalReport};
use crate::config::Sweep;
use crate::error::Result;
use crate::report::run_files::RunFiles;
use crate::space::Params;
use crate::storage::{Lineage, TrialRecord};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Best {
    pub trial: usize,
    pub params: Params,
    /// The sweep metric on validation, at the end of training.
    pub val: f64,
    /// The same metric on the held-out test split (accuracy for `*_accuracy`, loss for `*_loss`).
    pub test: f64,
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub epochs: usize,
    /// PBT: where the best trial's weights came from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<Lineage>,
}

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub name: String,
    pub metric: String,
    pub goal: &'static str,
    pub backend: &'static str,
    pub seed: u64,
    /// The schedule: `full`, `sh`, `hyperband`, `bohb`, `asha`, `median` or `pbt`.
    pub scheduler: &'static str,
    /// Members trained at once (the largest bracket, or the slots).
    pub population: usize,
    /// The brackets run, in order: trials started and rung budgets in epochs.
    pub brackets: Vec<BracketPlan>,
    pub best: Option<Best>,
    /// `final: {top_k, retrain}`: the finalists' test scores (the first is `best`).
    #[serde(rename = "final", skip_serializing_if = "Option::is_none")]
    pub final_stage: Option<FinalReport>,
    /// Trial counts per state.
    pub trials: BTreeMap<&'static str, usize>,
    pub epochs_total: usize,
    /// Of `epochs_total`, those trained past ASHA's stop while the slots drained
    /// (`drain: train`).
    #[serde(skip_serializing_if = "crate::storage::is_zero")]
    pub drain_epochs: usize,
    /// Mean fraction of the population's slots busy per epoch of training.
    pub utilisation: f64,
    pub wall_seconds: f64,
    /// `metric.target`: the first complete trial that reached it (no trial started after).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_reached_by: Option<usize>,
    /// `budget.wall_seconds` ended the sweep before its plan: the trials training then
    /// finished complete at the epochs they had trained.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wall_budget_cut: bool,
    /// Several objectives (`metric` as a list): the complete trials no other beats on
    /// every objective. `best` is the best of them by the first metric.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pareto_front: Vec<super::objectives::ParetoPoint>,
    /// `constraints`: complete trials that broke a limit (counted as complete too).
    #[serde(skip_serializing_if = "crate::storage::is_zero")]
    pub infeasible: usize,
}

/// `trials.csv`: number, state, epochs, the sweep metric at the last rung, the last epoch's
/// four metrics and the train−validation accuracy gap, the model's parameters and forward
/// FLOPs per sample, then every parameter (empty where inactive).
pub(super) fn write_trials_csv(
    log: &RunFiles,
    sweep: &Sweep,
    trials: &[TrialRecord],
) -> Result<()> {
    let names: Vec<&String> = sweep.space.params.iter().map(|p| &p.name).collect();
    let mut header: Vec<String> = [
        "number",
        "state",
        "epochs",
        "value",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "train_val_gap",
        "grad_norm",
        "param_count",
        "flops_per_sample",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    header.extend(names.iter().map(|n| n.to_string()));
    let rows: Vec<Vec<String>> = trials
        .iter()
        .map(|t| {
            let opt = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
            let size = |n: usize| match n {
                0 => String::new(),
                n => n.to_string(),
            };
            let last = t.history.last();
            let mut row = vec![
                t.number.to_string(),
                t.state.name().to_string(),
                t.epochs.to_string(),
                opt(t.rungs.last().map(|r| r.value)),
                opt(last.map(|h| h.train_loss)),
                opt(last.map(|h| h.train_accuracy)),
                opt(last.map(|h| h.val_loss)),
                opt(last.map(|h| h.val_accuracy)),
                opt(last.map(|h| h.gap())),
                opt(last.and_then(|h| h.grad_norm)),
                size(t.param_count),
                size(t.flops_per_sample),
            ];
            row.extend(names.iter().map(|n| {
                t.params.get(*n).map_or(String::new(), |v| match v {
                    crate::space::ParamValue::Float(x) => x.to_string(),
                    other => other.to_string(),
                })
            }));
            row
        })
        .collect();
    log.write_csv("trials.csv", &header, &rows)
}
