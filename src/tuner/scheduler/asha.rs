//! Asynchronous successive halving (ASHA; Li et al., MLSys 2020), in the stopping form that
//! Optuna's `SuccessiveHalvingPruner` uses: rungs at `min · η^k` epochs below the maximum; a
//! trial reaching a rung continues iff it ranks among the best `⌊n/η⌋` — at least the best
//! one — of the `n` values recorded at that rung so far, its own included. No trial waits for
//! another, so a stopped trial's slot is refilled at once.

use super::{rank, Arrival, Decision, Scheduler, Score, SuccessiveHalving};

#[derive(Clone, Debug)]
pub struct Asha {
    /// Rung budgets (epochs) at which trials are compared; the full budget is not a rung.
    rungs: Vec<usize>,
    eta: usize,
    max_budget: usize,
    /// Every score recorded at each rung, in arrival order.
    recorded: Vec<Vec<Score>>,
}

impl Asha {
    pub fn new(halving: SuccessiveHalving) -> Self {
        let mut rungs = halving.rungs();
        rungs.pop();
        Asha {
            recorded: vec![Vec::new(); rungs.len()],
            rungs,
            eta: halving.eta,
            max_budget: halving.max_budget,
        }
    }

    pub fn rungs(&self) -> &[usize] {
        &self.rungs
    }

    /// A trial has trained `epochs` epochs and scores `score`: `None` if that is not a rung
    /// (it keeps training), else whether it continues past the rung.
    pub fn at_rung(&mut self, epochs: usize, score: Score, maximize: bool) -> Option<bool> {
        let k = self.rungs.iter().position(|&r| r == epochs)?;
        let rung = &mut self.recorded[k];
        rung.push(score);
        let promoted = (rung.len() / self.eta).max(1);
        let scores: Vec<Option<Score>> = rung.iter().copied().map(Some).collect();
        let place = rank(&scores, maximize)
            .iter()
            .position(|&i| i == rung.len() - 1);
        // A non-finite score is unranked: it never continues.
        Some(place.is_some_and(|p| p < promoted))
    }
}

impl Scheduler for Asha {
    fn name(&self) -> &'static str {
        "asha"
    }

    fn max_budget(&self) -> Option<usize> {
        Some(self.max_budget)
    }

    fn synchronous(&self) -> bool {
        false
    }

    fn is_rung(&self, _trial: usize, epochs: usize) -> bool {
        self.rungs.contains(&epochs)
    }

    fn observe_rung(&mut self, rung: usize, score: Score) {
        if let Some(values) = self.recorded.get_mut(rung) {
            values.push(score);
        }
    }

    /// Each arrival on its own: judged against what its rung has seen if it stands on one,
    /// else it continues. A failed trial stops.
    fn decide(&mut self, arrivals: &[Arrival<'_>], maximize: bool) -> Vec<(usize, Decision)> {
        arrivals
            .iter()
            .map(|a| {
                let keep = a
                    .score
                    .is_some_and(|s| self.at_rung(a.epochs(), s, maximize).unwrap_or(true));
                (a.trial, Decision::keep(keep))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asha() -> Asha {
        Asha::new(SuccessiveHalving {
            min_budget: 1,
            max_budget: 9,
            eta: 3,
        })
    }

    #[test]
    fn rungs_exclude_the_full_budget() {
        assert_eq!(asha().rungs(), &[1, 3]);
    }

    #[test]
    fn promotes_the_top_third_of_what_a_rung_has_seen() {
        let mut a = asha();
        let mut at = |v: f64| a.at_rung(1, Score::plain(v), true);
        // The first arrival is the best so far: the leader is never stopped.
        assert_eq!(at(0.5), Some(true));
        assert_eq!(at(0.4), Some(false)); // 2 values: ⌊2/3⌋ → 1 promoted, 0.4 is second
        assert_eq!(at(0.9), Some(true)); // new leader
        assert_eq!(at(0.6), Some(false)); // 4 values: 1 promoted (0.9)
        assert_eq!(at(0.2), Some(false));
        assert_eq!(at(0.8), Some(true)); // 6 values: 2 promoted (0.9, 0.8)
        assert_eq!(at(f64::NAN), Some(false));
        assert_eq!(
            a.at_rung(2, Score::plain(1.0), true),
            None,
            "2 is not a rung"
        );
    }

    #[test]
    fn another_workers_arrivals_count_among_the_rungs_values() {
        let mut a = asha();
        a.observe_rung(0, Score::plain(0.9));
        a.observe_rung(0, Score::plain(0.8));
        // 3 values at the rung: only the best (0.9, observed) is promoted.
        assert_eq!(a.at_rung(1, Score::plain(0.7), true), Some(false));
        a.observe_rung(1, Score::plain(0.1));
        assert_eq!(a.at_rung(3, Score::plain(0.5), true), Some(true));
        a.observe_rung(7, Score::plain(0.5)); // no such rung: ignored
    }

    #[test]
    fn minimising_promotes_low_values() {
        let mut a = asha();
        assert_eq!(a.at_rung(3, Score::plain(2.0), false), Some(true));
        assert_eq!(a.at_rung(3, Score::plain(1.0), false), Some(true));
        assert_eq!(a.at_rung(3, Score::plain(3.0), false), Some(false));
    }
}
