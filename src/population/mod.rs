//! The population: P members' parameters in one flat buffer with an offset table, the
//! optimizer state in the same layout, and the slice operations the scheduler uses. It
//! holds no backend: the backends train it, the sweep keeps its books.

pub mod health;
mod metrics;

pub use metrics::{EpochMetrics, Evaluation, MetricName, METRIC_NAMES};

use crate::model::MemberSpec;
use health::Divergence;

/// One slot's bookkeeping: which trial it trains and how far it has got.
#[derive(Clone, Debug)]
pub struct Member {
    pub trial: usize,
    pub spec: MemberSpec,
    /// Epochs trained so far.
    pub epochs: usize,
    /// Optimizer steps taken so far (part of the dropout key).
    pub steps: u64,
    pub history: Vec<EpochMetrics>,
    /// Set once the member diverged; a failed member is dead: the alive mask is `failure.is_none()`.
    pub failure: Option<Divergence>,
    /// Wall seconds this member has spent training and validating on its own thread (the
    /// CPU backend); 0 where members share kernels and no member's time is its own.
    pub train_seconds: f64,
}

impl Member {
    /// A new member of `trial`: untrained, alive.
    pub fn new(trial: usize, spec: MemberSpec) -> Self {
        Member {
            trial,
            spec,
            epochs: 0,
            steps: 0,
            history: Vec::new(),
            failure: None,
            train_seconds: 0.0,
        }
    }

    pub fn is_alive(&self) -> bool {
        self.failure.is_none()
    }
}

/// One member's whole state away from its backend: bookkeeping, weights and both optimizer
/// moments (each `spec.arch.param_count()` long, in the member's parameter layout).
#[derive(Clone, Debug)]
pub struct ExportedMember {
    pub member: Member,
    pub params: Vec<f32>,
    pub moment1: Vec<f32>,
    pub moment2: Vec<f32>,
}

/// Mutable view of one member: disjoint from every other slot, so slots can be trained on
/// different threads with no locking.
pub struct SlotMut<'a> {
    pub member: &'a mut Member,
    pub params: &'a mut [f32],
    /// First moment (SGD's velocity, AdamW's m).
    pub moment1: &'a mut [f32],
    /// Second moment (AdamW's v; unused by SGD).
    pub moment2: &'a mut [f32],
}

#[derive(Debug)]
pub struct Population {
    members: Vec<Member>,
    /// `offsets[s]..offsets[s + 1]` is slot `s`'s range in `params` and both moments.
    offsets: Vec<usize>,
    params: Vec<f32>,
    moment1: Vec<f32>,
    moment2: Vec<f32>,
}

/// Empty. Written out rather than derived: `offsets` always holds the 0 before the first
/// slot, which a derived (empty) `offsets` would lack.
impl Default for Population {
    fn default() -> Self {
        Population {
            members: Vec::new(),
            offsets: vec![0],
            params: Vec::new(),
            moment1: Vec::new(),
            moment2: Vec::new(),
        }
    }
}

impl Population {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member with fresh weights (from its seed) and zero optimizer state; returns its slot.
    pub fn insert(&mut self, trial: usize, spec: MemberSpec) -> usize {
        let init = spec.arch.init_params(spec.seed);
        self.moment1.resize(self.moment1.len() + init.len(), 0.0);
        self.moment2.resize(self.moment2.len() + init.len(), 0.0);
        self.params.extend_from_slice(&init);
        self.offsets.push(self.params.len());
        self.members.push(Member::new(trial, spec));
        self.members.len() - 1
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// `offsets[s]..offsets[s + 1]` is slot `s`'s range in every flat buffer.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// The flat parameter, first-moment and second-moment buffers, for a device backend
    /// to copy as they are.
    pub fn flat(&self) -> [&[f32]; 3] {
        [&self.params, &self.moment1, &self.moment2]
    }

    /// The members and the flat buffers, mutable: a device backend writes back what it trained.
    pub fn flat_mut(&mut self) -> (&mut [Member], [&mut [f32]; 3]) {
        (
            &mut self.members,
            [&mut self.params, &mut self.moment1, &mut self.moment2],
        )
    }

    pub fn params(&self, slot: usize) -> &[f32] {
        &self.params[self.offsets[slot]..self.offsets[slot + 1]]
    }

    /// Keeps the slots for which `keep` is true, in order, compacting the buffers. The
    /// kept members' weights and optimizer state move unchanged.
    pub fn retain(&mut self, keep: impl Fn(&Member) -> bool) {
        let mut members = Vec::new();
        let (mut params, mut moment1, mut moment2, mut offsets) =
            (Vec::new(), Vec::new(), Vec::new(), vec![0]);
        for (slot, member) in std::mem::take(&mut self.members).into_iter().enumerate() {
            if keep(&member) {
                let range = self.offsets[slot]..self.offsets[slot + 1];
                params.extend_from_slice(&self.params[range.clone()]);
                moment1.extend_from_slice(&self.moment1[range.clone()]);
                moment2.extend_from_slice(&self.moment2[range]);
                offsets.push(params.len());
                members.push(member);
            }
        }
        *self = Population {
            members,
            offsets,
            params,
            moment1,
            moment2,
        };
    }

    /// Slot `slot`'s whole state, copied out: what leaves a backend when a member is
    /// exported (the champion kept for the final test, a checkpoint).
    pub fn export(&self, slot: usize) -> ExportedMember {
        let range = self.offsets[slot]..self.offsets[slot + 1];
        ExportedMember {
            member: self.members[slot].clone(),
            params: self.params[range.clone()].to_vec(),
            moment1: self.moment1[range.clone()].to_vec(),
            moment2: self.moment2[range].to_vec(),
        }
    }

    /// A member with its whole state, in a new last slot; returns the slot.
    pub fn import(&mut self, state: ExportedMember) -> usize {
        assert_eq!(
            state.params.len(),
            state.member.spec.arch.param_count(),
            "an exported member's buffers fit its architecture"
        );
        self.params.extend_from_slice(&state.params);
        self.moment1.extend_from_slice(&state.moment1);
        self.moment2.extend_from_slice(&state.moment2);
        self.offsets.push(self.params.len());
        self.members.push(state.member);
        self.members.len() - 1
    }

    /// PBT's exploit: slot `dst` takes slot `src`'s architecture, weights, optimizer state
    /// and step count; it keeps its own trial, seed, hyperparameters and history. The
    /// buffers are re-laid out when the two sizes differ.
    pub fn copy_weights(&mut self, src: usize, dst: usize) {
        assert_ne!(src, dst, "a member never copies itself");
        let arch = self.members[src].spec.arch.clone();
        let steps = self.members[src].steps;
        let (s, d) = (self.offsets[src], self.offsets[dst]);
        let len = self.offsets[src + 1] - s;
        if len == self.offsets[dst + 1] - d {
            // Same size (the usual case in PBT): copy in place, no re-layout.
            for buf in [&mut self.params, &mut self.moment1, &mut self.moment2] {
                buf.copy_within(s..s + len, d);
            }
            let member = &mut self.members[dst];
            member.spec.arch = arch;
            member.steps = steps;
            return;
        }
        let take = |buf: &[f32], offsets: &[usize], slot: usize| -> Vec<f32> {
            buf[offsets[slot]..offsets[slot + 1]].to_vec()
        };
        let (p, m1, m2) = (
            take(&self.params, &self.offsets, src),
            take(&self.moment1, &self.offsets, src),
            take(&self.moment2, &self.offsets, src),
        );
        let (mut params, mut moment1, mut moment2, mut offsets) =
            (Vec::new(), Vec::new(), Vec::new(), vec![0]);
        for slot in 0..self.members.len() {
            if slot == dst {
                params.extend_from_slice(&p);
                moment1.extend_from_slice(&m1);
                moment2.extend_from_slice(&m2);
            } else {
                params.extend_from_slice(&take(&self.params, &self.offsets, slot));
                moment1.extend_from_slice(&take(&self.moment1, &self.offsets, slot));
                moment2.extend_from_slice(&take(&self.moment2, &self.offsets, slot));
            }
            offsets.push(params.len());
        }
        (self.params, self.moment1, self.moment2, self.offsets) =
            (params, moment1, moment2, offsets);
        let member = &mut self.members[dst];
        member.spec.arch = arch;
        member.steps = steps;
    }

    /// Marks slot `slot` failed before it trains (e.g. over the sweep's parameter budget):
    /// every backend skips it and the driver records it as failed.
    pub fn refuse(&mut self, slot: usize, reason: String) {
        self.members[slot].failure = Some(Divergence {
            epoch: 0,
            step: 0,
            reason,
        });
    }

    /// Cross-validation: slot `slot` sees only `fold` of the population's data.
    pub fn set_fold(&mut self, slot: usize, fold: std::sync::Arc<crate::model::Fold>) {
        self.members[slot].spec.fold = Some(fold);
    }

    /// PBT's explore: new hyperparameters for slot `slot` (its architecture is unchanged).
    pub fn set_hparams(&mut self, slot: usize, hparams: crate::model::Hparams) {
        self.members[slot].spec.hparams = hparams;
    }

    /// One disjoint mutable view per slot.
    pub fn slots_mut(&mut self) -> Vec<SlotMut<'_>> {
        let mut params = &mut self.params[..];
        let mut moment1 = &mut self.moment1[..];
        let mut moment2 = &mut self.moment2[..];
        let mut slots = Vec::with_capacity(self.members.len());
        for (slot, member) in self.members.iter_mut().enumerate() {
            let n = self.offsets[slot + 1] - self.offsets[slot];
            let (p, p_rest) = std::mem::take(&mut params).split_at_mut(n);
            let (m1, m1_rest) = std::mem::take(&mut moment1).split_at_mut(n);
            let (m2, m2_rest) = std::mem::take(&mut moment2).split_at_mut(n);
            params = p_rest;
            moment1 = m1_rest;
            moment2 = m2_rest;
            slots.push(SlotMut {
                member,
                params: p,
                moment1: m1,
                moment2: m2,
            });
        }
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hparams::OptimHparams;
    use crate::model::{Arch, Hparams};

    fn spec(hidden: &[usize], seed: u64) -> MemberSpec {
        MemberSpec {
            arch: Arch::mlp(3, hidden, 2),
            hparams: Hparams {
                optim: OptimHparams::sgd(0.1, 0.0, 0.0),
                dropout: 0.0,
                attn_dropout: 0.0,
                augment: Default::default(),
                batch_size: None,
            },
            seed,
            fold: None,
        }
    }

    #[test]
    fn copy_weights_takes_architecture_and_state_but_keeps_identity() {
        let mut pop = Population::new();
        for (trial, hidden) in [vec![4], vec![5, 2], vec![1]].iter().enumerate() {
            pop.insert(trial, spec(hidden, trial as u64));
        }
        for slot in pop.slots_mut() {
            slot.moment1.fill(slot.member.trial as f32 + 1.0);
            slot.member.steps = 10 * slot.member.trial as u64;
        }
        let (source, bystander) = (pop.params(1).to_vec(), pop.params(2).to_vec());
        pop.copy_weights(1, 0);
        assert_eq!(pop.params(0), &source[..]);
        assert_eq!(pop.params(2), &bystander[..], "other slots unchanged");
        let m = &pop.members()[0];
        assert_eq!((m.trial, m.spec.seed, m.steps), (0, 0, 10));
        assert_eq!(m.spec.arch, pop.members()[1].spec.arch);
        assert!(pop.slots_mut()[0].moment1.iter().all(|&v| v == 2.0));
        let exported = pop.export(2);
        assert_eq!(exported.params, bystander);
        let mut alone = Population::new();
        assert_eq!(alone.import(exported), 0);
        assert_eq!((alone.len(), alone.params(0)), (1, &bystander[..]));
        assert_eq!(alone.members()[0].trial, 2);
    }

    #[test]
    fn copy_weights_between_equal_sizes_copies_in_place() {
        let mut pop = Population::new();
        for trial in 0..3 {
            pop.insert(trial, spec(&[4], trial as u64));
        }
        for slot in pop.slots_mut() {
            slot.moment2.fill(slot.member.trial as f32);
        }
        let (source, bystander) = (pop.params(2).to_vec(), pop.params(1).to_vec());
        pop.copy_weights(2, 0);
        assert_eq!(pop.params(0), &source[..]);
        assert_eq!(pop.params(1), &bystander[..]);
        assert!(pop.slots_mut()[0].moment2.iter().all(|&v| v == 2.0));
        assert_eq!(pop.members()[0].trial, 0);
    }

    #[test]
    fn a_refilled_slot_starts_fresh() {
        let mut pop = Population::new();
        pop.insert(0, spec(&[4], 0));
        pop.insert(1, spec(&[4], 1));
        for slot in pop.slots_mut() {
            slot.params.fill(9.0);
            slot.moment1.fill(9.0);
            slot.moment2.fill(9.0);
            slot.member.steps = 40;
        }
        pop.retain(|m| m.trial == 1);
        let s = pop.insert(2, spec(&[4], 2));
        assert_eq!(pop.params(s), &spec(&[4], 2).arch.init_params(2)[..]);
        let slots = pop.slots_mut();
        assert!(slots[s]
            .moment1
            .iter()
            .chain(slots[s].moment2.iter())
            .all(|&v| v == 0.0));
        assert_eq!((slots[s].member.steps, slots[s].member.epochs), (0, 0));
        assert!(
            slots[0].params.iter().all(|&v| v == 9.0),
            "the kept member is untouched"
        );
    }

    #[test]
    fn retain_compacts_and_keeps_weights() {
        let mut pop = Population::new();
        for (trial, hidden) in [vec![4], vec![5, 2], vec![1]].iter().enumerate() {
            pop.insert(trial, spec(hidden, trial as u64));
        }
        let kept = pop.params(2).to_vec();
        for slot in pop.slots_mut() {
            slot.moment1.fill(slot.member.trial as f32);
        }
        pop.retain(|m| m.trial != 1);
        assert_eq!(pop.len(), 2);
        assert_eq!(pop.members()[1].trial, 2);
        assert_eq!(pop.params(1), &kept[..]);
        let slots = pop.slots_mut();
        assert!(slots[1].moment1.iter().all(|&v| v == 2.0));
        assert_eq!(slots[1].params.len(), Arch::mlp(3, &[1], 2).param_count());
    }
}
