//! Launches of `kernels/activation.cu`: ReLU in place on every member's block at one layer
//! index. CPU twin: `backend/cpu/activation.rs`.

use super::device::Device;
use super::layout::{ElementProblem, MemberState, Problems};
use cudarc::driver::{CudaSlice, DriverError, PushKernelArg};

const NULL: u64 = 0;

/// `state: None` is evaluation (every member runs).
pub fn relu_forward(
    dev: &Device,
    problems: &Problems<ElementProblem>,
    rows: usize,
    acts: &CudaSlice<f32>,
    state: Option<&CudaSlice<MemberState>>,
) -> Result<(), DriverError> {
    if problems.is_empty() {
        return Ok(());
    }
    let rows_arg = rows as i32;
    let mut b = dev.stream.launch_builder(&dev.kernels.relu_forward);
    b.arg(&problems.device).arg(&rows_arg).arg(acts);
    match state {
        Some(s) => b.arg(s),
        None => b.arg(&NULL),
    };
    let cfg = problems.element_grid(|p| rows * p.width as usize);
    // SAFETY: the problems lie inside the buffer for `rows` rows; the arguments match.
    unsafe { b.launch(cfg) }.map(drop)
}

/// The gradient in `deltas` kept where the block in `acts` is positive.
pub fn relu_backward(
    dev: &Device,
    problems: &Problems<ElementProblem>,
    rows: usize,
    (acts, deltas): (&CudaSlice<f32>, &CudaSlice<f32>),
    state: &CudaSlice<MemberState>,
) -> Result<(), DriverError> {
    if problems.is_empty() {
        return Ok(());
    }
    let rows_arg = rows as i32;
    let mut b = dev.stream.launch_builder(&dev.kernels.relu_backward);
    b.arg(&problems.device)
        .arg(&rows_arg)
        .arg(acts)
        .arg(deltas)
        .arg(state);
    let cfg = problems.element_grid(|p| rows * p.width as usize);
    // SAFETY: as in `relu_forward`.
    unsafe { b.launch(cfg) }.map(drop)
}
