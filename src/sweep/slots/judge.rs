//! Judging a slot's trial after each unit: a member or a resumed run's ghost, through the
//! scheduler; which trials leave; ASHA's drain; the wall budget's cut; what the sampler
//! hears of each rung arrival.

use super::super::{curve, replay_mismatch, score};
use super::{Exit, Ghost, Running, Seat, SlotContext, Slots};
use crate::error::Result;
use crate::population::Member;
use crate::storage::{RungValue, TrialState};
use crate::tuner::scheduler::{rank, Arrival, Decision, Scheduler, Score};
use crate::tuner::study::Study;
use std::collections::BTreeMap;

impl SlotContext<'_> {
    /// A member after its latest epoch: the state it leaves in, or `None` if it continues.
    pub(super) fn judge_member(
        &self,
        policy: &mut dyn Scheduler,
        member: &Member,
        run: &mut Running,
    ) -> Option<TrialState> {
        let metric = &self.sweep.metric;
        if !member.is_alive() {
            return Some(TrialState::Failed);
        }
        let Some(now) = score(member.history.last(), &metric.name) else {
            return Some(TrialState::Failed);
        };
        if member.epochs >= self.sweep.epochs {
            run.rungs
                .push(rung_value(run.rungs.len(), member.epochs, now));
            return Some(TrialState::Complete);
        }
        // A synchronous schedule (PBT) decides for the population as a whole.
        if policy.synchronous() {
            return None;
        }
        let arrival = Arrival {
            trial: member.trial,
            curve: &curve(&member.history, &metric.name),
            score: Some(now),
            params: &run.current,
        };
        let keep = continues(policy, arrival, metric.maximize);
        if policy.is_rung(member.trial, member.epochs) {
            run.rungs
                .push(rung_value(run.rungs.len(), member.epochs, now));
            // Ranked among the rung's best: it trains on on its own merit.
            run.draining &= !keep;
        }
        (!keep).then_some(TrialState::Pruned)
    }

    /// A ghost after its latest epoch: the state it leaves in, or `None` if it continues,
    /// as the policy judges its recorded metrics (exactly as it judged the member's). A
    /// policy's stop (`Pruned`) is checked against the record once the drain has had its
    /// say; any other departure the record decides, and must be where the record says.
    pub(super) fn judge_ghost(
        &self,
        policy: &mut dyn Scheduler,
        ghost: &mut Ghost,
    ) -> Result<Option<TrialState>> {
        let (record, epochs) = (&ghost.record, ghost.epochs);
        let metric = &self.sweep.metric;
        // A failed trial's last epoch is not recorded: it held its slot one epoch longer.
        if record.state == TrialState::Failed && epochs == record.epochs + 1 {
            return Ok(Some(TrialState::Failed));
        }
        let mismatch = || replay_mismatch(record.number);
        let now = score(record.history.get(epochs - 1), &metric.name).ok_or_else(mismatch)?;
        if epochs >= self.sweep.epochs {
            return match record.state == TrialState::Complete && record.epochs == epochs {
                true => Ok(Some(TrialState::Complete)),
                false => Err(mismatch()),
            };
        }
        debug_assert!(
            !policy.synchronous(),
            "PBT trains the trials of a stopped run again"
        );
        let arrival = Arrival {
            trial: record.number,
            curve: &curve(&record.history[..epochs], &metric.name),
            score: Some(now),
            params: &record.params,
        };
        let keep = continues(policy, arrival, metric.maximize);
        if policy.is_rung(record.number, epochs) {
            ghost.draining &= !keep;
        }
        Ok((!keep).then_some(TrialState::Pruned))
    }
}

/// A trial after its latest epoch.
pub(super) struct Verdict {
    pub(super) trial: usize,
    pub(super) seat: Seat,
    /// The state it leaves in; `None` if it continues.
    pub(super) leaves: Option<TrialState>,
    pub(super) score: Option<Score>,
}

/// The trials leaving this epoch, from the verdicts: members as `(slot, state)` (PBT's
/// round leaves them out) and every exit in trial order. A ghost's verdict, drained or
/// not, must be the one its record holds.
#[allow(clippy::type_complexity)]
pub(super) fn exits_of(
    ghosts: &[Ghost],
    verdicts: Vec<Verdict>,
) -> Result<(Vec<(usize, TrialState)>, Vec<(usize, Exit)>)> {
    let mut leaving: Vec<(usize, TrialState)> = Vec::new();
    let mut exits: Vec<(usize, Exit)> = Vec::new();
    for Verdict {
        trial,
        seat,
        leaves,
        ..
    } in verdicts
    {
        match seat {
            Seat::Member(slot) => {
                if let Some(state) = leaves {
                    leaving.push((slot, state));
                    exits.push((trial, Exit::Member(slot, state)));
                }
            }
            Seat::Ghost(i) => {
                let ghost = &ghosts[i];
                let recorded_stop =
                    ghost.record.state == TrialState::Pruned && ghost.record.epochs == ghost.epochs;
                if (leaves == Some(TrialState::Pruned)) != recorded_stop {
                    return Err(replay_mismatch(trial));
                }
                if leaves.is_some() {
                    exits.push((trial, Exit::Ghost(i)));
                }
            }
        }
    }
    Ok((leaving, exits))
}

/// ASHA's `drain: train`. A slot that no trial will take (fewer trials are left to start,
/// `refills`, than leave this epoch) keeps one of the trials ASHA stops, the best first,
/// draining, while any trial ASHA keeps stays (the sweep trains that long anyway); a
/// draining trial leaves when none does, or when `refills` is `None` (`metric.target` is
/// reached: the sweep winds down).
pub(super) fn drain_slots(
    verdicts: &mut [Verdict],
    refills: Option<usize>,
    maximize: bool,
    running: &mut BTreeMap<usize, Running>,
    ghosts: &mut [Ghost],
) {
    let was: Vec<bool> = verdicts
        .iter()
        .map(|v| match v.seat {
            Seat::Member(_) => running[&v.trial].draining,
            Seat::Ghost(g) => ghosts[g].draining,
        })
        .collect();
    let kept = refills.is_some()
        && (verdicts.iter().zip(&was)).any(|(v, &was)| v.leaves.is_none() && !was);
    let mut now = vec![false; verdicts.len()];
    if kept {
        // Draining trials between rungs stay; of those ASHA stops now, as many as the
        // trials left to start cannot replace, the best first.
        let leaving = verdicts.iter().filter(|v| v.leaves.is_some()).count();
        let stopped: Vec<usize> = (0..verdicts.len())
            .filter(|&i| verdicts[i].leaves == Some(TrialState::Pruned))
            .collect();
        let scores: Vec<Option<Score>> = stopped.iter().map(|&i| verdicts[i].score).collect();
        let spare = leaving.saturating_sub(refills.unwrap_or(0));
        for k in rank(&scores, maximize).into_iter().take(spare) {
            now[stopped[k]] = true;
        }
        for (i, v) in verdicts.iter().enumerate() {
            now[i] |= was[i] && v.leaves.is_none();
        }
    }
    for (i, v) in verdicts.iter_mut().enumerate() {
        if now[i] {
            v.leaves = None;
        } else if was[i] && v.leaves.is_none() {
            v.leaves = Some(TrialState::Pruned);
        }
        match v.seat {
            Seat::Member(_) => {
                running
                    .get_mut(&v.trial)
                    .expect("every member is running")
                    .draining = now[i]
            }
            Seat::Ghost(g) => ghosts[g].draining = now[i],
        }
    }
}

/// Whether an asynchronous scheduler lets `arrival` continue.
pub(super) fn continues(policy: &mut dyn Scheduler, arrival: Arrival<'_>, maximize: bool) -> bool {
    let trial = arrival.trial;
    policy
        .decide(&[arrival], maximize)
        .iter()
        .all(|(t, d)| *t != trial || *d != Decision::Stop)
}

pub(super) fn rung_value(rung: usize, epochs: usize, score: Score) -> RungValue {
    RungValue {
        rung,
        epochs,
        value: score.value,
    }
}

/// Every rung arrival teaches the sampler at once, kept or stopped: its value at that
/// step, so that TPE asked for the next trial ranks a trial ASHA promoted while it still
/// trains (`TpeOptions::running_with_values`), not only once it leaves. A resumed run's
/// ghosts report the same values at the same ticks, so its asks are the same.
pub(super) fn report_arrivals(
    verdicts: &[Verdict],
    s: &Slots<'_>,
    study: &mut Study,
) -> Result<()> {
    for v in verdicts {
        let units = match v.seat {
            Seat::Member(slot) => s.pop.members()[slot].epochs,
            Seat::Ghost(i) => s.ghosts[i].epochs,
        };
        let arrived = v.leaves != Some(TrialState::Failed) && s.policy.is_rung(v.trial, units);
        if let (true, Some(score)) = (arrived, v.score) {
            study.report_rungs(v.trial, &[(units as u64, score.value)])?;
        }
    }
    Ok(())
}

/// The wall budget ran out: every member that would train on (kept, or draining) ends
/// complete at the units it trained, its value there its last rung value.
pub(super) fn cut_short(verdicts: &mut [Verdict], s: &mut Slots<'_>) {
    for v in verdicts.iter_mut().filter(|v| v.leaves.is_none()) {
        let (Seat::Member(slot), Some(score)) = (v.seat, v.score) else {
            continue;
        };
        let epochs = s.pop.members()[slot].epochs;
        let run = s
            .running
            .get_mut(&v.trial)
            .expect("every member is running");
        if run.rungs.last().is_none_or(|r| r.epochs != epochs) {
            run.rungs.push(rung_value(run.rungs.len(), epochs, score));
        }
        run.draining = false;
        v.leaves = Some(TrialState::Complete);
    }
}
