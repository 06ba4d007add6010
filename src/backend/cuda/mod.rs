//! The CUDA backend: the population trained by the kernels in `kernels/`, each with a CPU
//! twin in `backend/cpu/` that it is tested against (tests/cuda_parity.rs).
//!
//! Per epoch the population and the data go to the device, every minibatch is a fixed
//! number of launches for all members at once, and the trained weights, moments, steps and
//! per-member sums come back in one synchronisation. A member that diverges is marked dead
//! by the loss kernel before its update, exactly where the CPU backend stops it.

pub mod device;
pub mod gather;
pub mod layout;
pub mod linear;
pub mod loss;
pub mod optim;
pub mod population;

pub use device::{Device, Unavailable};
pub use population::DevicePopulation;

use crate::backend::{Backend, EpochPlan};
use crate::data::{Dataset, Task};
use crate::error::{Error, Result};
use crate::model::hparams::Activation;
use crate::population::health::{check_batch_loss, check_params, divergence_limit, Divergence};
use crate::population::{EpochMetrics, Population};
use cudarc::driver::DriverError;
use gather::DeviceData;
use std::sync::Arc;

/// Rows per evaluation pass (at least the batch size; bounds the activation buffers).
const EVAL_ROWS: usize = 512;

pub struct CudaBackend {
    dev: Arc<Device>,
}

fn device_error(e: DriverError) -> Error {
    Error::Device(format!("CUDA driver error: {e}"))
}

impl CudaBackend {
    pub fn open() -> std::result::Result<Self, Unavailable> {
        Ok(CudaBackend {
            dev: Device::open()?,
        })
    }

    pub fn device(&self) -> &Arc<Device> {
        &self.dev
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn idle_slots_cost_time(&self) -> bool {
        true
    }

    fn train_epoch(
        &self,
        pop: &mut Population,
        train: &Dataset,
        val: &Dataset,
        plan: &EpochPlan,
    ) -> Result<()> {
        if pop.members().iter().all(|m| !m.is_alive()) {
            return Ok(());
        }
        if train.task == Task::Regression {
            return Err(Error::Device(
                "regression (mean squared error) has no CUDA kernel yet; run it with --backend cpu"
                    .into(),
            ));
        }
        if let Some((trial, what)) = pop.members().iter().find_map(|m| {
            let activation = match m.spec.arch.mlp_activation() {
                Some(Activation::Relu) => None,
                Some(_) => Some("an activation other than ReLU"),
                None => Some("a network other than an MLP"),
            };
            let augment = m
                .spec
                .hparams
                .augment
                .is_active()
                .then_some("input augmentation");
            let batch = m
                .spec
                .hparams
                .batch_size
                .is_some_and(|b| b != plan.batch_size)
                .then_some("its own batch size");
            let fold = m
                .spec
                .fold
                .is_some()
                .then_some("a cross-validation fold of the data");
            let what = activation.or(augment).or(batch).or(fold).or(m
                .spec
                .hparams
                .optim
                .beyond_cuda())?;
            Some((m.trial, what))
        }) {
            return Err(Error::Device(format!(
                "trial {trial} uses {what}, which the CUDA kernels do not implement yet; \
                 run it with --backend cpu"
            )));
        }
        let dev = &self.dev;
        // A batch larger than the data is the whole data (buffers sized for real rows).
        let batch_size = plan.batch_size.clamp(1, plan.order.len().max(1));
        let capacity = batch_size.max(EVAL_ROWS);
        let mut run = || -> std::result::Result<Vec<layout::MemberState>, DriverError> {
            let mut dp = DevicePopulation::upload(dev, pop, capacity)?;
            let train_d = DeviceData::upload(dev, train)?;
            let order: Vec<u32> = plan.order.iter().map(|&i| i as u32).collect();
            let order = dev.stream.clone_htod(&order)?;
            let (full, rest) = (order.len() / batch_size, order.len() % batch_size);
            dp.train_steps(&train_d, &order, 0, full, batch_size)?;
            if rest > 0 {
                dp.train_step(&train_d, &order, full * batch_size, rest)?;
            }
            dp.evaluate(&DeviceData::upload(dev, val)?)?;
            let state = dp.read_state()?;
            dp.download(pop)?;
            Ok(state)
        };
        let state = run().map_err(device_error)?;
        let (n_train, n_val) = (plan.order.len().max(1) as f64, val.len().max(1) as f64);
        let offsets = pop.offsets().to_vec();
        let (members, [params, _, _]) = pop.flat_mut();
        for (slot, (member, s)) in members.iter_mut().zip(&state).enumerate() {
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
                check_params(&params[offsets[slot]..offsets[slot + 1]]).err()
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
        Ok(())
    }
}
