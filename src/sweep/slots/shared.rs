//! A slot schedule on a study that other workers share (a database): each worker trains
//! its own slots, and they meet in the study.
//!
//! - **Asks** come from the shared history, within one `run_cap` for all workers
//!   ([`Study::ask_upto`]: the cap is checked in the ask's own transaction).
//! - **Decisions** hear every worker: before its trials are judged, the worker's scheduler
//!   hears the rung values (ASHA) and the completed curves (median stopping) that others
//!   recorded since it last looked, and its own trials' rung values are recorded for them.
//!   Two workers judging the same rung at the same instant do not see each other's
//!   arrival, as with Optuna's pruners on shared storage: asynchronous halving promotes on
//!   what has arrived so far by design.
//! - **The end**: a worker with nothing left to ask waits while trials run elsewhere, so
//!   that it takes over the retries of a worker that dies (its leases lapse); the study's
//!   final test evaluation is claimed by one worker, once all trials are finished.
//!
//! Brackets (synchronous successive halving, Hyperband, BOHB) and PBT are refused across
//! workers (`config`): a bracket's rung waits for every one of its trials and PBT's
//! exploit copies weights between members, neither of which a worker can do with trials
//! training on another machine.

use super::Running;
use crate::config::Sweep;
use crate::error::{Error, Result};
use crate::storage::{StudyState, TrialState};
use crate::tuner::scheduler::{Scheduler, Score};
use crate::tuner::study::Study;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// How long a worker with nothing to train waits between looks at the study.
const POLL: Duration = Duration::from_millis(500);

/// The claim of the study's final test evaluation.
pub(in crate::sweep) const FINAL_EVALUATION: &str = "final-evaluation";

/// What a worker knows of the others.
#[derive(Default)]
pub(super) struct Shared {
    /// Trials this worker asked.
    pub(super) mine: HashSet<usize>,
    /// Others' rung values heard so far, per trial.
    heard_rungs: HashMap<usize, usize>,
    /// Others' complete trials heard.
    heard_complete: HashSet<usize>,
    /// Whether this worker said it waits for the others.
    said_wait: bool,
}

impl Shared {
    /// Tells `policy` what other workers recorded since it last heard.
    pub(super) fn hear_others(
        &mut self,
        study: &mut Study,
        policy: &mut dyn Scheduler,
    ) -> Result<()> {
        let state = study.state()?;
        for t in &state.trials {
            if self.mine.contains(&t.number) {
                continue;
            }
            let heard = self.heard_rungs.entry(t.number).or_default();
            for (k, &v) in t.completed_rungs.iter().enumerate().skip(*heard) {
                policy.observe_rung(k, Score::plain(v));
            }
            *heard = t.completed_rungs.len();
            if t.state == TrialState::Complete
                && !t.intermediate.is_empty()
                && self.heard_complete.insert(t.number)
            {
                let mut steps = t.intermediate.clone();
                steps.sort_by_key(|&(step, _)| step);
                let curve: Vec<f64> = steps.into_iter().map(|(_, v)| v).collect();
                policy.complete(t.number, &curve);
            }
        }
        Ok(())
    }

    /// The trial whose value reached `metric.target`, if any worker's did.
    pub(super) fn target_reached_by(state: &StudyState, sweep: &Sweep) -> Option<usize> {
        let target = sweep.metric.target?;
        state
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Complete)
            .find(|t| {
                t.value.is_some_and(|v| match sweep.metric.maximize {
                    true => v >= target,
                    false => v <= target,
                })
            })
            .map(|t| t.number)
    }

    /// With nothing of its own left to train: whether to wait for trials running on other
    /// workers (whose retries this worker takes if they die). Waits one poll if so.
    pub(super) fn wait_for_others(&mut self, study: &mut Study, sweep: &Sweep) -> Result<bool> {
        let state = study.state()?;
        let elsewhere = state
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Running && !self.mine.contains(&t.number))
            .count();
        if elsewhere == 0 && !askable(state, sweep) {
            return Ok(false);
        }
        if !std::mem::replace(&mut self.said_wait, true) {
            eprintln!(
                "note: nothing left to start; waiting for {elsewhere} trials running on other \
                 workers (a dead worker's trials come back here when its leases lapse)"
            );
        }
        if crate::interrupt::requested() {
            return Err(Error::Interrupted("interrupted".into()));
        }
        std::thread::sleep(POLL);
        Ok(true)
    }

    /// Whether `trial` is still this worker's to finish: a trial failed meanwhile by an
    /// expired lease (this worker was cut off for too long) went to another worker.
    pub(super) fn still_mine(study: &mut Study, trial: usize) -> Result<bool> {
        let state = study.state()?;
        let running = state
            .trials
            .get(trial)
            .is_some_and(|t| t.state == TrialState::Running);
        if !running {
            eprintln!(
                "warning: trial {trial}: its lease lapsed while this worker was cut off; \
                 another worker retries it, and this result is dropped"
            );
        }
        Ok(running)
    }
}

/// Whether a queued configuration (a retry) is still to be asked: one is queued, the
/// study has room for it under `run_cap`, and no trial reached `metric.target`.
/// Configurations queued past the cap are never asked, and must not keep workers waiting.
pub(in crate::sweep) fn askable(state: &StudyState, sweep: &Sweep) -> bool {
    !state.queue.is_empty()
        && state.counted_trials() < sweep.run_cap
        && Shared::target_reached_by(state, sweep).is_none()
}

/// The rung values this epoch's arrivals recorded, as `(trial, rung, value)`: members of
/// `running` whose last rung value is at the epochs they have now.
pub(super) fn passed_rungs(
    running: &BTreeMap<usize, Running>,
    epochs_now: impl Fn(usize) -> Option<usize>,
    policy: &dyn Scheduler,
) -> Vec<(usize, usize, f64)> {
    running
        .iter()
        .filter_map(|(&trial, run)| {
            let last = run.rungs.last()?;
            let now = epochs_now(trial)?;
            (last.epochs == now && policy.is_rung(trial, now)).then_some((
                trial,
                run.rungs.len() - 1,
                last.value,
            ))
        })
        .collect()
}
