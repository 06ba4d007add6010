//! Sweep files: W&B's sweep vocabulary where it applies (`method`, `metric`, `parameters`,
//! `run_cap`, `early_terminate`) plus popsweep's own keys (`data`, `model`, `train`,
//! `seed`). A raw serde struct is read once and validated into a checked [`Sweep`]; every
//! error names the file, the field as a dotted path and, where it can be found, the line.

mod data;
mod external;
mod knobs;
mod locate;
mod objectives;
mod raw;
mod schedule;
#[cfg(test)]
mod tests;
mod validate;
mod warm;

use crate::backend::BackendChoice;
use crate::data::normalize::Normalize;
use crate::data::{DataSource, SplitFractions};
use crate::error::{Error, Result};
use crate::model::knobs::KnobDefaults;
use crate::population::MetricName;
use crate::space::{parse_parameters, RawParam, Space};
use crate::tuner::sampler::SamplerKind;
use crate::tuner::scheduler::{Pbt, SuccessiveHalving};
pub use external::{unknown_macro, External, MACROS};
use locate::locate;
use raw::RawSweep;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The sweep `popsweep run` uses when given no file: `examples/digits.yaml`.
pub const DEFAULT_SWEEP: &str = include_str!("../../examples/digits.yaml");
pub const DEFAULT_SWEEP_NAME: &str = "examples/digits.yaml";

/// The sweep metric and whether larger is better.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: MetricName,
    pub maximize: bool,
    /// W&B's `target`: once a trial reaches it, no new trial starts.
    pub target: Option<f64>,
    /// `constraints`: limits a trial must keep to count as a result (to be best, tested,
    /// on the front); samplers steer away from trials that break them.
    pub constraints: Vec<Constraint>,
}

/// A limit on a complete trial's objective-like quantity (`constraints` in sweep files):
/// feasible when `value ≤ max` or `value ≥ min`.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub name: ObjectiveName,
    pub max: Option<f64>,
    pub min: Option<f64>,
}

impl Constraint {
    /// Optuna's constraint value of `value`: ≤ 0 when it keeps the limit (NaN breaks it).
    pub fn violation_value(&self, value: f64) -> f64 {
        if value.is_nan() {
            return f64::INFINITY;
        }
        let over = self.max.map_or(f64::NEG_INFINITY, |m| value - m);
        let under = self.min.map_or(f64::NEG_INFINITY, |m| m - value);
        over.max(under)
    }
}

/// An objective beside the sweep's metric (`metric` as a list): the first entry is the
/// metric the schedules rank by, these are the others.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    pub name: ObjectiveName,
    pub maximize: bool,
}

/// What an extra objective measures of a complete trial.
#[derive(Clone, Debug, PartialEq)]
pub enum ObjectiveName {
    /// A trainer metric at the trial's last epoch.
    Metric(MetricName),
    /// The model's trainable parameters.
    ParamCount,
    /// The model's forward FLOPs per sample.
    FlopsPerSample,
    /// Measured training time per epoch (CPU backend: each member trains on a thread of
    /// its own).
    EpochSeconds,
}

impl ObjectiveName {
    /// What this measures of a trial's record (NaN where the record lacks it).
    pub fn of(&self, r: &crate::storage::TrialRecord) -> f64 {
        match self {
            ObjectiveName::ParamCount => r.param_count as f64,
            ObjectiveName::FlopsPerSample => r.flops_per_sample as f64,
            ObjectiveName::EpochSeconds => r.epoch_seconds.unwrap_or(f64::NAN),
            ObjectiveName::Metric(m) => r.history.last().and_then(|h| h.get(m)).unwrap_or(f64::NAN),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ObjectiveName::Metric(m) => m.as_str(),
            ObjectiveName::ParamCount => "param_count",
            ObjectiveName::FlopsPerSample => "flops_per_sample",
            ObjectiveName::EpochSeconds => "epoch_seconds",
        }
    }
}

/// How a sweep spends its budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Every trial trains the full budget.
    Full,
    /// One successive-halving bracket over all `run_cap` trials (`early_terminate`, or
    /// `scheduler: {type: sh}`).
    Halving(SuccessiveHalving),
    /// Hyperband's brackets (`scheduler: {type: hyperband}`), run one after another; the
    /// trial count is Hyperband's, and `run_cap` must allow it.
    Hyperband {
        min_budget: usize,
        max_budget: usize,
        eta: usize,
    },
    /// Asynchronous successive halving over `slots` concurrent trials; a stopped trial's
    /// slot takes the next trial at once (`scheduler: {type: asha}`).
    Asha {
        halving: SuccessiveHalving,
        slots: usize,
        drain: Drain,
    },
    /// Optuna's median stopping over `slots` concurrent trials (`scheduler: {type: median}`).
    Median {
        n_startup_trials: usize,
        n_warmup_steps: usize,
        interval_steps: usize,
        slots: usize,
    },
    /// Population-based training of all `run_cap` trials at once (`scheduler: {type: pbt}`).
    Pbt(Pbt),
    /// Hyperband's brackets with TPE proposals fitted on the largest budget with enough
    /// observations, and `random_fraction` of them drawn at random (`scheduler: {type: bohb}`).
    Bohb {
        min_budget: usize,
        max_budget: usize,
        eta: usize,
        random_fraction: f64,
    },
}

impl Schedule {
    /// Every kind of schedule, as `summary.json` names it. A new variant gets its name
    /// here and in [`Schedule::kind`] (whose match is exhaustive); the scheduler contract
    /// table (tests/schedulers.rs) runs over this list.
    pub const KINDS: [&'static str; 7] =
        ["full", "sh", "hyperband", "bohb", "asha", "median", "pbt"];

    /// Whether the sweep runs as brackets (full budget, successive halving, Hyperband,
    /// BOHB): members in lockstep, every trial's fate decided at shared rungs.
    pub fn is_bracketed(&self) -> bool {
        !matches!(
            self,
            Schedule::Asha { .. } | Schedule::Median { .. } | Schedule::Pbt(_)
        )
    }

    /// Its name in [`Schedule::KINDS`].
    /// Why this schedule cannot run across workers sharing one study (`--storage`), or
    /// `None` when it can: ASHA and median stopping judge each trial on its own against
    /// what every worker has recorded.
    pub fn across_workers(&self) -> Option<&'static str> {
        match self {
            Schedule::Asha { .. } | Schedule::Median { .. } => None,
            Schedule::Full => Some(
                "it trains every trial in one population; use asha or median (median \
                 stopping with n_startup_trials at run_cap stops no trial)",
            ),
            Schedule::Halving(_) | Schedule::Hyperband { .. } | Schedule::Bohb { .. } => Some(
                "a bracket's rung waits for every one of its trials, and a worker cannot \
                 wait for trials training on another machine; use asha, the asynchronous \
                 form of successive halving",
            ),
            Schedule::Pbt(_) => Some(
                "its exploit copies weights between members of one population, which \
                 workers on other machines do not share",
            ),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::Full => "full",
            Schedule::Halving(_) => "sh",
            Schedule::Hyperband { .. } => "hyperband",
            Schedule::Bohb { .. } => "bohb",
            Schedule::Asha { .. } => "asha",
            Schedule::Median { .. } => "median",
            Schedule::Pbt(_) => "pbt",
        }
    }
}

/// What ASHA's slots do once every trial has started (`scheduler: {drain: …}`). Until
/// then a stopped trial's slot takes the next trial; after, the slots drain while the last
/// promoted trials train towards the full budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// `train` where idle slots cost time (a GPU), `idle` where they do not (the CPU).
    Auto,
    /// A trial ASHA stops leaves, and its slot stays empty: the fewest epochs.
    Idle,
    /// A slot no trial will take keeps a trial ASHA stops, training on as long as a trial
    /// ASHA keeps is still training, so the slots stay busy; the extra epochs cost time
    /// only where busy slots do. Such a trial never keeps the sweep going by itself: it is
    /// judged again at each rung it reaches, and continues on its own merit only if it then
    /// ranks among the rung's best.
    Train,
}

/// A validated sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub name: String,
    pub metric: Metric,
    pub space: Space,
    /// From `method`: `random`, `grid`, `sobol`.
    pub sampler: SamplerKind,
    /// Trials in the sweep (W&B's `run_cap`); default 27, or the grid's size for `grid`.
    pub run_cap: usize,
    /// How trials are stopped early (or not).
    pub schedule: Schedule,
    /// Where the data comes from; relative paths are relative to the sweep file.
    pub data: DataSource,
    /// Train/validation/test fractions (when the data has no test set of its own).
    pub split: SplitFractions,
    /// Validation fraction of a shipped train set (when it has a test set; default 0.1).
    pub val_fraction: f64,
    /// Per-feature normalisation, fitted on the training split.
    pub normalize: Normalize,
    pub defaults: KnobDefaults,
    /// Full training budget of one trial, in epochs; default 27.
    pub epochs: usize,
    /// Minibatch rows; default 32.
    pub batch_size: usize,
    /// `train.epoch_fraction` in (0, 1]: the budget unit as a fraction of a pass over the
    /// training split (default 1). Below 1, every epoch count of the sweep — `train.epochs`,
    /// rung budgets, schedule lengths, `epochs` in the records — counts these units, so a
    /// large data set can be judged several times per pass.
    pub epoch_fraction: f64,
    /// Seeds the sampler, the split, the minibatch order and every trial's weights; default 0.
    pub seed: u64,
    /// Whether the file (or `run --population`) set ASHA's or median stopping's slots;
    /// if not, a backend that trains a few members at a time sizes them (see
    /// `Backend::concurrent_members`).
    pub population_given: bool,
    /// `lr_finder: {enabled: true}`: run the range test first and tune `lr` log-uniformly
    /// over a decade either side of its suggestion.
    pub lr_finder: bool,
    /// `model.max_params`: a parameter budget; larger configurations fail untrained.
    pub max_params: Option<usize>,
    /// `model.max_flops`: a budget of forward FLOPs per sample, likewise.
    pub max_flops: Option<usize>,
    /// A sweep with `program` or `command` trains nothing itself: it runs that program
    /// once per trial (the built-in model's keys do not apply).
    pub external: Option<External>,
    /// `cv: {outer, inner}`: nested cross-validation instead of one validation and one
    /// test split (see `sweep::cv`).
    pub cv: Option<(usize, usize)>,
    /// `final: {top_k, retrain}`: how the best trials meet the test split (see
    /// `sweep::final_eval`); `None`: the best trial is scored with its own weights.
    pub final_stage: Option<FinalStage>,
    /// `method: auto`: what it chose and why (see `tuner::auto`).
    pub auto_reason: Option<String>,
    /// `backend: auto|cpu|cuda`, used when the command line names none.
    pub backend: Option<BackendChoice>,
    /// `budget.wall_seconds`: the sweep's wall time (see `sweep::brackets` and
    /// `sweep::slots`): no epoch starts that would end past it, and the trials training
    /// then finish where they are.
    pub wall_seconds: Option<f64>,
    /// `enqueue`: configurations the sweep tries first, in order (checked against the
    /// space), before the sampler suggests any.
    pub enqueue: Vec<crate::space::Params>,
    /// `warm_start.from`: an earlier run directory or study whose finished trials seed the
    /// sampler (see `sweep::warm`); relative to the sweep file.
    pub warm_start: Option<PathBuf>,
    /// `metric` as a list: the objectives after the first (empty for one objective). The
    /// study is then multi-objective and `summary.pareto_front` lists its front.
    pub objectives: Vec<Objective>,
    /// `storage`: the PostgreSQL database whose study every worker started on this sweep
    /// shares (the command line's `--storage` takes precedence).
    pub storage: Option<String>,
}

impl Sweep {
    /// A complete trial's value for each objective (`primary` is its metric at its last
    /// rung); NaN where the record lacks one.
    pub fn objective_values(&self, r: &crate::storage::TrialRecord, primary: f64) -> Vec<f64> {
        std::iter::once(primary)
            .chain(self.objectives.iter().map(|o| o.name.of(r)))
            .collect()
    }

    /// Every objective's direction, the sweep metric's first (one for a single objective).
    pub fn directions(&self) -> Vec<crate::kinds::Direction> {
        let direction = |maximize: bool| match maximize {
            true => crate::kinds::Direction::Maximize,
            false => crate::kinds::Direction::Minimize,
        };
        std::iter::once(direction(self.metric.maximize))
            .chain(self.objectives.iter().map(|o| direction(o.maximize)))
            .collect()
    }
}

/// `final` of a sweep file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FinalStage {
    pub top_k: usize,
    pub retrain: bool,
    /// The finalists are also tested as one model, the mean of their predictions.
    pub ensemble: bool,
}

/// Reads and validates a sweep file.
pub fn load(path: &Path) -> Result<Sweep> {
    let text = crate::limits::read_input_text(path, "sweep", crate::limits::MAX_SWEEP_FILE_BYTES)?;
    // Data paths are relative to the sweep file, so a sweep runs from any directory.
    parse_at(
        &text,
        &path.display().to_string(),
        path.parent().unwrap_or(Path::new("")),
    )
}

/// Validates sweep-file text as [`parse`] does, with relative data paths taken from `base`
/// (the directory the sweep file was in; `popsweep resume` reads a copy elsewhere).
pub fn parse_at(text: &str, file: &str, base: &Path) -> Result<Sweep> {
    let mut sweep = parse(text, file)?;
    let resolve = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    if let Some(from) = &mut sweep.warm_start {
        resolve(from);
    }
    match &mut sweep.data {
        DataSource::Digits => {}
        DataSource::Idx { train, test } => {
            resolve(&mut train.0);
            resolve(&mut train.1);
            if let Some((images, labels)) = test {
                resolve(images);
                resolve(labels);
            }
        }
        DataSource::Csv { path, .. } => resolve(path),
        DataSource::Npy {
            features, labels, ..
        } => {
            resolve(features);
            resolve(labels);
        }
    }
    Ok(sweep)
}

/// Validates sweep-file text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Sweep> {
    let ctx = Ctx { text, file };
    if text.trim().is_empty() {
        return Err(ctx.err(&[], "the sweep file is empty".into()));
    }
    let raw: RawSweep = serde_yaml_ng::from_str(text).map_err(|e| ctx.yaml_error(&e))?;
    ctx.validate(raw)
}

/// Parses a search space given as a `parameters` block on its own (YAML or JSON text):
/// any parameter names, no model knobs checked. `file` names it in errors.
pub fn parse_space(text: &str, file: &str) -> Result<Space> {
    let ctx = Ctx { text, file };
    if text.trim().is_empty() {
        return Err(ctx.err(&[], "the search space is empty".into()));
    }
    let raw: BTreeMap<String, RawParam> =
        serde_yaml_ng::from_str(text).map_err(|e| ctx.yaml_error(&e))?;
    let space = parse_parameters(raw).map_err(|e| Error::Config {
        file: file.into(),
        line: locate(text, &e.path.iter().map(String::as_str).collect::<Vec<_>>()),
        field: e.path.join("."),
        message: e.message,
    })?;
    Ok(space)
}

/// Where errors point: the file's text (to find lines) and its name.
struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, path: &[&str], message: String) -> Error {
        Error::Config {
            file: self.file.into(),
            line: locate(self.text, path),
            field: if path.is_empty() {
                "sweep".into()
            } else {
                path.join(".")
            },
            message,
        }
    }

    /// Turns a YAML/serde error into one line: `file:line: field: message`.
    fn yaml_error(&self, e: &serde_yaml_ng::Error) -> Error {
        let full = e.to_string();
        let text = full.split(" at line ").next().unwrap_or(&full);
        // serde_yaml_ng prefixes the path of the value that failed ("parameters.lr: …").
        let (mut field, message) = match text.split_once(": ") {
            Some((path, rest)) if !path.contains(' ') => (path.to_string(), rest.to_string()),
            _ => ("sweep".to_string(), text.to_string()),
        };
        if let Some(key) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            field = if field == "sweep" {
                key.to_string()
            } else {
                format!("{field}.{key}")
            };
        }
        Error::Config {
            file: self.file.into(),
            line: e.location().map(|l| l.line()),
            field,
            message,
        }
    }
}
