//! Sweep files: W&B's sweep vocabulary where it applies (`method`, `metric`, `parameters`,
//! `run_cap`, `early_terminate`) plus popsweep's own keys (`data`, `model`, `train`,
//! `seed`). A raw serde struct is read once and validated into a checked [`Sweep`]; every
//! error names the file, the field as a dotted path and, where it can be found, the line.

use crate::backend::BackendChoice;
use crate::data::csv::LabelColumn;
use crate::data::normalize::Normalize;
use crate::data::{DataSource, SplitFractions, Task};
use crate::error::{Error, Result};
use crate::model::hparams::Activation;
use crate::model::hparams::{Decay, LrSchedule, OptimizerKind};
use crate::model::knobs::{knob, KnobDefaults, KnobKind, KNOBS};
use crate::population::METRIC_NAMES;
use crate::space::transform::from_unit;
use crate::space::{parse_parameters, Distribution, ParamValue, RawParam, Space, SpaceError};
use crate::tuner::sampler::{GridSampler, SamplerKind};
use crate::tuner::scheduler::{total_trials, BandStopping, Pbt, SuccessiveHalving};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The sweep `popsweep run` uses when given no file: `examples/digits.yaml`.
pub const DEFAULT_SWEEP: &str = include_str!("../examples/digits.yaml");
pub const DEFAULT_SWEEP_NAME: &str = "examples/digits.yaml";

/// The sweep metric and whether larger is better.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub maximize: bool,
    /// W&B's `target`: once a trial reaches it, no new trial starts.
    pub target: Option<f64>,
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

    /// Its name in [`Schedule::KINDS`].
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
    /// `lr_finder: {enabled: true}`: run the range test first and tune `lr` log-uniformly
    /// over a decade either side of its suggestion.
    pub lr_finder: bool,
    /// `model.max_params`: the depth × width budget; larger configurations fail untrained.
    pub max_params: Option<usize>,
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
}

/// `final` of a sweep file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FinalStage {
    pub top_k: usize,
    pub retrain: bool,
}

/// The macros of W&B's `command`, which a sweep file's `command` is checked against.
pub const MACROS: [&str; 7] = [
    "${env}",
    "${interpreter}",
    "${program}",
    "${args}",
    "${args_no_hyphens}",
    "${args_json}",
    "${args_json_file}",
];

/// The first `${...}` in `arg` that is not a known macro.
pub fn unknown_macro(arg: &str) -> Option<String> {
    let mut rest = arg;
    while let Some(start) = rest.find("${") {
        let tail = &rest[start..];
        let end = tail.find('}').map_or(tail.len(), |e| e + 1);
        let name = &tail[..end];
        if !MACROS.contains(&name) {
            return Some(name.to_string());
        }
        rest = &tail[end..];
    }
    None
}

/// How an external-program sweep runs its trials (see the `external` module).
#[derive(Clone, Debug, PartialEq)]
pub struct External {
    /// W&B's `program`: the script the `${program}` macro names.
    pub program: Option<String>,
    /// W&B's `command`, macros unexpanded; default
    /// `[${env}, ${interpreter}, ${program}, ${args}]`.
    pub command: Vec<String>,
    /// popsweep's `population`: trials running at once (default 2).
    pub parallel: usize,
    /// popsweep's `max_retries`: reruns of a trial whose program exits non-zero (default 0).
    pub max_retries: usize,
    /// popsweep's `trial_timeout`: seconds before a trial is killed and failed.
    pub trial_timeout: Option<f64>,
    /// `early_terminate: {type: hyperband}` as W&B's agent applies it to running programs.
    pub stopping: Option<BandStopping>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: Option<String>,
    /// Accepted so W&B sweep files load unchanged; popsweep has no use for it.
    #[serde(rename = "description")]
    _description: Option<serde::de::IgnoredAny>,
    method: Option<String>,
    metric: Option<RawMetric>,
    parameters: Option<BTreeMap<String, RawParam>>,
    run_cap: Option<u64>,
    early_terminate: Option<RawEarlyTerminate>,
    scheduler: Option<RawScheduler>,
    data: Option<RawData>,
    model: Option<RawModel>,
    train: Option<RawTrain>,
    seed: Option<u64>,
    lr_finder: Option<RawLrFinder>,
    /// W&B: the training script, and the command line that runs it.
    program: Option<String>,
    command: Option<Vec<String>>,
    /// Accepted so W&B sweep files load unchanged; popsweep has no use for them.
    #[serde(rename = "project")]
    _project: Option<serde::de::IgnoredAny>,
    #[serde(rename = "entity")]
    _entity: Option<serde::de::IgnoredAny>,
    /// External programs: how many run at once, retries of a failing one, its time limit.
    population: Option<u64>,
    max_retries: Option<u64>,
    trial_timeout: Option<f64>,
    cv: Option<RawCv>,
    #[serde(rename = "final")]
    final_stage: Option<RawFinal>,
    backend: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinal {
    top_k: Option<u64>,
    retrain: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCv {
    outer: u64,
    inner: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLrFinder {
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    goal: Option<String>,
    target: Option<f64>,
}

/// popsweep's own scheduler key: `{type: sh|hyperband|asha|median|pbt|bohb, ...}`; budgets
/// in epochs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    #[serde(rename = "type")]
    kind: String,
    min_budget: Option<u64>,
    eta: Option<u64>,
    /// asha, median: trials trained at once.
    population: Option<u64>,
    /// asha: `auto`, `idle` or `train`; see [`Drain`].
    drain: Option<String>,
    n_startup_trials: Option<u64>,
    n_warmup_steps: Option<u64>,
    interval_steps: Option<u64>,
    /// pbt: epochs between exploit/explore rounds, the top/bottom fraction, and the
    /// probability of resampling rather than perturbing.
    interval: Option<u64>,
    quantile: Option<f64>,
    resample_probability: Option<f64>,
    /// bohb: fraction of each bracket's configurations drawn at random.
    random_fraction: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEarlyTerminate {
    #[serde(rename = "type")]
    kind: String,
    min_iter: Option<u64>,
    max_iter: Option<u64>,
    s: Option<u32>,
    eta: Option<u64>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    /// `digits` (embedded; the default), or a format with its files.
    dataset: Option<String>,
    /// `idx` or `csv`.
    format: Option<String>,
    train_images: Option<String>,
    train_labels: Option<String>,
    test_images: Option<String>,
    test_labels: Option<String>,
    /// CSV file.
    path: Option<String>,
    /// NumPy feature and label arrays (`format: npy`).
    features: Option<String>,
    labels: Option<String>,
    /// `none` (default), `standard` or `minmax`, fitted on the training split.
    normalize: Option<String>,
    /// CSV label column: a header name or a 0-based index (default: the last column).
    label: Option<serde_yaml_ng::Value>,
    /// `classification` (default) or `regression` (csv and npy).
    task: Option<String>,
    split: Option<RawSplit>,
    /// Fraction of a shipped train set held for validation when a test set is given
    /// (default 0.1).
    val_fraction: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplit {
    train: f64,
    val: f64,
    test: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(rename = "type")]
    kind: Option<String>,
    activation: Option<String>,
    depth: Option<u64>,
    width: Option<u64>,
    /// A parameter budget: configurations above it are not trained (recorded failed).
    max_params: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrain {
    optimizer: Option<String>,
    /// SGD only: Nesterov momentum.
    nesterov: Option<bool>,
    l1: Option<f64>,
    lr_schedule: Option<RawSchedule>,
    /// Input augmentation: Gaussian noise (std) and translations up to `shift` pixels.
    noise: Option<f64>,
    shift: Option<u64>,
    epochs: Option<u64>,
    epoch_fraction: Option<f64>,
    batch_size: Option<u64>,
    lr: Option<f64>,
    momentum: Option<f64>,
    weight_decay: Option<f64>,
    dropout: Option<f64>,
}

/// `train.lr_schedule`: `{type: constant|step|cosine, warmup_epochs, step_epochs, gamma}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    #[serde(rename = "type")]
    kind: String,
    warmup_epochs: Option<f64>,
    step_epochs: Option<f64>,
    gamma: Option<f64>,
}

/// Reads and validates a sweep file.
pub fn load(path: &Path) -> Result<Sweep> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        Error::Config {
            file: path.display().to_string(),
            line: Some(before.iter().filter(|&&b| b == b'\n').count() + 1),
            field: "sweep".into(),
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        }
    })?;
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

    fn validate(&self, mut raw: RawSweep) -> Result<Sweep> {
        let auto = raw.method.as_deref() == Some("auto");
        let sampler = match raw.method.as_deref() {
            // Decided once the space and the budget are known.
            Some("auto") => SamplerKind::Random,
            Some(name) => SamplerKind::parse(name).ok_or_else(|| {
                self.err(
                    &["method"],
                    format!(
                        "method `{name}` is not supported (supported: {})",
                        SamplerKind::NAMES
                    ),
                )
            })?,
            None => {
                return Err(self.err(&[], "missing key `method` (e.g. `method: random`)".into()))
            }
        };
        let is_external = raw.program.is_some() || raw.command.is_some();
        let metric = self.metric(raw.metric.take(), is_external)?;
        if is_external {
            return self.external_sweep(raw, sampler, metric, auto);
        }
        for (given, key) in [
            (raw.population.is_some(), "population"),
            (raw.max_retries.is_some(), "max_retries"),
            (raw.trial_timeout.is_some(), "trial_timeout"),
        ] {
            if given {
                return Err(self.err(
                    &[key],
                    "applies to external programs only (a sweep with `program` or `command`)"
                        .into(),
                ));
            }
        }
        let train = raw.train.as_ref();
        let max_params = raw.model.as_ref().and_then(|m| m.max_params);
        if max_params == Some(0) {
            return Err(self.err(&["model", "max_params"], "must be at least 1".into()));
        }
        let epochs = self.positive(train.and_then(|t| t.epochs), 27, &["train", "epochs"])?;
        let batch_size = self.positive(
            train.and_then(|t| t.batch_size),
            32,
            &["train", "batch_size"],
        )?;
        let epoch_fraction = match train.and_then(|t| t.epoch_fraction) {
            None => 1.0,
            Some(f) if f > 0.0 && f <= 1.0 => f,
            Some(f) => {
                return Err(self.err(
                    &["train", "epoch_fraction"],
                    format!(
                        "{f} is not in (0, 1]: it is the budget unit as a fraction of an epoch"
                    ),
                ))
            }
        };
        let raw_run_cap = raw.run_cap.map(|c| c as usize);
        let (schedule, epochs) = match (raw.early_terminate, raw.scheduler) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    &["scheduler"],
                    "give either `early_terminate` or `scheduler`, not both".into(),
                ))
            }
            (Some(et), None) => {
                let halving = self.halving(et, epochs, train.and_then(|t| t.epochs).is_some())?;
                (Schedule::Halving(halving), halving.max_budget)
            }
            (None, Some(raw)) => (self.scheduler(raw, epochs, raw_run_cap)?, epochs),
            (None, None) => (Schedule::Full, epochs),
        };
        let defaults = self.defaults(raw.model.as_ref(), raw.train.as_ref(), epochs)?;
        let space = parse_parameters(raw.parameters.unwrap_or_default())
            .map_err(|e| self.space_error(e))?;
        let space = self.check_knobs(space)?;
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
        // BOHB's own TPE proposes its share of each bracket and the sampler draws the rest,
        // which BOHB defines as random: a model-based method there would silently replace
        // that exploration.
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
        let run_cap = self.run_cap(sampler, &space, raw.run_cap)?;
        let run_cap = match schedule {
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
                match raw.run_cap {
                    Some(cap) if (cap as usize) < needed => {
                        return Err(self.err(
                            &["run_cap"],
                            format!("hyperband's brackets need {needed} trials; run_cap is {cap}"),
                        ))
                    }
                    _ => needed,
                }
            }
            _ => run_cap,
        };
        let (data, split, val_fraction, normalize) = self.data(raw.data)?;
        if data.task() == Task::Regression && metric.name.ends_with("accuracy") {
            return Err(self.err(
                &["metric", "name"],
                format!(
                    "`{}` is not defined for regression (data.task); use val_loss or train_loss",
                    metric.name
                ),
            ));
        }
        let cv = match raw.cv {
            None => None,
            Some(cv) => {
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
                if let Some(why) = why {
                    return Err(self.err(
                        &["cv"],
                        format!("nested cross-validation does not combine with {why}"),
                    ));
                }
                Some((cv.outer as usize, cv.inner as usize))
            }
        };
        // The range test trains the default optimizer; one learning-rate range found there
        // would not suit members of another (AdamW's best rates sit ~10x below SGD's).
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
        let backend = match raw.backend.as_deref() {
            None => None,
            Some("auto") => Some(BackendChoice::Auto),
            Some("cpu") => Some(BackendChoice::Cpu),
            Some("cuda") => Some(BackendChoice::Cuda),
            Some(other) => {
                return Err(self.err(
                    &["backend"],
                    format!("backend `{other}` is not one of auto, cpu, cuda"),
                ))
            }
        };
        let final_stage = match raw.final_stage {
            None => None,
            Some(f) => {
                let top_k = self.positive(f.top_k, 1, &["final", "top_k"])?;
                let why = if matches!(schedule, Schedule::Pbt(_)) {
                    Some("pbt (its trials change hyperparameters as they train, so a rerun is not the trial)")
                } else if cv.is_some() {
                    Some("cv (each outer fold is already tested once)")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(self.err(&["final"], format!("does not combine with {why}")));
                }
                Some(FinalStage {
                    top_k,
                    retrain: f.retrain.unwrap_or(false),
                })
            }
        };
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
            lr_finder: raw.lr_finder.is_some_and(|l| l.enabled),
            max_params: max_params.map(|m| m as usize),
            external: None,
            cv,
            final_stage,
            auto_reason: choice.map(|c| c.reason),
            backend,
        })
    }

    /// A sweep that runs `program`/`command` per trial: any parameter and metric names,
    /// none of the built-in model's keys.
    fn external_sweep(
        &self,
        raw: RawSweep,
        sampler: SamplerKind,
        metric: Metric,
        auto: bool,
    ) -> Result<Sweep> {
        for (given, key) in [
            (raw.data.is_some(), "data"),
            (raw.model.is_some(), "model"),
            (raw.train.is_some(), "train"),
            (raw.scheduler.is_some(), "scheduler"),
            (raw.lr_finder.is_some(), "lr_finder"),
            (raw.cv.is_some(), "cv"),
            (raw.final_stage.is_some(), "final"),
            (raw.backend.is_some(), "backend"),
        ] {
            if given {
                return Err(self.err(
                    &[key],
                    format!(
                        "`{key}` configures the built-in model; a sweep with `program` or \
                         `command` runs that program instead"
                    ),
                ));
            }
        }
        let command = match raw.command {
            Some(c) if c.is_empty() => {
                return Err(self.err(&["command"], "is empty".into()));
            }
            Some(c) => c,
            None => ["${env}", "${interpreter}", "${program}", "${args}"]
                .map(String::from)
                .to_vec(),
        };
        if raw.program.is_none() && command.iter().any(|a| a.contains("${program}")) {
            return Err(self.err(
                &["command"],
                "uses ${program} but the sweep has no `program`".into(),
            ));
        }
        if let Some(bad) = command.iter().find_map(|a| unknown_macro(a)) {
            return Err(self.err(
                &["command"],
                format!("unknown macro `{bad}` (supported: {})", MACROS.join(", ")),
            ));
        }
        let stopping = match raw.early_terminate {
            None => None,
            Some(et) => Some(self.band_stopping(et)?),
        };
        let space = parse_parameters(raw.parameters.unwrap_or_default())
            .map_err(|e| self.space_error(e))?;
        if space.params.is_empty() {
            return Err(self.err(
                &["parameters"],
                "a sweep needs at least one parameter".into(),
            ));
        }
        let choice = auto.then(|| {
            let cap = self.positive(raw.run_cap, 27, &["run_cap"]).unwrap_or(27);
            crate::tuner::auto::choose(&space, cap, None)
        });
        let sampler = choice.as_ref().map_or(sampler, |c| c.sampler);
        let run_cap = self.run_cap(sampler, &space, raw.run_cap)?;
        if let Some(t) = raw.trial_timeout.filter(|t| !(*t > 0.0 && t.is_finite())) {
            return Err(self.err(
                &["trial_timeout"],
                format!("{t} must be a positive number of seconds"),
            ));
        }
        let parallel = self.positive(raw.population, 2, &["population"])?;
        Ok(Sweep {
            name: raw.name.unwrap_or_else(|| "sweep".into()),
            metric,
            space,
            sampler,
            run_cap,
            schedule: Schedule::Full,
            data: DataSource::Digits,
            split: SplitFractions::default(),
            val_fraction: 0.1,
            normalize: Normalize::None,
            defaults: KnobDefaults::default(),
            epochs: 1,
            batch_size: 1,
            epoch_fraction: 1.0,
            seed: raw.seed.unwrap_or(0),
            lr_finder: false,
            max_params: None,
            cv: None,
            final_stage: None,
            auto_reason: choice.map(|c| c.reason),
            backend: None,
            external: Some(External {
                program: raw.program,
                command,
                parallel,
                max_retries: raw.max_retries.unwrap_or(0) as usize,
                trial_timeout: raw.trial_timeout,
                stopping,
            }),
        })
    }

    /// `early_terminate`'s type (hyperband is the one W&B defines) and its η (default 3).
    fn hyperband_eta(&self, raw: &RawEarlyTerminate) -> Result<usize> {
        if raw.kind != "hyperband" {
            return Err(self.err(
                &["early_terminate", "type"],
                format!(
                    "early_terminate type `{}` is not supported (supported: hyperband)",
                    raw.kind
                ),
            ));
        }
        let eta = raw.eta.unwrap_or(3) as usize;
        if eta < 2 {
            return Err(self.err(
                &["early_terminate", "eta"],
                format!("eta {eta} must be at least 2"),
            ));
        }
        Ok(eta)
    }

    /// W&B's hyperband early termination for an external program: bands in iterations.
    fn band_stopping(&self, raw: RawEarlyTerminate) -> Result<BandStopping> {
        let at = |key: &'static str| ["early_terminate", key];
        let eta = self.hyperband_eta(&raw)?;
        let strict = raw.strict.unwrap_or(false);
        let rule = match (raw.min_iter, raw.max_iter, raw.s) {
            (Some(0), _, _) => return Err(self.err(&at("min_iter"), "must be at least 1".into())),
            (Some(m), _, _) => BandStopping::from_min_iter(m as usize, eta, 1 << 20, strict),
            (None, Some(m), Some(s)) => BandStopping::from_max_iter(m as usize, s, eta, strict),
            _ => {
                return Err(self.err(
                    &["early_terminate"],
                    "give min_iter, or max_iter together with s".into(),
                ))
            }
        };
        if rule.bands.is_empty() {
            return Err(self.err(
                &["early_terminate"],
                "no band of at least one iteration: increase max_iter or decrease s or eta".into(),
            ));
        }
        Ok(rule)
    }

    /// W&B's `run_cap`: for grid at most (and by default) the grid's size, else 27.
    fn run_cap(&self, sampler: SamplerKind, space: &Space, given: Option<u64>) -> Result<usize> {
        if sampler != SamplerKind::Grid {
            return self.positive(given, 27, &["run_cap"]);
        }
        let size = GridSampler::grid_size(space).map_err(|m| self.err(&["method"], m))?;
        match given {
            Some(c) if c > size => Err(self.err(
                &["run_cap"],
                format!("run_cap {c} exceeds the grid's {size} points"),
            )),
            Some(c) => Ok(c as usize),
            None => Ok(size as usize),
        }
    }

    fn positive(&self, value: Option<u64>, default: usize, path: &[&str]) -> Result<usize> {
        match value {
            None => Ok(default),
            Some(0) => Err(self.err(path, "must be at least 1".into())),
            Some(v) => Ok(v as usize),
        }
    }

    fn metric(&self, raw: Option<RawMetric>, any_name: bool) -> Result<Metric> {
        let raw = raw.ok_or_else(|| {
            self.err(
                &[],
                "missing key `metric` (e.g. `metric: {name: val_accuracy, goal: maximize}`)".into(),
            )
        })?;
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
        // W&B's default goal is minimize.
        let maximize = match raw.goal.as_deref() {
            None | Some("minimize") => false,
            Some("maximize") => true,
            Some(other) => {
                return Err(self.err(
                    &["metric", "goal"],
                    format!("goal `{other}` must be `minimize` or `maximize`"),
                ))
            }
        };
        if let Some(t) = raw.target.filter(|t| !t.is_finite()) {
            return Err(self.err(&["metric", "target"], format!("{t} must be finite")));
        }
        Ok(Metric {
            name: raw.name,
            maximize,
            target: raw.target,
        })
    }

    /// The knobs' values where a trial does not tune them; `epochs` is the full budget (a
    /// cosine schedule decays over it).
    fn defaults(
        &self,
        model: Option<&RawModel>,
        train: Option<&RawTrain>,
        epochs_for_schedule: usize,
    ) -> Result<KnobDefaults> {
        if let Some(kind) = model
            .and_then(|m| m.kind.as_deref())
            .filter(|&k| k != "mlp")
        {
            return Err(self.err(
                &["model", "type"],
                format!("model type `{kind}` is not supported yet (supported: mlp)"),
            ));
        }
        let base = KnobDefaults::default();
        let activation = match model.and_then(|m| m.activation.as_deref()) {
            None => base.activation,
            Some(name) => Activation::parse(name).ok_or_else(|| {
                self.err(
                    &["model", "activation"],
                    format!(
                        "unknown activation `{name}` (expected {})",
                        Activation::NAMES.join(", ")
                    ),
                )
            })?,
        };
        let check = |section: &str, name: &str, value: Option<f64>, default: f64| -> Result<f64> {
            let Some(v) = value else { return Ok(default) };
            let knob = knob(name).expect("defaults are named after knobs");
            if (knob.accepts)(v) {
                Ok(v)
            } else {
                Err(self.err(
                    &[section, name],
                    format!("{v} is outside the valid range {} of {name}", knob.range),
                ))
            }
        };
        let as_f64 = |v: Option<u64>| v.map(|x| x as f64);
        let optimizer = match train.and_then(|t| t.optimizer.as_deref()) {
            None => base.optimizer,
            Some(name) => OptimizerKind::parse(name).ok_or_else(|| {
                self.err(
                    &["train", "optimizer"],
                    format!("unknown optimizer `{name}` (expected sgd or adamw)"),
                )
            })?,
        };
        let nesterov = train.and_then(|t| t.nesterov).unwrap_or(false);
        if nesterov && optimizer != OptimizerKind::Sgd {
            return Err(self.err(
                &["train", "nesterov"],
                "Nesterov momentum is an SGD option; AdamW has none".into(),
            ));
        }
        let schedule = match train.and_then(|t| t.lr_schedule.as_ref()) {
            None => LrSchedule::CONSTANT,
            Some(raw) => self.lr_schedule(raw, epochs_for_schedule)?,
        };
        Ok(KnobDefaults {
            activation,
            optimizer,
            nesterov,
            schedule,
            l1: check("train", "l1", train.and_then(|t| t.l1), base.l1)?,
            noise: check("train", "noise", train.and_then(|t| t.noise), base.noise)?,
            shift: check(
                "train",
                "shift",
                as_f64(train.and_then(|t| t.shift)),
                base.shift as f64,
            )? as usize,
            lr: check("train", "lr", train.and_then(|t| t.lr), base.lr)?,
            momentum: check(
                "train",
                "momentum",
                train.and_then(|t| t.momentum),
                base.momentum,
            )?,
            weight_decay: check(
                "train",
                "weight_decay",
                train.and_then(|t| t.weight_decay),
                base.weight_decay,
            )?,
            dropout: check(
                "train",
                "dropout",
                train.and_then(|t| t.dropout),
                base.dropout,
            )?,
            depth: check(
                "model",
                "depth",
                as_f64(model.and_then(|m| m.depth)),
                base.depth as f64,
            )? as usize,
            width: check(
                "model",
                "width",
                as_f64(model.and_then(|m| m.width)),
                base.width as f64,
            )? as usize,
        })
    }

    /// `train.lr_schedule`: a linear warm-up (`warmup_epochs`, default 0) then `constant`,
    /// `step` (× `gamma`, default 0.1, every `step_epochs`, default a third of the budget) or
    /// `cosine` (to 0 at the full budget).
    fn lr_schedule(&self, raw: &RawSchedule, epochs: usize) -> Result<LrSchedule> {
        let at = |key: &'static str| ["train", "lr_schedule", key];
        let non_negative = |key: &'static str, v: Option<f64>, default: f64| -> Result<f32> {
            match v {
                Some(x) if !(x >= 0.0 && x.is_finite()) => {
                    Err(self.err(&at(key), format!("{x} must be a finite number ≥ 0")))
                }
                Some(x) => Ok(x as f32),
                None => Ok(default as f32),
            }
        };
        let warmup_epochs = non_negative("warmup_epochs", raw.warmup_epochs, 0.0)?;
        let decay = match raw.kind.as_str() {
            "constant" => Decay::Constant,
            "cosine" => Decay::Cosine {
                total_epochs: epochs as f32,
            },
            "step" => {
                let every = non_negative(
                    "step_epochs",
                    raw.step_epochs,
                    (epochs as f64 / 3.0).max(1.0),
                )?;
                if every == 0.0 {
                    return Err(self.err(&at("step_epochs"), "step_epochs must be > 0".into()));
                }
                let gamma = non_negative("gamma", raw.gamma, 0.1)?;
                Decay::Step {
                    every_epochs: every,
                    gamma,
                }
            }
            other => {
                return Err(self.err(
                    &at("type"),
                    format!("unknown schedule `{other}` (expected constant, step or cosine)"),
                ))
            }
        };
        Ok(LrSchedule {
            warmup_epochs,
            decay,
        })
    }

    /// popsweep's `scheduler`: `sh` (one bracket), `hyperband` or `bohb` (all brackets) and
    /// `asha` with the minimum budget (default 1 epoch) and η (default 3), the maximum being
    /// `train.epochs`; `median` and `pbt` with their own keys. `asha` and `median` train
    /// `population` trials at once (default a third of `run_cap`); `pbt` trains all of them.
    fn scheduler(
        &self,
        raw: RawScheduler,
        epochs: usize,
        run_cap: Option<usize>,
    ) -> Result<Schedule> {
        let at = |key: &'static str| ["scheduler", key];
        // A key of another scheduler type would be ignored: say so instead.
        let given = [
            ("min_budget", raw.min_budget.is_some()),
            ("eta", raw.eta.is_some()),
            ("population", raw.population.is_some()),
            ("drain", raw.drain.is_some()),
            ("n_startup_trials", raw.n_startup_trials.is_some()),
            ("n_warmup_steps", raw.n_warmup_steps.is_some()),
            ("interval_steps", raw.interval_steps.is_some()),
            ("interval", raw.interval.is_some()),
            ("quantile", raw.quantile.is_some()),
            ("resample_probability", raw.resample_probability.is_some()),
            ("random_fraction", raw.random_fraction.is_some()),
        ];
        let keys: &[&str] = match raw.kind.as_str() {
            "sh" | "hyperband" => &["min_budget", "eta"],
            "bohb" => &["min_budget", "eta", "random_fraction"],
            "asha" => &["min_budget", "eta", "population", "drain"],
            "median" => &[
                "n_startup_trials",
                "n_warmup_steps",
                "interval_steps",
                "population",
            ],
            "pbt" => &["interval", "quantile", "resample_probability"],
            _ => &[],
        };
        if let Some((key, _)) = given
            .iter()
            .find(|&&(key, on)| on && !keys.is_empty() && !keys.contains(&key))
        {
            return Err(self.err(
                &at(key),
                format!(
                    "`{key}` does not apply to scheduler `{}` (its keys: {})",
                    raw.kind,
                    keys.join(", ")
                ),
            ));
        }
        let eta = raw.eta.unwrap_or(3) as usize;
        if eta < 2 {
            return Err(self.err(&at("eta"), format!("eta {eta} must be at least 2")));
        }
        let positive = |key: &'static str, v: Option<u64>, default: usize| -> Result<usize> {
            match v {
                Some(0) => Err(self.err(&at(key), format!("{key} must be at least 1"))),
                Some(v) => Ok(v as usize),
                None => Ok(default),
            }
        };
        let fraction = |key: &'static str, v: Option<f64>, default: f64, max: f64| -> Result<f64> {
            match v {
                Some(x) if !(0.0..=max).contains(&x) => {
                    Err(self.err(&at(key), format!("{x} is outside [0, {max}]")))
                }
                Some(x) => Ok(x),
                None => Ok(default),
            }
        };
        let slots = || {
            positive(
                "population",
                raw.population,
                run_cap.unwrap_or(27).div_ceil(3),
            )
        };
        let min_budget = raw.min_budget.unwrap_or(1) as usize;
        if min_budget == 0 || min_budget > epochs {
            return Err(self.err(
                &at("min_budget"),
                format!("min_budget {min_budget} must be in 1..={epochs} (train.epochs)"),
            ));
        }
        match raw.kind.as_str() {
            "sh" => Ok(Schedule::Halving(SuccessiveHalving {
                min_budget,
                max_budget: epochs,
                eta,
            })),
            "hyperband" => Ok(Schedule::Hyperband {
                min_budget,
                max_budget: epochs,
                eta,
            }),
            "bohb" => Ok(Schedule::Bohb {
                min_budget,
                max_budget: epochs,
                eta,
                random_fraction: fraction("random_fraction", raw.random_fraction, 1.0 / 3.0, 1.0)?,
            }),
            "asha" => Ok(Schedule::Asha {
                halving: SuccessiveHalving {
                    min_budget,
                    max_budget: epochs,
                    eta,
                },
                slots: slots()?,
                drain: match raw.drain.as_deref() {
                    None | Some("auto") => Drain::Auto,
                    Some("idle") => Drain::Idle,
                    Some("train") => Drain::Train,
                    Some(other) => {
                        return Err(self.err(
                            &at("drain"),
                            format!("drain `{other}` is not one of auto, idle, train"),
                        ))
                    }
                },
            }),
            "median" => Ok(Schedule::Median {
                n_startup_trials: raw.n_startup_trials.unwrap_or(5) as usize,
                n_warmup_steps: raw.n_warmup_steps.unwrap_or(0) as usize,
                interval_steps: positive("interval_steps", raw.interval_steps, 1)?,
                slots: slots()?,
            }),
            "pbt" => Ok(Schedule::Pbt(Pbt {
                interval: positive("interval", raw.interval, 3)?,
                quantile: fraction("quantile", raw.quantile, 0.25, 0.5)?,
                resample_probability: fraction(
                    "resample_probability",
                    raw.resample_probability,
                    0.25,
                    1.0,
                )?,
            })),
            other => Err(self.err(
                &at("type"),
                format!(
                    "scheduler `{other}` is not supported (supported: sh, hyperband, asha, median, pbt, bohb)"
                ),
            )),
        }
    }

    /// W&B's hyperband: rungs at `min_iter·η^k` epochs up to the maximum; `min_iter` may
    /// instead be given as `max_iter` with `s` brackets (`min = max / η^s`).
    fn halving(
        &self,
        raw: RawEarlyTerminate,
        epochs: usize,
        epochs_given: bool,
    ) -> Result<SuccessiveHalving> {
        let at = |key: &'static str| ["early_terminate", key];
        let eta = self.hyperband_eta(&raw)?;
        let max_budget = match raw.max_iter {
            Some(0) => return Err(self.err(&at("max_iter"), "must be at least 1".into())),
            Some(m) if epochs_given && m as usize != epochs => {
                return Err(self.err(
                    &at("max_iter"),
                    format!("max_iter {m} disagrees with train.epochs {epochs}; give one of them"),
                ))
            }
            Some(m) => m as usize,
            None => epochs,
        };
        let min_budget = match (raw.min_iter, raw.s) {
            (Some(0), _) => return Err(self.err(&at("min_iter"), "must be at least 1".into())),
            (Some(m), _) => m as usize,
            (None, Some(s)) if raw.max_iter.is_some() => {
                (max_budget / eta.saturating_pow(s)).max(1)
            }
            _ => {
                return Err(self.err(
                    &["early_terminate"],
                    "give min_iter, or max_iter together with s".into(),
                ))
            }
        };
        if min_budget > max_budget {
            return Err(self.err(
                &at("min_iter"),
                format!("min_iter {min_budget} exceeds the maximum budget of {max_budget} epochs"),
            ));
        }
        Ok(SuccessiveHalving {
            min_budget,
            max_budget,
            eta,
        })
    }

    /// The data source, the split fractions and the validation fraction.
    fn data(&self, raw: Option<RawData>) -> Result<(DataSource, SplitFractions, f64, Normalize)> {
        let Some(raw) = raw else {
            return Ok((
                DataSource::Digits,
                SplitFractions::default(),
                0.1,
                Normalize::None,
            ));
        };
        let at = |key: &'static str| ["data", key];
        let split = match &raw.split {
            None => SplitFractions::default(),
            Some(s) => {
                let parts = [s.train, s.val, s.test];
                if parts.iter().any(|&f| !(f > 0.0 && f < 1.0))
                    || (parts.iter().sum::<f64>() - 1.0).abs() > 1e-6
                {
                    return Err(self.err(
                        &at("split"),
                        format!(
                            "train {}, val {}, test {} must each be in (0, 1) and sum to 1",
                            s.train, s.val, s.test
                        ),
                    ));
                }
                SplitFractions {
                    train: s.train,
                    val: s.val,
                    test: s.test,
                }
            }
        };
        let val_fraction = raw.val_fraction.unwrap_or(0.1);
        if !(val_fraction > 0.0 && val_fraction < 1.0) {
            return Err(self.err(
                &at("val_fraction"),
                format!("{val_fraction} must be in (0, 1)"),
            ));
        }
        let need = |key: &'static str, v: &Option<String>| {
            v.as_ref().map(PathBuf::from).ok_or_else(|| {
                self.err(
                    &["data"],
                    format!(
                        "format {} needs `{key}`",
                        raw.format.as_deref().unwrap_or("?")
                    ),
                )
            })
        };
        let task = match raw.task.as_deref() {
            None | Some("classification") => Task::Classification,
            Some("regression") => Task::Regression,
            Some(other) => {
                return Err(self.err(
                    &at("task"),
                    format!("`{other}` is not a task (classification, regression)"),
                ))
            }
        };
        let source = match (raw.dataset.as_deref(), raw.format.as_deref()) {
            (None | Some("digits"), None) | (_, Some("idx")) if task == Task::Regression => {
                return Err(self.err(
                    &at("task"),
                    "regression needs `format: csv` or `format: npy` data with real-valued targets"
                        .into(),
                ))
            }
            (None | Some("digits"), None) => DataSource::Digits,
            (Some(name), None) => {
                return Err(self.err(
                    &at("dataset"),
                    format!("data set `{name}` is not built in (built in: digits; or give `format: idx|csv` with files)"),
                ))
            }
            (_, Some("idx")) => {
                let train = (need("train_images", &raw.train_images)?, need("train_labels", &raw.train_labels)?);
                let test = match (&raw.test_images, &raw.test_labels) {
                    (Some(i), Some(l)) => Some((PathBuf::from(i), PathBuf::from(l))),
                    (None, None) => None,
                    _ => return Err(self.err(&["data"], "give both test_images and test_labels, or neither".into())),
                };
                DataSource::Idx { train, test }
            }
            (_, Some("csv")) => {
                let label = match &raw.label {
                    None => LabelColumn::Last,
                    Some(serde_yaml_ng::Value::String(name)) => LabelColumn::Name(name.clone()),
                    Some(v) => LabelColumn::Index(v.as_u64().ok_or_else(|| {
                        self.err(&at("label"), format!("`{v:?}` must be a column name or a 0-based index"))
                    })? as usize),
                };
                DataSource::Csv {
                    path: need("path", &raw.path)?,
                    label,
                    task,
                }
            }
            (_, Some("npy")) => DataSource::Npy {
                features: need("features", &raw.features)?,
                labels: need("labels", &raw.labels)?,
                task,
            },
            (_, Some(other)) => {
                return Err(self.err(&at("format"), format!("format `{other}` is not supported (supported: idx, csv, npy)")))
            }
        };
        let normalize = match raw.normalize.as_deref() {
            None => Normalize::None,
            Some(name) => Normalize::parse(name).ok_or_else(|| {
                self.err(
                    &at("normalize"),
                    format!("`{name}` is not a normalisation (none, standard, minmax)"),
                )
            })?,
        };
        Ok((source, split, val_fraction, normalize))
    }

    fn space_error(&self, e: SpaceError) -> Error {
        let mut path: Vec<&str> = vec!["parameters"];
        path.extend(e.path.iter().map(String::as_str));
        self.err(&path, e.message)
    }

    /// Checks every parameter against the built-in model's knobs: the name must be one,
    /// the kind (integer or real) must match, and every value it can take must be valid.
    fn check_knobs(&self, mut space: Space) -> Result<Space> {
        let names: Vec<&str> = KNOBS.iter().map(|k| k.name).collect();
        for def in &mut space.params {
            let name = def.name.clone();
            let at = |key: &str| SpaceError::at(&name, key, "");
            let fail =
                |key: &str, message: String| self.space_error(SpaceError { message, ..at(key) });
            let knob = knob(&name).ok_or_else(|| {
                fail(
                    "",
                    format!(
                        "unknown parameter `{name}` (the built-in MLP tunes {}, width_<k>)",
                        names.join(", ")
                    ),
                )
            })?;
            let check = |key: &str, x: f64| {
                if (knob.accepts)(x) {
                    Ok(())
                } else {
                    Err(fail(
                        key,
                        format!("{x} is outside the valid range {} of {name}", knob.range),
                    ))
                }
            };
            match (knob.kind, &mut def.dist) {
                (KnobKind::Int, Distribution::Int { low, high, .. }) => {
                    check("min", *low as f64)?;
                    check("max", *high as f64)?;
                }
                (KnobKind::Float, Distribution::Float { low, high, .. }) => {
                    check("min", *low)?;
                    check("max", *high)?;
                }
                // A shaped prior is sampled only between its extreme quantiles (see
                // space::prior), so those two values bound every trial exactly.
                (KnobKind::Int, dist @ Distribution::Shaped { int: true, .. })
                | (KnobKind::Float, dist @ Distribution::Shaped { int: false, .. }) => {
                    for u in [0.0, 1.0] {
                        check(
                            "distribution",
                            from_unit(dist, u).as_f64().unwrap_or(f64::NAN),
                        )?;
                    }
                }
                (KnobKind::Choice(names), Distribution::Categorical { choices, .. }) => {
                    for c in choices.iter() {
                        match c {
                            ParamValue::Str(s) if names.contains(&s.as_str()) => {}
                            other => {
                                return Err(fail(
                                    "values",
                                    format!("{name} takes one of {}, not {other}", knob.range),
                                ))
                            }
                        }
                    }
                }
                (KnobKind::Choice(_), _) => {
                    return Err(fail(
                        "distribution",
                        format!("{name} is categorical: use values: [{}]", knob.range),
                    ))
                }
                (kind, Distribution::Categorical { choices, .. }) => {
                    for c in choices.iter_mut() {
                        *c = match (kind, &*c) {
                            (KnobKind::Int, ParamValue::Int(_)) => c.clone(),
                            (KnobKind::Float, v) if v.as_f64().is_some() => {
                                ParamValue::Float(v.as_f64().unwrap_or_default())
                            }
                            (_, other) => {
                                return Err(fail(
                                    "values",
                                    format!("{name} takes {} values, not {other}", kind_word(kind)),
                                ))
                            }
                        };
                        check("values", c.as_f64().unwrap_or_default())?;
                    }
                }
                (KnobKind::Int, _) => {
                    return Err(fail(
                        "distribution",
                        format!("{name} takes integers: use int_uniform or values"),
                    ))
                }
                (KnobKind::Float, _) => {
                    return Err(fail(
                        "distribution",
                        format!(
                            "{name} takes real numbers: write the bounds as floats (e.g. 0.0) \
                             or use distribution: uniform"
                        ),
                    ))
                }
            }
        }
        Ok(space)
    }
}

fn kind_word(kind: KnobKind) -> &'static str {
    match kind {
        KnobKind::Int => "integer",
        KnobKind::Float => "numeric",
        KnobKind::Choice(_) => "named",
    }
}

/// The 1-based line of the key at `path` in block-style YAML, found by indentation: each
/// key is looked for among the lines indented deeper than its parent, after the parent.
/// `None` when the path is empty or not written in block style (e.g. flow `{a: 1}`).
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut start, mut parent_indent, mut found) = (0usize, -1i64, None);
    for key in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let body = line.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let indent = (line.len() - body.len()) as i64;
            if indent <= parent_indent {
                break;
            }
            let body = body.strip_prefix("- ").unwrap_or(body);
            let unquoted = body.trim_start_matches(['"', '\'']);
            if unquoted.starts_with(key)
                && unquoted[key.len()..]
                    .trim_start_matches(['"', '\''])
                    .starts_with(':')
            {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        start = i + 1;
        parent_indent = indent;
        found = Some(i + 1);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        parse(text, "s.yaml").unwrap_err().to_string()
    }

    const BASE: &str = "method: random\nmetric:\n  name: val_accuracy\n  goal: maximize\n";

    #[test]
    fn default_sweep_is_valid() {
        let sweep = parse(DEFAULT_SWEEP, DEFAULT_SWEEP_NAME).unwrap();
        assert!(sweep.metric.maximize);
        assert!(matches!(sweep.schedule, Schedule::Halving(_)));
        assert!(!sweep.space.params.is_empty());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = error_of(&format!("{BASE}parameters:\n  lr:\n    mn: 1\n"));
        assert!(
            e.starts_with("s.yaml:7: parameters.lr.mn: unknown field `mn`"),
            "{e}"
        );
        let e = error_of(&format!("{BASE}colour: red\n"));
        assert!(
            e.starts_with("s.yaml:5: colour: unknown field `colour`"),
            "{e}"
        );
    }

    #[test]
    fn min_above_max_names_field_and_line() {
        let text = format!(
            "{BASE}parameters:\n  lr:\n    distribution: uniform\n    min: 0.5\n    max: 0.1\n"
        );
        assert_eq!(
            error_of(&text),
            "s.yaml:8: parameters.lr.min: min 0.5 is greater than max 0.1"
        );
    }

    #[test]
    fn log_distribution_needs_positive_min() {
        let text = format!(
            "{BASE}parameters:\n  weight_decay:\n    distribution: log_uniform_values\n    min: 0\n    max: 0.1\n"
        );
        assert_eq!(
            error_of(&text),
            "s.yaml:8: parameters.weight_decay.min: log_uniform_values is on a log scale and needs min > 0, got 0"
        );
    }

    #[test]
    fn out_of_range_and_wrong_type_values_are_rejected() {
        let e = error_of(&format!(
            "{BASE}parameters:\n  dropout:\n    values: [0.1, 1.5]\n"
        ));
        assert!(
            e.contains("parameters.dropout.values: 1.5 is outside"),
            "{e}"
        );
        let e = error_of(&format!("{BASE}parameters:\n  depth:\n    values: [1.5]\n"));
        assert!(e.contains("depth takes integer values"), "{e}");
        let e = error_of(&format!("{BASE}parameters:\n  colour:\n    values: [1]\n"));
        assert!(
            e.starts_with("s.yaml:6: parameters.colour: unknown parameter"),
            "{e}"
        );
    }

    #[test]
    fn malformed_yaml_reports_a_line() {
        let e = error_of("method: random\nmetric: [unclosed\n");
        assert!(e.starts_with("s.yaml:"), "{e}");
    }

    #[test]
    fn wandb_inference_and_hyperband_from_max_iter_and_s() {
        let text = format!(
            "{BASE}early_terminate:\n  type: hyperband\n  max_iter: 27\n  s: 2\n\
             parameters:\n  depth:\n    min: 1\n    max: 3\n  lr:\n    min: 0.01\n    max: 0.1\n"
        );
        let sweep = parse(&text, "s.yaml").unwrap();
        let dist = |n: &str| sweep.space.get(n).unwrap().dist.clone();
        assert!(matches!(
            dist("depth"),
            Distribution::Int {
                low: 1,
                high: 3,
                ..
            }
        ));
        assert!(matches!(dist("lr"), Distribution::Float { log: false, .. }));
        let Schedule::Halving(sh) = sweep.schedule else {
            panic!("early_terminate gives successive halving")
        };
        assert_eq!((sh.min_budget, sh.max_budget, sh.eta), (3, 27, 3));
    }

    #[test]
    fn data_sources_parse_and_bad_ones_are_named() {
        let idx = parse(
            &format!("{BASE}data:\n  format: idx\n  train_images: a\n  train_labels: b\n  test_images: c\n  test_labels: d\n"),
            "s.yaml",
        )
        .unwrap();
        assert!(matches!(idx.data, DataSource::Idx { test: Some(_), .. }));
        let e = error_of(&format!(
            "{BASE}data:\n  format: idx\n  train_images: a\n  train_labels: b\n  test_images: c\n"
        ));
        assert!(e.contains("give both test_images and test_labels"), "{e}");
        let e = error_of(&format!("{BASE}data:\n  format: parquet\n"));
        assert_eq!(
            e,
            "s.yaml:6: data.format: format `parquet` is not supported (supported: idx, csv, npy)"
        );
        let csv = parse(
            &format!("{BASE}data: {{format: csv, path: x.csv, label: 3}}\n"),
            "s.yaml",
        )
        .unwrap();
        assert!(matches!(
            csv.data,
            DataSource::Csv {
                label: LabelColumn::Index(3),
                ..
            }
        ));
    }

    #[test]
    fn locate_follows_indentation() {
        let text = "a:\n  b: 1\nc:\n  b:\n    d: 2\n";
        assert_eq!(locate(text, &["c", "b", "d"]), Some(5));
        assert_eq!(locate(text, &["a", "b"]), Some(2));
        assert_eq!(locate(text, &["a", "d"]), None);
    }

    #[test]
    fn optimizer_options_and_schedules_parse_and_are_checked() {
        let base = "name: x\nmethod: random\nmetric: {name: val_loss}\nparameters:\n  l1: {distribution: uniform, min: 0, max: 0.001}\n";
        let sweep = parse(
            &format!("{base}train:\n  epochs: 12\n  nesterov: true\n  lr_schedule: {{type: cosine, warmup_epochs: 2}}\n"),
            "s.yaml",
        )
        .unwrap();
        assert!(sweep.defaults.nesterov);
        assert_eq!(
            sweep.defaults.schedule,
            LrSchedule {
                warmup_epochs: 2.0,
                decay: Decay::Cosine { total_epochs: 12.0 }
            }
        );
        let err = |text: &str| {
            parse(&format!("{base}{text}"), "s.yaml")
                .unwrap_err()
                .to_string()
        };
        assert!(err("train: {optimizer: adamw, nesterov: true}\n").contains("train.nesterov"));
        assert!(err("train: {lr_schedule: {type: linear}}\n").contains("unknown schedule `linear`"));
        assert!(err("train: {lr_schedule: {type: step, step_epochs: 0}}\n").contains("step_epochs"));
        assert!(err("train: {l1: -1}\n").contains("train.l1"));
    }

    #[test]
    fn architecture_helpers_parse() {
        let sweep = parse(
            "name: x\nmethod: random\nmetric: {name: val_loss}\nparameters:\n  width: {distribution: pow2, min: 10, max: 300}\nmodel: {max_params: 50000}\n",
            "s.yaml",
        )
        .unwrap();
        let Distribution::Categorical { choices, .. } = &sweep.space.params[0].dist else {
            panic!("pow2 is an ordered categorical")
        };
        let widths: Vec<i64> = choices
            .iter()
            .filter_map(|c| c.as_f64())
            .map(|v| v as i64)
            .collect();
        assert_eq!(widths, vec![16, 32, 64, 128, 256]);
        assert_eq!(sweep.max_params, Some(50_000));
        let bad = "name: x\nmethod: random\nmetric: {name: val_loss}\nparameters:\n  width: {distribution: pow2, min: 5, max: 7}\n";
        assert!(parse(bad, "s.yaml")
            .unwrap_err()
            .to_string()
            .contains("no power of two"));
    }

    #[test]
    fn activation_is_a_default_and_a_knob() {
        let base = "name: x\nmethod: random\nmetric: {name: val_loss}\n";
        let sweep = parse(
            &format!("{base}parameters:\n  activation: {{values: [relu, gelu]}}\nmodel: {{activation: tanh}}\n"),
            "s.yaml",
        )
        .unwrap();
        assert_eq!(sweep.defaults.activation, Activation::Tanh);
        let err = |text: &str| {
            parse(&format!("{base}{text}"), "s.yaml")
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("parameters:\n  activation: {values: [relu, swish]}\n").contains("takes one of")
        );
        assert!(
            err("parameters:\n  activation: {distribution: uniform, min: 0.0, max: 1.0}\n")
                .contains("categorical")
        );
        assert!(
            err("parameters:\n  lr: {value: 0.1}\nmodel: {activation: swish}\n")
                .contains("unknown activation `swish`")
        );
    }

    #[test]
    fn npy_data_and_normalisation_parse() {
        let base =
            "name: x\nmethod: random\nmetric: {name: val_loss}\nparameters:\n  lr: {value: 0.1}\n";
        let sweep = parse(
            &format!("{base}data: {{format: npy, features: X.npy, labels: y.npy, normalize: standard}}\n"),
            "s.yaml",
        )
        .unwrap();
        assert_eq!(
            sweep.data,
            DataSource::Npy {
                features: "X.npy".into(),
                labels: "y.npy".into(),
                task: Task::Classification,
            }
        );
        assert_eq!(sweep.normalize, Normalize::Standard);
        let err = |t: &str| {
            parse(&format!("{base}{t}"), "s.yaml")
                .unwrap_err()
                .to_string()
        };
        assert!(err("data: {format: npy, features: X.npy}\n").contains("needs `labels`"));
        assert!(err("data: {normalize: zscore}\n").contains("data.normalize"));
    }
}
