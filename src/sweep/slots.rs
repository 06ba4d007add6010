//! Slot schedules: ASHA, median stopping and PBT. A fixed number of slots train together one
//! epoch at a time; after each epoch every member is judged on its own (ASHA at its rungs,
//! median stopping at every epoch, PBT every `interval` epochs), and the slot of a member that
//! stops — pruned, complete or failed — takes the next trial from the sampler at once, with
//! fresh weights and fresh optimizer state.
//!
//! The minibatch order of each epoch follows the population's clock (its tick), shared by
//! every member training in that epoch. A trial's weights therefore depend on when it
//! started; a seed still reproduces the whole sweep.

use super::{
    epoch_plan, insert_trial, score, Ledger, Lineage, Progress, RungValue, TickReport, TrialRecord,
    SEED_SAMPLER,
};
use crate::backend::Backend;
use crate::config::{Schedule, Sweep};
use crate::data::TuningData;
use crate::error::Result;
use crate::model::knobs::member_spec;
use crate::report::log::RunLog;
use crate::rng::derive_seed;
use crate::space::Params;
use crate::train::Population;
use crate::tuner::scheduler::{rank, Asha, Decision, MedianStopping, Pbt, Score};
use crate::tuner::study::{Outcome, Study};
use crate::tuner::trial::TrialState;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::Instant;

/// Epochs of population training between progress reports.
const REPORT_EVERY: usize = 10;

/// The architecture knobs: PBT never explores them, since the copied weights fix the shape.
fn is_architecture(name: &str) -> bool {
    name == "depth" || name == "width" || name.starts_with("width_")
}

enum Policy {
    Asha(Asha),
    Median(MedianStopping),
    Pbt(Pbt, Box<ChaCha8Rng>),
}

pub(super) struct SlotContext<'a> {
    pub sweep: &'a Sweep,
    pub tuning: &'a TuningData,
    pub backend: &'a dyn Backend,
    pub slots: usize,
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
}

impl SlotContext<'_> {
    pub fn run(
        &self,
        study: &mut Study,
        ledger: &mut Ledger,
        log: &mut RunLog,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<()> {
        let (sweep, tuning) = (self.sweep, self.tuning);
        let metric = &sweep.metric;
        let mut policy = match sweep.schedule {
            Schedule::Asha { halving, .. } => Policy::Asha(Asha::new(halving)),
            Schedule::Median {
                n_startup_trials,
                n_warmup_steps,
                interval_steps,
                ..
            } => Policy::Median(MedianStopping::new(
                n_startup_trials,
                n_warmup_steps,
                interval_steps,
            )),
            Schedule::Pbt(pbt) => Policy::Pbt(
                pbt,
                Box::new(ChaCha8Rng::seed_from_u64(derive_seed(
                    sweep.seed,
                    SEED_SAMPLER ^ 0xB7,
                ))),
            ),
            _ => unreachable!("bracket schedules are run by brackets.rs"),
        };
        let mut pop = Population::new();
        let mut running: BTreeMap<usize, Running> = BTreeMap::new();
        let (mut started, mut tick) = (0, 0);
        let mut window = Instant::now();
        loop {
            let free = self.slots.saturating_sub(pop.len());
            let n = free.min(sweep.run_cap - started);
            if n > 0 {
                for t in study.ask_batch(n)? {
                    insert_trial(&mut pop, sweep, tuning, t.number, &t.params);
                    running.insert(
                        t.number,
                        Running {
                            current: t.params.clone(),
                            params: t.params,
                            rungs: Vec::new(),
                            lineage: Vec::new(),
                            first_unit: tick,
                        },
                    );
                }
                started += n;
            }
            if pop.is_empty() {
                break;
            }
            ledger.tick(pop.len());
            let plan = epoch_plan(sweep, tuning.train.len(), tick);
            tick += 1;
            self.backend
                .train_epoch(&mut pop, &tuning.train, &tuning.val, &plan)?;

            // Judge every member; collect the slots that leave.
            let mut leaving: Vec<(usize, TrialState)> = Vec::new();
            for (slot, member) in pop.members().iter().enumerate() {
                let run = running
                    .get_mut(&member.trial)
                    .expect("every member is running");
                if !member.is_alive() {
                    leaving.push((slot, TrialState::Failed));
                    continue;
                }
                let Some(now) = score(member.history.last(), &metric.name) else {
                    leaving.push((slot, TrialState::Failed));
                    continue;
                };
                if member.epochs >= sweep.epochs {
                    run.rungs
                        .push(rung_value(run.rungs.len(), member.epochs, now));
                    leaving.push((slot, TrialState::Complete));
                    continue;
                }
                let decision = match &mut policy {
                    Policy::Asha(asha) => match asha.at_rung(member.epochs, now, metric.maximize) {
                        Some(keep) => {
                            run.rungs
                                .push(rung_value(run.rungs.len(), member.epochs, now));
                            if keep {
                                Decision::Continue
                            } else {
                                Decision::Stop
                            }
                        }
                        None => Decision::Continue,
                    },
                    Policy::Median(median) => {
                        let curve: Vec<f64> = member
                            .history
                            .iter()
                            .map(|h| h.get(&metric.name).unwrap_or(f64::NAN))
                            .collect();
                        if median.should_stop(&curve, metric.maximize) {
                            Decision::Stop
                        } else {
                            Decision::Continue
                        }
                    }
                    // PBT decides for the population as a whole, below.
                    Policy::Pbt(..) => Decision::Continue,
                };
                if decision == Decision::Stop {
                    leaving.push((slot, TrialState::Pruned));
                }
            }
            if let Policy::Pbt(pbt, rng) = &mut policy {
                let decisions = self.pbt_decisions(&pop, &running, &leaving, pbt, rng);
                self.apply(&mut pop, &mut running, decisions);
            }

            for &(slot, state) in &leaving {
                let member = &pop.members()[slot];
                let run = running
                    .remove(&member.trial)
                    .expect("every member is running");
                match (state, run.rungs.last()) {
                    (TrialState::Complete, Some(last)) => {
                        study.tell(member.trial, Outcome::Complete(last.value))?;
                        if let Policy::Median(median) = &mut policy {
                            let curve: Vec<f64> = member
                                .history
                                .iter()
                                .map(|h| h.get(&metric.name).unwrap_or(f64::NAN))
                                .collect();
                            median.record_complete(&curve);
                        }
                    }
                    (TrialState::Pruned, _) => study.tell(member.trial, Outcome::Pruned)?,
                    _ => study.tell(member.trial, Outcome::Failed)?,
                }
                let record = TrialRecord {
                    number: member.trial,
                    params: run.params,
                    state,
                    epochs: member.epochs,
                    rungs: run.rungs,
                    history: member.history.clone(),
                    error: member.failure.as_ref().map(|f| f.to_string()),
                    lineage: run.lineage,
                    first_unit: run.first_unit,
                };
                log.append_trial(&record)?;
                ledger.finish(&pop, slot, record, metric);
            }
            if !leaving.is_empty() {
                log.sync()?;
                let gone: Vec<usize> = leaving
                    .iter()
                    .map(|&(s, _)| pop.members()[s].trial)
                    .collect();
                pop.retain(|m| !gone.contains(&m.trial));
            }
            if tick % REPORT_EVERY == 0 || pop.is_empty() && started == sweep.run_cap {
                on_progress(&Progress::Tick(
                    self.report(tick, &pop, started, ledger, window),
                ));
                window = Instant::now();
            }
        }
        Ok(())
    }

    /// PBT at a ready epoch: each member of the bottom quantile gets `Exploit { from }` (a
    /// top-quantile member) followed by `Explore { params }` (that member's hyperparameters,
    /// perturbed or resampled). Members leaving this epoch take no part.
    fn pbt_decisions(
        &self,
        pop: &Population,
        running: &BTreeMap<usize, Running>,
        leaving: &[(usize, TrialState)],
        pbt: &Pbt,
        rng: &mut ChaCha8Rng,
    ) -> Vec<(usize, Decision)> {
        let metric = &self.sweep.metric;
        let staying: Vec<usize> = (0..pop.len())
            .filter(|s| !leaving.iter().any(|(l, _)| l == s))
            .filter(|&s| pop.members()[s].epochs.is_multiple_of(pbt.interval))
            .collect();
        let scores: Vec<Option<Score>> = staying
            .iter()
            .map(|&s| score(pop.members()[s].history.last(), &metric.name))
            .collect();
        let ranked: Vec<usize> = rank(&scores, metric.maximize)
            .into_iter()
            .map(|i| staying[i])
            .collect();
        let mut decisions = Vec::new();
        for (dst, src) in pbt.exploit_pairs(&ranked, rng) {
            let from = pop.members()[src].trial;
            let params = pbt.explore(
                &running[&from].current,
                &self.sweep.space,
                |name| !is_architecture(name),
                rng,
            );
            decisions.push((dst, Decision::Exploit { from }));
            decisions.push((dst, Decision::Explore { params }));
        }
        decisions
    }

    /// Carries out exploit and explore decisions (continue and stop need no action here):
    /// exploit copies the source's architecture, weights and optimizer state into the slot;
    /// explore sets new hyperparameters and records the step in the trial's lineage.
    fn apply(
        &self,
        pop: &mut Population,
        running: &mut BTreeMap<usize, Running>,
        decisions: Vec<(usize, Decision)>,
    ) {
        let mut copied_from = None;
        for (slot, decision) in decisions {
            match decision {
                Decision::Continue | Decision::Stop => {}
                Decision::Exploit { from } => {
                    let src = pop
                        .members()
                        .iter()
                        .position(|m| m.trial == from)
                        .expect("exploit names a member in the population");
                    pop.copy_weights(src, slot);
                    copied_from = Some(from);
                }
                Decision::Explore { params } => {
                    let member = &pop.members()[slot];
                    let spec = member_spec(
                        &params,
                        &self.sweep.defaults,
                        self.tuning.train.n_features,
                        self.tuning.train.n_classes,
                        member.spec.seed,
                    );
                    debug_assert_eq!(
                        spec.arch, member.spec.arch,
                        "explore keeps the architecture"
                    );
                    let (trial, epoch) = (member.trial, member.epochs);
                    pop.set_hparams(slot, spec.hparams);
                    let run = running.get_mut(&trial).expect("every member is running");
                    run.lineage.push(Lineage {
                        epoch,
                        from: copied_from.take().unwrap_or(trial),
                        params: params.clone(),
                    });
                    run.current = params;
                }
            }
        }
    }

    fn report(
        &self,
        tick: usize,
        pop: &Population,
        started: usize,
        ledger: &Ledger,
        window: Instant,
    ) -> TickReport {
        let count = |state| ledger.finished.iter().filter(|r| r.state == state).count();
        TickReport {
            tick,
            training: pop.len(),
            started,
            complete: count(TrialState::Complete),
            pruned: count(TrialState::Pruned),
            failed: count(TrialState::Failed),
            leader: ledger
                .champion
                .as_ref()
                .and_then(|(_, r)| Some((r.number, r.rungs.last()?.value))),
            seconds: window.elapsed().as_secs_f64(),
        }
    }
}

fn rung_value(rung: usize, epochs: usize, score: Score) -> RungValue {
    RungValue {
        rung,
        epochs,
        value: score.value,
    }
}
