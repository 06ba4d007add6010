//! Median stopping with Optuna's `MedianPruner` semantics: once `n_startup_trials` trials
//! have completed, a trial is stopped at an epoch (after `n_warmup_steps` epochs, every
//! `interval_steps`) when its best value so far is worse than the median of the completed
//! trials' values at that same epoch.

use super::{Arrival, Decision, Scheduler};

#[derive(Clone, Debug)]
pub struct MedianStopping {
    pub n_startup_trials: usize,
    pub n_warmup_steps: usize,
    pub interval_steps: usize,
    /// The full budget: a trial arriving there completes, whatever its value.
    pub max_budget: usize,
    /// Each completed trial's metric per epoch (index 0 = after epoch 1).
    completed: Vec<Vec<f64>>,
}

impl MedianStopping {
    pub fn new(
        n_startup_trials: usize,
        n_warmup_steps: usize,
        interval_steps: usize,
        max_budget: usize,
    ) -> Self {
        MedianStopping {
            n_startup_trials,
            n_warmup_steps,
            interval_steps: interval_steps.max(1),
            max_budget,
            completed: Vec::new(),
        }
    }

    /// Remembers a completed trial's curve.
    pub fn record_complete(&mut self, values: &[f64]) {
        self.completed.push(values.to_vec());
    }

    /// Whether a running trial with `values` (one per epoch trained) stops now.
    pub fn should_stop(&self, values: &[f64], maximize: bool) -> bool {
        let step = values.len();
        if step == 0
            || self.completed.is_empty()
            || self.completed.len() < self.n_startup_trials
            || step < self.n_warmup_steps
            || !(step - self.n_warmup_steps).is_multiple_of(self.interval_steps)
        {
            return false;
        }
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let best = if maximize {
            finite.fold(f64::NEG_INFINITY, f64::max)
        } else {
            finite.fold(f64::INFINITY, f64::min)
        };
        if !best.is_finite() {
            return true;
        }
        let mut others: Vec<f64> = self
            .completed
            .iter()
            .filter_map(|c| c.get(step - 1).copied())
            .filter(|v| v.is_finite())
            .collect();
        if others.is_empty() {
            return false;
        }
        let median = median(&mut others);
        if maximize {
            best < median
        } else {
            best > median
        }
    }
}

/// numpy's median (the mean of the two middle values for an even count), as Optuna takes it.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

impl Scheduler for MedianStopping {
    fn name(&self) -> &'static str {
        "median"
    }

    fn max_budget(&self) -> Option<usize> {
        Some(self.max_budget)
    }

    fn synchronous(&self) -> bool {
        false
    }

    /// Median stopping judges steps, not rungs: no value is recorded as a rung's.
    fn is_rung(&self, _trial: usize, _epochs: usize) -> bool {
        false
    }

    fn decide(&mut self, arrivals: &[Arrival<'_>], maximize: bool) -> Vec<(usize, Decision)> {
        arrivals
            .iter()
            .map(|a| {
                let keep = a.score.is_some()
                    && (a.epochs() >= self.max_budget || !self.should_stop(a.curve, maximize));
                (a.trial, Decision::keep(keep))
            })
            .collect()
    }

    fn complete(&mut self, _trial: usize, curve: &[f64]) {
        self.record_complete(curve);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_below_the_median_only_after_startup_and_warmup() {
        let mut m = MedianStopping::new(2, 1, 1, 10);
        assert!(!m.should_stop(&[0.1], true), "no completed trials yet");
        m.record_complete(&[0.5, 0.6, 0.7]);
        assert!(
            !m.should_stop(&[0.1, 0.1], true),
            "one of two startup trials"
        );
        m.record_complete(&[0.3, 0.8, 0.9]);
        // Medians per epoch: 0.4, 0.7, 0.8.
        assert!(!m.should_stop(&[], true));
        assert!(m.should_stop(&[0.1, 0.2], true));
        assert!(
            !m.should_stop(&[0.1, 0.75], true),
            "best 0.75 beats the median 0.7"
        );
        assert!(
            !m.should_stop(&[0.9, 0.2], true),
            "the best so far counts, not the last"
        );
        assert!(m.should_stop(&[0.1, 0.1, 0.79], true));
        assert!(
            !m.should_stop(&[0.1, 0.1, 0.1, 0.1], true),
            "no completed trial has epoch 4"
        );
        // Minimising: stop when the best (lowest) value is above the median.
        assert!(
            !m.should_stop(&[0.1, 0.9], false),
            "best 0.1 is below the median 0.7"
        );
        assert!(m.should_stop(&[0.75, 0.9], false));
    }

    #[test]
    fn warmup_and_interval_skip_steps() {
        let mut m = MedianStopping::new(1, 2, 2, 10);
        m.record_complete(&[0.9, 0.9, 0.9, 0.9, 0.9]);
        assert!(
            !m.should_stop(&[0.1], true),
            "epoch 1 is inside the warm-up"
        );
        assert!(m.should_stop(&[0.1, 0.1], true));
        assert!(
            !m.should_stop(&[0.1, 0.1, 0.1], true),
            "epoch 3 is between intervals"
        );
        assert!(m.should_stop(&[0.1, 0.1, 0.1, 0.1], true));
        assert!(
            m.should_stop(&[f64::NAN, f64::NAN], true),
            "nothing finite: stop"
        );
    }
}
