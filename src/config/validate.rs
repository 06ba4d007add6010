//! Validation of a raw sweep into a checked [`Sweep`]: each key read once, each
//! combination that cannot work refused with the field it concerns.

use super::raw::{RawFinal, RawMetric, RawSweep};
use super::{Ctx, FinalStage, Metric, Schedule, Sweep};
use crate::backend::BackendChoice;
use crate::data::normalize::Normalize;
use crate::data::Task;
use crate::error::Result;
use crate::limits;
use crate::population::{MetricName, METRIC_NAMES};
use crate::space::{parse_parameters, Space};
use crate::tuner::sampler::{GridSampler, SamplerKind};
use crate::tuner::scheduler::total_trials;

impl Ctx<'_> {
    /// The checked sweep of `raw`: every key read, every combination checked.
    pub(super) fn validate(&self, mut raw: RawSweep) -> Result<Sweep> {
        let auto = raw.method.as_deref() == Some("auto");
        let sampler = self.method(raw.method.as_deref())?;
        let is_external = raw.program.is_some() || raw.command.is_some();
        let (metric, objectives) = self.goals(&mut raw, is_external)?;
        if is_external {
            return self.external_sweep(raw, sampler, metric, auto);
        }
        self.refuse_external_keys(&raw)?;
        let train = raw.train.as_ref();
        let max_params = raw.model.as_ref().and_then(|m| m.max_params);
        if max_params == Some(0) {
            return Err(self.err(&["model", "max_params"], "must be at least 1".into()));
        }
        let max_flops = raw.model.as_ref().and_then(|m| m.max_flops);
        if max_flops == Some(0) {
            return Err(self.err(&["model", "max_flops"], "must be at least 1".into()));
        }
        let (wall_seconds, budget_epochs) = self.budget(&raw)?;
        let epochs = self.positive(
            train.and_then(|t| t.epochs).or(budget_epochs),
            27,
            &["train", "epochs"],
        )?;
        let batch_size = self.positive(
            train.and_then(|t| t.batch_size),
            32,
            &["train", "batch_size"],
        )?;
        let epoch_fraction = self.epoch_fraction(train.and_then(|t| t.epoch_fraction))?;
        let population_given = raw
            .scheduler
            .as_ref()
            .is_some_and(|s| s.population.is_some());
        let (schedule, epochs) = self.schedule_of(&mut raw, epochs)?;
        let image = self.image_shape(raw.data.as_mut().and_then(|d| d.shape.take()))?;
        let defaults = self.defaults(raw.model.as_ref(), raw.train.as_ref(), epochs, image)?;
        let space = parse_parameters(raw.parameters.take().unwrap_or_default())
            .map_err(|e| self.space_error(e))?;
        let space = self.check_knobs(space, defaults.family())?;
        self.check_heads(&space, &defaults)?;
        let choice = auto.then(|| {
            let cap = self.positive(raw.run_cap, 27, &["run_cap"]).unwrap_or(27);
            let unscheduled = matches!(schedule, Schedule::Full) && raw.cv.is_none();
            crate::tuner::auto::choose(&space, cap, unscheduled.then_some(epochs))
        });
        let sampler = choice.as_ref().map_or(sampler, |c| c.sampler);
        let schedule = match &choice {
            Some(c) if c.bohb => Schedule::Bohb {
                min_budget: 1,
                max_budget: epochs,
                eta: 3,
                random_fraction: 1.0 / 3.0,
            },
            _ => schedule,
        };
        let sampler = self.sampler_for(sampler, &objectives, choice.is_some())?;
        self.check_bohb_method(&schedule, sampler)?;
        let run_cap = self.run_cap(sampler, &space, raw.run_cap)?;
        let run_cap = self.bracket_run_cap(&schedule, raw.run_cap, run_cap)?;
        let (data, split, val_fraction, normalize) = self.data(raw.data.take())?;
        if data.task() == Task::Regression && metric.name.is_accuracy() {
            return Err(self.err(
                &["metric", "name"],
                format!(
                    "`{}` is not defined for regression (data.task); use val_loss or train_loss",
                    metric.name
                ),
            ));
        }
        let cv = self.cv(&raw, &schedule, normalize)?;
        if wall_seconds.is_some() && cv.is_some() {
            return Err(self.err(
                &["budget", "wall_seconds"],
                "a nested cross-validation trains every fold to the end to compare them; \
                 give it a run_cap instead"
                    .into(),
            ));
        }
        self.check_lr_finder(&raw, &space)?;
        let backend = self.backend(raw.backend.as_deref())?;
        let final_stage = self.final_stage(raw.final_stage.take(), &schedule, cv.is_some())?;
        let (enqueue, warm_start) =
            self.warm(raw.enqueue.take(), raw.warm_start.take(), &space, sampler)?;
        let storage = self.storage(raw.storage.take(), &schedule, cv.is_some())?;
        Ok(Sweep {
            name: raw.name.unwrap_or_else(|| "sweep".into()),
            metric,
            space,
            sampler,
            run_cap,
            schedule,
            data,
            split,
            val_fraction,
            normalize,
            defaults,
            epochs,
            batch_size,
            epoch_fraction,
            seed: raw.seed.unwrap_or(0),
            population_given,
            lr_finder: raw.lr_finder.is_some_and(|l| l.enabled),
            max_params: max_params.map(|m| m as usize),
            max_flops: max_flops.map(|m| m as usize),
            external: None,
            cv,
            final_stage,
            auto_reason: choice.map(|c| c.reason),
            backend,
            wall_seconds,
            enqueue,
            warm_start,
            objectives,
            storage,
        })
    }

    /// `storage`: a PostgreSQL URL, for a schedule that can run across workers.
    fn storage(
        &self,
        url: Option<String>,
        schedule: &Schedule,
        cv: bool,
    ) -> Result<Option<String>> {
        let Some(url) = url else {
            return Ok(None);
        };
        if !crate::storage::postgres::is_url(&url) {
            return Err(self.err(
                &["storage"],
                "must be a PostgreSQL URL (postgresql://user:password@host:port/database)".into(),
            ));
        }
        if cv {
            return Err(self.err(
                &["storage"],
                "a nested cross-validation runs in one process; leave storage out".into(),
            ));
        }
        if let Some(why) = schedule.across_workers() {
            return Err(self.err(
                &["storage"],
                format!(
                    "the `{}` schedule cannot run across workers: {why}",
                    schedule.kind()
                ),
            ));
        }
        Ok(Some(url))
    }

    /// `budget`: a positive, finite wall time, and epochs that agree with `train.epochs`.
    fn budget(&self, raw: &RawSweep) -> Result<(Option<f64>, Option<u64>)> {
        let Some(b) = &raw.budget else {
            return Ok((None, None));
        };
        if let Some(w) = b.wall_seconds.filter(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(self.err(
                &["budget", "wall_seconds"],
                format!("{w} is not a positive number of seconds"),
            ));
        }
        let train_epochs = raw.train.as_ref().and_then(|t| t.epochs);
        if let (Some(b), Some(t)) = (b.epochs, train_epochs) {
            if b != t {
                return Err(self.err(
                    &["budget", "epochs"],
                    format!("{b} disagrees with train.epochs {t}; give one of them"),
                ));
            }
        }
        Ok((b.wall_seconds, b.epochs))
    }

    /// `method`: the sampler (`auto` is decided once the space and budget are known).
    fn method(&self, method: Option<&str>) -> Result<SamplerKind> {
        match method {
            Some("auto") => Ok(SamplerKind::Random),
            Some(name) => SamplerKind::parse(name).ok_or_else(|| {
                self.err(
                    &["method"],
                    format!(
                        "method `{name}` is not supported (supported: {})",
                        SamplerKind::NAMES
                    ),
                )
            }),
            None => Err(self.err(&[], "missing key `method` (e.g. `method: random`)".into())),
        }
    }

    /// The keys that only an external-program sweep takes.
    fn refuse_external_keys(&self, raw: &RawSweep) -> Result<()> {
        for (given, key) in [
            (raw.population.is_some(), "population"),
            (raw.max_retries.is_some(), "max_retries"),
            (raw.trial_timeout.is_some(), "trial_timeout"),
            (raw.pruner.is_some(), "pruner"),
        ] {
            if given {
                return Err(self.err(
                    &[key],
                    "applies to external programs only (a sweep with `program` or `command`)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// `train.epoch_fraction` (default 1).
    fn epoch_fraction(&self, given: Option<f64>) -> Result<f64> {
        match given {
            None => Ok(1.0),
            Some(f) if f > 0.0 && f <= 1.0 => Ok(f),
            Some(f) => Err(self.err(
                &["train", "epoch_fraction"],
                format!("{f} is not in (0, 1]: it is the budget unit as a fraction of an epoch"),
            )),
        }
    }

    /// The schedule from `early_terminate` or `scheduler` (one of them at most), and the
    /// full budget, which W&B's `max_iter` may set.
    fn schedule_of(&self, raw: &mut RawSweep, epochs: usize) -> Result<(Schedule, usize)> {
        let given_epochs = raw.train.as_ref().and_then(|t| t.epochs).is_some();
        let raw_run_cap = raw.run_cap.map(|c| c as usize);
        match (raw.early_terminate.take(), raw.scheduler.take()) {
            (Some(_), Some(_)) => Err(self.err(
                &["scheduler"],
                "give either `early_terminate` or `scheduler`, not both".into(),
            )),
            (Some(et), None) => {
                let halving = self.halving(et, epochs, given_epochs)?;
                Ok((Schedule::Halving(halving), halving.max_budget))
            }
            (None, Some(s)) => Ok((self.scheduler(s, epochs, raw_run_cap)?, epochs)),
            (None, None) => Ok((Schedule::Full, epochs)),
        }
    }

    /// BOHB's own TPE proposes its share of each bracket and the sampler draws the rest,
    /// which BOHB defines as random: a model-based method there would silently replace
    /// that exploration.
    fn check_bohb_method(&self, schedule: &Schedule, sampler: SamplerKind) -> Result<()> {
        if matches!(schedule, Schedule::Bohb { .. })
            && !matches!(sampler, SamplerKind::Random | SamplerKind::Sobol)
        {
            return Err(self.err(
                &["method"],
                format!(
                    "scheduler bohb proposes with its own TPE and draws the rest at random, so \
                     it takes method random or sobol, not {}; for Hyperband's brackets with \
                     this method, use scheduler hyperband",
                    sampler.name()
                ),
            ));
        }
        Ok(())
    }

    /// Hyperband's and BOHB's trial count is their brackets': `run_cap` may not be below it.
    fn bracket_run_cap(
        &self,
        schedule: &Schedule,
        given: Option<u64>,
        run_cap: usize,
    ) -> Result<usize> {
        match *schedule {
            Schedule::Hyperband {
                min_budget,
                max_budget,
                eta,
            }
            | Schedule::Bohb {
                min_budget,
                max_budget,
                eta,
                ..
            } => {
                let needed = total_trials(min_budget, max_budget, eta);
                match given {
                    Some(cap) if (cap as usize) < needed => Err(self.err(
                        &["run_cap"],
                        format!("hyperband's brackets need {needed} trials; run_cap is {cap}"),
                    )),
                    _ => Ok(needed),
                }
            }
            _ => Ok(run_cap),
        }
    }

    /// `cv: {outer, inner}`: at least two folds each, and none of what the folds cannot
    /// share.
    fn cv(
        &self,
        raw: &RawSweep,
        schedule: &Schedule,
        normalize: Normalize,
    ) -> Result<Option<(usize, usize)>> {
        let Some(cv) = &raw.cv else {
            return Ok(None);
        };
        for (v, key) in [(cv.outer, "outer"), (cv.inner, "inner")] {
            if v < 2 {
                return Err(self.err(&["cv", key], format!("{v} folds: at least 2")));
            }
        }
        let why = if !matches!(schedule, Schedule::Full) {
            Some("early stopping (every inner fold must train the same budget)")
        } else if normalize != Normalize::None {
            Some("data.normalize (the folds share one copy of the data; normalise it beforehand)")
        } else if raw.lr_finder.is_some() {
            Some("lr_finder")
        } else {
            None
        };
        match why {
            Some(why) => Err(self.err(
                &["cv"],
                format!("nested cross-validation does not combine with {why}"),
            )),
            None => Ok(Some((cv.outer as usize, cv.inner as usize))),
        }
    }

    /// The range test trains the default optimizer; one learning-rate range found there
    /// would not suit members of another (AdamW's best rates sit ~10x below SGD's).
    fn check_lr_finder(&self, raw: &RawSweep, space: &Space) -> Result<()> {
        if raw.lr_finder.as_ref().is_some_and(|l| l.enabled)
            && space.params.iter().any(|p| p.name == "optimizer")
        {
            return Err(self.err(
                &["lr_finder"],
                "the range test runs train.optimizer only, so with `optimizer` tuned its one \
                 lr range would not suit the other; fix the optimizer, or give lr a range"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `backend: auto|cpu|cuda`.
    fn backend(&self, given: Option<&str>) -> Result<Option<BackendChoice>> {
        match given {
            None => Ok(None),
            Some("auto") => Ok(Some(BackendChoice::Auto)),
            Some("cpu") => Ok(Some(BackendChoice::Cpu)),
            Some("cuda") => Ok(Some(BackendChoice::Cuda)),
            Some(other) => Err(self.err(
                &["backend"],
                format!("backend `{other}` is not one of auto, cpu, cuda"),
            )),
        }
    }

    /// `final: {top_k, retrain, ensemble}`, where a rerun can stand for the trial.
    fn final_stage(
        &self,
        raw: Option<RawFinal>,
        schedule: &Schedule,
        cv: bool,
    ) -> Result<Option<FinalStage>> {
        let Some(f) = raw else {
            return Ok(None);
        };
        let top_k = self.positive(f.top_k, 1, &["final", "top_k"])?;
        let why = if matches!(schedule, Schedule::Pbt(_)) {
            Some("pbt (its trials change hyperparameters as they train, so a rerun is not the trial)")
        } else if cv {
            Some("cv (each outer fold is already tested once)")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(self.err(&["final"], format!("does not combine with {why}")));
        }
        let ensemble = f.ensemble.unwrap_or(false);
        if ensemble && top_k < 2 {
            return Err(self.err(
                &["final", "ensemble"],
                format!("needs top_k of at least 2 (got {top_k}): an ensemble of one model is the model"),
            ));
        }
        Ok(Some(FinalStage {
            top_k,
            retrain: f.retrain.unwrap_or(false),
            ensemble,
        }))
    }

    /// W&B's `run_cap`: for grid at most (and by default) the grid's size, else 27.
    pub(super) fn run_cap(
        &self,
        sampler: SamplerKind,
        space: &Space,
        given: Option<u64>,
    ) -> Result<usize> {
        let cap = match sampler {
            SamplerKind::Grid => {
                let size = GridSampler::grid_size(space).map_err(|m| self.err(&["method"], m))?;
                match given {
                    Some(c) if c > size => {
                        return Err(self.err(
                            &["run_cap"],
                            format!("run_cap {c} exceeds the grid's {size} points"),
                        ))
                    }
                    Some(c) => c,
                    None => size,
                }
            }
            _ => self.positive(given, 27, &["run_cap"])? as u64,
        };
        self.bounded_trials(cap)
    }

    /// Refuses more trials than a study holds ([`limits::MAX_TRIALS`]) or than their
    /// records fit in memory, before anything is allocated for them.
    fn bounded_trials(&self, cap: u64) -> Result<usize> {
        if cap > limits::MAX_TRIALS {
            return Err(self.err(
                &["run_cap"],
                format!(
                    "{cap} trials are more than a study holds ({}); sweep in stages, \
                     narrowing the space between them",
                    limits::MAX_TRIALS
                ),
            ));
        }
        let bytes = cap * limits::BYTES_PER_TRIAL;
        let available = limits::available_memory();
        if bytes > available / 2 {
            return Err(self.err(
                &["run_cap"],
                format!(
                    "{cap} trials need about {} for their records, more than half of the {} \
                     available; lower run_cap",
                    limits::human_bytes(bytes),
                    limits::human_bytes(available)
                ),
            ));
        }
        Ok(cap as usize)
    }

    pub(super) fn positive(
        &self,
        value: Option<u64>,
        default: usize,
        path: &[&str],
    ) -> Result<usize> {
        match value {
            None => Ok(default),
            Some(0) => Err(self.err(path, "must be at least 1".into())),
            Some(v) => Ok(v as usize),
        }
    }

    /// A metric's goal; W&B's default is minimize.
    pub(super) fn goal(&self, goal: Option<&str>) -> Result<bool> {
        match goal {
            None | Some("minimize") => Ok(false),
            Some("maximize") => Ok(true),
            Some(other) => Err(self.err(
                &["metric", "goal"],
                format!("goal `{other}` must be `minimize` or `maximize`"),
            )),
        }
    }

    pub(super) fn metric(&self, raw: RawMetric, any_name: bool) -> Result<Metric> {
        if !any_name && !METRIC_NAMES.contains(&raw.name.as_str()) {
            return Err(self.err(
                &["metric", "name"],
                format!(
                    "unknown metric `{}` (the built-in trainer logs {})",
                    raw.name,
                    METRIC_NAMES.join(", ")
                ),
            ));
        }
        let maximize = self.goal(raw.goal.as_deref())?;
        if let Some(t) = raw.target.filter(|t| !t.is_finite()) {
            return Err(self.err(&["metric", "target"], format!("{t} must be finite")));
        }
        Ok(Metric {
            name: MetricName::parse(&raw.name),
            maximize,
            target: raw.target,
            constraints: Vec::new(),
        })
    }
}
