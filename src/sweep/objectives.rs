//! Several objectives and constraints in a built-in sweep. `metric` as a list: a complete
//! trial is told one value per objective — its metric at its last rung, then each extra
//! objective of its record — and the summary lists the Pareto front of the complete
//! trials; the schedules rank by the first metric alone. `constraints`: a complete trial
//! is told its constraint values, and one that breaks a limit is no result (never best,
//! tested or on the front).

use super::study_outcome;
use crate::config::{Metric, ObjectiveName, Sweep};
use crate::error::Result;
use crate::storage::{TrialRecord, TrialState};
use crate::tuner::pareto;
use crate::tuner::study::{Outcome, Study};
use serde::Serialize;
use std::collections::BTreeMap;

/// Whether the sweep measures training time (`epoch_seconds` as an objective or a
/// constraint).
pub(super) fn times_epochs(sweep: &Sweep) -> bool {
    let timed = |name: &ObjectiveName| *name == ObjectiveName::EpochSeconds;
    sweep.objectives.iter().any(|o| timed(&o.name))
        || sweep.metric.constraints.iter().any(|c| timed(&c.name))
}

/// `epoch_seconds` is measured only where each member trains on a thread of its own.
pub(super) fn check_timing(sweep: &Sweep, backend: &dyn crate::backend::Backend) -> Result<()> {
    if times_epochs(sweep) && backend.name() != "cpu" {
        return Err(crate::error::Error::Run(format!(
            "epoch_seconds is measured on the CPU backend, where each member trains on a \
             thread of its own; on {} members share kernels (use flops_per_sample there)",
            backend.name()
        )));
    }
    Ok(())
}

/// A finished member's mean training seconds per epoch, when the sweep measures them.
pub(super) fn epoch_seconds(sweep: &Sweep, member: &crate::population::Member) -> Option<f64> {
    (times_epochs(sweep) && member.epochs > 0).then(|| member.train_seconds / member.epochs as f64)
}

/// A record's constraint values (≤ 0 kept), one per `constraints` entry.
fn constraint_values(metric: &Metric, r: &TrialRecord) -> Vec<f64> {
    metric
        .constraints
        .iter()
        .map(|c| c.violation_value(c.name.of(r)))
        .collect()
}

/// Whether a record keeps every constraint of the sweep (always, without any).
pub(crate) fn feasible(metric: &Metric, r: &TrialRecord) -> bool {
    constraint_values(metric, r).iter().all(|&c| c <= 0.0)
}

/// Tells the study how a recorded trial ended: one value per objective when the sweep
/// has several.
pub(super) fn tell_record(study: &mut Study, sweep: &Sweep, r: &TrialRecord) -> Result<()> {
    if r.state == TrialState::Pruned {
        // Its rung values, so that TPE ranks it by the last rung it reached and its value
        // there, as Optuna ranks a pruned trial by its intermediate values; without them
        // every pruned trial looked alike. (A diverged one stays at no step: the worst.)
        let steps: Vec<(u64, f64)> = (r.rungs.iter())
            .map(|v| (v.epochs as u64, v.value))
            .collect();
        study.stage_reports(r.number, &steps);
    }
    let constraints = match r.state {
        TrialState::Complete => constraint_values(&sweep.metric, r),
        _ => Vec::new(),
    };
    match study_outcome(r) {
        Outcome::Complete(v) if !sweep.objectives.is_empty() => {
            study.tell_values(r.number, &sweep.objective_values(r, v), &constraints)
        }
        outcome => study.tell_constrained(r.number, outcome, &constraints),
    }
}

/// One trial of the front, as `summary.pareto_front` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParetoPoint {
    pub trial: usize,
    /// Each objective's value, by name.
    pub values: BTreeMap<String, f64>,
    pub params: crate::space::Params,
}

/// The Pareto front of the complete trials (empty for one objective), in trial order.
pub(super) fn pareto_front(sweep: &Sweep, finished: &[TrialRecord]) -> Vec<ParetoPoint> {
    if sweep.objectives.is_empty() {
        return Vec::new();
    }
    let names: Vec<&str> = std::iter::once(sweep.metric.name.as_str())
        .chain(sweep.objectives.iter().map(|o| o.name.as_str()))
        .collect();
    let directions = sweep.directions();
    let complete: Vec<(&TrialRecord, Vec<f64>)> = finished
        .iter()
        .filter(|r| feasible(&sweep.metric, r))
        .filter_map(|r| match study_outcome(r) {
            Outcome::Complete(v) => Some((r, sweep.objective_values(r, v))),
            _ => None,
        })
        .filter(|(_, v)| v.iter().all(|x| x.is_finite()))
        .collect();
    let losses: Vec<Vec<f64>> = complete
        .iter()
        .map(|(_, v)| crate::tuner::study::losses(v, &directions))
        .collect();
    let fronts = pareto::fronts(&losses, &vec![0.0; losses.len()]);
    let mut front: Vec<ParetoPoint> = fronts
        .first()
        .map(|f| {
            f.iter()
                .map(|&i| {
                    let (r, v) = &complete[i];
                    ParetoPoint {
                        trial: r.number,
                        values: names
                            .iter()
                            .map(|n| n.to_string())
                            .zip(v.iter().copied())
                            .collect(),
                        params: r.params.clone(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    front.sort_by_key(|p| p.trial);
    front
}
