//! The sanity preflight: before tuning, show that the pipeline can learn at all.
//!
//! Two checks with the sweep's default configuration (no dropout, no weight decay):
//! - the initial loss is near `ln C` for `C` classes, as an untrained classifier with small
//!   logits should be (far above means exploding initial logits or broken labels);
//! - the model overfits a tiny training batch (64 rows, the whole batch each step) to
//!   ≥ 99% training accuracy within the step budget (if it cannot memorise 64 rows, no
//!   hyperparameter search will rescue it).
//!
//! For regression the same two checks in its own terms: the initial loss is finite and
//! near the mean squared target (what outputs near zero cost), and the tiny batch's loss
//! falls below 1% of its initial value.

use crate::backend::{Backend, EpochPlan};
use crate::data::{Dataset, Task};
use crate::error::{Error, Result};
use crate::model::knobs::{member_spec, KnobDefaults};
use crate::space::Params;
use serde::Serialize;

/// Rows in the batch to overfit.
pub const TINY_BATCH: usize = 64;
/// Training accuracy the tiny batch must reach.
pub const TARGET_ACCURACY: f64 = 0.99;
/// The initial loss must lie within this factor of `ln C` (either way).
pub const INITIAL_LOSS_FACTOR: f64 = 1.5;
/// Regression: the tiny batch's loss must fall below this fraction of its initial loss.
pub const REGRESSION_TARGET_FRACTION: f64 = 0.01;

#[derive(Clone, Debug, Serialize)]
pub struct SanityReport {
    pub classes: usize,
    pub initial_loss: f64,
    pub expected_initial_loss: f64,
    pub initial_loss_ok: bool,
    /// Steps to reach the target (accuracy, or loss for regression) on the tiny batch;
    /// `None` if never reached.
    pub steps_to_overfit: Option<usize>,
    /// NaN for regression.
    pub final_train_accuracy: f64,
    pub final_train_loss: f64,
    pub task: Task,
    pub max_steps: usize,
    pub passed: bool,
    /// What to look at when a check fails (empty when both pass).
    pub diagnosis: Vec<String>,
}

/// Runs both checks on the first [`TINY_BATCH`] rows of `train`.
pub fn sanity_check(
    backend: &dyn Backend,
    train: &Dataset,
    defaults: &KnobDefaults,
    max_steps: usize,
) -> Result<SanityReport> {
    let rows: Vec<usize> = (0..train.len().min(TINY_BATCH)).collect();
    let tiny = train.subset(&rows);
    // No regularisation, and a constant learning rate: each step here is a whole epoch of
    // the tiny batch, so a cosine schedule would reach zero within the budget's few steps.
    let plain = KnobDefaults {
        dropout: 0.0,
        weight_decay: 0.0,
        noise: 0.0,
        shift: 0,
        flip: false,
        schedule: crate::model::hparams::LrSchedule::CONSTANT,
        ..*defaults
    };
    let spec = member_spec(&Params::new(), &plain, tiny.n_features, tiny.n_classes, 1)
        .map_err(|e| Error::Run(format!("the sweep's default model: {e}")))?;
    let mut pop = backend.population(&tiny, &tiny);
    pop.insert(0, spec);
    let initial_loss = pop.evaluate(0, &tiny)?.loss;
    let (expected, initial_loss_ok) = initial_loss_check(&tiny, initial_loss);
    let plan = EpochPlan {
        order: (0..tiny.len()).collect(),
        batch_size: tiny.len(),
    };
    let mut steps_to_overfit = None;
    let (mut final_train_accuracy, mut final_train_loss) = (0.0, initial_loss);
    for step in 1..=max_steps {
        pop.train(&plan)?;
        let member = &pop.members()[0];
        if !member.is_alive() {
            break;
        }
        // Accuracy and loss of the weights after this step, measured without dropout.
        let last = member.history.last();
        final_train_accuracy = last.map_or(0.0, |h| h.val_accuracy);
        final_train_loss = last.map_or(f64::NAN, |h| h.val_loss);
        let reached = match tiny.task {
            Task::Classification => final_train_accuracy >= TARGET_ACCURACY,
            Task::Regression => final_train_loss <= REGRESSION_TARGET_FRACTION * initial_loss,
        };
        if reached {
            steps_to_overfit = Some(step);
            break;
        }
    }
    let mut diagnosis = Vec::new();
    if !initial_loss_ok && tiny.task == Task::Regression {
        diagnosis.push(format!(
            "initial loss {initial_loss:.3e} is far above the mean squared target {expected:.3e}: \
             check the input scaling (features should be O(1), e.g. data.normalize: standard)"
        ));
    } else if !initial_loss_ok {
        diagnosis.push(format!(
            "initial loss {initial_loss:.3} is far from ln {} = {expected:.3}: check the input scaling \
             (features should be O(1)) and that labels are 0..{}",
            tiny.n_classes,
            tiny.n_classes - 1
        ));
    }
    if let Some(f) = &pop.members()[0].failure {
        diagnosis.push(format!(
            "training on the tiny batch {f}: lower the learning rate (train.lr {})",
            plain.lr
        ));
    } else if steps_to_overfit.is_none() && tiny.task == Task::Regression {
        diagnosis.push(format!(
            "loss {final_train_loss:.3e} on {} rows after {max_steps} steps, not below {:.0}% of \
             the initial {initial_loss:.3e}: the learning rate (train.lr {}) may be wrong, or \
             the model ({}) too small; check that features and targets belong together",
            tiny.len(),
            100.0 * REGRESSION_TARGET_FRACTION,
            plain.lr,
            model_words(&plain),
        ));
    } else if steps_to_overfit.is_none() {
        diagnosis.push(format!(
            "{:.1}% training accuracy on {} rows after {max_steps} steps (target {:.0}%): the learning rate \
             (train.lr {}) may be wrong, or the model ({}) too small; check that features and \
             labels belong together",
            100.0 * final_train_accuracy,
            tiny.len(),
            100.0 * TARGET_ACCURACY,
            plain.lr,
            model_words(&plain),
        ));
    }
    Ok(SanityReport {
        classes: tiny.n_classes,
        initial_loss,
        expected_initial_loss: expected,
        initial_loss_ok,
        steps_to_overfit,
        final_train_accuracy,
        final_train_loss,
        task: tiny.task,
        max_steps,
        passed: diagnosis.is_empty(),
        diagnosis,
    })
}

/// The loss an untrained model should start near on `tiny`, and whether `initial_loss`
/// is near it: ln C for classification; for regression, the mean squared target.
fn initial_loss_check(tiny: &Dataset, initial_loss: f64) -> (f64, bool) {
    match tiny.task {
        Task::Classification => {
            let expected = (tiny.n_classes as f64).ln();
            let ok = initial_loss < INITIAL_LOSS_FACTOR * expected
                && initial_loss > expected / INITIAL_LOSS_FACTOR;
            (expected, ok)
        }
        Task::Regression => {
            // Outputs of O(1) around zero: the loss is the mean squared target plus O(1).
            let n = tiny.values.len().max(1) as f64;
            let expected = tiny
                .values
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                / n;
            let ok =
                initial_loss.is_finite() && initial_loss < INITIAL_LOSS_FACTOR * expected + 1.0;
            (expected, ok)
        }
    }
}

/// The untuned model in the sweep file's words, for the diagnosis.
fn model_words(d: &KnobDefaults) -> String {
    match (&d.cnn, &d.vit) {
        (Some(c), _) => format!(
            "cnn of {} convolutions from {} filters, kernel_size {}",
            c.spec.layers, c.spec.filters, c.spec.kernel_size
        ),
        (None, Some(v)) => format!(
            "vit of {} blocks, d_model {}, {} heads, patch {}",
            v.spec.layers, v.spec.d_model, v.spec.heads, v.spec.patch
        ),
        (None, None) => format!("depth {}, width {}", d.depth, d.width),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::data::digits;

    #[test]
    fn default_model_overfits_digits_and_a_tiny_lr_is_diagnosed() {
        let data = digits::load().unwrap();
        let backend = CpuBackend::new(1);
        let ok = sanity_check(&backend, &data, &KnobDefaults::default(), 300).unwrap();
        assert!(ok.passed, "{ok:?}");
        assert!(ok.initial_loss_ok && ok.steps_to_overfit.is_some());
        let slow = KnobDefaults {
            lr: 1e-7,
            ..KnobDefaults::default()
        };
        let bad = sanity_check(&backend, &data, &slow, 50).unwrap();
        assert!(!bad.passed);
        assert!(
            bad.diagnosis[0].contains("learning rate"),
            "{:?}",
            bad.diagnosis
        );
    }

    /// A sweep's cosine schedule decays over its epochs, and here every step is an epoch
    /// of the tiny batch: the preflight trains at the base rate instead.
    #[test]
    fn a_cosine_schedule_does_not_starve_the_preflight() {
        use crate::model::hparams::{Decay, LrSchedule};
        let data = digits::load().unwrap();
        let cosine = KnobDefaults {
            schedule: LrSchedule {
                warmup_epochs: 1.0,
                decay: Decay::Cosine { total_epochs: 3.0 },
            },
            ..KnobDefaults::default()
        };
        let report = sanity_check(&CpuBackend::new(1), &data, &cosine, 300).unwrap();
        assert!(report.passed, "{report:?}");
    }

    #[test]
    fn scrambled_features_blow_up_the_initial_loss() {
        let mut data = digits::load().unwrap();
        data.features.iter_mut().for_each(|v| *v *= 1000.0);
        let report = sanity_check(&CpuBackend::new(1), &data, &KnobDefaults::default(), 5).unwrap();
        assert!(!report.initial_loss_ok, "{report:?}");
        assert!(report.diagnosis[0].contains("input scaling"));
    }
}
