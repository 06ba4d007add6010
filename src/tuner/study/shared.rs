//! What workers sharing one study (a database) record for each other: passed rungs
//! (ASHA decides on every worker's arrivals), curves (median stopping compares with every
//! worker's completed trials) and claims (work done once per study, such as the final
//! test evaluation).

use super::Study;
use crate::error::{Error, Result};
use crate::storage::{Op, StudyState, TrialState};

impl Study {
    /// Claims `what` for this process if nobody has and `ready` holds for the study (see
    /// [`Op::Claim`]); whether it was claimed here.
    pub fn claim(&mut self, what: &str, ready: impl Fn(&StudyState) -> bool) -> Result<bool> {
        self.storage
            .transact(|state| {
                Ok(match !state.claims.contains(what) && ready(state) {
                    true => (vec![Op::Claim { what: what.into() }], true),
                    false => (Vec::new(), false),
                })
            })?
            .map_err(Error::Run)
    }

    /// Records `(trial, rung, value)` as passed rungs (see [`Op::Rung`]) so that other
    /// workers' schedulers see them; trials no longer running (failed meanwhile by an
    /// expired lease) are left out.
    pub fn record_rungs(&mut self, rungs: &[(usize, usize, f64)]) -> Result<()> {
        self.storage
            .transact(|state| {
                let running = |t: usize| {
                    state
                        .trials
                        .get(t)
                        .is_some_and(|t| t.state == TrialState::Running)
                };
                let ops = rungs
                    .iter()
                    .filter(|&&(trial, rung, _)| {
                        running(trial) && state.trials[trial].completed_rungs.len() == rung
                    })
                    .map(|&(trial, rung, value)| Op::Rung { trial, rung, value })
                    .collect();
                Ok((ops, ()))
            })?
            .map_err(Error::Run)
    }
}
