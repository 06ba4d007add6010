//! Synchronous successive halving (Jamieson & Talwalkar 2016; one bracket of Hyperband,
//! Li et al. 2018): every member trains to rung budget `r_k = min · η^k`, then the best
//! `⌊n/η⌋` continue — from their current weights — and the rest stop.

use super::{rank, Arrival, Decision, Scheduler, Score};
use std::collections::BTreeMap;

/// The rung schedule of one successive-halving bracket, in epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuccessiveHalving {
    pub min_budget: usize,
    pub max_budget: usize,
    pub eta: usize,
}

impl SuccessiveHalving {
    /// Budgets at which members are compared: `min · η^k` while below `max`, then `max`.
    pub fn rungs(&self) -> Vec<usize> {
        let mut rungs = Vec::new();
        let mut budget = self.min_budget;
        while budget < self.max_budget {
            rungs.push(budget);
            budget = budget.saturating_mul(self.eta);
        }
        rungs.push(self.max_budget);
        rungs
    }

    /// How many of `n` ranked members continue past a rung: `⌊n/η⌋`, but at least one,
    /// so the leader is never stopped.
    pub fn survivors(&self, n: usize) -> usize {
        (n / self.eta).max(1).min(n)
    }

    /// Indices of `scores` (one per member, `None` for a failed member) that continue,
    /// best first; see [`rank`] for the order.
    pub fn select(&self, scores: &[Option<Score>], maximize: bool) -> Vec<usize> {
        let mut ranked = rank(scores, maximize);
        ranked.truncate(self.survivors(ranked.len()));
        ranked
    }
}

/// Ranks the arrivals of each halving rung (grouped by units trained) and keeps the
/// `survivors`; at the full budget, or off a rung, every scored arrival continues. A failed
/// trial stops.
fn halve(
    arrivals: &[Arrival<'_>],
    survivors: impl Fn(&[Option<Score>]) -> Vec<usize>,
    rungs: &[usize],
) -> Vec<(usize, Decision)> {
    let max_budget = rungs.last().copied().unwrap_or(0);
    let mut keep = vec![false; arrivals.len()];
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, a) in arrivals.iter().enumerate() {
        groups.entry(a.epochs()).or_default().push(i);
    }
    for (epochs, members) in groups {
        let scores: Vec<Option<Score>> = members.iter().map(|&i| arrivals[i].score).collect();
        let kept = if epochs >= max_budget || !rungs.contains(&epochs) {
            (0..scores.len()).filter(|&i| scores[i].is_some()).collect()
        } else {
            survivors(&scores)
        };
        for k in kept {
            keep[members[k]] = true;
        }
    }
    arrivals
        .iter()
        .zip(keep)
        .map(|(a, keep)| (a.trial, Decision::keep(keep)))
        .collect()
}

impl Scheduler for SuccessiveHalving {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn max_budget(&self) -> Option<usize> {
        Some(self.max_budget)
    }

    fn synchronous(&self) -> bool {
        true
    }

    fn is_rung(&self, _trial: usize, epochs: usize) -> bool {
        self.rungs().contains(&epochs)
    }

    fn decide(&mut self, arrivals: &[Arrival<'_>], maximize: bool) -> Vec<(usize, Decision)> {
        let sh = *self;
        halve(arrivals, |s| sh.select(s, maximize), &self.rungs())
    }
}

/// No early stopping: every trial trains the full budget, its one rung.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FullBudget {
    pub epochs: usize,
}

impl Scheduler for FullBudget {
    fn name(&self) -> &'static str {
        "full"
    }

    fn max_budget(&self) -> Option<usize> {
        Some(self.epochs)
    }

    fn synchronous(&self) -> bool {
        true
    }

    fn is_rung(&self, _trial: usize, epochs: usize) -> bool {
        epochs == self.epochs
    }

    /// Every scored trial continues, wherever it stands.
    fn decide(&mut self, arrivals: &[Arrival<'_>], _maximize: bool) -> Vec<(usize, Decision)> {
        let all = |s: &[Option<Score>]| (0..s.len()).filter(|&i| s[i].is_some()).collect();
        halve(arrivals, all, &[self.epochs])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_follow_powers_of_eta_and_end_at_max() {
        let sh = |min, max| SuccessiveHalving {
            min_budget: min,
            max_budget: max,
            eta: 3,
        };
        assert_eq!(sh(1, 27).rungs(), vec![1, 3, 9, 27]);
        assert_eq!(sh(1, 20).rungs(), vec![1, 3, 9, 20]);
        assert_eq!(sh(5, 5).rungs(), vec![5]);
        assert_eq!(sh(2, 81).rungs(), vec![2, 6, 18, 54, 81]);
    }

    #[test]
    fn select_keeps_a_third_best_first_and_skips_failed() {
        let sh = SuccessiveHalving {
            min_budget: 1,
            max_budget: 9,
            eta: 3,
        };
        let scores: Vec<Option<Score>> = [
            Some(0.5),
            None,
            Some(0.9),
            Some(0.7),
            Some(f64::NAN),
            Some(0.9),
        ]
        .iter()
        .map(|v| v.map(Score::plain))
        .collect();
        // Four finite values: ⌊4/3⌋ = 1 survivor; the tie at 0.9 goes to index 2.
        assert_eq!(sh.select(&scores, true), vec![2]);
        assert_eq!(sh.select(&scores, false), vec![0]);
        assert_eq!(sh.select(&[None, Some(Score::plain(1.0))], true), vec![1]);
        // The tie-break (lower is better) decides between equal values.
        let tied = [
            Some(Score {
                value: 0.9,
                tiebreak: 0.4,
            }),
            Some(Score {
                value: 0.9,
                tiebreak: 0.2,
            }),
            Some(Score::plain(0.1)),
        ];
        assert_eq!(sh.select(&tied, true), vec![1]);
        assert!(sh.select(&[None], true).is_empty());
    }
}
