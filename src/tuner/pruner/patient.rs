//! Optuna's `PatientPruner`: a trial whose best value over its last `patience + 1` steps is
//! no better (by more than `min_delta`) than its best before them has stalled; the wrapped
//! pruner then decides, or the trial is pruned when there is none.

use super::{nan_best, Context, Rule};
use crate::storage::FrozenTrial;

pub(super) struct Patient {
    pub wrapped: Option<Rule>,
    pub patience: usize,
    pub min_delta: f64,
}

impl Patient {
    pub(super) fn prune(
        &mut self,
        ctx: &Context<'_>,
        trial: &FrozenTrial,
        passed: &mut Vec<(usize, f64)>,
    ) -> bool {
        if trial.intermediate.len() <= self.patience + 1 {
            return false;
        }
        let mut by_step = trial.intermediate.clone();
        by_step.sort_by_key(|&(step, _)| step);
        let (before, after) = by_step.split_at(by_step.len() - self.patience - 1);
        let best_before = nan_best(before.iter().map(|&(_, v)| v), ctx.maximize);
        let best_after = nan_best(after.iter().map(|&(_, v)| v), ctx.maximize);
        // A NaN on either side compares false: no verdict of stalling.
        let stalled = match ctx.maximize {
            true => best_before - self.min_delta > best_after,
            false => best_before + self.min_delta < best_after,
        };
        match (stalled, &mut self.wrapped) {
            (false, _) => false,
            (true, Some(rule)) => rule.prune(ctx, trial, passed),
            (true, None) => true,
        }
    }
}
