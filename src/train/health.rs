//! When a member has diverged. A diverged member is marked failed and leaves training; its
//! neighbours never see it, because no buffer is shared between members.

use std::fmt;

/// A batch's mean loss above this many times `ln(classes)` (the loss of a uniform guess)
/// counts as divergence: logits that far apart mean the weights have blown up, and such a
/// member would otherwise waste its slot until it overflows to inf or NaN.
pub const DIVERGENCE_LOSS_FACTOR: f64 = 100.0;

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
pub fn check_batch_loss(mean_loss: f64, classes: usize) -> Result<(), String> {
    let limit = DIVERGENCE_LOSS_FACTOR * (classes as f64).ln();
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
        n => Err(format!("{n} non-finite parameters")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_checks_flag_nan_inf_and_blow_up_only() {
        assert!(check_batch_loss(2.3, 10).is_ok());
        assert!(check_batch_loss(200.0, 10).is_ok());
        assert!(check_batch_loss(231.0, 10).is_err());
        assert!(check_batch_loss(f64::NAN, 10).is_err());
        assert!(check_batch_loss(f64::INFINITY, 10).is_err());
        assert!(check_params(&[1.0, f32::NAN]).is_err());
        assert!(check_params(&[1.0, -3.0]).is_ok());
    }
}
