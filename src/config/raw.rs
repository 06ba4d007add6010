//! The sweep file as serde reads it, before any check: every key optional, unknown keys
//! refused. `Ctx::validate` turns it into a [`Sweep`](super::Sweep).

use crate::space::RawParam;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    pub(super) name: Option<String>,
    /// Accepted so W&B sweep files load unchanged; popsweep has no use for it.
    #[serde(rename = "description")]
    pub(super) _description: Option<serde::de::IgnoredAny>,
    pub(super) method: Option<String>,
    /// One metric, or a list of them (several objectives): read by `Ctx::metrics`.
    pub(super) metric: Option<serde_yaml_ng::Value>,
    pub(super) parameters: Option<BTreeMap<String, RawParam>>,
    pub(super) run_cap: Option<u64>,
    pub(super) early_terminate: Option<RawEarlyTerminate>,
    pub(super) scheduler: Option<RawScheduler>,
    pub(super) data: Option<RawData>,
    pub(super) model: Option<RawModel>,
    pub(super) train: Option<RawTrain>,
    pub(super) seed: Option<u64>,
    pub(super) lr_finder: Option<RawLrFinder>,
    /// W&B: the training script, and the command line that runs it.
    pub(super) program: Option<String>,
    pub(super) command: Option<Vec<String>>,
    /// Accepted so W&B sweep files load unchanged; popsweep has no use for them.
    #[serde(rename = "project")]
    pub(super) _project: Option<serde::de::IgnoredAny>,
    #[serde(rename = "entity")]
    pub(super) _entity: Option<serde::de::IgnoredAny>,
    /// External programs: how many run at once, retries of a failing one, its time limit.
    pub(super) population: Option<u64>,
    pub(super) max_retries: Option<u64>,
    pub(super) trial_timeout: Option<f64>,
    pub(super) cv: Option<RawCv>,
    #[serde(rename = "final")]
    pub(super) final_stage: Option<RawFinal>,
    pub(super) backend: Option<String>,
    pub(super) budget: Option<RawBudget>,
    /// Configurations to try first (Optuna's `enqueue_trial`).
    pub(super) enqueue: Option<Vec<crate::space::Params>>,
    /// External programs: one of Optuna's pruners instead of W&B's band rule (a name or
    /// its settings; see `crate::pruning`).
    pub(super) pruner: Option<serde_yaml_ng::Value>,
    pub(super) warm_start: Option<RawWarmStart>,
    pub(super) constraints: Option<Vec<RawConstraint>>,
    /// A PostgreSQL URL: the study is shared by every worker started on it.
    pub(super) storage: Option<String>,
}

/// One entry of `constraints`: a limit a best trial must keep.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConstraint {
    pub(super) name: String,
    pub(super) max: Option<f64>,
    pub(super) min: Option<f64>,
}

/// `warm_start: {from: DIR}`: an earlier run or study whose trials seed the sampler.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWarmStart {
    pub(super) from: String,
}

/// `budget: {wall_seconds, epochs}`: the sweep's wall time, and its full budget per trial
/// (the same as `train.epochs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) wall_seconds: Option<f64>,
    pub(super) epochs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFinal {
    pub(super) top_k: Option<u64>,
    pub(super) retrain: Option<bool>,
    pub(super) ensemble: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCv {
    pub(super) outer: u64,
    pub(super) inner: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLrFinder {
    pub(super) enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetric {
    pub(super) name: String,
    pub(super) goal: Option<String>,
    pub(super) target: Option<f64>,
}

/// popsweep's own scheduler key: `{type: sh|hyperband|asha|median|pbt|bohb, ...}`; budgets
/// in epochs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduler {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) min_budget: Option<u64>,
    pub(super) eta: Option<u64>,
    /// asha, median: trials trained at once.
    pub(super) population: Option<u64>,
    /// asha: `auto`, `idle` or `train`; see [`Drain`].
    pub(super) drain: Option<String>,
    pub(super) n_startup_trials: Option<u64>,
    pub(super) n_warmup_steps: Option<u64>,
    pub(super) interval_steps: Option<u64>,
    /// pbt: epochs between exploit/explore rounds, the top/bottom fraction, and the
    /// probability of resampling rather than perturbing.
    pub(super) interval: Option<u64>,
    pub(super) quantile: Option<f64>,
    pub(super) resample_probability: Option<f64>,
    /// bohb: fraction of each bracket's configurations drawn at random.
    pub(super) random_fraction: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEarlyTerminate {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) min_iter: Option<u64>,
    pub(super) max_iter: Option<u64>,
    pub(super) s: Option<u32>,
    pub(super) eta: Option<u64>,
    pub(super) strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawData {
    /// `digits` (embedded; the default), or a format with its files.
    pub(super) dataset: Option<String>,
    /// `idx` or `csv`.
    pub(super) format: Option<String>,
    pub(super) train_images: Option<String>,
    pub(super) train_labels: Option<String>,
    pub(super) test_images: Option<String>,
    pub(super) test_labels: Option<String>,
    /// CSV file.
    pub(super) path: Option<String>,
    /// NumPy feature and label arrays (`format: npy`).
    pub(super) features: Option<String>,
    pub(super) labels: Option<String>,
    /// `none` (default), `standard` or `minmax`, fitted on the training split.
    pub(super) normalize: Option<String>,
    /// CSV label column: a header name or a 0-based index (default: the last column).
    pub(super) label: Option<serde_yaml_ng::Value>,
    /// `classification` (default) or `regression` (csv and npy).
    pub(super) task: Option<String>,
    /// `[C, H, W]`: the rows are channel-major images of this shape (for a CNN; square
    /// one-channel images need no shape).
    pub(super) shape: Option<Vec<u64>>,
    pub(super) split: Option<RawSplit>,
    /// Fraction of a shipped train set held for validation when a test set is given
    /// (default 0.1).
    pub(super) val_fraction: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSplit {
    pub(super) train: f64,
    pub(super) val: f64,
    pub(super) test: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) activation: Option<String>,
    /// MLP: hidden layers and their width.
    pub(super) depth: Option<u64>,
    pub(super) width: Option<u64>,
    /// CNN: see `model::cnn::CnnSpec`.
    pub(super) filters: Option<u64>,
    pub(super) layers: Option<u64>,
    pub(super) kernel_size: Option<u64>,
    pub(super) pool_every: Option<u64>,
    pub(super) filter_growth: Option<u64>,
    pub(super) fc_layers: Option<u64>,
    pub(super) fc_width: Option<u64>,
    pub(super) global_pool: Option<bool>,
    pub(super) batch_norm: Option<bool>,
    pub(super) spatial_dropout: Option<bool>,
    /// Vision transformer: see `model::vit::VitSpec` (`layers` is shared with the CNN);
    /// `head_dim` sets `d_model = heads · head_dim`.
    pub(super) patch: Option<u64>,
    pub(super) d_model: Option<u64>,
    pub(super) heads: Option<u64>,
    pub(super) head_dim: Option<u64>,
    pub(super) mlp_ratio: Option<u64>,
    /// `mean` (over the tokens) or `cls` (a class token).
    pub(super) pool: Option<String>,
    /// A parameter budget: configurations above it are not trained (recorded failed).
    pub(super) max_params: Option<u64>,
    /// A budget of forward FLOPs per sample, likewise.
    pub(super) max_flops: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrain {
    pub(super) optimizer: Option<String>,
    /// SGD only: Nesterov momentum.
    pub(super) nesterov: Option<bool>,
    pub(super) l1: Option<f64>,
    pub(super) lr_schedule: Option<RawSchedule>,
    /// Input augmentation: Gaussian noise (std) and translations up to `shift` pixels.
    pub(super) noise: Option<f64>,
    pub(super) shift: Option<u64>,
    /// Mirror images left to right with probability 1/2.
    pub(super) flip: Option<bool>,
    pub(super) epochs: Option<u64>,
    pub(super) epoch_fraction: Option<f64>,
    pub(super) batch_size: Option<u64>,
    pub(super) lr: Option<f64>,
    pub(super) momentum: Option<f64>,
    pub(super) weight_decay: Option<f64>,
    pub(super) dropout: Option<f64>,
    /// Vision transformers: dropout on the attention weights.
    pub(super) attn_dropout: Option<f64>,
}

/// `train.lr_schedule`: `{type: constant|step|cosine, warmup_epochs, step_epochs, gamma}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) warmup_epochs: Option<f64>,
    pub(super) step_epochs: Option<f64>,
    pub(super) gamma: Option<f64>,
}
