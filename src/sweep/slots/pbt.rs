//! PBT in the slot loop: its rounds (exploit and explore applied to the
//! population) and its checkpoint, written from exports and restored by import.

use super::super::checkpoint::{self, Checkpoint, MemberState, RngState};
use super::super::{curve, replay_mismatch, score, trial_spec, Ledger};
use super::{Running, SlotContext, Slots};
use crate::backend::TrainingPopulation;
use crate::error::Result;
use crate::model::knobs::member_spec;
use crate::population::{ExportedMember, Member};
use crate::report::run_files::RunFiles;
use crate::storage::{FrozenTrial, Lineage, TrialRecord, TrialState};
use crate::tuner::scheduler::{Arrival, Decision, Scheduler};
use crate::tuner::study::{Outcome, Study};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

impl SlotContext<'_> {
    /// A synchronous schedule's round (PBT): every member staying past this epoch arrives
    /// together, in slot order; members leaving this epoch take no part.
    pub(super) fn round(
        &self,
        policy: &mut dyn Scheduler,
        pop: &dyn TrainingPopulation,
        running: &BTreeMap<usize, Running>,
        leaving: &[(usize, TrialState)],
    ) -> Vec<(usize, Decision)> {
        let metric = &self.sweep.metric;
        let staying: Vec<&Member> = (0..pop.len())
            .filter(|s| !leaving.iter().any(|(l, _)| l == s))
            .map(|s| &pop.members()[s])
            .collect();
        let curves: Vec<Vec<f64>> = staying
            .iter()
            .map(|m| curve(&m.history, &metric.name))
            .collect();
        let arrivals: Vec<Arrival<'_>> = staying
            .iter()
            .zip(&curves)
            .map(|(m, c)| Arrival {
                trial: m.trial,
                curve: c,
                score: score(m.history.last(), &metric.name),
                params: &running[&m.trial].current,
            })
            .collect();
        policy.decide(&arrivals, metric.maximize)
    }

    /// Carries out exploit and explore decisions (continue and stop need no action here):
    /// exploit copies the source's architecture, weights and optimizer state into the slot;
    /// explore sets new hyperparameters and records the step in the trial's lineage.
    pub(super) fn apply(
        &self,
        pop: &mut dyn TrainingPopulation,
        running: &mut BTreeMap<usize, Running>,
        decisions: Vec<(usize, Decision)>,
    ) {
        let mut copied_from = None;
        for (trial, decision) in decisions {
            let slot = pop
                .members()
                .iter()
                .position(|m| m.trial == trial)
                .expect("a decision names a member in the population");
            match decision {
                Decision::Continue | Decision::Stop => {}
                Decision::Exploit { from } => {
                    let src = pop
                        .members()
                        .iter()
                        .position(|m| m.trial == from)
                        .expect("exploit names a member in the population");
                    pop.copy(src, slot);
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
                    )
                    .expect("explore changes no architecture knob, so the member's still builds");
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

    /// PBT's state at its checkpoint, put back: each trial of the checkpoint in its slot
    /// with its weights, optimizer state and bookkeeping; each trial that had failed before
    /// it finished from its record. `asked`: the sweep's trials, suggested again.
    pub(super) fn restore(
        &self,
        into: &mut Slots<'_>,
        (saved, buffers): (Checkpoint, [Vec<f32>; 3]),
        asked: Vec<FrozenTrial>,
        known: &BTreeMap<usize, TrialRecord>,
        study: &mut Study,
        ledger: &mut Ledger,
    ) -> Result<()> {
        let metric = &self.sweep.metric;
        for t in asked {
            if let Some(m) = saved.members.iter().find(|m| m.trial == t.number) {
                if m.params != t.params {
                    return Err(replay_mismatch(t.number));
                }
                // Checkpointed members come back in the order they held their slots, whole.
                let slot = saved.members.iter().position(|s| s.trial == m.trial);
                // A checkpointed member was built once, so it builds again unless the sweep
                // file or the data changed.
                let spec = trial_spec(self.sweep, self.tuning, t.number, &m.current)
                    .map_err(|_| replay_mismatch(m.trial))?;
                if slot != Some(into.pop.len()) || spec.arch.param_count() != m.len {
                    return Err(replay_mismatch(m.trial));
                }
                let at = saved.members[..into.pop.len()]
                    .iter()
                    .map(|s| s.len)
                    .sum::<usize>();
                let range = at..at + m.len;
                into.pop.import(ExportedMember {
                    member: Member {
                        trial: t.number,
                        spec,
                        epochs: m.epochs,
                        steps: m.steps,
                        history: m.history.clone(),
                        failure: None,
                        train_seconds: 0.0,
                    },
                    params: buffers[0][range.clone()].to_vec(),
                    moment1: buffers[1][range.clone()].to_vec(),
                    moment2: buffers[2][range].to_vec(),
                })?;
                into.running.insert(
                    t.number,
                    Running {
                        params: t.params,
                        current: m.current.clone(),
                        rungs: m.rungs.clone(),
                        lineage: m.lineage.clone(),
                        first_unit: m.first_unit,
                        draining: false,
                    },
                );
                continue;
            }
            let record = known
                .get(&t.number)
                .filter(|r| r.params == t.params && r.state == TrialState::Failed)
                .ok_or_else(|| replay_mismatch(t.number))?;
            study.tell(t.number, Outcome::Failed)?;
            ledger.finish_known(record.clone(), metric);
            into.replayed.push(t.number);
        }
        match into.pop.len() == saved.members.len() {
            true => Ok(()),
            false => Err(replay_mismatch(saved.members[into.pop.len()].trial)),
        }
    }

    /// Writes PBT's checkpoint after the round at `tick` (see checkpoint.rs).
    pub(super) fn save_checkpoint(
        &self,
        files: &RunFiles,
        tick: usize,
        busy: usize,
        rng: &ChaCha8Rng,
        pop: &dyn TrainingPopulation,
        running: &BTreeMap<usize, Running>,
    ) -> Result<()> {
        let exported = (0..pop.len())
            .map(|slot| pop.export(slot))
            .collect::<Result<Vec<_>>>()?;
        let members = exported
            .iter()
            .map(|e| {
                let m = &e.member;
                let run = &running[&m.trial];
                MemberState {
                    trial: m.trial,
                    params: run.params.clone(),
                    current: run.current.clone(),
                    rungs: run.rungs.clone(),
                    lineage: run.lineage.clone(),
                    first_unit: run.first_unit,
                    epochs: m.epochs,
                    steps: m.steps,
                    history: m.history.clone(),
                    len: e.params.len(),
                }
            })
            .collect();
        let saved = Checkpoint {
            tick,
            busy,
            rng: RngState::of(rng),
            members,
        };
        let buffers: [Vec<f32>; 3] = [
            exported
                .iter()
                .flat_map(|e| e.params.iter().copied())
                .collect(),
            exported
                .iter()
                .flat_map(|e| e.moment1.iter().copied())
                .collect(),
            exported
                .iter()
                .flat_map(|e| e.moment2.iter().copied())
                .collect(),
        ];
        checkpoint::save(files.dir(), &saved, [&buffers[0], &buffers[1], &buffers[2]])
    }
}

/// The knobs PBT never explores: the architecture (depth, widths and the activation, fixed
/// by the copied weights, which were trained through that function), and the optimizer,
/// whose copied state means something else under another one (SGD's velocity is not
/// AdamW's first moment, and its second moment is empty).
pub(super) fn fixed_for_life(name: &str) -> bool {
    crate::model::knobs::KnobName::parse(name).is_some_and(|k| k.fixed_for_life())
}
