//! Launches of `kernels/dropout.cu`: dropout and spatial dropout in place on every member's
//! block at one layer index, training steps only. CPU twin: `backend/cpu/dropout.rs`.

use super::device::Device;
use super::layout::{ElementProblem, MemberHparams, MemberState, Problems};
use cudarc::driver::{CudaSlice, DriverError, PushKernelArg};

/// Which pass: the forward pass masks the activations with the step's mask; the backward
/// pass masks the gradient with the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropoutPass {
    Forward,
    Backward,
}

pub fn launch(
    dev: &Device,
    problems: &Problems<ElementProblem>,
    (pass, rows): (DropoutPass, usize),
    values: &CudaSlice<f32>,
    hparams: &CudaSlice<MemberHparams>,
    state: &CudaSlice<MemberState>,
) -> Result<(), DriverError> {
    if problems.is_empty() {
        return Ok(());
    }
    let function = match pass {
        DropoutPass::Forward => &dev.kernels.dropout_forward,
        DropoutPass::Backward => &dev.kernels.dropout_backward,
    };
    let rows_arg = rows as i32;
    let mut b = dev.stream.launch_builder(function);
    b.arg(&problems.device)
        .arg(&rows_arg)
        .arg(values)
        .arg(hparams)
        .arg(state);
    let cfg = problems.element_grid(|p| rows * p.width as usize);
    // SAFETY: the problems lie inside the buffer for `rows` rows; the arguments match.
    unsafe { b.launch(cfg) }.map(drop)
}
