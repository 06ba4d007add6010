//! Optuna's `ThresholdPruner`: prune once the latest value leaves `[lower, upper]` or is
//! NaN (a diverged trial), checked at the pruning checkpoints after the warm-up.

use super::first_in_interval;
use crate::storage::FrozenTrial;

pub(super) struct Threshold {
    pub lower: f64,
    pub upper: f64,
    pub n_warmup_steps: u64,
    pub interval_steps: u64,
}

impl Threshold {
    pub(super) fn prune(&self, trial: &FrozenTrial) -> bool {
        let Some(step) = trial.last_step() else {
            return false;
        };
        if step < self.n_warmup_steps
            || !first_in_interval(trial, step, self.n_warmup_steps, self.interval_steps)
        {
            return false;
        }
        let latest = trial.intermediate_at(step).unwrap_or(f64::NAN);
        latest.is_nan() || latest < self.lower || latest > self.upper
    }
}
