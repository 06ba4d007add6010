//! The study: ask / ask_batch / report / tell / enqueue / best over a storage. Ask/tell is
//! the primitive; a training loop (or another language, through the CLI) drives it.

mod define_by_run;
mod objectives;
mod seeding;
mod shared;

pub use define_by_run::{Trial, TrialBuilder};
pub use objectives::losses;

use super::pruner::{Pruner, StudyView};
use super::sampler::{ask_params, History, Sampler, SamplerKind};
use crate::error::{Error, Result};
use crate::pruning::PrunerSpec;
use crate::rng::derive_seed;
use crate::space::{ParamDef, ParamValue, Params, Space};
use crate::storage::{Direction, FrozenTrial, TrialState};
use crate::storage::{MemoryStorage, Op, Storage, StudyState, TrialRecord};
use std::collections::BTreeMap;

/// A decision stopped by Ctrl-C, told apart from a refused one.
const INTERRUPTED: &str = "interrupted";

/// A configuration as a hashable key (parameters are ordered by name; values print
/// exactly).
fn params_key(params: &Params) -> String {
    serde_json::to_string(params).expect("parameters serialize")
}

/// How a trial ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Complete(f64),
    Pruned,
    Failed,
}

/// `n` configurations for trials `first..first + n`, each drawn with the sampler reseeded
/// by `seed_of(number)`: queued configurations first (marked `true`), then the sampler's,
/// each seeing the earlier ones of the batch as running (constant liar for model-based
/// samplers) and never repeating a running configuration.
fn draw(
    sampler: &mut dyn Sampler,
    space: &Space,
    stored: History<'_>,
    (first, n): (usize, usize),
    seed_of: impl Fn(usize) -> u64,
    queue: &std::collections::VecDeque<Params>,
) -> std::result::Result<Vec<(Params, bool)>, String> {
    // Running configurations, to keep a batch free of repeats in linear time.
    let mut running: std::collections::HashSet<String> = stored
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Running)
        .map(|t| params_key(&t.params))
        .collect();
    let mut pending: Vec<FrozenTrial> = Vec::with_capacity(n);
    let mut drawn = Vec::with_capacity(n);
    for k in 0..n {
        if crate::interrupt::requested() {
            return Err(INTERRUPTED.into());
        }
        sampler.reseed(seed_of(first + k));
        let (params, enqueued) = match queue.get(k) {
            Some(p) => (p.clone(), true),
            None => {
                let history = History {
                    pending: &pending,
                    ..stored
                };
                let mut params = ask_params(sampler, &history, space);
                // A batch never repeats a configuration: a model-based sampler can
                // (rarely) land on a pending point; redraw it independently.
                for _ in 0..16 {
                    if !running.contains(&params_key(&params)) {
                        break;
                    }
                    params = ask_params(&mut IndependentOnly(sampler), &history, space);
                }
                (params, false)
            }
        };
        running.insert(params_key(&params));
        pending.push(FrozenTrial::running(first + k, params.clone()));
        drawn.push((params, enqueued));
    }
    Ok(drawn)
}

pub struct Study {
    storage: Box<dyn Storage>,
    space: Space,
    kind: SamplerKind,
    /// Kept across asks (a GP warm-starts its fit from the last one); reseeded from
    /// `(seed, first trial number)` before each batch.
    sampler: Box<dyn Sampler>,
    seed: u64,
    /// Every objective's direction (one for a single-objective study).
    directions: Vec<Direction>,
    /// Consulted by [`Study::should_prune`]; none: never prune.
    pruner: Option<Pruner>,
    /// Hyperband draws a trial's bracket from a hash of this name and its number.
    name: String,
    /// Mixed into the seeds of a study shared by several processes (see `draft`); 0 for a
    /// study of one process, whose draws follow from its seed alone.
    worker_salt: u64,
    /// Values staged for the next tell, written in its transaction ([`Study::stage_reports`]).
    staged: Vec<Op>,
}

impl Study {
    /// A study over a declared space (empty for define-by-run), kept in `storage`.
    pub fn new(
        storage: Box<dyn Storage>,
        space: Space,
        sampler: SamplerKind,
        maximize: bool,
        seed: u64,
    ) -> std::result::Result<Study, String> {
        if sampler == SamplerKind::Grid {
            super::sampler::GridSampler::grid_size(&space)?;
        }
        let storage_shared = storage.shared();
        Ok(Study {
            storage,
            space,
            kind: sampler,
            sampler: sampler.build(seed),
            seed,
            directions: vec![match maximize {
                true => Direction::Maximize,
                false => Direction::Minimize,
            }],
            pruner: None,
            name: "popsweep".into(),
            worker_salt: match storage_shared {
                true => rand::random(),
                false => 0,
            },
            staged: Vec::new(),
        })
    }

    /// Whether the (first) objective is maximised.
    fn maximize(&self) -> bool {
        self.directions[0].maximize()
    }

    /// The study with `spec`'s pruner (settings checked as Optuna checks them).
    pub fn with_pruner(mut self, spec: &PrunerSpec) -> std::result::Result<Study, String> {
        spec.check()?;
        self.pruner = Some(Pruner::new(spec));
        Ok(self)
    }

    /// The study under `name` (Optuna's `study_name`; Hyperband's brackets depend on it).
    pub fn with_name(mut self, name: &str) -> Study {
        self.name = name.into();
        self
    }

    /// Whether running trial `trial` should stop now, by the study's pruner and its
    /// intermediate values so far. A successive-halving pruner records the rungs the trial
    /// passes in the same transaction, so concurrent workers see them.
    pub fn should_prune(&mut self, trial: usize) -> Result<bool> {
        let maximize = self.maximize();
        let Some(pruner) = self.pruner.as_mut() else {
            return Ok(false);
        };
        if self.directions.len() > 1 {
            return Err(Error::Run(
                "pruning decides on one objective; this study has several".into(),
            ));
        }
        let name = &self.name;
        self.storage
            .transact(|state| {
                let t = state
                    .trials
                    .get(trial)
                    .filter(|t| t.state == TrialState::Running)
                    .ok_or_else(|| format!("trial {trial} is not running"))?;
                let view = StudyView {
                    trials: &state.trials,
                    maximize,
                    study_name: name,
                };
                let verdict = pruner.prune(&view, t);
                let ops = verdict
                    .passed_rungs
                    .iter()
                    .map(|&(rung, value)| Op::Rung { trial, rung, value })
                    .collect();
                Ok((ops, verdict.prune))
            })?
            .map_err(Error::Run)
    }

    /// An in-memory study.
    pub fn in_memory(
        space: Space,
        sampler: SamplerKind,
        maximize: bool,
        seed: u64,
    ) -> std::result::Result<Study, String> {
        Study::new(
            Box::new(MemoryStorage::default()),
            space,
            sampler,
            maximize,
            seed,
        )
    }

    /// `n` new trials over the declared space, suggested as one batch: each suggestion
    /// sees the earlier ones as running trials (constant liar for model-based samplers),
    /// and enqueued configurations come first.
    pub fn ask_batch(&mut self, n: usize) -> Result<Vec<FrozenTrial>> {
        self.ask_within(n, None)
    }

    /// Up to `n` new trials, as many as keep the study's counted trials (see
    /// [`StudyState::counted_trials`]) within `run_cap`: workers sharing a study ask
    /// within one cap, decided in the same transaction as the ask.
    pub fn ask_upto(&mut self, n: usize, run_cap: usize) -> Result<Vec<FrozenTrial>> {
        self.ask_within(n, Some(run_cap))
    }

    fn ask_within(&mut self, n: usize, run_cap: Option<usize>) -> Result<Vec<FrozenTrial>> {
        let capped = |n: usize, state: &StudyState| {
            run_cap.map_or(n, |cap| n.min(cap.saturating_sub(state.counted_trials())))
        };
        let drafts = match self.storage.shared() && self.kind != SamplerKind::Grid {
            true => self.draft(|state| capped(n, state))?,
            false => None,
        };
        let (space, seed, maximize) = (&self.space, self.seed, self.maximize());
        let directions = &self.directions;
        let sampler = &mut self.sampler;
        let grid = match self.kind {
            SamplerKind::Grid => super::sampler::GridSampler::grid_size(space).ok(),
            _ => None,
        };
        let outcome = self.storage.transact(|state| {
            let first = state.trials.len();
            let n = capped(n, state);
            if let Some(size) = grid.filter(|&s| (first + n) as u64 > s) {
                return Err(format!(
                    "the grid has {size} points and {first} are taken; {n} more would repeat points"
                ));
            }
            if (first + n) as u64 > crate::limits::MAX_TRIALS {
                return Err(format!(
                    "{first} trials and {n} more exceed a study's limit of {} trials",
                    crate::limits::MAX_TRIALS
                ));
            }
            let drawn = match &drafts {
                // Drafted outside the lock; numbered now. Configurations queued meanwhile
                // come first, so the drafts wait for the next ask then.
                Some(drafts) if state.queue.is_empty() && drafts.len() >= n => {
                    drafts[..n].iter().map(|p| (p.clone(), false)).collect()
                }
                _ => {
                    let history = History::new(&state.trials, &[], maximize);
                    let history = history.with_directions(directions);
                    // Reseeded per trial, so trial n's random draws depend on (seed, n)
                    // alone, not on how trials were batched: a sweep under any scheduler
                    // tries the same random configurations as the same sweep without one.
                    let seed_of = |number: usize| derive_seed(seed, number as u64);
                    draw(
                        sampler.as_mut(),
                        space,
                        history,
                        (first, n),
                        seed_of,
                        &state.queue,
                    )?
                }
            };
            let mut ops = Vec::with_capacity(n);
            let mut trials = Vec::with_capacity(n);
            for (k, (params, enqueued)) in drawn.into_iter().enumerate() {
                ops.push(Op::Ask {
                    trial: first + k,
                    params: params.clone(),
                    enqueued,
                });
                trials.push(FrozenTrial::running(first + k, params));
            }
            Ok((ops, trials))
        })?;
        outcome.map_err(|e| match e.as_str() {
            INTERRUPTED => Error::Interrupted("interrupted while suggesting trials".into()),
            _ => Error::Run(e),
        })
    }

    /// A study shared by several processes fits its sampler outside the storage's lock, on
    /// the study as last read (Optuna's semantics: another worker's ask in the meantime
    /// is not seen), so that workers fit at once and hold the lock only to number and
    /// record their trials. `None` when configurations are queued (they come first, in
    /// the lock). Seeds mix in a number of this process's own: workers drafting from the
    /// same snapshot must not draw the same configurations.
    fn draft(&mut self, capped: impl Fn(&StudyState) -> usize) -> Result<Option<Vec<Params>>> {
        let (space, maximize, directions) = (&self.space, self.maximize(), &self.directions);
        let seed = self.seed ^ self.worker_salt;
        let state = self.storage.state()?;
        if !state.queue.is_empty() {
            return Ok(None);
        }
        let (first, n) = (state.trials.len(), capped(state));
        let history = History::new(&state.trials, &[], maximize).with_directions(directions);
        let seed_of = |number: usize| derive_seed(seed, number as u64);
        let drawn = draw(
            self.sampler.as_mut(),
            space,
            history,
            (first, n),
            seed_of,
            &state.queue,
        )
        .map_err(|e| match e.as_str() {
            INTERRUPTED => Error::Interrupted("interrupted while suggesting trials".into()),
            _ => Error::Run(e),
        })?;
        Ok(Some(drawn.into_iter().map(|(p, _)| p).collect()))
    }

    /// The study as every process sharing it has recorded it so far.
    pub fn state(&mut self) -> Result<&StudyState> {
        self.storage.state()
    }

    /// Whether other processes may be working on this study at the same time.
    pub fn is_shared(&self) -> bool {
        self.storage.shared()
    }

    /// One new trial over the declared space.
    pub fn ask(&mut self) -> Result<FrozenTrial> {
        Ok(self.ask_batch(1)?.remove(0))
    }

    /// Define-by-run: `objective_space` calls `trial.suggest_*` (and may branch on the
    /// values it gets); each suggestion is drawn by the sampler's independent rule from
    /// the history of that parameter. Returns the new trial and what the closure returned.
    pub fn ask_with<R>(
        &mut self,
        objective_space: impl FnOnce(&mut TrialBuilder<'_>) -> R,
    ) -> Result<(FrozenTrial, R)> {
        let (seed, maximize) = (self.seed, self.maximize());
        let directions = &self.directions;
        let sampler = &mut self.sampler;
        // Taken by the first run of the decision: a storage that retries a conflicting
        // transaction cannot call a define-by-run closure twice, and says so.
        let mut objective_space = Some(objective_space);
        let outcome = self.storage.transact(|state| {
            let objective_space = objective_space
                .take()
                .ok_or("a define-by-run ask cannot be retried")?;
            let number = state.trials.len();
            sampler.reseed(derive_seed(seed, number as u64));
            let mut builder = TrialBuilder {
                sampler: sampler.as_mut(),
                history: History::new(&state.trials, &[], maximize).with_directions(directions),
                params: Params::new(),
                error: None,
            };
            let r = objective_space(&mut builder);
            if let Some(e) = builder.error {
                return Err(e.to_string());
            }
            let trial = FrozenTrial::running(number, builder.params);
            let op = Op::Ask {
                trial: number,
                params: trial.params.clone(),
                enqueued: false,
            };
            Ok((vec![op], (trial, r)))
        })?;
        outcome.map_err(Error::Run)
    }

    /// Records an intermediate value (e.g. validation loss after an epoch). A step reported
    /// again replaces its value (a trial restarted after a crash reports its steps again);
    /// [`Trial::report`] keeps the first, as Optuna does.
    pub fn report(&mut self, trial: usize, step: u64, value: f64) -> Result<()> {
        self.storage
            .transact(|_| Ok((vec![Op::Report { trial, step, value }], ())))?
            .map_err(Error::Run)
    }

    /// Records the values at `steps` of a trial that is still running (one a lapsed lease
    /// failed meanwhile is left alone): a built-in sweep's rung values, which TPE ranks
    /// a pruned trial by, and a running one too with `TpeOptions::running_with_values`.
    pub fn report_rungs(&mut self, trial: usize, steps: &[(u64, f64)]) -> Result<()> {
        self.storage
            .transact(|state| {
                let running = state
                    .trials
                    .get(trial)
                    .is_some_and(|t| t.state == TrialState::Running);
                let ops = (steps.iter())
                    .filter(|_| running)
                    .map(|&(step, value)| Op::Report { trial, step, value })
                    .collect();
                Ok((ops, ()))
            })?
            .map_err(Error::Run)
    }

    /// Stages values at `steps` of `trial` to be written in the same transaction as its
    /// tell: a trial's record commits with the first transaction after it, so a separate
    /// report would commit the record before the tell, and a worker killed in between (or
    /// whose lease lapsed meanwhile) would leave a finished record of a trial the study
    /// failed.
    pub fn stage_reports(&mut self, trial: usize, steps: &[(u64, f64)]) {
        (self.staged).extend((steps.iter()).map(|&(step, value)| Op::Report {
            trial,
            step,
            value,
        }));
    }

    /// Records the value at `step` unless the step was reported already (Optuna's
    /// `trial.report`); returns whether it was recorded.
    pub fn report_first(&mut self, trial: usize, step: u64, value: f64) -> Result<bool> {
        self.storage
            .transact(|state| {
                let reported = state
                    .trials
                    .get(trial)
                    .is_some_and(|t| t.intermediate_at(step).is_some());
                match reported {
                    true => Ok((vec![], false)),
                    false => Ok((vec![Op::Report { trial, step, value }], true)),
                }
            })?
            .map_err(Error::Run)
    }

    /// Finishes a trial. A non-finite value is recorded as a failure.
    pub fn tell(&mut self, trial: usize, outcome: Outcome) -> Result<()> {
        self.tell_constrained(trial, outcome, &[])
    }

    /// Queues a configuration to be the next asked trial (checked against the space).
    pub fn enqueue(&mut self, mut params: Params) -> Result<()> {
        self.space.coerce(&mut params);
        if !self.space.params.is_empty() {
            self.space.check(&params).map_err(Error::Run)?;
        }
        self.storage
            .transact(|_| {
                Ok((
                    vec![Op::Enqueue {
                        params: params.clone(),
                        retry: false,
                    }],
                    (),
                ))
            })?
            .map_err(Error::Run)
    }

    /// Adds a finished trial's full record to the storage (see [`Storage::record`]).
    pub fn record(&mut self, record: &TrialRecord) -> Result<()> {
        self.storage.record(record)
    }

    /// Makes the records added so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.storage.sync()
    }

    /// Every finished trial's full record, by number (a trial recorded twice keeps its
    /// last record).
    pub fn records(&mut self) -> Result<BTreeMap<usize, TrialRecord>> {
        Ok(self
            .storage
            .records()?
            .into_iter()
            .map(|r| (r.number, r))
            .collect())
    }

    /// Problems met reading the storage, taken once.
    pub fn take_warnings(&mut self) -> Vec<String> {
        self.storage.take_warnings()
    }

    /// Every trial, refreshed from storage.
    pub fn trials(&mut self) -> Result<Vec<FrozenTrial>> {
        Ok(self.storage.state()?.trials.clone())
    }

    /// The feasible complete trial with the best value (ties to the earlier trial). A
    /// study of several objectives has a front instead: [`Study::best_trials`].
    pub fn best(&mut self) -> Result<Option<FrozenTrial>> {
        if self.directions.len() > 1 {
            return Err(Error::Run(
                "a study of several objectives has a Pareto front, not one best trial".into(),
            ));
        }
        let maximize = self.maximize();
        let trials = &self.storage.state()?.trials;
        Ok(trials
            .iter()
            .filter(|t| t.violation() == 0.0)
            .filter_map(|t| t.finite_value().map(|v| (t, v)))
            .reduce(|best, next| {
                let better = if maximize {
                    next.1 > best.1
                } else {
                    next.1 < best.1
                };
                if better {
                    next
                } else {
                    best
                }
            })
            .map(|(t, _)| t.clone()))
    }
}

/// A sampler seen through its independent rule only (no joint draw).
struct IndependentOnly<'a>(&'a mut dyn Sampler);

impl Sampler for IndependentOnly<'_> {
    fn reseed(&mut self, seed: u64) {
        self.0.reseed(seed);
    }

    fn sample_independent(&mut self, history: &History<'_>, def: &ParamDef) -> ParamValue {
        self.0.sample_independent(history, def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ask_tell_best_and_enqueue() {
        let mut study = Study::in_memory(Space::default(), SamplerKind::Random, false, 1).unwrap();
        for i in 0..5 {
            let (trial, x) = study
                .ask_with(|t| {
                    let x = t.suggest_float("x", -2.0, 2.0, false);
                    if x > 0.0 {
                        t.suggest_int("k", 1, 3, false);
                    }
                    x
                })
                .unwrap();
            assert_eq!(trial.number, i);
            assert_eq!(trial.params.contains_key("k"), x > 0.0);
            study.report(i, 1, x * 2.0).unwrap();
            study.tell(i, Outcome::Complete(x * x)).unwrap();
        }
        let trials = study.trials().unwrap();
        let best = study.best().unwrap().unwrap();
        let min = trials
            .iter()
            .map(|t| t.value.unwrap())
            .fold(f64::INFINITY, f64::min);
        assert_eq!(best.value, Some(min));
        assert!(
            study.tell(0, Outcome::Pruned).is_err(),
            "a finished trial cannot be told again"
        );
        assert!(study.tell(99, Outcome::Failed).is_err());

        let mut p = Params::new();
        p.insert("x".into(), ParamValue::Float(0.25));
        study.enqueue(p.clone()).unwrap();
        let (t, _) = study
            .ask_with(|t| t.suggest_float("x", -2.0, 2.0, false))
            .unwrap();
        assert_ne!(t.params, p, "define-by-run does not consume the queue");
        let t = study.ask().unwrap();
        assert_eq!(t.params, p);
    }

    #[test]
    fn optimize_runs_the_objective_loop_with_pruning() {
        let spec = PrunerSpec::parse(r#"{"kind": "threshold", "upper": 1.0}"#).unwrap();
        let mut study = Study::in_memory(Space::default(), SamplerKind::Tpe, false, 3)
            .unwrap()
            .with_pruner(&spec)
            .unwrap();
        let mut fixed = Params::new();
        fixed.insert("x".into(), ParamValue::Float(2.0));
        study.enqueue(fixed).unwrap();
        study
            .optimize(12, |trial| {
                let x = trial.suggest_float("x", -3.0, 3.0, false)?;
                let k = trial.suggest_int("k", 1, 4, false)?;
                assert_eq!(trial.params().len(), 2);
                for step in 0..3 {
                    assert!(trial.report(step, x * x)?);
                    assert!(
                        !trial.report(step, 0.0)?,
                        "a step reported twice keeps its first"
                    );
                    if trial.should_prune()? {
                        return Ok(Outcome::Pruned);
                    }
                }
                Ok(Outcome::Complete(x * x + k as f64))
            })
            .unwrap();
        let trials = study.trials().unwrap();
        assert_eq!(trials.len(), 12);
        assert_eq!(
            trials[0].params["x"],
            ParamValue::Float(2.0),
            "the queue comes first"
        );
        for t in &trials {
            let x = t.params["x"].as_f64().unwrap();
            let want = if x * x > 1.0 {
                TrialState::Pruned
            } else {
                TrialState::Complete
            };
            assert_eq!(t.state, want, "trial {}: x = {x}", t.number);
            assert!(t.intermediate.iter().all(|&(_, v)| v == x * x));
        }
        // An objective that fails records its trial failed and stops the loop.
        let e = study
            .optimize(5, |trial| {
                trial.suggest_float("x", -3.0, 3.0, false)?;
                Err(Error::Run("boom".into()))
            })
            .unwrap_err();
        assert!(e.to_string().contains("boom"));
        let trials = study.trials().unwrap();
        assert_eq!(trials.len(), 13);
        assert_eq!(trials[12].state, TrialState::Failed);
    }

    #[test]
    fn invalid_define_by_run_range_is_an_error() {
        let mut study = Study::in_memory(Space::default(), SamplerKind::Random, false, 1).unwrap();
        let e = study
            .ask_with(|t| t.suggest_float("lr", 0.0, 1.0, true))
            .unwrap_err();
        assert!(e.to_string().contains("lr: invalid range"), "{e}");
        assert!(study.trials().unwrap().is_empty());
    }
}
