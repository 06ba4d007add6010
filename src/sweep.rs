//! The sweep driver: sample a population, train it rung by rung, let the scheduler choose
//! survivors, then evaluate the best trial once on the held-out test split.
//!
//! Synchronous successive halving: every alive member trains to the rung's budget, then
//! the best `⌊n/η⌋` continue from their current weights and the others leave the
//! population. Without early termination there is one rung at the full budget.

use crate::backend::{Backend, EpochPlan};
use crate::config::Sweep;
use crate::data::{split_stratified, Dataset, HeldOutTest, TuningData};
use crate::error::{Error, Result};
use crate::model::knobs::member_spec;
use crate::report::log::RunLog;
use crate::rng::{derive_seed, permutation, Stream};
use crate::space::Params;
use crate::train::{EpochMetrics, Member, Population};
use crate::tuner::scheduler::{rank, Score};
use crate::tuner::study::{Outcome, Study};
use crate::tuner::trial::TrialState;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Salts that derive independent seeds from the sweep seed.
const SEED_SAMPLER: u64 = 1;
const SEED_SHUFFLE: u64 = 2;
const SEED_TRIALS: u64 = 3;
const SEED_SPLIT: u64 = 4;

/// Splits `data` as `sweep` says; the test rows come back sealed.
pub fn prepare_data(sweep: &Sweep, data: &Dataset) -> (TuningData, HeldOutTest) {
    split_stratified(data, sweep.split, derive_seed(sweep.seed, SEED_SPLIT))
}

/// The sweep metric of a trial at one rung.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RungValue {
    pub rung: usize,
    pub epochs: usize,
    pub value: f64,
}

/// One line of `trials.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrialRecord {
    pub number: usize,
    pub params: Params,
    pub state: TrialState,
    /// Epochs trained (completed epochs; a failed trial's partial epoch is not counted).
    pub epochs: usize,
    pub rungs: Vec<RungValue>,
    pub history: Vec<EpochMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

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
}

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub name: String,
    pub metric: String,
    pub goal: &'static str,
    pub backend: &'static str,
    pub seed: u64,
    pub population: usize,
    /// Rung budgets in epochs.
    pub rungs: Vec<usize>,
    pub best: Option<Best>,
    /// Trial counts per state.
    pub trials: BTreeMap<&'static str, usize>,
    pub epochs_total: usize,
    pub wall_seconds: f64,
}

/// What happened at one rung, for progress output.
#[derive(Clone, Debug)]
pub struct RungReport {
    pub rung: usize,
    pub rungs: usize,
    pub budget: usize,
    pub trained: usize,
    pub continuing: usize,
    pub failed: usize,
    /// Best trial at this rung and its metric value.
    pub leader: Option<(usize, f64)>,
    pub seconds: f64,
}

/// Everything a finished sweep reports.
#[derive(Debug)]
pub struct SweepOutcome {
    pub summary: Summary,
    pub trials: Vec<TrialRecord>,
}

/// Runs `sweep` on `tuning` with `backend`, recording into `log`, and finally evaluates the
/// best trial once on `held_out`.
pub fn run_sweep(
    sweep: &Sweep,
    tuning: &TuningData,
    held_out: HeldOutTest,
    backend: &dyn Backend,
    log: &mut RunLog,
    on_rung: &mut dyn FnMut(&RungReport),
) -> Result<SweepOutcome> {
    let started = Instant::now();
    let mut study = Study::in_memory(
        sweep.space.clone(),
        sweep.sampler,
        sweep.metric.maximize,
        derive_seed(sweep.seed, SEED_SAMPLER),
    )
    .map_err(Error::Run)?;
    let params: Vec<Params> = study
        .ask_batch(sweep.run_cap)?
        .into_iter()
        .map(|t| t.params)
        .collect();
    let mut pop = Population::new();
    for (number, p) in params.iter().enumerate() {
        let seed = derive_seed(derive_seed(sweep.seed, SEED_TRIALS), number as u64);
        let spec = member_spec(
            p,
            &sweep.defaults,
            tuning.train.n_features,
            tuning.train.n_classes,
            seed,
        );
        pop.insert(number, spec);
    }
    let rungs = sweep
        .halving
        .map_or_else(|| vec![sweep.epochs], |h| h.rungs());
    let metric = &sweep.metric;
    let mut rung_values: Vec<Vec<RungValue>> = vec![Vec::new(); params.len()];
    let mut finished: Vec<TrialRecord> = Vec::new();
    let finish = |member: &Member, state, rung_values: &mut Vec<Vec<RungValue>>| TrialRecord {
        number: member.trial,
        params: params[member.trial].clone(),
        state,
        epochs: member.epochs,
        rungs: std::mem::take(&mut rung_values[member.trial]),
        history: member.history.clone(),
        error: member.failure.as_ref().map(|f| f.to_string()),
    };
    let shuffle_seed = derive_seed(sweep.seed, SEED_SHUFFLE);

    for (k, &budget) in rungs.iter().enumerate() {
        let rung_started = Instant::now();
        let trained = pop.len();
        // Synchronous: every alive member is at the same epoch, so one shared order serves all.
        while let Some(epoch) = pop
            .members()
            .iter()
            .filter(|m| m.is_alive())
            .map(|m| m.epochs)
            .min()
            .filter(|&e| e < budget)
        {
            let plan = EpochPlan {
                order: permutation(
                    tuning.train.len(),
                    shuffle_seed,
                    Stream::Shuffle,
                    epoch as u32,
                ),
                batch_size: sweep.batch_size,
            };
            backend.train_epoch(&mut pop, &tuning.train, &tuning.val, &plan);
        }
        let scores: Vec<Option<Score>> = pop
            .members()
            .iter()
            .map(|m| {
                m.is_alive()
                    .then(|| score(m.history.last(), &metric.name))
                    .flatten()
            })
            .collect();
        for (member, score) in pop.members().iter().zip(&scores) {
            if let Some(score) = score {
                rung_values[member.trial].push(RungValue {
                    rung: k,
                    epochs: member.epochs,
                    value: score.value,
                });
            }
        }
        let last_rung = k + 1 == rungs.len();
        let continuing: Vec<usize> = match sweep.halving {
            Some(h) if !last_rung => h.select(&scores, metric.maximize),
            _ => (0..scores.len()).filter(|&i| scores[i].is_some()).collect(),
        };
        let leader = rank(&scores, metric.maximize)
            .first()
            .and_then(|&i| Some((pop.members()[i].trial, scores[i]?.value)));
        let mut keep = vec![false; pop.len()];
        for &i in &continuing {
            keep[i] = true;
        }
        let mut failed = 0;
        for (slot, member) in pop.members().iter().enumerate() {
            let state = if !member.is_alive() {
                failed += 1;
                TrialState::Failed
            } else if last_rung {
                TrialState::Complete
            } else if keep[slot] {
                continue;
            } else {
                TrialState::Pruned
            };
            let record = finish(member, state, &mut rung_values);
            log.append_trial(&record)?;
            finished.push(record);
        }
        log.sync()?;
        on_rung(&RungReport {
            rung: k,
            rungs: rungs.len(),
            budget,
            trained,
            continuing: if last_rung { 0 } else { continuing.len() },
            failed,
            leader,
            seconds: rung_started.elapsed().as_secs_f64(),
        });
        if last_rung {
            break;
        }
        let continuing_trials: Vec<usize> =
            continuing.iter().map(|&i| pop.members()[i].trial).collect();
        pop.retain(|m| continuing_trials.contains(&m.trial));
        if pop.is_empty() {
            break;
        }
    }

    let best = best_complete(&finished, &metric.name, metric.maximize);
    let best = match best {
        Some(record) => {
            let slot = pop
                .members()
                .iter()
                .position(|m| m.trial == record.number)
                .expect("a complete trial stays in the population");
            let scored = held_out.final_evaluation(|rows| backend.evaluate(&pop, slot, rows));
            let last = record
                .rungs
                .last()
                .expect("a complete trial has a rung value");
            Some(Best {
                trial: record.number,
                params: record.params.clone(),
                val: last.value,
                test: if metric.name.ends_with("accuracy") {
                    scored.accuracy
                } else {
                    scored.loss
                },
                test_accuracy: scored.accuracy,
                test_loss: scored.loss,
                epochs: record.epochs,
            })
        }
        None => None,
    };
    let mut counts = BTreeMap::from([("complete", 0), ("pruned", 0), ("failed", 0)]);
    for r in &finished {
        *counts.entry(state_name(r.state)).or_default() += 1;
        let outcome = match (r.state, r.rungs.last()) {
            (TrialState::Complete, Some(last)) => Outcome::Complete(last.value),
            (TrialState::Pruned, _) => Outcome::Pruned,
            _ => Outcome::Failed,
        };
        study.tell(r.number, outcome)?;
    }
    finished.sort_by_key(|r| r.number);
    let summary = Summary {
        name: sweep.name.clone(),
        metric: metric.name.clone(),
        goal: if metric.maximize {
            "maximize"
        } else {
            "minimize"
        },
        backend: backend.name(),
        seed: sweep.seed,
        population: params.len(),
        rungs,
        best,
        trials: counts,
        epochs_total: finished.iter().map(|r| r.epochs).sum(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    log.write_summary(&summary)?;
    if summary.best.is_none() {
        return Err(Error::Run(format!(
            "no trial completed ({} failed); results so far are in {}",
            summary.trials["failed"],
            log.dir().display()
        )));
    }
    Ok(SweepOutcome {
        summary,
        trials: finished,
    })
}

fn state_name(state: TrialState) -> &'static str {
    match state {
        TrialState::Running => "running",
        TrialState::Complete => "complete",
        TrialState::Pruned => "pruned",
        TrialState::Failed => "failed",
    }
}

/// A member's standing on `metric` after its latest epoch, ties broken by validation loss.
fn score(latest: Option<&EpochMetrics>, metric: &str) -> Option<Score> {
    let latest = latest?;
    Some(Score {
        value: latest.get(metric)?,
        tiebreak: latest.val_loss,
    })
}

/// The complete trial with the best final score (see [`rank`] for ties).
pub fn best_complete<'a>(
    records: &'a [TrialRecord],
    metric: &str,
    maximize: bool,
) -> Option<&'a TrialRecord> {
    let complete: Vec<&TrialRecord> = records
        .iter()
        .filter(|r| r.state == TrialState::Complete)
        .collect();
    let scores: Vec<Option<Score>> = complete
        .iter()
        .map(|r| score(r.history.last(), metric))
        .collect();
    rank(&scores, maximize).first().map(|&i| complete[i])
}
