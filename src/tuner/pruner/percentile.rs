//! Optuna's `PercentilePruner` (and `MedianPruner`, the same rule at 50): prune when the
//! trial's best value so far is worse than the `percentile`-th best of the completed
//! trials' values at the trial's latest step.

use super::{first_in_interval, nan_best, Context};
use crate::storage::FrozenTrial;

pub(super) struct Percentile {
    pub percentile: f64,
    pub n_startup_trials: usize,
    pub n_warmup_steps: u64,
    pub interval_steps: u64,
    pub n_min_trials: usize,
}

impl Percentile {
    pub(super) fn prune(&self, ctx: &Context<'_>, trial: &FrozenTrial) -> bool {
        let completed = ctx.completed().count();
        if completed == 0 || completed < self.n_startup_trials {
            return false;
        }
        let Some(step) = trial.last_step() else {
            return false;
        };
        if step < self.n_warmup_steps
            || !first_in_interval(trial, step, self.n_warmup_steps, self.interval_steps)
        {
            return false;
        }
        let best = nan_best(trial.intermediate.iter().map(|&(_, v)| v), ctx.maximize);
        if best.is_nan() {
            return true;
        }
        let mut at_step: Vec<f64> = ctx
            .completed()
            .filter_map(|t| t.intermediate_at(step))
            .collect();
        // The count includes NaN values, as Optuna's does; the percentile skips them.
        if at_step.len() < self.n_min_trials {
            return false;
        }
        let q = match ctx.maximize {
            true => 100.0 - self.percentile,
            false => self.percentile,
        };
        at_step.retain(|v| !v.is_nan());
        let p = nan_percentile(&mut at_step, q);
        if p.is_nan() {
            return false;
        }
        match ctx.maximize {
            true => best < p,
            false => best > p,
        }
    }
}

/// numpy's `nanpercentile` with its default linear method, operation for operation, so
/// that a tie with the percentile breaks as Optuna's does. `values` hold no NaN.
pub(super) fn nan_percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let quantile = q / 100.0;
    // numpy's `_compute_virtual_index`; its linear method is alpha = beta = 1.
    let (alpha, beta) = (1.0, 1.0);
    let virtual_index = n * quantile + (alpha + quantile * (1.0 - alpha - beta)) - 1.0;
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let last = values.len() - 1;
    let lo = (below.max(0.0) as usize).min(last);
    let hi = ((below + 1.0).max(0.0) as usize).min(last);
    // The two order statistics by selection, not a sort: O(n) for a study's thousand
    // trials.
    let (_, a, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let a = *a;
    let b = match hi == lo {
        true => a,
        false => above.iter().copied().min_by(f64::total_cmp).unwrap_or(a),
    };
    // numpy's `_lerp`: from the nearer end, for symmetry.
    let diff = b - a;
    match gamma >= 0.5 {
        true => b - diff * (1.0 - gamma),
        false => a + diff * gamma,
    }
}

#[cfg(test)]
mod tests {
    use super::nan_percentile;

    #[test]
    fn percentiles_interpolate_as_numpy_does() {
        // np.percentile([1, 2, 3, 4], q) for q in (0, 25, 50, 75, 100, 33.3).
        let want = [1.0, 1.75, 2.5, 3.25, 4.0, 1.999];
        for (q, want) in [0.0, 25.0, 50.0, 75.0, 100.0, 33.3].into_iter().zip(want) {
            let got = nan_percentile(&mut [4.0, 1.0, 3.0, 2.0], q);
            assert!((got - want).abs() < 1e-12, "q {q}: {got} vs {want}");
        }
        assert!(nan_percentile(&mut [], 50.0).is_nan());
        assert_eq!(nan_percentile(&mut [7.0], 90.0), 7.0);
    }
}
