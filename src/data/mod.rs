//! Data sets as dense f32 matrices, and the one path from a data source to the
//! train / validation / held-out test splits.

pub mod checks;
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

use crate::error::{Error, Result};
use crate::limits;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A data file's bytes, gunzipped when it starts with the gzip magic. Sizes are bounded
/// before anything is allocated: the file against [`limits::data_budget`], and a gzip
/// file's declared size (its trailer) against that budget and against
/// [`limits::MAX_GZIP_RATIO`] times its compressed size, so a bomb is refused before it
/// is inflated. The inflation itself stops at the bound, whatever the trailer says.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let budget = limits::data_budget();
    let raw = limits::read_input(path, "data file", budget)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let gz_error = |message: String| Error::Data {
        file: path.display().to_string(),
        location: "gzip".into(),
        message,
    };
    let compressed = raw.len() as u64;
    let ratio_bound = compressed.saturating_mul(limits::MAX_GZIP_RATIO);
    // ISIZE, the last four bytes: the inflated size modulo 2^32 (exact below 4 GiB).
    let declared = match raw.len() {
        n if n >= 18 => u64::from(u32::from_le_bytes(
            raw[n - 4..].try_into().expect("4 bytes"),
        )),
        _ => {
            return Err(gz_error(
                "truncated: shorter than a gzip header and trailer".into(),
            ))
        }
    };
    let refuse = |size: u64, how: &str| {
        gz_error(format!(
            "{how} {} from {} compressed ({}:1); at most {} (or {}:1) is inflated; \
             gunzip it yourself if it is genuine",
            limits::human_bytes(size),
            limits::human_bytes(compressed),
            size / compressed.max(1),
            limits::human_bytes(budget.min(ratio_bound)),
            limits::MAX_GZIP_RATIO
        ))
    };
    if declared > budget || declared > ratio_bound {
        return Err(refuse(declared, "declares"));
    }
    let bound = budget.min(ratio_bound);
    let mut out = Vec::with_capacity(declared as usize);
    flate2::read::MultiGzDecoder::new(&raw[..])
        .take(bound + 1)
        .read_to_end(&mut out)
        .map_err(|e| gz_error(format!("gzip stream: {e}")))?;
    if out.len() as u64 > bound {
        return Err(refuse(out.len() as u64, "inflates past"));
    }
    Ok(out)
}

/// Refuses `values` decoded values of `bytes_per` bytes each when they would not fit in
/// the data budget: a file of bytes becomes f32 features (×4), NPY values pass through
/// f64 (×8).
pub fn check_decoded(path: &Path, values: usize, bytes_per: usize) -> Result<()> {
    let budget = limits::data_budget();
    let bytes = (values as u64).saturating_mul(bytes_per as u64);
    if bytes <= budget {
        return Ok(());
    }
    Err(Error::Data {
        file: path.display().to_string(),
        location: "data".into(),
        message: format!(
            "{values} values decode to {}, more than the {} (half the free memory) a data \
             set may take; subsample it",
            limits::human_bytes(bytes),
            limits::human_bytes(budget)
        ),
    })
}

/// [`read_file`] of a text file (CSV).
pub fn read_text_file(path: &Path) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|e| Error::Data {
        file: path.display().to_string(),
        location: format!("byte {}", e.utf8_error().valid_up_to()),
        message: "not UTF-8 text".into(),
    })
}

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
        task: Task,
    },
    /// NumPy arrays: features `(N, ...)` and labels `(N,)` (or `(N, k)` values).
    Npy {
        features: PathBuf,
        labels: PathBuf,
        task: Task,
    },
}

impl DataSource {
    pub fn task(&self) -> Task {
        match self {
            DataSource::Digits | DataSource::Idx { .. } => Task::Classification,
            DataSource::Csv { task, .. } | DataSource::Npy { task, .. } => *task,
        }
    }
}

/// What a data set's rows are labelled with, and so which loss trains on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// A class index per row (softmax cross-entropy; accuracy is reported).
    #[default]
    Classification,
    /// Real values per row (mean squared error; accuracy is not defined).
    Regression,
}

/// An input image's shape, channel-major rows of `channels·height·width` features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// A square one-channel image of `features` pixels, when `features` is a square.
    pub fn square(features: usize) -> Option<ImageShape> {
        let side = (features as f64).sqrt().round() as usize;
        if side * side != features {
            return None;
        }
        Some(ImageShape {
            channels: 1,
            height: side,
            width: side,
        })
    }

    /// Rows of `features` values taken as one line of pixels (no shape to speak of).
    pub fn flat(features: usize) -> ImageShape {
        ImageShape {
            channels: 1,
            height: 1,
            width: features,
        }
    }

    pub fn features(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// A labelled data set: `features` is `(len, n_features)` row-major; a classification set
/// has `labels`, a regression set `values` `(len, n_classes)` (there `n_classes` is the
/// number of value columns: either way, the width of the output layer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    pub features: Vec<f32>,
    pub labels: Vec<u32>,
    pub values: Vec<f32>,
    pub n_features: usize,
    pub n_classes: usize,
    pub task: Task,
    /// The rows' image shape when the file says (IDX images, NPY `(N, C, H, W)` or
    /// `(N, H, W)`).
    pub image: Option<ImageShape>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        match self.task {
            Task::Classification => self.labels.len(),
            Task::Regression => self.values.len() / self.n_classes.max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows' labels as the loss takes them.
    pub fn targets(&self) -> Targets<'_> {
        match self.task {
            Task::Classification => Targets::Classes(&self.labels),
            Task::Regression => Targets::Values(&self.values),
        }
    }

    /// The group each row is split and folded within: its class, or one group for
    /// regression.
    pub fn strata(&self) -> Vec<u32> {
        match self.task {
            Task::Classification => self.labels.clone(),
            Task::Regression => vec![0; self.len()],
        }
    }

    /// The rows `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let d = self.n_features;
        let mut features = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            features.extend_from_slice(&self.features[i * d..(i + 1) * d]);
        }
        let w = self.n_classes;
        let values = match self.task {
            Task::Classification => Vec::new(),
            Task::Regression => indices
                .iter()
                .flat_map(|&i| self.values[i * w..(i + 1) * w].iter().copied())
                .collect(),
        };
        Dataset {
            features,
            labels: match self.task {
                Task::Classification => indices.iter().map(|&i| self.labels[i]).collect(),
                Task::Regression => Vec::new(),
            },
            values,
            n_features: d,
            n_classes: w,
            task: self.task,
            image: self.image,
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

/// What a minibatch's rows are labelled with; it decides the loss.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// A class index per row: softmax cross-entropy.
    Classes(&'a [u32]),
    /// `width` real values per row, row-major: mean squared error.
    Values(&'a [f32]),
}

impl<'a> Targets<'a> {
    /// Rows labelled, for an output layer `width` wide.
    pub fn rows(&self, width: usize) -> usize {
        match self {
            Targets::Classes(l) => l.len(),
            Targets::Values(v) => v.len() / width.max(1),
        }
    }

    /// Rows `start .. start + rows`.
    pub fn slice(&self, start: usize, rows: usize, width: usize) -> Targets<'a> {
        match *self {
            Targets::Classes(l) => Targets::Classes(&l[start..start + rows]),
            Targets::Values(v) => Targets::Values(&v[start * width..(start + rows) * width]),
        }
    }
}
