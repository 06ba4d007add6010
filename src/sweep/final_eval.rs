//! The final evaluation (`final: {top_k, retrain}`): the `top_k` best complete trials are
//! trained again from their own initial weights — on the training rows, which reproduces
//! each trial exactly (population equivalence), or with `retrain: true` on training *and*
//! validation rows, the usual last step once validation has done its job — as one
//! population, then each is scored once on the held-out test split.

use super::driver::train_fixed;
use super::{insert_trial, Best, TrialRecord};
use crate::backend::{Backend, TrainingPopulation};
use crate::config::FinalStage;
use crate::config::Sweep;
use crate::data::{Dataset, HeldOutTest, TuningData};
use crate::error::Result;
use crate::population::{Evaluation, ExportedMember};
use crate::space::Params;
use crate::storage::TrialState;
use crate::tuner::scheduler::{by_standing, Standing};
use crate::tuner::study::Study;
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
    /// With `ensemble: true`: the finalists that did not diverge, tested as one model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<EnsembleScore>,
}

/// The test scores of an ensemble: the mean of its members' class probabilities (or
/// outputs, for a regression).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnsembleScore {
    pub trials: Vec<usize>,
    pub test_accuracy: f64,
    pub test_loss: f64,
}

/// Complete trials, best first (furthest trained, then the metric, then validation loss).
pub fn ranked<'a>(sweep: &Sweep, finished: &'a [TrialRecord]) -> Vec<&'a TrialRecord> {
    let mut out: Vec<&TrialRecord> = finished
        .iter()
        .filter(|r| r.state == TrialState::Complete)
        .filter(|r| r.rungs.last().is_some_and(|v| v.value.is_finite()))
        .filter(|r| super::objectives::feasible(&sweep.metric, r))
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
        // The sweep's records are all written: on an interrupt `popsweep resume` replays
        // them and comes back here.
        let (rows, units) = (data.train.len(), group_epochs.unwrap_or(0));
        train_fixed(sweep, pop.as_mut(), rows, first_unit, units)?;
    }
    let mut scores: Vec<Option<Evaluation>> = vec![None; finalists.len()];
    let mut ensemble = None;
    held_out.final_evaluation(|rows| {
        let mut trained = Vec::new();
        for (pop, members) in groups.values() {
            for (slot, &i) in members.iter().enumerate() {
                if pop.members()[slot].is_alive() {
                    scores[i] = Some(pop.evaluate(slot, rows)?);
                    if stage.ensemble {
                        trained.push((i, pop.export(slot)?));
                    }
                }
            }
        }
        if !trained.is_empty() {
            trained.sort_by_key(|(i, _)| *i);
            let models: Vec<_> = trained
                .iter()
                .map(|(_, e)| (&e.member.spec.arch, e.params.as_slice()))
                .collect();
            let score = crate::backend::cpu::ensemble_evaluation(&models, rows);
            ensemble = Some(EnsembleScore {
                trials: trained.iter().map(|(i, _)| finalists[*i].number).collect(),
                test_accuracy: score.accuracy,
                test_loss: score.loss,
            });
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
        ensemble,
    })
}

/// The held-out test, once: the `final` stage's finalists retrained and tested, or the
/// champion tested as it stands (its exported state), or, when it finished before a
/// resume, rebuilt exactly from its seed and tested.
pub(super) fn test_the_best(
    sweep: &Sweep,
    tuning: &TuningData,
    held_out: HeldOutTest,
    backend: &dyn Backend,
    finished: &[TrialRecord],
    champion: Option<(Option<ExportedMember>, TrialRecord)>,
) -> Result<(Option<Best>, Option<FinalReport>)> {
    let metric = &sweep.metric;
    let on_test = |accuracy: f64, loss: f64| {
        if metric.name.is_accuracy() {
            accuracy
        } else {
            loss
        }
    };
    let best_of = |record: &TrialRecord, accuracy: f64, loss: f64| Best {
        trial: record.number,
        params: record.params.clone(),
        val: record.rungs.last().map_or(f64::NAN, |v| v.value),
        test: on_test(accuracy, loss),
        test_accuracy: accuracy,
        test_loss: loss,
        epochs: record.epochs,
        lineage: record.lineage.clone(),
    };
    let (best, final_report) = match (sweep.final_stage, champion) {
        (_, None) => (None, None),
        (Some(stage), Some(_)) => {
            let top: Vec<&TrialRecord> = ranked(sweep, finished)
                .into_iter()
                .take(stage.top_k)
                .collect();
            let report = evaluate_finalists(sweep, stage, tuning, held_out, &top, backend)?;
            let first = &report.finalists[0];
            let best = best_of(
                top[0],
                first.test_accuracy.unwrap_or(f64::NAN),
                first.test_loss.unwrap_or(f64::NAN),
            );
            (Some(best), Some(report))
        }
        (None, Some((Some(state), record))) => {
            let mut pop = backend.population(&tuning.train, &tuning.val);
            let slot = pop.import(state)?;
            let scored = held_out.final_evaluation(|rows| pop.evaluate(slot, rows))?;
            (Some(best_of(&record, scored.accuracy, scored.loss)), None)
        }
        // The best trial finished before a resume: rebuilt exactly from its seed.
        (None, Some((None, record))) => {
            let stage = crate::config::FinalStage {
                top_k: 1,
                retrain: false,
                ensemble: false,
            };
            let report = evaluate_finalists(sweep, stage, tuning, held_out, &[&record], backend)?;
            let f = &report.finalists[0];
            let best = best_of(
                &record,
                f.test_accuracy.unwrap_or(f64::NAN),
                f.test_loss.unwrap_or(f64::NAN),
            );
            (Some(best), None)
        }
    };
    Ok((best, final_report))
}

/// The held-out test, once per study: here, or across workers (whose results are then
/// every worker's records, in `finished`) by the first worker to find every trial of the
/// study finished. Whether it ran here, the best trial and the final stage's report.
#[allow(clippy::type_complexity)]
pub(super) fn test_once(
    (sweep, tuning, backend): (&Sweep, &TuningData, &dyn Backend),
    held_out: HeldOutTest,
    study: &mut Study,
    finished: &mut Vec<TrialRecord>,
    champion: Option<(Option<ExportedMember>, TrialRecord)>,
) -> Result<(bool, Option<Best>, Option<FinalReport>)> {
    let (mut tested, mut champion) = (true, champion);
    if study.is_shared() {
        *finished = study.records()?.into_values().collect();
        tested = study.claim(super::slots::FINAL_EVALUATION, |state| {
            state.trials.iter().all(|t| t.state != TrialState::Running)
                && !super::slots::askable(state, sweep)
        })?;
        champion = study_champion(sweep, finished, champion);
    }
    let (best, report) = match tested {
        true => test_the_best(sweep, tuning, held_out, backend, finished, champion)?,
        false => (None, None),
    };
    Ok((tested, best, report))
}

/// The trial the test evaluates: the best of `finished`, with its weights when this
/// process trained it (`local`, the ledger's champion), else to be rebuilt from its seed.
fn study_champion(
    sweep: &Sweep,
    finished: &[TrialRecord],
    local: Option<(Option<ExportedMember>, TrialRecord)>,
) -> Option<(Option<ExportedMember>, TrialRecord)> {
    let best = ranked(sweep, finished).into_iter().next()?;
    match local {
        Some((weights, record)) if record.number == best.number => Some((weights, record)),
        _ => Some((None, best.clone())),
    }
}
