//! W&B's Hyperband early termination (`early_terminate: {type: hyperband}`) for runs that
//! report as they go — the rule its agent applies to external programs. Bands are
//! iteration counts: `min_iter·η^k`, or `max_iter/η^k` for k = 1..s. When a run reaches a
//! band it is compared with every run that reached that band: it stops if it is worse than
//! the value at position ⌊n/η⌋ of the n values there, best first (so roughly the top 1/η
//! continue, and the band's first run always does).
//!
//! Iterations are 1-based: iteration i is the run's i-th report of the metric, so a band at
//! 1 judges the first value. `strict: true` judges the value at the band; otherwise the
//! run's best value up to the band (a run that peaked earlier is not stopped for a dip).

use super::{Arrival, Decision, Scheduler};
use std::collections::BTreeMap;

/// The bands and the rule; values are lower-is-better (the caller flips a maximised metric).
#[derive(Clone, Debug, PartialEq)]
pub struct BandStopping {
    /// Ascending, distinct, all ≥ 1.
    pub bands: Vec<usize>,
    pub eta: usize,
    pub strict: bool,
}

impl BandStopping {
    /// Bands `min_iter·η^k` up to `limit` (the most iterations a run will report; W&B keeps
    /// 100 of them, far past any run).
    pub fn from_min_iter(min_iter: usize, eta: usize, limit: usize, strict: bool) -> Self {
        let mut bands = Vec::new();
        let mut band = min_iter.max(1);
        while band <= limit {
            bands.push(band);
            match band.checked_mul(eta) {
                Some(next) => band = next,
                None => break,
            }
        }
        BandStopping { bands, eta, strict }
    }

    /// Bands `⌊max_iter/η^k⌋` for k = 1..=s, those ≥ 1, ascending (W&B's `max_iter`, `s`).
    pub fn from_max_iter(max_iter: usize, s: u32, eta: usize, strict: bool) -> Self {
        let mut bands: Vec<usize> = (1..=s)
            .map(|k| max_iter as f64 / (eta as f64).powi(k as i32))
            .take_while(|&b| b >= 1.0)
            .map(|b| b as usize)
            .collect();
        bands.sort_unstable();
        bands.dedup();
        BandStopping { bands, eta, strict }
    }

    /// The value a run is judged by at `band` (1-based), if it got there.
    fn judged(&self, history: &[f64], band: usize) -> Option<f64> {
        let upto = history.get(..band)?;
        if self.strict {
            upto.last().copied()
        } else {
            upto.iter().copied().reduce(f64::min)
        }
    }

    /// Whether the run with `history` stops now, having just reached `history.len()`
    /// iterations; `others` are the histories of every other run of the sweep (running or
    /// finished). Only a run standing exactly on a band is judged. A non-finite value
    /// counts as the worst.
    pub fn should_stop(&self, history: &[f64], others: &[&[f64]]) -> bool {
        let band = history.len();
        if !self.bands.contains(&band) {
            return false;
        }
        let clean = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
        let Some(mine) = self.judged(history, band).map(clean) else {
            return false;
        };
        let mut values: Vec<f64> = others
            .iter()
            .filter_map(|h| self.judged(h, band).map(clean))
            .collect();
        values.push(mine);
        values.sort_by(f64::total_cmp);
        mine > values[values.len() / self.eta]
    }
}

/// W&B's band rule as a [`Scheduler`]: it keeps every trial's curve as reported (lower
/// is better inside, so a maximised metric is negated) and judges each arrival against
/// every other trial's at the same band.
#[derive(Clone, Debug)]
pub struct BandScheduler {
    pub rule: BandStopping,
    curves: BTreeMap<usize, Vec<f64>>,
}

impl BandScheduler {
    /// The rule with no curve seen yet.
    pub fn new(rule: BandStopping) -> Self {
        BandScheduler {
            rule,
            curves: BTreeMap::new(),
        }
    }

    /// Sets `trial`'s curve to `curve` as reported (an attempt starting over, or a trial
    /// read back from the journal on resume).
    pub fn restart(&mut self, trial: usize, curve: &[f64], maximize: bool) {
        let sign = if maximize { -1.0 } else { 1.0 };
        self.curves
            .insert(trial, curve.iter().map(|v| sign * v).collect());
    }
}

impl Scheduler for BandScheduler {
    fn name(&self) -> &'static str {
        "wandb-hyperband"
    }

    /// A program decides how long it reports: no full budget is known.
    fn max_budget(&self) -> Option<usize> {
        None
    }

    fn synchronous(&self) -> bool {
        false
    }

    fn is_rung(&self, _trial: usize, epochs: usize) -> bool {
        self.rule.bands.contains(&epochs)
    }

    fn decide(&mut self, arrivals: &[Arrival<'_>], maximize: bool) -> Vec<(usize, Decision)> {
        let sign = if maximize { -1.0 } else { 1.0 };
        arrivals
            .iter()
            .map(|a| {
                let mine: Vec<f64> = a.curve.iter().map(|v| sign * v).collect();
                let others: Vec<&[f64]> = self
                    .curves
                    .iter()
                    .filter(|(&n, _)| n != a.trial)
                    .map(|(_, h)| h.as_slice())
                    .collect();
                let keep = a.score.is_some() && !self.rule.should_stop(&mine, &others);
                self.curves.insert(a.trial, mine);
                (a.trial, Decision::keep(keep))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_follow_wandb() {
        assert_eq!(
            BandStopping::from_min_iter(1, 3, 30, false).bands,
            [1, 3, 9, 27]
        );
        assert_eq!(
            BandStopping::from_min_iter(2, 2, 16, false).bands,
            [2, 4, 8, 16]
        );
        // W&B's docstring example: max_iter 5, eta 2, s 2 → bands 1 and 2.
        assert_eq!(BandStopping::from_max_iter(5, 2, 2, false).bands, [1, 2]);
        assert_eq!(
            BandStopping::from_max_iter(81, 3, 3, false).bands,
            [3, 9, 27]
        );
        assert_eq!(
            BandStopping::from_max_iter(2, 4, 3, false).bands,
            Vec::<usize>::new()
        );
    }

    #[test]
    fn keeps_about_the_top_third_and_the_first_run() {
        let rule = BandStopping::from_min_iter(1, 3, 9, true);
        assert!(
            !rule.should_stop(&[5.0], &[]),
            "the first run at a band continues"
        );
        let done: Vec<Vec<f64>> = (0..9).map(|i| vec![i as f64]).collect();
        let others: Vec<&[f64]> = done.iter().map(Vec::as_slice).collect();
        // Ten values 0..8 plus mine: position ⌊10/3⌋ = 3 of the sorted values.
        assert!(!rule.should_stop(&[2.5], &others));
        assert!(
            !rule.should_stop(&[3.0], &others),
            "equal to the threshold continues"
        );
        assert!(rule.should_stop(&[3.5], &others));
        assert!(rule.should_stop(&[f64::NAN], &others), "NaN is the worst");
        // Between bands nothing is judged.
        assert!(!rule.should_stop(&[100.0, 100.0], &others));
    }

    #[test]
    fn lenient_mode_judges_the_best_value_so_far() {
        let strict = BandStopping::from_min_iter(3, 3, 9, true);
        let lenient = BandStopping {
            strict: false,
            ..strict.clone()
        };
        let a = [1.0, 1.0, 1.0];
        let b = [1.0, 1.0, 1.0];
        let dip = [0.5, 2.0, 2.0];
        assert!(strict.should_stop(&dip, &[&a, &b]));
        assert!(!lenient.should_stop(&dip, &[&a, &b]));
    }
}
