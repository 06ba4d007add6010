//! Data sets as dense f32 matrices, and the one path from a data source to the
//! train / validation / held-out test splits.

pub mod csv;
pub mod digits;
pub mod idx;
pub mod normalize;
pub mod npy;
pub mod split;

pub use split::{split_stratified, split_with_test, HeldOutTest, SplitFractions, TuningData};

/// Labels are class indices below this. The output layer (and per-class bookkeeping) is
/// sized by the largest label, so a stray huge value would otherwise ask for gigabytes.
pub const MAX_CLASSES: u32 = 65_536;

/// The message for a label at or above [`MAX_CLASSES`].
fn label_out_of_range(column: usize, label: u32) -> String {
    format!(
        "column {column}: label {label} is out of range: labels are class indices 0 to {}",
        MAX_CLASSES - 1
    )
}

use std::path::PathBuf;

/// Where a sweep's data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// The embedded digits set (the default).
    Digits,
    /// IDX image and label files (MNIST family); a shipped test pair becomes the held-out
    /// split, otherwise the train pair is split three ways.
    Idx {
        train: (PathBuf, PathBuf),
        test: Option<(PathBuf, PathBuf)>,
    },
    /// A labelled CSV file.
    Csv {
        path: PathBuf,
        label: csv::LabelColumn,
    },
    /// NumPy arrays: features `(N, ...)` and labels `(N,)`.
    Npy { features: PathBuf, labels: PathBuf },
}

/// A labelled classification data set: `features` is `(len, n_features)` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub features: Vec<f32>,
    pub labels: Vec<u32>,
    pub n_features: usize,
    pub n_classes: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The rows `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let d = self.n_features;
        let mut features = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            features.extend_from_slice(&self.features[i * d..(i + 1) * d]);
        }
        Dataset {
            features,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            n_features: d,
            n_classes: self.n_classes,
        }
    }

    /// How many rows carry each label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}
