//! Optuna's `SuccessiveHalvingPruner` (asynchronous successive halving) and
//! `HyperbandPruner` (several halving brackets, a trial's bracket drawn by a hash).
//!
//! A trial reaching rung k's step (`min_resource · η^(rate + k)`) records its value at
//! that rung in the study, and goes on only if that value is in the best 1/η of the values
//! recorded at rung k so far. The records are shared, so trials that run at once see each
//! other's rungs as they pass them.

use super::Context;
use crate::storage::FrozenTrial;

pub(super) struct SuccessiveHalving {
    /// `None` is "auto" until the first estimate, then fixed.
    pub min_resource: Option<u64>,
    pub reduction_factor: u64,
    pub min_early_stopping_rate: u32,
    pub bootstrap_count: usize,
}

impl SuccessiveHalving {
    pub(super) fn prune(
        &mut self,
        ctx: &Context<'_>,
        trial: &FrozenTrial,
        passed: &mut Vec<(usize, f64)>,
    ) -> bool {
        let Some(step) = trial.last_step() else {
            return false;
        };
        let mut rung = trial.completed_rungs.len();
        let value = trial.intermediate_at(step).unwrap_or(f64::NAN);
        loop {
            let min_resource = match self.min_resource {
                Some(r) => r,
                None => match estimate_min_resource(ctx) {
                    Some(r) => *self.min_resource.insert(r),
                    None => return false,
                },
            };
            let exponent = self.min_early_stopping_rate as u64 + rung as u64;
            let promotion_step = u32::try_from(exponent)
                .ok()
                .and_then(|e| self.reduction_factor.checked_pow(e))
                .and_then(|f| f.checked_mul(min_resource))
                .unwrap_or(u64::MAX);
            if step < promotion_step {
                return false;
            }
            if value.is_nan() {
                return true;
            }
            passed.push((rung, value));
            // The other trials' values at this rung (the trial itself has none there yet),
            // then this one.
            let mut competing: Vec<f64> = ctx
                .trials
                .iter()
                .filter(|t| t.number != trial.number)
                .filter_map(|t| t.completed_rungs.get(rung).copied())
                .collect();
            competing.push(value);
            if competing.len() <= self.bootstrap_count
                || !promotable(value, &mut competing, self.reduction_factor, ctx.maximize)
            {
                return true;
            }
            rung += 1;
        }
    }
}

/// Optuna's "auto" minimum resource: the longest completed trial's last step / 100.
fn estimate_min_resource(ctx: &Context<'_>) -> Option<u64> {
    let last = ctx.completed().filter_map(|t| t.last_step()).max()?;
    Some((last / 100).max(1))
}

/// Whether `value` is among the best `len / η` of `competing` (the best one alone while
/// fewer than η have arrived: Optuna cannot pause a trial to wait for more).
fn promotable(value: f64, competing: &mut [f64], eta: u64, maximize: bool) -> bool {
    let index = (competing.len() / eta as usize).saturating_sub(1);
    // Python's sort of floats; values here are never NaN.
    competing.sort_by(f64::total_cmp);
    match maximize {
        true => value >= competing[competing.len() - 1 - index],
        false => value <= competing[index],
    }
}

pub(super) struct Hyperband {
    min_resource: u64,
    /// `None` is "auto" until the first completed trial, then fixed.
    max_resource: Option<u64>,
    reduction_factor: u64,
    bootstrap_count: usize,
    /// One successive halving per bracket, built once the maximum resource is known.
    brackets: Vec<SuccessiveHalving>,
    /// Trials each bracket takes, in bracket order (Hyperband's allocation).
    budgets: Vec<u64>,
    /// Each trial number's bracket, computed once.
    bracket_of: Vec<u8>,
}

impl Hyperband {
    pub(super) fn new(
        min_resource: u64,
        max_resource: Option<u64>,
        reduction_factor: u64,
        bootstrap_count: usize,
    ) -> Hyperband {
        Hyperband {
            min_resource,
            max_resource,
            reduction_factor,
            bootstrap_count,
            brackets: Vec::new(),
            budgets: Vec::new(),
            bracket_of: Vec::new(),
        }
    }

    pub(super) fn prune(
        &mut self,
        ctx: &Context<'_>,
        trial: &FrozenTrial,
        passed: &mut Vec<(usize, f64)>,
    ) -> bool {
        if self.brackets.is_empty() {
            self.initialize(ctx);
            if self.brackets.is_empty() {
                return false;
            }
        }
        let bracket = self.bracket(ctx.study_name, trial.number);
        let in_bracket: Vec<&FrozenTrial> = ctx
            .trials
            .iter()
            .filter(|t| self.bracket(ctx.study_name, t.number) == bracket)
            .collect();
        let bracket_ctx = Context {
            trials: super::Trials::Some(&in_bracket),
            ..*ctx
        };
        self.brackets[bracket].prune(&bracket_ctx, trial, passed)
    }

    /// Optuna's `_try_initialization`: the brackets once the maximum resource is known.
    fn initialize(&mut self, ctx: &Context<'_>) {
        let max_resource = match self.max_resource {
            Some(r) => r,
            None => match ctx.completed().filter_map(|t| t.last_step()).max() {
                Some(last) => *self.max_resource.insert(last + 1),
                None => return,
            },
        };
        // floor(log_η(max / min)) + 1, computed as Python's math.log(x, base) does.
        let ratio = max_resource as f64 / self.min_resource as f64;
        let n = (ratio.ln() / (self.reduction_factor as f64).ln()).floor() + 1.0;
        let n_brackets = if n > 0.0 { n as u32 } else { 0 };
        for bracket in 0..n_brackets {
            let s = n_brackets - 1 - bracket;
            let trials = n_brackets as f64 * (self.reduction_factor as f64).powi(s as i32)
                / (s as f64 + 1.0);
            self.budgets.push(trials.ceil() as u64);
            self.brackets.push(SuccessiveHalving {
                min_resource: Some(self.min_resource),
                reduction_factor: self.reduction_factor,
                min_early_stopping_rate: bracket,
                bootstrap_count: self.bootstrap_count,
            });
        }
    }

    /// Optuna's `_get_bracket_id`: crc32 of "{study}_{number}" over the allocation.
    fn bracket(&mut self, study_name: &str, number: usize) -> usize {
        if let Some(&b) = self.bracket_of.get(number) {
            return b as usize;
        }
        let total: u64 = self.budgets.iter().sum();
        for n in self.bracket_of.len()..=number {
            let hash = crc32fast::hash(format!("{study_name}_{n}").as_bytes()) as u64;
            let mut left = (hash % total) as i128;
            let mut bracket = 0;
            for (b, budget) in self.budgets.iter().enumerate() {
                left -= *budget as i128;
                if left < 0 {
                    bracket = b;
                    break;
                }
            }
            self.bracket_of.push(bracket as u8);
        }
        self.bracket_of[number] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_keeps_the_best_fraction() {
        // Four values at a rung with η = 2: the best two go on.
        for (value, want) in [(1.0, true), (2.0, true), (3.0, false), (4.0, false)] {
            let mut competing = vec![4.0, 2.0, 3.0, 1.0];
            assert_eq!(promotable(value, &mut competing, 2, false), want, "{value}");
        }
        // Fewer than η: only the best goes on.
        assert!(promotable(5.0, &mut [5.0, 3.0], 3, true));
        assert!(!promotable(3.0, &mut [5.0, 3.0], 3, true));
    }
}
