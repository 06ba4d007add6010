//! Bracket schedules — full budget, successive halving, Hyperband and BOHB. A bracket is
//! synchronous successive halving: its trials train together to a rung's budget, the best
//! `⌊n/η⌋` continue from their weights and the rest leave.
//!
//! Hyperband's brackets share one population when the sampler is model-free (random,
//! Sobol, grid), so no bracket's suggestions depend on another's results. Every bracket
//! starts at epoch 0 and its members train in lockstep, so at every tick all members are at
//! the same epoch and one epoch order serves them all. A member never depends on who else
//! is in the population, so each trial ends with exactly the weights it would have had
//! with the brackets run one after another — in `R` epochs of population training instead
//! of one `R` per bracket. BOHB, and model-based samplers, run the brackets in order, so
//! that each bracket's suggestions see the results of those before it.

use super::driver::{drive, Books, Driven, Refill};
use super::{
    bohb_proposals, curve, epoch_plan, insert_trial, model_size, recorded_score, replay_mismatch,
    score, went_past, BracketPlan, EpochReport, Ledger, Progress, RungReport, RungValue,
    TrialRecord,
};
use crate::backend::{Backend, EpochPlan, TrainingPopulation};
use crate::config::{Schedule, Sweep};
use crate::data::TuningData;
use crate::error::Result;
use crate::space::Params;
use crate::storage::TrialState;
use crate::tuner::sampler::SamplerKind;
use crate::tuner::scheduler::{rank, Arrival, Decision, Scheduler, Score};
use crate::tuner::study::Study;
use std::collections::BTreeMap;
use std::time::Instant;

/// One bracket as it runs: which trials it holds and how far it has got.
pub(super) struct Bracket<'a> {
    sweep: &'a Sweep,
    tuning: &'a TuningData,
    plan: &'a BracketPlan,
    /// Decides at each rung which trials go on: successive halving, or the full budget.
    scheduler: Box<dyn Scheduler>,
    /// (index, count) for progress.
    position: (usize, usize),
    /// Every trial of the bracket, by number: members of the population and trials that
    /// finished before a resume.
    params: BTreeMap<usize, Params>,
    /// Trials finished before a resume that still stand at the current rung (their
    /// recorded values take their place in the ranking).
    finished_before: Vec<TrialRecord>,
    rung_values: BTreeMap<usize, Vec<RungValue>>,
    rung: usize,
    rung_started: Instant,
    done: bool,
    /// Set when the wall budget ran out: the epoch the members stand at, taken as the
    /// current rung's budget and as the last rung.
    cut_at: Option<usize>,
}

impl<'a> Bracket<'a> {
    pub fn new(
        (sweep, tuning): (&'a Sweep, &'a TuningData),
        plan: &'a BracketPlan,
        position: (usize, usize),
        params: BTreeMap<usize, Params>,
        finished_before: Vec<TrialRecord>,
    ) -> Self {
        Bracket {
            sweep,
            tuning,
            plan,
            scheduler: plan.scheduler(),
            position,
            params,
            finished_before,
            rung_values: BTreeMap::new(),
            rung: 0,
            rung_started: Instant::now(),
            done: false,
            cut_at: None,
        }
    }

    fn budget(&self) -> usize {
        self.cut_at.unwrap_or(self.plan.rungs[self.rung])
    }

    /// The population slots holding this bracket's members, in slot order.
    fn slots(&self, pop: &dyn TrainingPopulation) -> Vec<usize> {
        (0..pop.len())
            .filter(|&s| self.params.contains_key(&pop.members()[s].trial))
            .collect()
    }

    /// Whether an alive member of this bracket has not reached the rung's budget yet.
    fn training(&self, pop: &dyn TrainingPopulation) -> bool {
        pop.members()
            .iter()
            .any(|m| m.is_alive() && self.params.contains_key(&m.trial) && m.epochs < self.budget())
    }

    /// The rung's decision, once every alive member has reached its budget: the
    /// scheduler keeps the best `⌊n/η⌋`, the rest are recorded (in `study` and `ledger`) and
    /// leave `pop`.
    fn close_rung(
        &mut self,
        pop: &mut dyn TrainingPopulation,
        ledger: &mut Ledger,
        study: &mut Study,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<()> {
        let metric = &self.sweep.metric;
        let (k, budget) = (self.rung, self.budget());
        let slots = self.slots(pop);
        let members = slots.len();
        let trained = members + self.finished_before.len();
        let scores = self.rung_scores(pop, &slots);
        let last_rung = k + 1 == self.plan.rungs.len() || self.cut_at.is_some();
        let trials: Vec<usize> = slots
            .iter()
            .map(|&s| pop.members()[s].trial)
            .chain(self.finished_before.iter().map(|r| r.number))
            .collect();
        let continuing = self.continuing(pop, &slots, &trials, &scores);
        let leader = rank(&scores, metric.maximize)
            .first()
            .and_then(|&i| Some((trials[i], scores[i]?.value)));
        let continuing_trials: Vec<usize> = continuing.iter().map(|&i| trials[i]).collect();
        let mut failed = self.record_members(pop, &slots, &continuing, last_rung, ledger, study)?;
        failed += self.settle_recorded(members, &continuing, &scores, last_rung, ledger)?;
        study.sync()?;
        on_progress(&Progress::Rung(RungReport {
            bracket: self.position.0,
            brackets: self.position.1,
            rung: k,
            rungs: self.plan.rungs.len(),
            budget,
            trained,
            continuing: if last_rung { 0 } else { continuing.len() },
            failed,
            leader,
            seconds: self.rung_started.elapsed().as_secs_f64(),
            best_seen: ledger.best_seen,
        }));
        // After the last rung every member has its record and leaves.
        let params = &self.params;
        pop.retain(&|m| {
            !params.contains_key(&m.trial) || !last_rung && continuing_trials.contains(&m.trial)
        });
        self.done = last_rung || (self.slots(pop).is_empty() && self.finished_before.is_empty());
        self.rung += 1;
        self.rung_started = Instant::now();
        Ok(())
    }

    /// Each trial's standing at this rung — the members in `slots` (a failed one has
    /// none), then the trials finished before a resume with their recorded value, after
    /// the members as they would be anyway (ties go to the lower validation loss, then the
    /// earlier slot) — and each member's value noted among its rung values.
    fn rung_scores(&mut self, pop: &dyn TrainingPopulation, slots: &[usize]) -> Vec<Option<Score>> {
        let (metric, k) = (&self.sweep.metric, self.rung);
        let mut scores: Vec<Option<Score>> = slots
            .iter()
            .map(|&s| {
                let m = &pop.members()[s];
                m.is_alive()
                    .then(|| score(m.history.last(), &metric.name))
                    .flatten()
            })
            .collect();
        scores.extend(
            self.finished_before
                .iter()
                .map(|r| recorded_score(r, k, metric)),
        );
        for (&slot, score) in slots.iter().zip(&scores) {
            if let Some(score) = score {
                let member = &pop.members()[slot];
                self.rung_values
                    .entry(member.trial)
                    .or_default()
                    .push(RungValue {
                        rung: k,
                        epochs: member.epochs,
                        value: score.value,
                    });
            }
        }
        scores
    }

    /// The indices (into `trials`: the members, then the recorded trials) the scheduler
    /// keeps. Every trial of the rung arrives together.
    fn continuing(
        &mut self,
        pop: &dyn TrainingPopulation,
        slots: &[usize],
        trials: &[usize],
        scores: &[Option<Score>],
    ) -> Vec<usize> {
        let (metric, budget) = (&self.sweep.metric, self.budget());
        let histories = slots.iter().map(|&s| &pop.members()[s].history[..]).chain(
            self.finished_before
                .iter()
                .map(|r| &r.history[..budget.min(r.history.len())]),
        );
        let curves: Vec<Vec<f64>> = histories.map(|h| curve(h, &metric.name)).collect();
        let arrivals: Vec<Arrival<'_>> = (0..trials.len())
            .map(|i| Arrival {
                trial: trials[i],
                curve: &curves[i],
                score: scores[i],
                params: &self.params[&trials[i]],
            })
            .collect();
        let kept: Vec<usize> = self
            .scheduler
            .decide(&arrivals, metric.maximize)
            .into_iter()
            .filter(|(_, d)| *d == Decision::Continue)
            .map(|(trial, _)| trial)
            .collect();
        (0..trials.len())
            .filter(|&i| kept.contains(&trials[i]))
            .collect()
    }

    /// The records of the members leaving at this rung (failed, pruned, or complete at the
    /// last); returns how many failed.
    fn record_members(
        &mut self,
        pop: &dyn TrainingPopulation,
        slots: &[usize],
        continuing: &[usize],
        last_rung: bool,
        ledger: &mut Ledger,
        study: &mut Study,
    ) -> Result<usize> {
        let mut failed = 0;
        for (i, &slot) in slots.iter().enumerate() {
            let member = &pop.members()[slot];
            let state = if !member.is_alive() {
                failed += 1;
                TrialState::Failed
            } else if last_rung {
                TrialState::Complete
            } else if continuing.contains(&i) {
                continue;
            } else {
                TrialState::Pruned
            };
            let params = &self.params[&member.trial];
            let (param_count, flops_per_sample) =
                model_size(self.sweep, self.tuning, member.trial, params);
            let record = TrialRecord {
                number: member.trial,
                params: params.clone(),
                param_count,
                flops_per_sample,
                state,
                epochs: member.epochs,
                rungs: self.rung_values.remove(&member.trial).unwrap_or_default(),
                history: member.history.clone(),
                error: member.failure.as_ref().map(|f| f.to_string()),
                epoch_seconds: super::objectives::epoch_seconds(self.sweep, member),
                ..TrialRecord::default()
            };
            study.record(&record)?;
            ledger.finish(pop, slot, record, &self.sweep.metric)?;
        }
        Ok(failed)
    }

    /// The trials finished before a resume: the replay's decision about each must be the
    /// one its record shows; those that went no further are settled. Returns how many of
    /// them failed here.
    fn settle_recorded(
        &mut self,
        members: usize,
        continuing: &[usize],
        scores: &[Option<Score>],
        last_rung: bool,
        ledger: &mut Ledger,
    ) -> Result<usize> {
        let (mut still, mut failed) = (Vec::new(), 0);
        for (j, r) in std::mem::take(&mut self.finished_before)
            .into_iter()
            .enumerate()
        {
            let continues = !last_rung && continuing.contains(&(members + j));
            let alive_here = scores[members + j].is_some();
            let recorded = went_past(&r, self.rung, alive_here) && !last_rung;
            if continues != recorded {
                return Err(replay_mismatch(r.number));
            }
            if continues {
                still.push(r);
            } else {
                if !alive_here {
                    failed += 1;
                }
                ledger.finish_known(r, &self.sweep.metric);
            }
        }
        self.finished_before = still;
        Ok(failed)
    }
}

/// Hyperband's brackets share one population unless a bracket's suggestions depend on the
/// results of the brackets before it (a model-based sampler).
pub(super) fn shares_brackets(sweep: &Sweep) -> bool {
    matches!(sweep.schedule, Schedule::Hyperband { .. })
        && matches!(
            sweep.sampler,
            SamplerKind::Random | SamplerKind::Sobol | SamplerKind::Grid
        )
}

/// The bracket schedules (full budget, successive halving, Hyperband, BOHB) as the driver
/// runs them: a bracket joins once the one before it has finished (BOHB's proposals
/// enqueued first), or Hyperband's brackets all join at once when no bracket's suggestions
/// depend on the brackets before it; each bracket closes a rung once all its members
/// have reached it.
struct BracketSchedule<'a> {
    sweep: &'a Sweep,
    tuning: &'a TuningData,
    plans: &'a [BracketPlan],
    /// Trials a stopped run finished, by number.
    known: &'a BTreeMap<usize, TrialRecord>,
    pop: Box<dyn TrainingPopulation + 'a>,
    /// The brackets training now.
    open: Vec<Bracket<'a>>,
    /// The first plan not opened yet.
    next: usize,
    /// `ledger.finished.len()` when the open brackets joined.
    first_record: usize,
    /// `budget.wall_seconds` as an instant, and the wall time of the last epoch of the
    /// population, from when it started: an epoch that would end past the deadline is
    /// not started.
    deadline: Option<Instant>,
    unit: Option<(Instant, std::time::Duration)>,
    /// Whether the wall budget ran out (no bracket opens after it).
    cut: bool,
}

impl<'a> BracketSchedule<'a> {
    /// Whether the next epoch, as long as the last one, would end past the wall budget.
    fn out_of_time(&self) -> bool {
        let last = self.unit.map(|(_, d)| d).unwrap_or_default();
        self.deadline
            .is_some_and(|deadline| Instant::now() + last > deadline)
    }

    /// Asks the study for the next bracket's trials and inserts them; a trial a stopped run
    /// finished joins by its record instead.
    fn open_next(&mut self, study: &mut Study, ledger: &Ledger) -> Result<()> {
        let (sweep, b) = (self.sweep, self.next);
        let plan = &self.plans[b];
        if let Schedule::Bohb {
            random_fraction, ..
        } = sweep.schedule
        {
            for params in bohb_proposals(sweep, &ledger.finished, plan.trials, random_fraction, b)?
            {
                study.enqueue(params)?;
            }
        }
        let mut params: BTreeMap<usize, Params> = BTreeMap::new();
        let mut finished_before = Vec::new();
        for t in study.ask_batch(plan.trials)? {
            match self.known.get(&t.number) {
                Some(r) if r.params != t.params => return Err(replay_mismatch(t.number)),
                Some(r) => finished_before.push(r.clone()),
                None => {
                    insert_trial(self.pop.as_mut(), sweep, self.tuning, t.number, &t.params);
                }
            }
            params.insert(t.number, t.params);
        }
        let position = (b, self.plans.len());
        let bracket = Bracket::new(
            (sweep, self.tuning),
            plan,
            position,
            params,
            finished_before,
        );
        self.open.push(bracket);
        self.next += 1;
        Ok(())
    }
}

impl<'a> Driven for BracketSchedule<'a> {
    type Books = Books<'a>;

    fn population(&mut self) -> &mut dyn TrainingPopulation {
        self.pop.as_mut()
    }

    /// Every open bracket whose members have all reached its rung's budget closes it.
    /// When another epoch would end past the wall budget, every open bracket's members
    /// finish where they stand: complete at the epochs they trained.
    fn decide(&mut self, books: &mut Books<'a>) -> Result<()> {
        books.ledger.see(self.pop.as_ref(), &self.sweep.metric);
        if let Some((started, _)) = self.unit {
            self.unit = Some((started, started.elapsed()));
        }
        let unfinished = self.open.iter().any(|b| !b.done) || self.next < self.plans.len();
        if unfinished && !self.cut && self.out_of_time() {
            self.cut = true;
            let pop = self.pop.as_ref();
            for bracket in self.open.iter_mut().filter(|b| !b.done) {
                let epochs = (pop.members().iter())
                    .filter(|m| m.is_alive() && bracket.params.contains_key(&m.trial))
                    .map(|m| m.epochs)
                    .min();
                // A bracket that has not trained yet takes one epoch, so that every trial
                // ends with a value.
                bracket.cut_at = epochs.map(|e| e.max(1));
            }
        }
        let pop = self.pop.as_mut();
        for bracket in &mut self.open {
            while !bracket.done && !bracket.training(pop) {
                bracket.close_rung(pop, books.ledger, books.study, books.on_progress)?;
            }
        }
        Ok(())
    }

    /// Once the open brackets have finished, the study hears their outcomes and the next
    /// brackets join (all of Hyperband's at once when they share the population); a
    /// reached target opens no further bracket.
    fn refill(&mut self, books: &mut Books<'a>) -> Result<Refill> {
        if self.open.iter().any(|b| !b.done) {
            return Ok(Refill::Ready);
        }
        for r in &books.ledger.finished[self.first_record..] {
            super::objectives::tell_record(books.study, self.sweep, r)?;
        }
        self.open.clear();
        self.first_record = books.ledger.finished.len();
        let shared = shares_brackets(self.sweep);
        if self.next < self.plans.len() && self.out_of_time() {
            self.cut = true;
        }
        while self.next < self.plans.len() && books.ledger.target_reached_by.is_none() && !self.cut
        {
            self.open_next(books.study, books.ledger)?;
            if !shared {
                break;
            }
        }
        Ok(match self.open.is_empty() {
            true => Refill::Finished,
            false => Refill::Joined,
        })
    }

    /// Synchronous: every alive member is at the same epoch, so one shared order serves all.
    fn next_unit(&mut self, books: &mut Books<'a>) -> EpochPlan {
        let alive: Vec<usize> = (self.pop.members().iter())
            .filter(|m| m.is_alive())
            .map(|m| m.epochs)
            .collect();
        let epoch = alive.iter().copied().min().unwrap_or(0);
        books.ledger.tick(alive.len(), 0);
        let last = self.unit.map(|(_, d)| d).unwrap_or_default();
        self.unit = Some((Instant::now(), last));
        if let Some(b) = self.open.iter().find(|b| !b.done) {
            let previous = b.rung.checked_sub(1).map_or(0, |k| b.plan.rungs[k]);
            if epoch > previous {
                (books.on_progress)(&Progress::Epoch(EpochReport {
                    bracket: b.position.0,
                    brackets: b.position.1,
                    rung: b.rung,
                    rungs: b.plan.rungs.len(),
                    units: epoch,
                    budget: b.budget(),
                    previous,
                    training: alive.len(),
                    seconds: b.rung_started.elapsed().as_secs_f64(),
                    best_seen: books.ledger.best_seen,
                }));
            }
        }
        epoch_plan(self.sweep, self.tuning.train.len(), epoch)
    }
}

/// Runs the bracket schedule of `sweep` over `plans`; `known`: trials a stopped run
/// finished (`popsweep resume`), by number, replayed from their records.
pub(super) fn run_bracket_schedule<'a>(
    (sweep, tuning): (&'a Sweep, &'a TuningData),
    backend: &'a dyn Backend,
    plans: &'a [BracketPlan],
    known: &'a BTreeMap<usize, TrialRecord>,
    books: &mut Books<'a>,
) -> Result<()> {
    let mut schedule = BracketSchedule {
        sweep,
        tuning,
        plans,
        known,
        pop: backend.population(&tuning.train, &tuning.val),
        open: Vec::new(),
        next: 0,
        first_record: 0,
        deadline: sweep
            .wall_seconds
            .map(|s| books.ledger.started + std::time::Duration::from_secs_f64(s)),
        unit: None,
        cut: false,
    };
    drive(&mut schedule, books)?;
    if schedule.cut {
        books.ledger.wall_budget_cut = true;
    }
    Ok(())
}
