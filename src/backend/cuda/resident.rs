//! The CUDA backend's population, resident on the device for a whole sweep: the weights,
//! optimizer moments and both data splits are copied to the GPU once, and between epochs
//! only the per-member metrics come back (`Transfer::Metrics`). A member's state crosses
//! the bus again only when it is exported.
//!
//! The scheduler's verbs that change the population's shape (insert, import, retain, PBT's
//! copy, new hyperparameters) only update the books here; before the next epoch the
//! population is laid out anew on the device, each slot's weights copied device to device
//! from where they already are, or uploaded if they are new (`SlotWeights`).

use super::device::{Device, Transfer};
use super::device_layout::DeviceLayout;
use super::gather::DeviceData;
use super::layout::MemberState;
use super::network::unsupported_layers;
use super::slots::SlotWeights;
use super::{device_error, CudaBackend};
use crate::backend::{EpochPlan, TrainingPopulation};
use crate::data::{Dataset, Task};
use crate::error::{Error, Result};
use crate::model::{Fold, Hparams, MemberSpec};
use crate::population::health::{check_batch_loss, divergence_limit, nonfinite_params, Divergence};
use crate::population::{EpochMetrics, Evaluation, ExportedMember, Member};
use cudarc::driver::DriverError;
use std::sync::Arc;

/// Where a slot's weights and moments are between layouts.
#[derive(Clone)]
enum Weights {
    /// Slot of the current device layout.
    OnDevice(usize),
    /// Not on the device yet: params, first and second moment.
    OnHost(Arc<[Vec<f32>; 3]>),
}

pub struct CudaPopulation<'d> {
    dev: Arc<Device>,
    train: &'d Dataset,
    val: &'d Dataset,
    /// Both splits on the device, uploaded by the first epoch.
    data: Option<(DeviceData, DeviceData)>,
    members: Vec<Member>,
    /// Per slot, in step with `members`.
    weights: Vec<Weights>,
    device: Option<DeviceLayout>,
    /// Whether the books changed since `device` was laid out.
    stale: bool,
}

impl<'d> CudaPopulation<'d> {
    pub fn new(backend: &CudaBackend, train: &'d Dataset, val: &'d Dataset) -> Self {
        CudaPopulation {
            dev: backend.device().clone(),
            train,
            val,
            data: None,
            members: Vec::new(),
            weights: Vec::new(),
            device: None,
            stale: true,
        }
    }

    fn push(&mut self, member: Member, weights: [Vec<f32>; 3]) -> usize {
        self.members.push(member);
        self.weights.push(Weights::OnHost(Arc::new(weights)));
        self.stale = true;
        self.members.len() - 1
    }

    /// A new device layout of the books, every slot's weights taken from where they are.
    fn lay_out(&mut self, batch_size: usize) -> std::result::Result<(), DriverError> {
        let old = self.device.take();
        let sources: Vec<SlotWeights<'_>> = self
            .weights
            .iter()
            .map(|w| match w {
                Weights::OnDevice(slot) => old
                    .as_ref()
                    .expect("a slot on the device has a layout")
                    .slots()
                    .slot_weights(*slot),
                Weights::OnHost(host) => SlotWeights::Host([&host[0], &host[1], &host[2]]),
            })
            .collect();
        let built = DeviceLayout::build(&self.dev, &self.members, batch_size, &sources);
        drop(sources);
        match built {
            Ok(laid_out) => {
                self.weights = (0..self.members.len()).map(Weights::OnDevice).collect();
                self.device = Some(laid_out);
                self.stale = false;
                Ok(())
            }
            // The old layout stays, so an export can still read the members it holds.
            Err(e) => {
                self.device = old;
                Err(e)
            }
        }
    }

    /// One epoch on the device; returns every member's state.
    fn run_epoch(
        &mut self,
        plan: &EpochPlan,
    ) -> std::result::Result<Vec<MemberState>, DriverError> {
        if self.data.is_none() {
            let train = DeviceData::upload(&self.dev, self.train)?;
            self.data = Some((train, DeviceData::upload(&self.dev, self.val)?));
        }
        // A batch larger than the data is the whole data (buffers sized for real rows).
        let batch_size = plan.batch_size.clamp(1, plan.order.len().max(1));
        if self.stale || self.device.as_ref().is_none_or(|d| !d.fits(batch_size)) {
            self.lay_out(batch_size)?;
        }
        let (dp, (train, val)) = (
            self.device.as_mut().expect("laid out above"),
            self.data.as_ref().expect("uploaded above"),
        );
        dp.slots().begin_epoch()?;
        let order: Vec<u32> = plan.order.iter().map(|&i| i as u32).collect();
        let order = self.dev.upload(Transfer::Order, &order)?;
        let (full, rest) = (plan.order.len() / batch_size, plan.order.len() % batch_size);
        dp.set_steps_per_epoch(full + usize::from(rest > 0));
        dp.train_steps(train, &order, (0, full, batch_size))?;
        if rest > 0 {
            dp.train_steps(train, &order, (full * batch_size, 1, rest))?;
        }
        dp.evaluate(val)?;
        dp.slots().check_params()?;
        dp.slots().read_state()
    }

    /// The epoch's outcome in the books: metrics appended, or the failure of a member that
    /// diverged (its loss on the device, or its parameters after the epoch).
    fn apply(&mut self, state: &[MemberState], plan: &EpochPlan) {
        let (n_train, n_val) = (plan.order.len().max(1) as f64, self.val.len().max(1) as f64);
        for (member, s) in self.members.iter_mut().zip(state) {
            if !member.is_alive() {
                continue;
            }
            let epoch = member.epochs + 1;
            member.steps = s.steps;
            let reason = if s.alive == 0 {
                Some(
                    check_batch_loss(
                        f64::from(s.fail_loss),
                        divergence_limit(Task::Classification, member.spec.arch.outputs()),
                    )
                    .err()
                    .unwrap_or_else(|| format!("loss {} failed the check on the GPU", s.fail_loss)),
                )
            } else {
                (s.nonfinite_params > 0).then(|| nonfinite_params(s.nonfinite_params as usize))
            };
            if let Some(reason) = reason {
                member.failure = Some(Divergence {
                    epoch,
                    step: if s.alive == 0 { s.fail_step } else { s.steps },
                    reason,
                });
                continue;
            }
            member.epochs = epoch;
            member.history.push(EpochMetrics {
                grad_norm: None,
                nonfinite_grads: None,
                epoch,
                train_loss: s.train_loss / n_train,
                train_accuracy: s.train_correct as f64 / n_train,
                val_loss: s.eval_loss / n_val,
                val_accuracy: s.eval_correct as f64 / n_val,
            });
        }
    }

    /// Slot `slot`'s parameters (and with `moments`, both moments), wherever they are.
    fn weights_of(&self, slot: usize, moments: bool) -> Result<Vec<Vec<f32>>> {
        match &self.weights[slot] {
            Weights::OnHost(host) => Ok(host[..if moments { 3 } else { 1 }].to_vec()),
            Weights::OnDevice(at) => self
                .device
                .as_ref()
                .expect("a slot on the device has a layout")
                .slots()
                .export_slot(*at, moments)
                .map_err(device_error),
        }
    }
}

/// What the kernels do not implement yet, in the first member that needs it.
fn unsupported(members: &[Member], train: &Dataset, plan: &EpochPlan) -> Option<Error> {
    if train.task == Task::Regression {
        return Some(Error::Device(
            "regression (mean squared error) has no CUDA kernel yet; run it with --backend cpu"
                .into(),
        ));
    }
    let (trial, what) = members.iter().find_map(|m| {
        let activation = unsupported_layers(&m.spec.arch);
        let hparams = &m.spec.hparams;
        let augment = hparams.augment.is_active().then_some("input augmentation");
        let batch = hparams
            .batch_size
            .is_some_and(|b| b != plan.batch_size)
            .then_some("its own batch size");
        let fold = m
            .spec
            .fold
            .is_some()
            .then_some("a cross-validation fold of the data");
        let what = activation
            .or(augment)
            .or(batch)
            .or(fold)
            .or(hparams.optim.beyond_cuda())?;
        Some((m.trial, what))
    })?;
    Some(Error::Device(format!(
        "trial {trial} uses {what}, which the CUDA kernels do not implement yet; \
         run it with --backend cpu"
    )))
}

impl TrainingPopulation for CudaPopulation<'_> {
    fn members(&self) -> &[Member] {
        &self.members
    }

    fn insert(&mut self, trial: usize, spec: MemberSpec) -> usize {
        let params = spec.arch.init_params(spec.seed);
        let zeros = vec![0.0; params.len()];
        self.push(Member::new(trial, spec), [params, zeros.clone(), zeros])
    }

    fn import(&mut self, state: ExportedMember) -> Result<usize> {
        let n = state.member.spec.arch.param_count();
        if [&state.params, &state.moment1, &state.moment2]
            .iter()
            .any(|b| b.len() != n)
        {
            return Err(Error::Device(format!(
                "trial {}'s exported state does not fit its architecture ({n} parameters)",
                state.member.trial
            )));
        }
        Ok(self.push(state.member, [state.params, state.moment1, state.moment2]))
    }

    fn export(&self, slot: usize) -> Result<ExportedMember> {
        let [params, moment1, moment2]: [Vec<f32>; 3] = self
            .weights_of(slot, true)?
            .try_into()
            .expect("params and both moments");
        Ok(ExportedMember {
            member: self.members[slot].clone(),
            params,
            moment1,
            moment2,
        })
    }

    fn retain(&mut self, keep: &dyn Fn(&Member) -> bool) {
        let kept: Vec<bool> = self.members.iter().map(keep).collect();
        let mut flags = kept.iter();
        self.members
            .retain(|_| *flags.next().expect("one flag a slot"));
        let mut flags = kept.iter();
        self.weights
            .retain(|_| *flags.next().expect("one flag a slot"));
        self.stale |= kept.contains(&false);
    }

    fn copy(&mut self, from: usize, to: usize) {
        assert_ne!(from, to, "a member never copies itself");
        let (arch, steps) = (
            self.members[from].spec.arch.clone(),
            self.members[from].steps,
        );
        let member = &mut self.members[to];
        member.spec.arch = arch;
        member.steps = steps;
        self.weights[to] = self.weights[from].clone();
        self.stale = true;
    }

    fn set_hparams(&mut self, slot: usize, hparams: Hparams) {
        self.members[slot].spec.hparams = hparams;
        self.stale = true;
    }

    fn set_fold(&mut self, slot: usize, fold: Arc<Fold>) {
        self.members[slot].spec.fold = Some(fold);
    }

    fn refuse(&mut self, slot: usize, reason: String) {
        self.members[slot].failure = Some(Divergence {
            epoch: 0,
            step: 0,
            reason,
        });
        self.stale = true;
    }

    fn train(&mut self, plan: &EpochPlan) -> Result<()> {
        if self.members.iter().all(|m| !m.is_alive()) {
            return Ok(());
        }
        if let Some(refusal) = unsupported(&self.members, self.train, plan) {
            return Err(refusal);
        }
        let state = self.run_epoch(plan).map_err(device_error)?;
        self.apply(&state, plan);
        Ok(())
    }

    /// On the CPU twin, from the member's exported parameters: one member on a handful of
    /// rows (the final test, the sanity check) is no work for a GPU.
    fn evaluate(&self, slot: usize, rows: &Dataset) -> Result<Evaluation> {
        let params = self.weights_of(slot, false)?.remove(0);
        Ok(crate::backend::cpu::evaluate_params(
            &self.members[slot].spec.arch,
            &params,
            rows,
        ))
    }
}
