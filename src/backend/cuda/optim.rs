//! Launches of `kernels/optim.cu`: the optimizer over the whole flat parameter buffer in
//! one launch. MLP training fuses the update into the weight-gradient GEMM
//! (`linear::backward_w`); layered networks (`network.rs`) use this unfused form, which the
//! parity tests hold against the CPU twin `backend/cpu/optim.rs` (shared arithmetic:
//! `kernels/optim.cuh`).

use super::device::Device;
use super::layout::{MemberHparams, MemberState};
use super::plan::{Arg, Buffer, Kernel, Launch};
use cudarc::driver::{CudaSlice, DriverError, LaunchConfig, PushKernelArg};

/// Sets each member's scalars for step `steps + 1` (its scheduled learning rate, for
/// epochs of `steps_per_epoch` batches, and AdamW's bias corrections).
pub fn prepare_step(
    dev: &Device,
    hparams: &CudaSlice<MemberHparams>,
    state: &CudaSlice<MemberState>,
    (members, steps_per_epoch): (usize, usize),
) -> Result<(), DriverError> {
    let (n, spe) = (members as i32, steps_per_epoch.max(1) as i32);
    let mut b = dev.stream.launch_builder(&dev.kernels.prepare_step);
    b.arg(hparams).arg(state).arg(&n).arg(&spe);
    // SAFETY: both arrays hold `members` entries.
    unsafe { b.launch(LaunchConfig::for_num_elems(members.max(1) as u32)) }.map(drop)
}

/// One update of every alive member's trainable slice `ranges[2p]..ranges[2p + 1]`.
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step(
    dev: &Device,
    grad: &CudaSlice<f32>,
    params: &CudaSlice<f32>,
    moments: (&CudaSlice<f32>, &CudaSlice<f32>),
    ranges: &CudaSlice<i64>,
    hparams: &CudaSlice<MemberHparams>,
    state: &CudaSlice<MemberState>,
    members: usize,
) -> Result<(), DriverError> {
    let mut b = dev.stream.launch_builder(&dev.kernels.optimizer_step);
    b.arg(grad)
        .arg(params)
        .arg(moments.0)
        .arg(moments.1)
        .arg(ranges)
        .arg(hparams)
        .arg(state);
    let cfg = LaunchConfig {
        grid_dim: (64, members as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the ranges table has 2·members entries, each inside every buffer.
    unsafe { b.launch(cfg) }.map(drop)
}

/// [`optimizer_step`] as a plan entry: every alive member's trainable range
/// (`Buffer::Trainable`) updated from the gradient buffer.
pub fn planned(members: usize) -> Launch {
    Launch {
        kernel: Kernel::OptimizerStep,
        config: LaunchConfig {
            grid_dim: (64, members as u32, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        },
        args: [
            Buffer::Grad,
            Buffer::Params,
            Buffer::Moment1,
            Buffer::Moment2,
            Buffer::Trainable,
            Buffer::Hparams,
            Buffer::State,
        ]
        .map(Arg::Buf)
        .to_vec(),
    }
}
