//! When a member has diverged. A diverged member is marked failed and leaves training; its
//! neighbours never see it, because no buffer is shared between members.

use std::fmt;

/// A batch's mean loss above this many times `ln(classes)` (the loss of a uniform guess)
/// counts as divergence: logits that far apart mean the weights have blown up, and such a
/// member would otherwise waste its slot until it overflows to inf or NaN.
pub const DIVERGENCE_LOSS_FACTOR: f64 = 100.0;

/// The batch mean loss above which a member counts as diverged: for classification
/// [`DIVERGENCE_LOSS_FACTOR`] · ln(classes); for regression only a non-finite loss does,
/// since the scale of the targets (and so of a sane loss) is the user's.
pub fn divergence_limit(task: crate::data::Task, classes: usize) -> f64 {
    match task {
        crate::data::Task::Classification => DIVERGENCE_LOSS_FACTOR * (classes as f64).ln(),
        crate::data::Task::Regression => f64::INFINITY,
    }
}

/// Why a member stopped training.
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    pub epoch: usize,
    pub step: u64,
    pub reason: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch == 0 {
            // Refused before training (e.g. over the parameter budget), not diverged.
            return write!(f, "not trained: {}", self.reason);
        }
        write!(
            f,
            "diverged in epoch {} at step {}: {}",
            self.epoch, self.step, self.reason
        )
    }
}

/// `Err(reason)` when a batch's mean loss shows divergence.
pub fn check_batch_loss(mean_loss: f64, limit: f64) -> Result<(), String> {
    if !mean_loss.is_finite() {
        Err(format!("non-finite loss {mean_loss}"))
    } else if mean_loss > limit {
        Err(format!("loss {mean_loss:.3e} above {limit:.1}"))
    } else {
        Ok(())
    }
}

/// `Err(reason)` when any parameter is NaN or infinite.
pub fn check_params(params: &[f32]) -> Result<(), String> {
    match params.iter().filter(|v| !v.is_finite()).count() {
        0 => Ok(()),
        n => Err(nonfinite_params(n)),
    }
}

/// The failure of a member with `n` non-finite parameters after an epoch (both backends).
pub fn nonfinite_params(n: usize) -> String {
    format!("{n} non-finite parameters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_checks_flag_nan_inf_and_blow_up_only() {
        let limit = divergence_limit(crate::data::Task::Classification, 10);
        assert!(check_batch_loss(2.3, limit).is_ok());
        assert!(check_batch_loss(200.0, limit).is_ok());
        assert!(check_batch_loss(231.0, limit).is_err());
        assert!(check_batch_loss(f64::NAN, limit).is_err());
        assert!(check_batch_loss(f64::INFINITY, limit).is_err());
        let regression = divergence_limit(crate::data::Task::Regression, 1);
        assert!(check_batch_loss(1e30, regression).is_ok());
        assert!(check_batch_loss(f64::NAN, regression).is_err());
        assert!(check_params(&[1.0, f32::NAN]).is_err());
        assert!(check_params(&[1.0, -3.0]).is_ok());
    }
}
