//! What a sweep will run: its brackets and their rungs, its schedulers, and the data order
//! of every unit of training.

use super::{slots, SEED_SHUFFLE};
use crate::backend::EpochPlan;
use crate::config::{Schedule, Sweep};
use crate::rng::{derive_seed, permutation, Stream};
use crate::tuner::scheduler::{brackets, FullBudget, Scheduler, SuccessiveHalving};
use serde::Serialize;

/// One successive-halving bracket of a sweep: how many trials start, and their rungs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BracketPlan {
    pub trials: usize,
    /// Rung budgets in epochs; the last is the full budget.
    pub rungs: Vec<usize>,
    #[serde(skip)]
    pub halving: Option<SuccessiveHalving>,
}

impl BracketPlan {
    /// The scheduler that closes this bracket's rungs.
    pub fn scheduler(&self) -> Box<dyn Scheduler> {
        match self.halving {
            Some(h) => Box::new(h),
            None => Box::new(FullBudget {
                epochs: *self
                    .rungs
                    .last()
                    .expect("a bracket has its full budget as a rung"),
            }),
        }
    }
}

/// The brackets `sweep` runs, in order.
pub fn bracket_plans(sweep: &Sweep) -> Vec<BracketPlan> {
    let plan = |trials, halving: Option<SuccessiveHalving>| BracketPlan {
        trials,
        rungs: halving.map_or_else(|| vec![sweep.epochs], |h| h.rungs()),
        halving,
    };
    match sweep.schedule {
        Schedule::Full => vec![plan(sweep.run_cap, None)],
        Schedule::Halving(h) => vec![plan(sweep.run_cap, Some(h))],
        Schedule::Hyperband {
            min_budget,
            max_budget,
            eta,
        }
        | Schedule::Bohb {
            min_budget,
            max_budget,
            eta,
            ..
        } => brackets(min_budget, max_budget, eta)
            .iter()
            .map(|b| plan(b.trials(), Some(b.halving(eta))))
            .collect(),
        Schedule::Asha { .. } | Schedule::Median { .. } | Schedule::Pbt(_) => Vec::new(),
    }
}

/// The schedulers `sweep` decides with: one per bracket for the bracket schedules (full
/// budget, successive halving, Hyperband, BOHB), one for a slot schedule (ASHA, median
/// stopping, PBT).
pub fn schedulers(sweep: &Sweep) -> Vec<Box<dyn Scheduler>> {
    match sweep.schedule {
        Schedule::Asha { .. } | Schedule::Median { .. } | Schedule::Pbt(_) => {
            vec![slots::scheduler(sweep)]
        }
        _ => bracket_plans(sweep)
            .iter()
            .map(BracketPlan::scheduler)
            .collect(),
    }
}

/// The data a sweep trains on in budget unit `unit` (its `unit`-th epoch when
/// `epoch_fraction` is 1): rows `[unit·f·n, (unit+1)·f·n)` of the endless sequence of
/// shuffled passes over the `rows` training rows, pass `p` being the permutation keyed by
/// `p`. With f = 1 a unit is exactly pass `unit`; with f < 1 a large data set is judged
/// every fraction of an epoch, and consecutive units never repeat a row within a pass.
pub(crate) fn epoch_plan(sweep: &Sweep, rows: usize, unit: usize) -> EpochPlan {
    let seed = derive_seed(sweep.seed, SEED_SHUFFLE);
    EpochPlan {
        order: unit_order(rows, sweep.epoch_fraction, seed, unit),
        batch_size: sweep.batch_size,
    }
}

fn unit_order(rows: usize, fraction: f64, seed: u64, unit: usize) -> Vec<usize> {
    if fraction >= 1.0 {
        return permutation(rows, seed, Stream::Shuffle, unit as u32);
    }
    // Boundaries rounded from the exact product, so units tile the passes with no gap.
    let at = |u: usize| (u as f64 * fraction * rows as f64).round() as usize;
    let (start, end) = (at(unit), at(unit + 1));
    let mut order = Vec::with_capacity(end - start);
    let mut position = start;
    while position < end {
        let pass = position / rows;
        let perm = permutation(rows, seed, Stream::Shuffle, pass as u32);
        let upto = end.min((pass + 1) * rows);
        order.extend_from_slice(&perm[position - pass * rows..upto - pass * rows]);
        position = upto;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_epoch_unit_is_that_epochs_permutation() {
        for unit in 0..3 {
            assert_eq!(
                unit_order(50, 1.0, 9, unit),
                permutation(50, 9, Stream::Shuffle, unit as u32)
            );
        }
    }

    #[test]
    fn fractional_units_tile_consecutive_passes_without_gaps_or_repeats() {
        let passes: Vec<usize> = (0..4)
            .flat_map(|p| permutation(10, 9, Stream::Shuffle, p))
            .collect();
        for fraction in [1.0f64 / 3.0, 0.4, 0.25, 0.7] {
            let units = (4.0 / fraction).floor() as usize;
            let tiled: Vec<usize> = (0..units)
                .flat_map(|u| unit_order(10, fraction, 9, u))
                .collect();
            assert_eq!(tiled, passes[..tiled.len()], "fraction {fraction}");
            assert!(
                tiled.len() + 10 > 40,
                "fraction {fraction}: {}",
                tiled.len()
            );
        }
        // A third of ten rows: 3, 4 and 3 rows (boundaries 3.33 and 6.67 rounded).
        let sizes: Vec<usize> = (0..3)
            .map(|u| unit_order(10, 1.0 / 3.0, 9, u).len())
            .collect();
        assert_eq!(sizes, [3, 4, 3]);
    }
}
