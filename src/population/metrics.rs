//! What a member's training reports: per-epoch metrics and one evaluation.

use serde::Serialize;

/// Metrics of one member after one epoch. Train metrics are running means over the
/// epoch's minibatches (with dropout active, as trained); validation metrics come from a
/// separate pass without dropout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 1-based: the number of epochs trained when these were measured.
    pub epoch: usize,
    /// NaN (written `null`) where undefined: accuracy under regression.
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_loss: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_accuracy: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub val_loss: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub val_accuracy: f64,
    /// Mean over the epoch's steps of the gradient's L2 norm (of the batch-mean loss, before
    /// weight decay). `None` where a backend does not measure it (CUDA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// Gradient elements that were NaN or infinite during the epoch (`None`: not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonfinite_grads: Option<u64>,
}

/// serde_json writes a NaN as `null`; read it back as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    <Option<f64> as serde::Deserialize>::deserialize(d).map(|v| v.unwrap_or(f64::NAN))
}

/// The metric names a sweep of the built-in model may use.
pub const METRIC_NAMES: [&str; 4] = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"];

/// A sweep's metric: one of those the built-in trainer logs every epoch, or (an external
/// program) any name the program reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricName {
    TrainLoss,
    TrainAccuracy,
    ValLoss,
    ValAccuracy,
    /// Reported by an external program under this name.
    Reported(String),
}

impl MetricName {
    /// The built-in metric of that name, else a reported one.
    pub fn parse(name: &str) -> MetricName {
        match name {
            "train_loss" => MetricName::TrainLoss,
            "train_accuracy" => MetricName::TrainAccuracy,
            "val_loss" => MetricName::ValLoss,
            "val_accuracy" => MetricName::ValAccuracy,
            other => MetricName::Reported(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MetricName::TrainLoss => "train_loss",
            MetricName::TrainAccuracy => "train_accuracy",
            MetricName::ValLoss => "val_loss",
            MetricName::ValAccuracy => "val_accuracy",
            MetricName::Reported(name) => name,
        }
    }

    /// Whether the built-in trainer logs it.
    pub fn is_built_in(&self) -> bool {
        !matches!(self, MetricName::Reported(_))
    }

    /// An accuracy of the built-in trainer (undefined under regression; the test split is
    /// scored by it rather than by the loss).
    pub fn is_accuracy(&self) -> bool {
        matches!(self, MetricName::TrainAccuracy | MetricName::ValAccuracy)
    }
}

impl Serialize for MetricName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for MetricName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EpochMetrics {
    /// The train−validation gap: train minus validation accuracy for classification; for
    /// regression, where accuracy is not defined, the share of the validation loss that
    /// the training loss stays below, `1 − train_loss / val_loss`.
    pub fn gap(&self) -> f64 {
        if self.val_accuracy.is_nan() {
            1.0 - self.train_loss / self.val_loss
        } else {
            self.train_accuracy - self.val_accuracy
        }
    }

    /// The value of a built-in metric; `None` for a reported one.
    pub fn get(&self, name: &MetricName) -> Option<f64> {
        match name {
            MetricName::TrainLoss => Some(self.train_loss),
            MetricName::TrainAccuracy => Some(self.train_accuracy),
            MetricName::ValLoss => Some(self.val_loss),
            MetricName::ValAccuracy => Some(self.val_accuracy),
            MetricName::Reported(_) => None,
        }
    }
}

/// Loss and accuracy of one model on one set of rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
}
