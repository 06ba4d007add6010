//! The final evaluation (`final: {top_k, retrain}`): the `top_k` best complete trials are
//! trained again from their own initial weights — on the training rows, which reproduces
//! each trial exactly (population equivalence), or with `retrain: true` on training *and*
//! validation rows, the usual last step once validation has done its job — as one
//! population, then each is scored once on the held-out test split.

use super::{epoch_plan, insert_trial, TrialRecord};
use crate::backend::{Backend, TrainingPopulation};
use crate::config::FinalStage;
use crate::config::Sweep;
use crate::data::{Dataset, HeldOutTest, TuningData};
use crate::error::{Error, Result};
use crate::population::Evaluation;
use crate::space::Params;
use crate::storage::TrialState;
use crate::tuner::scheduler::{by_standing, Standing};
use serde::Serialize;
use std::collections::BTreeMap;

/// One finalist: its validation metric from the sweep and its test scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finalist {
    pub trial: usize,
    pub params: Params,
    pub val: f64,
    /// `None` when the retrained model diverged.
    pub test_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
}

/// `summary.json`'s `final`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FinalReport {
    pub retrain: bool,
    /// Epochs each finalist trained for the test.
    pub epochs: usize,
    pub finalists: Vec<Finalist>,
}

/// Complete trials, best first (furthest trained, then the metric, then validation loss).
pub fn ranked<'a>(sweep: &Sweep, finished: &'a [TrialRecord]) -> Vec<&'a TrialRecord> {
    let mut out: Vec<&TrialRecord> = finished
        .iter()
        .filter(|r| r.state == TrialState::Complete)
        .filter(|r| r.rungs.last().is_some_and(|v| v.value.is_finite()))
        .collect();
    out.sort_by(|a, b| by_standing(standing(a), standing(b), sweep.metric.maximize));
    out
}

/// A record's [`Standing`].
pub fn standing(r: &TrialRecord) -> Standing {
    Standing {
        epochs: r.epochs,
        value: r.rungs.last().map_or(f64::NAN, |v| v.value),
        val_loss: r.history.last().map_or(f64::INFINITY, |h| h.val_loss),
        number: r.number,
    }
}

fn joined(a: &Dataset, b: &Dataset) -> Dataset {
    let mut out = a.clone();
    out.features.extend_from_slice(&b.features);
    out.labels.extend_from_slice(&b.labels);
    out.values.extend_from_slice(&b.values);
    out.n_classes = a.n_classes.max(b.n_classes);
    out
}

/// Trains the finalists and scores them on `held_out`, the one time it is read.
pub fn evaluate_finalists(
    sweep: &Sweep,
    stage: FinalStage,
    tuning: &TuningData,
    held_out: HeldOutTest,
    finalists: &[&TrialRecord],
    backend: &dyn Backend,
) -> Result<FinalReport> {
    let data = if stage.retrain {
        TuningData {
            train: joined(&tuning.train, &tuning.val),
            val: tuning.val.clone(),
        }
    } else {
        tuning.clone()
    };
    let epochs = finalists.iter().map(|r| r.epochs).max().unwrap_or(0);
    // The sweep's own epoch orders, so without retraining each finalist is rebuilt exactly.
    // A slot schedule starts trials at different units of its clock: finalists train in
    // one population per first unit, each on the orders it saw.
    let mut groups: BTreeMap<usize, (Box<dyn TrainingPopulation + '_>, Vec<usize>)> =
        BTreeMap::new();
    for (i, r) in finalists.iter().enumerate() {
        let (pop, members) = groups
            .entry(r.first_unit)
            .or_insert_with(|| (backend.population(&data.train, &data.val), Vec::new()));
        insert_trial(pop.as_mut(), sweep, tuning, r.number, &r.params);
        members.push(i);
    }
    for (&first_unit, (pop, members)) in &mut groups {
        let group_epochs = members.iter().map(|&i| finalists[i].epochs).max();
        for epoch in 0..group_epochs.unwrap_or(0) {
            // The sweep's records are all written: `popsweep resume` replays them and
            // comes back here.
            if crate::interrupt::requested() {
                return Err(Error::Interrupted("interrupted".into()));
            }
            let plan = epoch_plan(sweep, data.train.len(), first_unit + epoch);
            pop.train(&plan)?;
        }
    }
    let mut scores: Vec<Option<Evaluation>> = vec![None; finalists.len()];
    held_out.final_evaluation(|rows| {
        for (pop, members) in groups.values() {
            for (slot, &i) in members.iter().enumerate() {
                if pop.members()[slot].is_alive() {
                    scores[i] = Some(pop.evaluate(slot, rows)?);
                }
            }
        }
        Ok(())
    })?;
    Ok(FinalReport {
        retrain: stage.retrain,
        epochs,
        finalists: finalists
            .iter()
            .zip(scores)
            .map(|(r, s)| Finalist {
                trial: r.number,
                params: r.params.clone(),
                val: r.rungs.last().map_or(f64::NAN, |v| v.value),
                test_accuracy: s.map(|e| e.accuracy),
                test_loss: s.map(|e| e.loss),
            })
            .collect(),
    })
}
