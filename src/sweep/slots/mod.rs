//! Slot schedules: ASHA, median stopping and PBT. A fixed number of slots train together one
//! epoch at a time; after each epoch every member is judged on its own (ASHA at its rungs,
//! median stopping at every epoch, PBT every `interval` epochs), and the slot of a member that
//! stops — pruned, complete or failed — takes the next trial from the sampler at once, with
//! fresh weights and fresh optimizer state.
//!
//! With ASHA's `drain: train`, once every trial has started a trial ASHA stops keeps its
//! slot while a trial ASHA keeps is still training (see [`Drain`]).
//!
//! The minibatch order of each epoch follows the population's clock (its tick), shared by
//! every member training in that epoch. A trial's weights therefore depend on when it
//! started; a seed still reproduces the whole sweep.

mod judge;
mod pbt;
mod shared;

use judge::{cut_short, drain_slots, exits_of, report_arrivals, Verdict};
use pbt::fixed_for_life;
pub(in crate::sweep) use shared::{askable, FINAL_EVALUATION};
use shared::{passed_rungs, Shared};

use super::checkpoint::{self, Checkpoint};
use super::driver::{drive, Books, Driven, Refill};
use super::{
    curve, epoch_plan, insert_trial, model_size, replay_mismatch, score, Ledger, Lineage, Progress,
    RungValue, TickReport, TrialRecord, SEED_SAMPLER,
};
use crate::backend::{Backend, EpochPlan, TrainingPopulation};
use crate::config::{Drain, Schedule, Sweep};
use crate::data::TuningData;
use crate::error::Result;
use crate::report::run_files::RunFiles;
use crate::rng::derive_seed;
use crate::space::Params;
use crate::storage::TrialState;
use crate::tuner::scheduler::{Asha, MedianStopping, PbtScheduler, Scheduler};
use crate::tuner::study::Study;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::Instant;

/// Epochs of population training between progress reports, and the longest wait for
/// one: a population of large members takes seconds per epoch, and ten of them were
/// a minute of silence.
const REPORT_EVERY: usize = 10;
const REPORT_SECONDS: f64 = 2.0;

/// PBT writes a checkpoint at a round only once this many times the last write's duration
/// has passed since it, so writing takes at most about a tenth of the sweep's time: a
/// small population checkpoints every round, while a large one on a GPU (256 members of
/// 784-256-10 hold 625 MB of weights and moments) does not stall every epoch. A resume
/// continues exactly from whichever round was written last.
const CHECKPOINT_SPACING: u32 = 10;

pub(super) struct SlotContext<'a> {
    pub sweep: &'a Sweep,
    pub tuning: &'a TuningData,
    pub backend: &'a dyn Backend,
    pub slots: usize,
}

/// A trial a stopped run finished, replayed from its record: `epochs` it has held its
/// slot for so far.
struct Ghost {
    record: TrialRecord,
    epochs: usize,
    /// Training on past ASHA's stop while the slots drain.
    draining: bool,
}

/// Where a trial of this epoch sits: a population slot, or a ghost.
#[derive(Clone, Copy)]
enum Seat {
    Member(usize),
    Ghost(usize),
}

/// A trial leaving this epoch: a member (slot, state), or a ghost (index).
#[derive(Clone, Copy)]
enum Exit {
    Member(usize, TrialState),
    Ghost(usize),
}

/// The slot schedule between two units of its clock: the population, its scheduler, and
/// the books of every trial holding a slot.
struct Slots<'p> {
    pop: Box<dyn TrainingPopulation + 'p>,
    policy: Box<dyn Scheduler>,
    running: BTreeMap<usize, Running>,
    /// Trials a stopped run finished (`popsweep resume`): each holds a slot as long as it
    /// did then and is judged on its recorded metrics, so every decision, and the slot and
    /// first unit of every later trial, come out as in the uninterrupted run.
    ghosts: Vec<Ghost>,
    /// Known trials the replay has accounted for.
    replayed: Vec<usize>,
    /// Trials started so far.
    started: usize,
    /// The population's clock: units trained so far.
    tick: usize,
}

/// A trial in a slot: what the record needs besides the member itself.
struct Running {
    /// As sampled; the record keeps these, and PBT's later changes go to `lineage`.
    params: Params,
    /// The hyperparameters it trains with now (PBT changes them).
    current: Params,
    rungs: Vec<RungValue>,
    lineage: Vec<Lineage>,
    /// The tick of its first epoch.
    first_unit: usize,
    /// Training on past ASHA's stop while the slots drain.
    draining: bool,
}

/// A slot schedule as the driver runs it.
struct SlotSchedule<'c, 'p> {
    cx: &'c SlotContext<'c>,
    s: Slots<'p>,
    /// Trials a stopped run finished, by number.
    known: &'c BTreeMap<usize, TrialRecord>,
    files: &'c RunFiles,
    /// ASHA's `drain`: whether a stopped trial trains on while the slots drain.
    drain: bool,
    /// PBT's checkpoint, until the first refill puts it back.
    restoring: Option<(Checkpoint, [Vec<f32>; 3])>,
    checkpoint_due: Instant,
    /// Start of the progress report's window.
    window: Instant,
    /// Whether a unit trained since the last decisions.
    trained: bool,
    /// A study other workers share: what this worker knows of them.
    shared: Option<Shared>,
    /// `budget.wall_seconds`: when the sweep must end, and how long the last unit took
    /// (no unit starts that would end past the deadline, judged by the last one).
    deadline: Option<Instant>,
    unit: (Instant, std::time::Duration),
    /// Whether the wall budget ended the sweep: no trial starts, and the trials training
    /// finish complete at the units they trained.
    cut: bool,
}

impl<'c, 'p> Driven for SlotSchedule<'c, 'p> {
    type Books = Books<'c>;

    fn population(&mut self) -> &mut dyn TrainingPopulation {
        self.s.pop.as_mut()
    }

    /// Every trial judged on its own (ASHA at its rungs, median every epoch, PBT every
    /// `interval`), the decisions applied, the trials that leave recorded; then PBT's
    /// checkpoint and the progress report.
    fn decide(&mut self, books: &mut Books<'c>) -> Result<()> {
        if !std::mem::take(&mut self.trained) {
            return Ok(());
        }
        let (cx, s, ledger) = (self.cx, &mut self.s, &mut *books.ledger);
        ledger.see(s.pop.as_ref(), &cx.sweep.metric);
        if let Some(shared) = &mut self.shared {
            shared.hear_others(books.study, s.policy.as_mut())?;
        }
        let mut verdicts = cx.judge(s)?;
        report_arrivals(&verdicts, s, books.study)?;
        if self.shared.is_some() {
            let members = s.pop.members();
            let epochs: BTreeMap<usize, usize> =
                members.iter().map(|m| (m.trial, m.epochs)).collect();
            let passed = passed_rungs(&s.running, |t| epochs.get(&t).copied(), s.policy.as_ref());
            if !passed.is_empty() {
                books.study.record_rungs(&passed)?;
            }
        }
        if self.drain {
            // Once `metric.target` is reached no trial starts, and none drains.
            let refills = match ledger.target_reached_by {
                Some(_) => None,
                None => Some(cx.sweep.run_cap - s.started),
            };
            let maximize = cx.sweep.metric.maximize;
            drain_slots(
                &mut verdicts,
                refills,
                maximize,
                &mut s.running,
                &mut s.ghosts,
            );
        }
        let unit = self.unit.0.elapsed();
        self.unit.1 = unit;
        if !self.cut && self.deadline.is_some_and(|d| Instant::now() + unit > d) {
            self.cut = true;
            ledger.wall_budget_cut = true;
            cut_short(&mut verdicts, s);
        }
        let (leaving, exits) = exits_of(&s.ghosts, verdicts)?;
        if s.policy.synchronous() {
            let decisions = cx.round(s.policy.as_mut(), s.pop.as_ref(), &s.running, &leaving);
            cx.apply(s.pop.as_mut(), &mut s.running, decisions);
        }
        cx.record_exits(s, &exits, self.known, books.study, ledger)?;
        // Across workers the cap and the target are the study's (see `refill`).
        let shared = self.shared.is_some();
        if let (Schedule::Pbt(settings), Some(rng)) = (&cx.sweep.schedule, s.policy.rng_mut()) {
            let round = !s.pop.is_empty() && s.tick.is_multiple_of(settings.interval);
            if round && Instant::now() >= self.checkpoint_due {
                let writing = Instant::now();
                let (pop, running) = (s.pop.as_ref(), &s.running);
                cx.save_checkpoint(self.files, s.tick, ledger.busy, rng, pop, running)?;
                self.checkpoint_due = Instant::now() + CHECKPOINT_SPACING * writing.elapsed();
            }
        }
        let over = s.pop.is_empty()
            && s.ghosts.is_empty()
            && (shared
                || s.started == cx.sweep.run_cap
                || ledger.target_reached_by.is_some()
                || self.cut);
        let due = self.window.elapsed().as_secs_f64() >= REPORT_SECONDS;
        if s.tick.is_multiple_of(REPORT_EVERY) || due || over {
            let seats = s.pop.len() + s.ghosts.len();
            let report = cx.report(s.tick, seats, s.started, ledger, self.window);
            (books.on_progress)(&Progress::Tick(report));
            self.window = Instant::now();
        }
        Ok(())
    }

    fn refill(&mut self, books: &mut Books<'c>) -> Result<Refill> {
        let (study, ledger) = (&mut *books.study, &mut *books.ledger);
        if self.cut {
            // Past the wall budget no trial starts; the ghosts of a resumed run still
            // replay (the budget starts afresh on resume, so they were not cut).
        } else if let Some(shared) = &mut self.shared {
            (self.cx).refill_shared(&mut self.s, shared, study, ledger)?;
        } else {
            (self.cx).refill(&mut self.s, &mut self.restoring, study, self.known, ledger)?;
        }
        if !(self.s.pop.is_empty() && self.s.ghosts.is_empty()) {
            return Ok(Refill::Ready);
        }
        // Past its wall budget a worker waits for no other worker's trials.
        let waits = match &mut self.shared {
            Some(_) if self.cut => false,
            Some(shared) => shared.wait_for_others(study, self.cx.sweep)?,
            None => false,
        };
        Ok(match waits {
            true => Refill::Joined,
            false => Refill::Finished,
        })
    }

    /// One unit of the population's clock: every member trains, every ghost ages.
    fn next_unit(&mut self, books: &mut Books<'c>) -> EpochPlan {
        let s = &mut self.s;
        let draining = s.running.values().filter(|r| r.draining).count()
            + s.ghosts.iter().filter(|g| g.draining).count();
        books.ledger.tick(s.pop.len() + s.ghosts.len(), draining);
        self.unit.0 = Instant::now();
        let plan = epoch_plan(self.cx.sweep, self.cx.tuning.train.len(), s.tick);
        s.tick += 1;
        for ghost in &mut s.ghosts {
            ghost.epochs += 1;
        }
        self.trained = true;
        plan
    }
}

impl SlotContext<'_> {
    /// Runs the schedule; `known`: trials a stopped run finished (`popsweep resume`), by
    /// number, replayed from their records rather than trained again.
    pub fn run<'c>(
        &'c self,
        (known, files): (&'c BTreeMap<usize, TrialRecord>, &'c RunFiles),
        books: &mut Books<'c>,
    ) -> Result<()> {
        let sweep = self.sweep;
        let shared = books.study.is_shared();
        let drain = match sweep.schedule {
            // Across workers no worker knows how many trials are left for its slots.
            Schedule::Asha { .. } if shared => false,
            Schedule::Asha { drain, .. } => match drain {
                Drain::Auto => self.backend.idle_slots_cost_time(),
                Drain::Idle => false,
                Drain::Train => true,
            },
            _ => false,
        };
        // PBT resumes from its checkpoint (checkpoint.rs), or without one trains every
        // trial again: its trials cannot be replayed from their records, which lack the
        // weights exploit copied between them.
        let pbt = matches!(sweep.schedule, Schedule::Pbt(_));
        let mut schedule = SlotSchedule {
            cx: self,
            s: Slots {
                pop: self
                    .backend
                    .population(&self.tuning.train, &self.tuning.val),
                policy: scheduler(sweep),
                running: BTreeMap::new(),
                ghosts: Vec::new(),
                replayed: Vec::new(),
                started: 0,
                tick: 0,
            },
            known,
            files,
            drain,
            restoring: match pbt {
                true => checkpoint::load(files.dir())?,
                false => None,
            },
            checkpoint_due: Instant::now(),
            window: Instant::now(),
            trained: false,
            shared: shared.then(Shared::default),
            deadline: sweep
                .wall_seconds
                .map(|w| books.ledger.started + std::time::Duration::from_secs_f64(w)),
            unit: (Instant::now(), std::time::Duration::ZERO),
            cut: false,
        };
        drive(&mut schedule, books)?;
        if pbt {
            checkpoint::remove(files.dir())?;
        }
        // A record the replay never reached: the sweep file or the data changed.
        if let Some(&number) = known.keys().find(|n| !schedule.s.replayed.contains(n)) {
            return Err(replay_mismatch(number));
        }
        Ok(())
    }

    /// Fills the free slots with the sampler's next trials (a trial a stopped run finished
    /// takes its slot as a ghost); PBT's first fill puts its checkpoint back instead.
    fn refill(
        &self,
        s: &mut Slots<'_>,
        restoring: &mut Option<(Checkpoint, [Vec<f32>; 3])>,
        study: &mut Study,
        known: &BTreeMap<usize, TrialRecord>,
        ledger: &mut Ledger,
    ) -> Result<()> {
        let sweep = self.sweep;
        let free = self.slots.saturating_sub(s.pop.len() + s.ghosts.len());
        let n = match ledger.target_reached_by {
            Some(_) => 0,
            None => free.min(sweep.run_cap - s.started),
        };
        if n == 0 {
            return Ok(());
        }
        let asked = study.ask_batch(n)?;
        s.started += n;
        if let Some(restored) = restoring.take() {
            let saved = &restored.0;
            s.tick = saved.tick;
            (ledger.busy, ledger.ticks) = (saved.busy, saved.tick);
            if let Some(rng) = s.policy.rng_mut() {
                *rng = saved.rng.rng();
            }
            return self.restore(s, restored, asked, known, study, ledger);
        }
        let pbt = matches!(sweep.schedule, Schedule::Pbt(_));
        for t in asked {
            if let Some(record) = known.get(&t.number).filter(|_| !pbt) {
                if record.params != t.params || record.first_unit != s.tick {
                    return Err(replay_mismatch(t.number));
                }
                s.ghosts.push(Ghost {
                    record: record.clone(),
                    epochs: 0,
                    draining: false,
                });
                s.replayed.push(t.number);
                continue;
            }
            self.start(s, t);
        }
        Ok(())
    }

    /// Fills the free slots from a study shared with other workers: within the study's
    /// cap, none once any worker's trial reached `metric.target`.
    fn refill_shared(
        &self,
        s: &mut Slots<'_>,
        shared: &mut Shared,
        study: &mut Study,
        ledger: &mut Ledger,
    ) -> Result<()> {
        if ledger.target_reached_by.is_none() {
            ledger.target_reached_by = Shared::target_reached_by(study.state()?, self.sweep);
        }
        let free = self.slots.saturating_sub(s.pop.len());
        if free == 0 || ledger.target_reached_by.is_some() {
            return Ok(());
        }
        let asked = study.ask_upto(free, self.sweep.run_cap)?;
        s.started += asked.len();
        for t in asked {
            shared.mine.insert(t.number);
            self.start(s, t);
        }
        Ok(())
    }

    /// A new trial takes a slot: its member joins the population at this unit.
    fn start(&self, s: &mut Slots<'_>, t: crate::storage::FrozenTrial) {
        insert_trial(s.pop.as_mut(), self.sweep, self.tuning, t.number, &t.params);
        s.running.insert(
            t.number,
            Running {
                current: t.params.clone(),
                params: t.params,
                rungs: Vec::new(),
                lineage: Vec::new(),
                first_unit: s.tick,
                draining: false,
            },
        );
    }

    /// Every member and ghost judged, in the order they started (trial order): ASHA's
    /// rungs see their values in that order.
    fn judge(&self, s: &mut Slots<'_>) -> Result<Vec<Verdict>> {
        let metric = &self.sweep.metric;
        let mut seats: Vec<(usize, Seat)> = s
            .pop
            .members()
            .iter()
            .enumerate()
            .map(|(slot, m)| (m.trial, Seat::Member(slot)))
            .chain(
                s.ghosts
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (g.record.number, Seat::Ghost(i))),
            )
            .collect();
        seats.sort_by_key(|&(trial, _)| trial);
        let mut verdicts: Vec<Verdict> = Vec::new();
        for (trial, seat) in seats {
            let (leaves, now) = match seat {
                Seat::Member(slot) => {
                    let member = &s.pop.members()[slot];
                    let run = s.running.get_mut(&trial).expect("every member is running");
                    let leaves = self.judge_member(s.policy.as_mut(), member, run);
                    (leaves, score(member.history.last(), &metric.name))
                }
                Seat::Ghost(i) => {
                    let leaves = self.judge_ghost(s.policy.as_mut(), &mut s.ghosts[i])?;
                    let g = &s.ghosts[i];
                    (
                        leaves,
                        score(g.record.history.get(g.epochs - 1), &metric.name),
                    )
                }
            };
            verdicts.push(Verdict {
                trial,
                seat,
                leaves,
                score: now,
            });
        }
        Ok(verdicts)
    }

    /// Records every trial leaving this epoch: its record in the study's storage (a replayed
    /// trial's must equal the one written), the study's outcome, the ledger (which keeps
    /// the champion's state); then the population and the ghosts let them go.
    fn record_exits(
        &self,
        s: &mut Slots<'_>,
        exits: &[(usize, Exit)],
        known: &BTreeMap<usize, TrialRecord>,
        study: &mut Study,
        ledger: &mut Ledger,
    ) -> Result<()> {
        let metric = &self.sweep.metric;
        for &(_, exit) in exits {
            let (record, weights) = match exit {
                Exit::Member(slot, state) => {
                    let member = &s.pop.members()[slot];
                    let run = s
                        .running
                        .remove(&member.trial)
                        .expect("every member is running");
                    if study.is_shared() && !Shared::still_mine(study, member.trial)? {
                        continue;
                    }
                    // PBT's exploit copies the source's architecture with its weights: a
                    // trial with a lineage has the architecture its member holds now.
                    let (param_count, flops_per_sample) = match run.lineage.is_empty() {
                        true => model_size(self.sweep, self.tuning, member.trial, &run.params),
                        false => {
                            let arch = &member.spec.arch;
                            (arch.trainable_params(), 2 * arch.macs_per_sample())
                        }
                    };
                    let record = TrialRecord {
                        number: member.trial,
                        params: run.params,
                        param_count,
                        flops_per_sample,
                        state,
                        epochs: member.epochs,
                        rungs: run.rungs,
                        history: member.history.clone(),
                        error: member.failure.as_ref().map(|f| f.to_string()),
                        lineage: run.lineage,
                        first_unit: run.first_unit,
                        epoch_seconds: super::objectives::epoch_seconds(self.sweep, member),
                        ..TrialRecord::default()
                    };
                    // PBT trains the trials of a stopped run again: a record already
                    // written must come out the same, and is not written twice.
                    match known.get(&record.number) {
                        Some(old) if old.state != record.state || old.epochs != record.epochs => {
                            return Err(replay_mismatch(record.number));
                        }
                        Some(_) => s.replayed.push(record.number),
                        None => study.record(&record)?,
                    }
                    (record, Some(slot))
                }
                Exit::Ghost(i) => (s.ghosts[i].record.clone(), None),
            };
            if let (TrialState::Complete, Some(_)) = (record.state, record.rungs.last()) {
                let curve = curve(&record.history, &metric.name);
                if study.is_shared() {
                    // Other workers' median stopping compares with this curve.
                    let steps: Vec<(u64, f64)> = (curve.iter().enumerate())
                        .map(|(i, &value)| (i as u64 + 1, value))
                        .collect();
                    study.stage_reports(record.number, &steps);
                }
                s.policy.complete(record.number, &curve);
            }
            super::objectives::tell_record(study, self.sweep, &record)?;
            match weights {
                Some(slot) => ledger.finish(s.pop.as_ref(), slot, record, metric)?,
                None => ledger.finish_known(record, metric),
            }
        }
        if !exits.is_empty() {
            study.sync()?;
            let gone: Vec<usize> = exits.iter().map(|&(trial, _)| trial).collect();
            s.pop.retain(&|m| !gone.contains(&m.trial));
            s.ghosts.retain(|g| !gone.contains(&g.record.number));
        }
        Ok(())
    }

    fn report(
        &self,
        tick: usize,
        training: usize,
        started: usize,
        ledger: &Ledger,
        window: Instant,
    ) -> TickReport {
        let count = |state| ledger.finished.iter().filter(|r| r.state == state).count();
        TickReport {
            tick,
            training,
            started,
            complete: count(TrialState::Complete),
            pruned: count(TrialState::Pruned),
            failed: count(TrialState::Failed),
            leader: ledger
                .champion
                .as_ref()
                .and_then(|(_, r)| Some((r.number, r.rungs.last()?.value))),
            seconds: window.elapsed().as_secs_f64(),
            best_seen: ledger.best_seen,
        }
    }
}

/// The scheduler of a slot schedule.
pub(in crate::sweep) fn scheduler(sweep: &Sweep) -> Box<dyn Scheduler> {
    match sweep.schedule {
        Schedule::Asha { halving, .. } => Box::new(Asha::new(halving)),
        Schedule::Median {
            n_startup_trials,
            n_warmup_steps,
            interval_steps,
            ..
        } => Box::new(MedianStopping::new(
            n_startup_trials,
            n_warmup_steps,
            interval_steps,
            sweep.epochs,
        )),
        Schedule::Pbt(pbt) => Box::new(PbtScheduler::new(
            pbt,
            sweep.epochs,
            sweep.space.clone(),
            |name| !fixed_for_life(name),
            ChaCha8Rng::seed_from_u64(derive_seed(sweep.seed, SEED_SAMPLER ^ 0xB7)),
        )),
        _ => unreachable!("bracket schedules are run by brackets.rs"),
    }
}
