//! The `data` block: where the rows come from, how they are split and normalised.

use super::raw::{RawData, RawSplit};
use super::Ctx;
use crate::data::csv::LabelColumn;
use crate::data::normalize::Normalize;
use crate::data::{DataSource, SplitFractions, Task};
use crate::error::Result;
use crate::model::cnn::ImageShape;
use std::path::PathBuf;

impl Ctx<'_> {
    /// `data.shape: [C, H, W]`, each at least 1.
    pub(super) fn image_shape(&self, raw: Option<Vec<u64>>) -> Result<Option<ImageShape>> {
        let Some(dims) = raw else { return Ok(None) };
        match dims[..] {
            [c, h, w] if c >= 1 && h >= 1 && w >= 1 && c * h * w <= 1 << 26 => {
                Ok(Some(ImageShape {
                    channels: c as usize,
                    height: h as usize,
                    width: w as usize,
                }))
            }
            _ => Err(self.err(
                &["data", "shape"],
                format!(
                    "{dims:?} is not an image shape [channels, height, width] of positive sizes"
                ),
            )),
        }
    }

    /// The data source, the split fractions and the validation fraction.
    pub(super) fn data(
        &self,
        raw: Option<RawData>,
    ) -> Result<(DataSource, SplitFractions, f64, Normalize)> {
        let Some(raw) = raw else {
            return Ok((
                DataSource::Digits,
                SplitFractions::default(),
                0.1,
                Normalize::None,
            ));
        };
        let at = |key: &'static str| ["data", key];
        let split = self.split(raw.split.as_ref())?;
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
        let task = self.task(raw.task.as_deref())?;
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
                    format!("`{name}` is not a normalisation (none, standard, minmax, channel)"),
                )
            })?,
        };
        Ok((source, split, val_fraction, normalize))
    }

    /// `data.split`: train, val and test fractions, each in (0, 1), summing to 1.
    fn split(&self, split: Option<&RawSplit>) -> Result<SplitFractions> {
        match split {
            None => Ok(SplitFractions::default()),
            Some(s) => {
                let parts = [s.train, s.val, s.test];
                if parts.iter().any(|&f| !(f > 0.0 && f < 1.0))
                    || (parts.iter().sum::<f64>() - 1.0).abs() > 1e-6
                {
                    return Err(self.err(
                        &["data", "split"],
                        format!(
                            "train {}, val {}, test {} must each be in (0, 1) and sum to 1",
                            s.train, s.val, s.test
                        ),
                    ));
                }
                Ok(SplitFractions {
                    train: s.train,
                    val: s.val,
                    test: s.test,
                })
            }
        }
    }

    /// `data.task`: classification (the default) or regression.
    fn task(&self, task: Option<&str>) -> Result<Task> {
        match task {
            None | Some("classification") => Ok(Task::Classification),
            Some("regression") => Ok(Task::Regression),
            Some(other) => Err(self.err(
                &["data", "task"],
                format!("`{other}` is not a task (classification, regression)"),
            )),
        }
    }
}
