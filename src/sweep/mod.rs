//! The sweep driver: sample a population, train it rung by rung, let the scheduler choose
//! survivors, then evaluate the best trial once on the held-out test split.
//!
//! Two shapes of schedule. Brackets (full budget, successive halving, Hyperband, BOHB):
//! every alive member trains to the rung's budget, then the best `⌊n/η⌋` continue from their
//! current weights and the others leave the population (`brackets.rs`: Hyperband's brackets
//! share one population when the sampler is model-free, otherwise run one after another).
//! Slots (ASHA, median stopping, PBT; `slots.rs`): a fixed number of slots train together
//! epoch by epoch, each member is judged as it reaches a rung, and a stopped member's slot
//! takes the next trial at once.

mod brackets;
mod checkpoint;
mod cv;
mod data;
mod driver;
mod final_eval;
mod objectives;
pub use objectives::ParetoPoint;
mod plan;
mod resources;
mod slots;
mod summary;
pub mod warm;

pub use cv::{run_nested_cv, CvSummary, OuterFold};
pub use data::with_data_image;
use data::{check_model, check_shift};
pub use data::{load_data, load_dataset, prepare_data};
pub use final_eval::{standing, FinalReport, Finalist};
pub(crate) use plan::epoch_plan;
pub use plan::{bracket_plans, schedulers, BracketPlan};
use summary::write_trials_csv;
pub use summary::{Best, Summary};

use crate::backend::{Backend, TrainingPopulation};
use crate::config::{Metric, Schedule, Sweep};
use crate::data::{HeldOutTest, TuningData};
use crate::error::{Error, Result};
use crate::model::knobs::member_spec;
use crate::population::{EpochMetrics, ExportedMember, MetricName};
use crate::report::run_files::RunFiles;
use crate::rng::derive_seed;
use crate::space::Params;
use crate::storage::TrialState;
use crate::storage::{Lineage, RungValue, Storage, TrialRecord};
use crate::tuner::scheduler::{model_budget, rank, Score};
use crate::tuner::study::{Outcome, Study};
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::time::Instant;

/// Salts that derive independent seeds from the sweep seed.
const SEED_SAMPLER: u64 = 1;
const SEED_SHUFFLE: u64 = 2;
const SEED_TRIALS: u64 = 3;
const SEED_SPLIT: u64 = 4;

/// What happened at one rung, for progress output.
#[derive(Clone, Debug)]
pub struct RungReport {
    pub bracket: usize,
    pub brackets: usize,
    pub rung: usize,
    pub rungs: usize,
    pub budget: usize,
    pub trained: usize,
    pub continuing: usize,
    pub failed: usize,
    /// Best trial at this rung and its metric value.
    pub leader: Option<(usize, f64)>,
    pub seconds: f64,
    pub best_seen: Option<Seen>,
}

/// The best validation value any trial has shown at any of its epochs so far, finished or
/// still training: what a user watching the sweep has found, long before a trial has
/// trained its full budget (Optuna's intermediate values show the same).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seen {
    pub trial: usize,
    /// Budget units the trial had trained.
    pub units: usize,
    pub value: f64,
}

/// Slot schedules' progress, every few epochs of the population.
#[derive(Clone, Debug)]
pub struct TickReport {
    /// Epochs of population training so far.
    pub tick: usize,
    pub training: usize,
    pub started: usize,
    pub complete: usize,
    pub pruned: usize,
    pub failed: usize,
    pub leader: Option<(usize, f64)>,
    pub seconds: f64,
    pub best_seen: Option<Seen>,
}

/// Bracket schedules' progress inside a rung, after each epoch of the population: a
/// rung of many epochs is otherwise silent from start to end.
#[derive(Clone, Debug)]
pub struct EpochReport {
    pub bracket: usize,
    pub brackets: usize,
    pub rung: usize,
    pub rungs: usize,
    /// Budget units trained so far by the rung's members, and the rung's budget.
    pub units: usize,
    pub budget: usize,
    /// Units of the rung trained by its members before this rung's start.
    pub previous: usize,
    pub training: usize,
    pub seconds: f64,
    pub best_seen: Option<Seen>,
}

/// What the driver reports while it runs.
#[derive(Clone, Debug)]
pub enum Progress {
    Rung(RungReport),
    Epoch(EpochReport),
    Tick(TickReport),
}

/// Everything a finished sweep reports.
#[derive(Debug)]
pub struct SweepOutcome {
    pub summary: Summary,
    pub trials: Vec<TrialRecord>,
}

/// What every schedule accumulates as it runs.
struct Ledger {
    finished: Vec<TrialRecord>,
    /// The best complete trial so far, kept alive (weights included) for the final test;
    /// no weights when it finished before a resume (it is rebuilt from its seed then).
    champion: Option<(Option<ExportedMember>, TrialRecord)>,
    /// Member-epochs trained, and epochs of population training (for utilisation).
    busy: usize,
    ticks: usize,
    /// Member-epochs trained past ASHA's stop while the slots drained (`drain: train`).
    drain_epochs: usize,
    /// The first complete trial whose value reached `metric.target`: no trial starts
    /// after it (W&B's semantics; trials already training finish).
    target_reached_by: Option<usize>,
    /// When the sweep started (the wall budget counts from here).
    started: Instant,
    /// Whether the wall budget ended the sweep before its plan.
    wall_budget_cut: bool,
    best_seen: Option<Seen>,
}

impl Ledger {
    /// Notes each member's latest validation value in [`Ledger::best_seen`].
    fn see(&mut self, pop: &dyn TrainingPopulation, metric: &Metric) {
        for m in pop.members() {
            let Some(value) = m.history.last().and_then(|e| e.get(&metric.name)) else {
                continue;
            };
            let better = self.best_seen.is_none_or(|b| {
                if metric.maximize {
                    value > b.value
                } else {
                    value < b.value
                }
            });
            if value.is_finite() && better {
                self.best_seen = Some(Seen {
                    trial: m.trial,
                    units: m.epochs,
                    value,
                });
            }
        }
    }

    /// Records one epoch of population training with `training` members busy, `draining`
    /// of them past ASHA's stop.
    fn tick(&mut self, training: usize, draining: usize) {
        self.busy += training;
        self.drain_epochs += draining;
        self.ticks += 1;
    }

    /// A trial finished: keep its record, and its state (exported from the population) if
    /// it is the best complete one.
    fn finish(
        &mut self,
        pop: &dyn TrainingPopulation,
        slot: usize,
        record: TrialRecord,
        metric: &Metric,
    ) -> Result<()> {
        self.finish_with(|| pop.export(slot).map(Some), record, metric)
    }

    /// A trial that finished before a resume: its record, no weights.
    fn finish_known(&mut self, record: TrialRecord, metric: &Metric) {
        self.finish_with(|| Ok(None), record, metric)
            .expect("nothing to export");
    }

    fn finish_with(
        &mut self,
        weights: impl FnOnce() -> Result<Option<ExportedMember>>,
        record: TrialRecord,
        metric: &Metric,
    ) -> Result<()> {
        if record.state == TrialState::Complete && objectives::feasible(metric, &record) {
            let reached = |target: f64| {
                record.rungs.last().is_some_and(|v| {
                    if metric.maximize {
                        v.value >= target
                    } else {
                        v.value <= target
                    }
                })
            };
            if self.target_reached_by.is_none() && metric.target.is_some_and(reached) {
                self.target_reached_by = Some(record.number);
            }
            let new = score(record.history.last(), &metric.name);
            let held = self
                .champion
                .as_ref()
                .and_then(|(_, r)| score(r.history.last(), &metric.name));
            if self.champion.is_none() || rank(&[held, new], metric.maximize).first() == Some(&1) {
                self.champion = Some((weights()?, record.clone()));
            }
        }
        self.finished.push(record);
        Ok(())
    }
}

/// Runs `sweep` on `tuning` with `backend`, recording its trials into `storage` and its
/// summary into `files`, and finally evaluates the
/// best trial once on `held_out`. Bracket schedules run as in `brackets.rs`: Hyperband's
/// brackets in one population with a model-free sampler, otherwise one after another,
/// the sampler seeing the finished brackets' results when it suggests the next one.
///
/// Trials `storage` already records (a stopped run's, on `popsweep resume`) are not trained
/// again: their recorded rung values take their place at every rung, and the replay,
/// deterministic given the seed, must make the same decisions about them.
pub fn run_sweep(
    sweep: &Sweep,
    tuning: &TuningData,
    held_out: HeldOutTest,
    backend: &dyn Backend,
    storage: Box<dyn Storage>,
    files: &RunFiles,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<SweepOutcome> {
    let started = Instant::now();
    check_shift(sweep, &tuning.train)?;
    check_model(sweep, &tuning.train)?;
    let resolved = with_data_image(sweep.clone(), &tuning.train);
    let sweep = &resolved;
    let mut study = sweep_study(sweep, storage)?;
    let known = &replayed_records(&mut study)?;
    let plans = bracket_plans(sweep);
    let metric = &sweep.metric;
    let mut ledger = Ledger {
        finished: Vec::new(),
        champion: None,
        busy: 0,
        ticks: 0,
        drain_epochs: 0,
        target_reached_by: None,
        started,
        wall_budget_cut: false,
        best_seen: None,
    };
    let population = population_size(sweep, &plans);
    resources::check_population_fits(sweep, tuning, backend, population)?;
    objectives::check_timing(sweep, backend)?;
    match sweep.schedule {
        Schedule::Asha { .. } | Schedule::Median { .. } | Schedule::Pbt(_) => {
            let context = slots::SlotContext {
                sweep,
                tuning,
                backend,
                slots: population,
            };
            let mut books = driver::Books {
                study: &mut study,
                ledger: &mut ledger,
                on_progress,
            };
            context.run((known, files), &mut books)?;
        }
        _ => brackets::run_bracket_schedule(
            (sweep, tuning),
            backend,
            &plans,
            known,
            &mut driver::Books {
                study: &mut study,
                ledger: &mut ledger,
                on_progress,
            },
        )?,
    }
    let Ledger {
        mut finished,
        champion,
        busy,
        ticks,
        drain_epochs,
        target_reached_by,
        wall_budget_cut,
        ..
    } = ledger;

    let (tested, best, final_report) = final_eval::test_once(
        (sweep, tuning, backend),
        held_out,
        &mut study,
        &mut finished,
        champion,
    )?;
    let counts = trial_counts(&finished);
    finished.sort_by_key(|r| r.number);
    let summary = Summary {
        name: sweep.name.clone(),
        metric: metric.name.to_string(),
        goal: if metric.maximize {
            "maximize"
        } else {
            "minimize"
        },
        backend: backend.name(),
        seed: sweep.seed,
        scheduler: sweep.schedule.kind(),
        population,
        brackets: plans,
        best,
        final_stage: final_report,
        trials: counts,
        epochs_total: finished.iter().map(|r| r.epochs).sum(),
        drain_epochs,
        utilisation: busy as f64 / (ticks * population).max(1) as f64,
        wall_seconds: started.elapsed().as_secs_f64(),
        target_reached_by,
        wall_budget_cut,
        pareto_front: objectives::pareto_front(sweep, &finished),
        infeasible: finished
            .iter()
            .filter(|r| r.state == TrialState::Complete && !objectives::feasible(metric, r))
            .count(),
    };
    files.write_summary(&summary)?;
    write_trials_csv(files, sweep, &finished)?;
    if tested {
        refuse_no_result(&summary, files)?;
    }
    Ok(SweepOutcome {
        summary,
        trials: finished,
    })
}

/// The records a resumed run replays: a stopped run's own. A shared study's records are
/// other workers', whose trials this worker never trains.
fn replayed_records(study: &mut Study) -> Result<BTreeMap<usize, TrialRecord>> {
    match study.is_shared() {
        true => Ok(BTreeMap::new()),
        false => study.records(),
    }
}

/// A sweep with no best trial fails, saying why and where its records are.
fn refuse_no_result(summary: &Summary, files: &RunFiles) -> Result<()> {
    if summary.best.is_some() {
        return Ok(());
    }
    let why = match summary.infeasible {
        0 => format!(
            "no trial completed ({} diverged, {} failed)",
            summary.trials["diverged"], summary.trials["failed"]
        ),
        n => format!("no complete trial kept the constraints ({n} broke them)"),
    };
    Err(Error::Run(format!(
        "{why}; results so far are in {}",
        files.dir().display()
    )))
}

/// Trials per outcome for the summary: diverged trials (results about their
/// configurations) apart from failed ones (faults: a model that could not be built).
fn trial_counts(finished: &[TrialRecord]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::from([
        ("complete", 0),
        ("pruned", 0),
        ("diverged", 0),
        ("failed", 0),
    ]);
    for r in finished {
        let kind = if r.diverged() {
            "diverged"
        } else {
            r.state.name()
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

/// How many members train at once: ASHA's and median's slots, PBT's whole population,
/// the brackets' trials (all of them when Hyperband's brackets share the population).
fn population_size(sweep: &Sweep, plans: &[BracketPlan]) -> usize {
    match sweep.schedule {
        Schedule::Asha { slots, .. } | Schedule::Median { slots, .. } => slots.min(sweep.run_cap),
        Schedule::Pbt(_) => sweep.run_cap,
        _ if brackets::shares_brackets(sweep) => plans.iter().map(|p| p.trials).sum(),
        _ => plans.iter().map(|p| p.trials).max().unwrap_or(0),
    }
}

/// Refuses a sweep whose population cannot fit where `backend` trains (see
/// `resources.rs`); run before the run directory or any member exists.
pub fn check_resources(sweep: &Sweep, tuning: &TuningData, backend: &dyn Backend) -> Result<()> {
    let population = population_size(sweep, &bracket_plans(sweep));
    resources::check_population_fits(sweep, tuning, backend, population)
}

/// What the sampler hears of a finished trial. A diverged trial is a result — its region
/// of the space is bad — so it is told as pruned at no step, which TPE ranks below every
/// other finished trial, rather than as failed, which every sampler ignores. A trial that
/// could not be built (a fault, not a result) stays failed.
pub(crate) fn study_outcome(r: &TrialRecord) -> Outcome {
    match (r.state, r.rungs.last()) {
        (TrialState::Complete, Some(last)) => Outcome::Complete(last.value),
        (TrialState::Pruned, _) => Outcome::Pruned,
        (TrialState::Failed, _) if r.diverged() => Outcome::Pruned,
        _ => Outcome::Failed,
    }
}

/// The sweep's sampler as a study kept in `storage`, seeded from the sweep seed.
fn sweep_study(sweep: &Sweep, storage: Box<dyn Storage>) -> Result<Study> {
    let mut study = Study::new(
        storage,
        sweep.space.clone(),
        sweep.sampler,
        sweep.metric.maximize,
        derive_seed(sweep.seed, SEED_SAMPLER),
    )
    .map_err(Error::Run)?;
    if !sweep.objectives.is_empty() {
        study = study
            .with_directions(&sweep.directions())
            .map_err(Error::Run)?;
    }
    warm::seed(&mut study, sweep)?;
    Ok(study)
}

/// A recorded trial's standing at rung `k`: its value there, ties broken by the validation
/// loss of the epoch it reached the rung at (as [`score`] does for a live member).
/// The sweep metric after each epoch of `history` (NaN where an epoch lacks it).
fn curve(history: &[EpochMetrics], metric: &MetricName) -> Vec<f64> {
    history
        .iter()
        .map(|h| h.get(metric).unwrap_or(f64::NAN))
        .collect()
}

fn recorded_score(r: &TrialRecord, k: usize, metric: &Metric) -> Option<Score> {
    let v = r.rungs.iter().find(|v| v.rung == k)?;
    let mut s = score(r.history.get(v.epochs.checked_sub(1)?), &metric.name)?;
    s.value = v.value;
    Some(s)
}

/// Whether a recorded trial went on past rung `k`: it has a value at the next rung, or it
/// was alive at `k` and is recorded failed — it diverged on the way to the next rung (a
/// trial stopped at `k` is recorded pruned, one that failed before `k` was not alive there).
fn went_past(r: &TrialRecord, k: usize, alive_at_k: bool) -> bool {
    r.rungs.iter().any(|v| v.rung == k + 1) || (alive_at_k && r.state == TrialState::Failed)
}

fn replay_mismatch(trial: usize) -> Error {
    Error::Run(format!(
        "trial {trial}'s record in trials.jsonl disagrees with a replay of the sweep (were the \
         sweep file or the data changed, or, under ASHA's `drain: auto`, the backend, or \
         the CPU threads, which size slots the file does not?); \
         start it again with `popsweep run`"
    ))
}

/// The member a trial trains: its knobs over the sweep's defaults, and a seed of its own.
fn trial_spec(
    sweep: &Sweep,
    tuning: &TuningData,
    trial: usize,
    params: &Params,
) -> std::result::Result<crate::model::MemberSpec, String> {
    let seed = derive_seed(derive_seed(sweep.seed, SEED_TRIALS), trial as u64);
    member_spec(
        params,
        &sweep.defaults,
        tuning.train.n_features,
        tuning.train.n_classes,
        seed,
    )
}

/// `(parameters, forward FLOPs per sample)` of a trial's architecture, `(0, 0)` when it
/// cannot be built on the data.
fn model_size(sweep: &Sweep, tuning: &TuningData, trial: usize, params: &Params) -> (usize, usize) {
    trial_spec(sweep, tuning, trial, params).map_or((0, 0), |s| {
        (s.arch.trainable_params(), 2 * s.arch.macs_per_sample())
    })
}

/// Adds a trial's member to `pop`, refused untrained when its architecture cannot be built
/// on the data (a CNN whose kernels or pools do not fit the image) or is over the sweep's
/// parameter budget; returns its slot.
fn insert_trial(
    pop: &mut dyn TrainingPopulation,
    sweep: &Sweep,
    tuning: &TuningData,
    trial: usize,
    params: &Params,
) -> usize {
    let (spec, refusal) = match trial_spec(sweep, tuning, trial, params) {
        Ok(spec) => {
            let size = spec.arch.trainable_params();
            let flops = 2 * spec.arch.macs_per_sample();
            let over_params = sweep.max_params.filter(|&b| size > b).map(|budget| {
                format!("{size} parameters exceed the budget model.max_params = {budget}")
            });
            let over_flops = sweep.max_flops.filter(|&b| flops > b).map(|budget| {
                format!("{flops} FLOPs per sample exceed the budget model.max_flops = {budget}")
            });
            (spec, over_params.or(over_flops))
        }
        // The population records a refused member like any other failed trial; it holds a
        // linear model in the place of the one that could not be built, never trained.
        Err(why) => {
            let linear = crate::model::knobs::KnobDefaults {
                cnn: None,
                vit: None,
                depth: 0,
                ..sweep.defaults
            };
            let (n, classes) = (tuning.train.n_features, tuning.train.n_classes);
            let spec = member_spec(&Params::new(), &linear, n, classes, 0)
                .expect("a linear model always builds");
            (spec, Some(why))
        }
    };
    let slot = pop.insert(trial, spec);
    if let Some(why) = refusal {
        pop.refuse(slot, why);
    }
    slot
}

/// BOHB's proposals for a bracket of `n` trials: TPE fitted on the trials' values at the
/// largest rung budget with enough observations (see [`model_budget`]), each proposal
/// replaced by a random draw (left to the sweep's random sampler) with probability
/// `random_fraction`. Empty while no budget has enough observations.
fn bohb_proposals(
    sweep: &Sweep,
    finished: &[TrialRecord],
    n: usize,
    random_fraction: f64,
    bracket: usize,
) -> Result<Vec<Params>> {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for r in finished {
        for v in r.rungs.iter().filter(|v| v.value.is_finite()) {
            *counts.entry(v.epochs).or_default() += 1;
        }
    }
    let counts: Vec<(usize, usize)> = counts.into_iter().collect();
    let Some(budget) = model_budget(&counts, sweep.space.params.len()) else {
        return Ok(Vec::new());
    };
    let seed = derive_seed(derive_seed(sweep.seed, SEED_SAMPLER), 1000 + bracket as u64);
    let mut model = Study::in_memory(
        sweep.space.clone(),
        crate::tuner::sampler::SamplerKind::Tpe,
        sweep.metric.maximize,
        seed,
    )
    .map_err(Error::Run)?;
    for r in finished {
        if let Some(v) = r
            .rungs
            .iter()
            .find(|v| v.epochs == budget && v.value.is_finite())
        {
            model.enqueue(r.params.clone())?;
            let t = model.ask()?;
            model.tell(t.number, Outcome::Complete(v.value))?;
        }
    }
    let mut coin = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Ok(model
        .ask_batch(n)?
        .into_iter()
        .filter(|_| coin.random::<f64>() >= random_fraction)
        .map(|t| t.params)
        .collect())
}

/// A member's standing on `metric` after its latest epoch, ties broken by validation loss.
fn score(latest: Option<&EpochMetrics>, metric: &MetricName) -> Option<Score> {
    let latest = latest?;
    Some(Score {
        value: latest.get(metric)?,
        tiebreak: latest.val_loss,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_diverged_trial_teaches_the_sampler_and_a_fault_does_not() {
        let failed = |error: &str| TrialRecord {
            state: TrialState::Failed,
            error: Some(error.into()),
            ..TrialRecord::default()
        };
        let diverged = failed("diverged in epoch 2 at step 30: non-finite loss NaN");
        assert!(diverged.diverged());
        assert_eq!(study_outcome(&diverged), Outcome::Pruned);
        let fault = failed("not trained: 90000 parameters exceed the budget");
        assert!(!fault.diverged());
        assert_eq!(study_outcome(&fault), Outcome::Failed);
    }

    use super::*;

    fn record(state: TrialState, rungs: &[usize]) -> TrialRecord {
        TrialRecord {
            number: 0,
            params: Params::new(),
            state,
            epochs: 0,
            rungs: rungs
                .iter()
                .map(|&rung| RungValue {
                    rung,
                    epochs: 3usize.pow(rung as u32),
                    value: 0.5,
                })
                .collect(),
            ..TrialRecord::default()
        }
    }

    #[test]
    fn a_record_tells_whether_its_trial_went_past_a_rung() {
        // Pruned at rung 1: went past rung 0, not past rung 1.
        let pruned = record(TrialState::Pruned, &[0, 1]);
        assert!(went_past(&pruned, 0, true) && !went_past(&pruned, 1, true));
        // Survived rung 0, diverged before rung 1: past rung 0 (alive there), and at
        // rung 1 it is no longer alive, so not past it.
        let diverged = record(TrialState::Failed, &[0]);
        assert!(went_past(&diverged, 0, true) && !went_past(&diverged, 1, false));
        // Diverged before rung 0: never alive at a rung.
        assert!(!went_past(&record(TrialState::Failed, &[]), 0, false));
        // Complete at the last rung: has no next rung.
        assert!(!went_past(
            &record(TrialState::Complete, &[0, 1, 2]),
            2,
            true
        ));
    }
}
