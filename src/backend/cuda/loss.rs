//! Launch of `kernels/loss.cu`: softmax cross-entropy of every member's logits, with the
//! per-member reductions and the divergence check. CPU twins: `backend/cpu/loss.rs`,
//! `train/health.rs`.

use super::device::{Device, Transfer};
use super::layout::{LossProblem, MemberHparams, MemberState, LOSS_THREADS};
use super::linear::MemberLayout;
use super::plan::{rows_arg, Arg, Buffer, Kernel, Launch};
use crate::population::health::DIVERGENCE_LOSS_FACTOR;
use cudarc::driver::{CudaSlice, DriverError, LaunchConfig, PushKernelArg};

pub struct LossLaunch {
    problems: CudaSlice<LossProblem>,
    count: u32,
}

impl LossLaunch {
    /// One problem per member: its logits are the output of its last layer.
    pub fn new(dev: &Device, members: &[MemberLayout]) -> Result<Self, DriverError> {
        let problems: Vec<LossProblem> = members
            .iter()
            .map(|m| LossProblem {
                logits_off: m.act_off[m.n_layers() - 1] as i64,
                classes: *m.dims.last().expect("a model has an output layer") as i32,
                member: m.member as i32,
            })
            .collect();
        Self::of(dev, &problems)
    }

    /// The given problems, one per member.
    pub fn of(dev: &Device, problems: &[LossProblem]) -> Result<Self, DriverError> {
        Ok(LossLaunch {
            problems: dev.upload(Transfer::Layout, problems)?,
            count: problems.len() as u32,
        })
    }
}

/// Training (`dlogits: Some`): losses into the members' train sums, gradients into
/// `dlogits`, the health check, the step count and the next update's scalars (its
/// scheduled learning rate, for epochs of `steps_per_epoch` batches). Evaluation: losses
/// into the eval sums.
#[allow(clippy::too_many_arguments)]
pub fn softmax_cross_entropy(
    dev: &Device,
    launch: &LossLaunch,
    acts: &CudaSlice<f32>,
    labels: &CudaSlice<u32>,
    (rows, steps_per_epoch): (usize, usize),
    dlogits: Option<&CudaSlice<f32>>,
    hparams: &CudaSlice<MemberHparams>,
    state: &CudaSlice<MemberState>,
) -> Result<(), DriverError> {
    if launch.count == 0 || rows == 0 {
        return Ok(());
    }
    let rows = rows as i32;
    let training = i32::from(dlogits.is_some());
    let factor = DIVERGENCE_LOSS_FACTOR as f32;
    let steps_per_epoch = epoch_length(steps_per_epoch);
    let mut b = dev
        .stream
        .launch_builder(&dev.kernels.softmax_cross_entropy);
    b.arg(&launch.problems)
        .arg(acts)
        .arg(labels)
        .arg(&rows)
        .arg(dlogits.unwrap_or(acts))
        .arg(hparams)
        .arg(state)
        .arg(&training)
        .arg(&factor)
        .arg(&steps_per_epoch);
    let cfg = LaunchConfig {
        grid_dim: (launch.count, 1, 1),
        block_dim: (LOSS_THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: every problem's logits lie inside `acts` for `rows` rows (built from the
    // same layouts); the argument list matches the kernel's signature.
    unsafe { b.launch(cfg) }.map(drop)
}

/// An epoch's batches as the kernel takes them.
fn epoch_length(steps_per_epoch: usize) -> i32 {
    i32::try_from(steps_per_epoch.max(1)).unwrap_or(i32::MAX)
}

/// [`softmax_cross_entropy`] as a plan entry over the table of every member's logits
/// (`Buffer::Loss`, `members` problems): training writes the gradient into the deltas.
pub fn planned(members: usize, (rows, steps_per_epoch): (usize, usize), training: bool) -> Launch {
    Launch {
        kernel: Kernel::SoftmaxCrossEntropy,
        config: LaunchConfig {
            grid_dim: (members as u32, 1, 1),
            block_dim: (LOSS_THREADS, 1, 1),
            shared_mem_bytes: 0,
        },
        args: vec![
            Arg::Buf(Buffer::Loss),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Targets),
            rows_arg(rows),
            // Evaluation writes no gradient; the kernel ignores the pointer.
            Arg::Buf(if training {
                Buffer::Deltas
            } else {
                Buffer::Acts
            }),
            Arg::Buf(Buffer::Hparams),
            Arg::Buf(Buffer::State),
            Arg::Int(i32::from(training)),
            Arg::Float(DIVERGENCE_LOSS_FACTOR as f32),
            Arg::Int(epoch_length(steps_per_epoch)),
        ],
    }
}
