//! BOHB (Falkner et al., ICML 2018): Hyperband's brackets, with each bracket's
//! configurations proposed by a density model (TPE) fitted to the observations of the
//! *largest* budget that has enough of them — cheap budgets guide the search early, the
//! full budget once it has data. This file holds the choice of budget; the sweep driver fits
//! the model and mixes in random configurations.

/// The largest budget with at least `d + 2` observations (`d` parameters; BOHB's
/// `N_min = d + 1` plus one, so the good and bad densities both get points), from
/// `(budget, observation count)` pairs. `None` when no budget has enough: sample at random.
pub fn model_budget(counts: &[(usize, usize)], dimensions: usize) -> Option<usize> {
    counts
        .iter()
        .filter(|&&(_, n)| n >= dimensions + 2)
        .map(|&(b, _)| b)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_budget_with_enough_observations_is_modelled() {
        let counts = [(1, 27), (3, 9), (9, 3), (27, 1)];
        assert_eq!(model_budget(&counts, 3), Some(3));
        assert_eq!(model_budget(&counts, 1), Some(9));
        assert_eq!(model_budget(&counts, 30), None);
        assert_eq!(model_budget(&[], 1), None);
    }
}
