//! Launches of `kernels/pool.cu`: every member's pooling layer at one layer index in one
//! launch per pass. CPU twin: `backend/cpu/pool.rs`.

use super::device::Device;
use super::layout::{MemberState, PoolProblem, Problems, POOL_AVG, POOL_GLOBAL, POOL_MAX};
use crate::model::layers::Pool;
use cudarc::driver::{CudaSlice, DriverError, PushKernelArg};

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
    Global,
}

/// The problem of one member's pooling layer: input block at `x_off`, output at `y_off`,
/// max pooling's picks at `picks_off` (one per output and row).
pub fn pool_problem(
    pool: &Pool,
    kind: PoolKind,
    (x_off, y_off, picks_off): (usize, usize, usize),
    member: usize,
) -> PoolProblem {
    let int = |v: usize| i32::try_from(v).expect("layer sizes fit in i32");
    PoolProblem {
        x_off: x_off as i64,
        y_off: y_off as i64,
        picks_off: picks_off as i64,
        channels: int(pool.channels),
        size: int(pool.size.max(1)),
        height: int(pool.height),
        width: int(pool.width),
        kind: match kind {
            PoolKind::Max => POOL_MAX,
            PoolKind::Avg => POOL_AVG,
            PoolKind::Global => POOL_GLOBAL,
        },
        member: int(member),
    }
}

/// Outputs per row of a problem.
pub fn outputs(p: &PoolProblem) -> usize {
    let c = p.channels as usize;
    if p.kind == POOL_GLOBAL {
        return c;
    }
    c * (p.height / p.size) as usize * (p.width / p.size) as usize
}

const NULL: u64 = 0;

/// Outputs (and picks) of every problem into `acts` (`picks`); `state: None` is evaluation.
pub fn forward(
    dev: &Device,
    problems: &Problems<PoolProblem>,
    rows: usize,
    (acts, picks): (&CudaSlice<f32>, &CudaSlice<u32>),
    state: Option<&CudaSlice<MemberState>>,
) -> Result<(), DriverError> {
    if problems.is_empty() {
        return Ok(());
    }
    let rows_arg = rows as i32;
    let mut b = dev.stream.launch_builder(&dev.kernels.pool_forward);
    b.arg(&problems.device).arg(&rows_arg).arg(acts).arg(picks);
    match state {
        Some(s) => b.arg(s),
        None => b.arg(&NULL),
    };
    let cfg = problems.element_grid(|p| rows * outputs(p));
    // SAFETY: the problems lie inside both buffers for `rows` rows; the arguments match.
    unsafe { b.launch(cfg) }.map(drop)
}

/// The input blocks' gradients from the output blocks', both in `deltas`.
pub fn backward(
    dev: &Device,
    problems: &Problems<PoolProblem>,
    rows: usize,
    (deltas, picks): (&CudaSlice<f32>, &CudaSlice<u32>),
    state: &CudaSlice<MemberState>,
) -> Result<(), DriverError> {
    if problems.is_empty() {
        return Ok(());
    }
    let rows_arg = rows as i32;
    let mut b = dev.stream.launch_builder(&dev.kernels.pool_backward);
    b.arg(&problems.device)
        .arg(&rows_arg)
        .arg(deltas)
        .arg(picks)
        .arg(state);
    let cfg = problems.element_grid(|p| rows * (p.channels * p.height * p.width) as usize);
    // SAFETY: as in `forward`.
    unsafe { b.launch(cfg) }.map(drop)
}
