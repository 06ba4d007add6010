//! Hyperband (Li, Jamieson, DeSalvo, Rostamizadeh, Talwalkar; JMLR 18, 2018), Algorithm 1:
//! several successive-halving brackets that trade the number of configurations against
//! the budget each starts with, hedging against a bad choice of the minimum budget.
//!
//! With maximum budget `R` (in units of the minimum budget) and `η`:
//! `s_max = ⌊log_η R⌋`, `B = (s_max + 1)·R`; bracket `s = s_max … 0` starts
//! `n = ⌈(B/R)·η^s/(s + 1)⌉` configurations at budget `r = R·η^(−s)`, and its rung `i`
//! keeps `n_i = ⌊n·η^(−i)⌋` configurations trained to `r_i = r·η^i`.

use super::SuccessiveHalving;

/// One rung of a bracket: how many configurations, trained to what budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rung {
    pub n: usize,
    pub budget: usize,
}

/// One bracket: its index `s` and its rungs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bracket {
    pub s: usize,
    pub rungs: Vec<Rung>,
}

impl Bracket {
    /// Configurations the bracket starts.
    pub fn trials(&self) -> usize {
        self.rungs[0].n
    }

    /// The bracket as a successive-halving schedule (its rungs are exactly the ones
    /// `SuccessiveHalving` computes from the first budget, `R` and `η`).
    pub fn halving(&self, eta: usize) -> SuccessiveHalving {
        SuccessiveHalving {
            min_budget: self.rungs[0].budget,
            max_budget: self.rungs.last().map_or(1, |r| r.budget),
            eta,
        }
    }

    /// Epochs the bracket trains in total: `Σ_i n_i·(r_i − r_{i−1})` (survivors continue).
    pub fn epochs(&self) -> usize {
        let mut previous = 0;
        self.rungs
            .iter()
            .map(|r| {
                let e = r.n * (r.budget - previous);
                previous = r.budget;
                e
            })
            .sum()
    }
}

/// Trials in all of Hyperband's brackets over `[min_budget, max_budget]`.
pub fn total_trials(min_budget: usize, max_budget: usize, eta: usize) -> usize {
    brackets(min_budget, max_budget, eta)
        .iter()
        .map(Bracket::trials)
        .sum()
}

/// Hyperband's brackets for budgets from `min_budget` to `max_budget` (epochs) and `eta`.
/// Budgets are multiples of `min_budget`; `R = max_budget / min_budget`.
pub fn brackets(min_budget: usize, max_budget: usize, eta: usize) -> Vec<Bracket> {
    let r_max = (max_budget / min_budget.max(1)).max(1);
    let mut s_max = 0;
    while eta.pow(s_max as u32 + 1) <= r_max {
        s_max += 1;
    }
    (0..=s_max)
        .rev()
        .map(|s| {
            let eta_s = eta.pow(s as u32);
            // n = ⌈(s_max + 1)/(s + 1) · η^s⌉, in integers.
            let n = ((s_max + 1) * eta_s).div_ceil(s + 1);
            let r = r_max / eta_s;
            let rungs = (0..=s)
                .map(|i| Rung {
                    n: n / eta.pow(i as u32),
                    budget: (r * eta.pow(i as u32)).min(r_max) * min_budget.max(1),
                })
                .collect();
            Bracket { s, rungs }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table 1 of Li et al. (2018): R = 81, η = 3.
    #[test]
    fn brackets_match_the_hyperband_paper_for_r81_eta3() {
        let want: [(usize, &[(usize, usize)]); 5] = [
            (4, &[(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)]),
            (3, &[(34, 3), (11, 9), (3, 27), (1, 81)]),
            (2, &[(15, 9), (5, 27), (1, 81)]),
            (1, &[(8, 27), (2, 81)]),
            (0, &[(5, 81)]),
        ];
        let got = brackets(1, 81, 3);
        assert_eq!(got.len(), want.len());
        for (bracket, (s, rungs)) in got.iter().zip(want) {
            assert_eq!(bracket.s, s);
            let pairs: Vec<(usize, usize)> =
                bracket.rungs.iter().map(|r| (r.n, r.budget)).collect();
            assert_eq!(pairs, rungs.to_vec(), "bracket s = {s}");
        }
    }

    #[test]
    fn brackets_agree_with_successive_halving_and_scale_with_min_budget() {
        for bracket in brackets(2, 54, 3) {
            let sh = bracket.halving(3);
            let budgets: Vec<usize> = bracket.rungs.iter().map(|r| r.budget).collect();
            assert_eq!(sh.rungs(), budgets);
            let mut n = bracket.trials();
            for rung in &bracket.rungs[1..] {
                n = sh.survivors(n);
                assert_eq!(n, rung.n);
            }
        }
        assert_eq!(brackets(2, 54, 3)[0].rungs[0].budget, 2);
        assert_eq!(
            brackets(1, 81, 3)[0].epochs(),
            81 + 27 * 2 + 9 * 6 + 3 * 18 + 54
        );
    }
}
