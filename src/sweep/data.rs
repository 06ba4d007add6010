//! The data a sweep trains on: its source loaded, split into tuning rows and a sealed
//! held-out test split, normalised on the training rows.

use super::SEED_SPLIT;
use crate::config::Sweep;
use crate::data::normalize::{Normalize, Normalizer};
use crate::data::{
    checks, csv, digits, idx, split_stratified, split_with_test, DataSource, Dataset, HeldOutTest,
    SplitFractions, TuningData,
};
use crate::error::{Error, Result};
use crate::model::hparams::image_side;
use crate::rng::derive_seed;

/// Splits `data` as `sweep` says; the test rows come back sealed.
pub fn prepare_data(sweep: &Sweep, data: &Dataset) -> (TuningData, HeldOutTest) {
    split_stratified(data, sweep.split, derive_seed(sweep.seed, SEED_SPLIT))
}

/// All of the sweep's rows, unsplit (nested cross-validation makes its own folds); a
/// shipped IDX test pair is appended to the training pair. Also a one-line description.
pub fn load_dataset(sweep: &Sweep) -> Result<(Dataset, String)> {
    let (mut data, name) = match &sweep.data {
        DataSource::Digits => (digits::load()?, "digits (embedded)".to_string()),
        DataSource::Idx { train, test } => {
            let mut all = idx::load_pair(&train.0, &train.1)?;
            if let Some((images, labels)) = test {
                let t = idx::load_pair(images, labels)?;
                if t.n_features == all.n_features {
                    all.features.extend(t.features);
                    all.labels.extend(t.labels);
                    all.n_classes = all.n_classes.max(t.n_classes);
                }
            }
            (all, train.0.display().to_string())
        }
        DataSource::Npy {
            features,
            labels,
            task,
        } => (
            crate::data::npy::load_pair(features, labels, *task)?,
            features.display().to_string(),
        ),
        DataSource::Csv { path, label, task } => {
            let text = crate::data::read_text_file(path)?;
            (
                csv::parse(&text, &path.display().to_string(), label, *task)?,
                path.display().to_string(),
            )
        }
    };
    if let Some(warning) = checks::usable(&mut data, None, &name)? {
        eprintln!("warning: {warning}");
    }
    Ok((data, name))
}

/// The `shift` and `flip` augmentations move images: an image model's (`data.shape`, or
/// the data file's own shape), or else square one-channel rows. Refuse them up front when
/// the rows are neither, rather than fail inside training.
pub(super) fn check_shift(sweep: &Sweep, data: &Dataset) -> Result<()> {
    let n_features = data.n_features;
    let shaped = sweep
        .defaults
        .image()
        .and_then(|image| image.or(data.image))
        .is_some_and(|image| image.features() == n_features);
    let images = shaped || image_side(n_features).is_some();
    if sweep.defaults.flip && !images {
        return Err(Error::Config {
            file: sweep.name.clone(),
            line: None,
            field: "train.flip".into(),
            message: format!(
                "flip mirrors images, and rows of {n_features} features are not square; \
                 give an image model data.shape: [C, H, W]"
            ),
        });
    }
    let tuned = sweep.space.params.iter().any(|p| p.name == "shift");
    if (tuned || sweep.defaults.shift > 0) && !images {
        return Err(Error::Config {
            file: sweep.name.clone(),
            line: None,
            field: if tuned {
                "parameters.shift"
            } else {
                "train.shift"
            }
            .into(),
            message: format!(
                "shift translates images, and rows of {n_features} features are not square; \
                 give an image model data.shape: [C, H, W]"
            ),
        });
    }
    Ok(())
}

/// An image model's sweep (CNN, vision transformer) without `data.shape` takes its data's
/// own image shape where the file gives one (IDX images, NPY `(N, H, W)` or
/// `(N, C, H, W)`); otherwise the rows are taken as square one-channel images.
pub fn with_data_image(mut sweep: Sweep, data: &Dataset) -> Sweep {
    sweep.defaults.default_image(data.image);
    sweep
}

/// An image model's sweep must fit its data before any trial trains: the rows must be images
/// (square, or of `data.shape`), and the untuned model must build on them. A trial's own
/// knobs that do not fit are refused one by one (recorded failed, untrained).
pub(super) fn check_model(sweep: &Sweep, data: &Dataset) -> Result<()> {
    if sweep.defaults.image().is_none() {
        return Ok(());
    }
    let built = crate::model::knobs::member_spec(
        &crate::space::Params::new(),
        &with_data_image(sweep.clone(), data).defaults,
        data.n_features,
        data.n_classes.max(1),
        0,
    );
    built.map(|_| ()).map_err(|message| Error::Config {
        file: sweep.name.clone(),
        line: None,
        field: "model".into(),
        message,
    })
}

/// Loads the sweep's data, refuses it when degenerate ([`checks`]) and splits it; also
/// returns a one-line description.
pub fn load_data(sweep: &Sweep) -> Result<(TuningData, HeldOutTest, String)> {
    let split_seed = derive_seed(sweep.seed, SEED_SPLIT);
    let (mut all, mut test, name) = match &sweep.data {
        DataSource::Digits => (digits::load()?, None, "digits (embedded)".to_string()),
        DataSource::Idx { train, test } => {
            let all = idx::load_pair(&train.0, &train.1)?;
            let test = match test {
                Some((images, labels)) => {
                    let test = idx::load_pair(images, labels)?;
                    if test.n_features != all.n_features {
                        return Err(Error::Data {
                            file: images.display().to_string(),
                            location: "header".into(),
                            message: format!(
                                "{} pixels per image, the train set has {}",
                                test.n_features, all.n_features
                            ),
                        });
                    }
                    Some(test)
                }
                None => None,
            };
            (all, test, train.0.display().to_string())
        }
        DataSource::Npy {
            features,
            labels,
            task,
        } => (
            crate::data::npy::load_pair(features, labels, *task)?,
            None,
            features.display().to_string(),
        ),
        DataSource::Csv { path, label, task } => {
            let text = crate::data::read_text_file(path)?;
            let file = path.display().to_string();
            (csv::parse(&text, &file, label, *task)?, None, file)
        }
    };
    if let Some(warning) = checks::usable(&mut all, test.as_mut(), &name)? {
        eprintln!("warning: {warning}");
    }
    let (tuning, held_out) = match test {
        Some(test) => {
            checks::shipped_test(&all, &test, &name)?;
            let fractions = SplitFractions {
                train: 1.0 - sweep.val_fraction,
                val: sweep.val_fraction,
                test: 0.0,
            };
            checks::split_sizes(&all, fractions, &name)?;
            split_with_test(&all, test, sweep.val_fraction, split_seed)
        }
        None => {
            checks::split_sizes(&all, sweep.split, &name)?;
            prepare_data(sweep, &all)
        }
    };
    // Normalisation is fitted on the training rows only, then applied to all three splits.
    let (tuning, held_out) = match Normalizer::fit(sweep.normalize, &tuning.train) {
        None => (tuning, held_out),
        Some(n) => {
            if sweep.normalize == Normalize::Standard && tuning.train.image.is_some() {
                eprintln!(
                    "warning: data.normalize: standard scales each pixel by its own spread \
                     (up to ×{:.0} here, for pixels that are almost always blank), which \
                     costs accuracy on images; `normalize: channel` standardises each image \
                     channel, as torchvision's Normalize does",
                    n.largest_scale()
                );
            }
            let mut tuning = tuning;
            n.apply(&mut tuning.train);
            n.apply(&mut tuning.val);
            (tuning, held_out.normalized(&n))
        }
    };
    check_model(sweep, &tuning.train)?;
    Ok((tuning, held_out, name))
}
