//! Launches of `kernels/norm.cu`: batch normalisation of every member's layer at one layer
//! index. CPU twin: `backend/cpu/norm.rs`.

use super::device::Device;
use super::layout::{MemberState, NormProblem, Problems, NORM_THREADS};
use cudarc::driver::{CudaSlice, DriverError, LaunchConfig, PushKernelArg};

/// One block per member and channel of the widest (statistics and backward pass).
pub fn per_channel(problems: &[NormProblem]) -> LaunchConfig {
    let channels = problems.iter().map(|p| p.channels).max().unwrap_or(1);
    LaunchConfig {
        grid_dim: (channels.max(1) as u32, problems.len() as u32, 1),
        block_dim: (NORM_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The buffers batch norm reads and writes.
pub struct NormBuffers<'a> {
    pub acts: &'a CudaSlice<f32>,
    pub params: &'a CudaSlice<f32>,
    /// Each layer's batch mean, variance and `1/√(var + ε)`.
    pub stats: &'a CudaSlice<f32>,
}

const NULL: u64 = 0;

/// A training step's forward pass (`state: Some`): the batch's statistics, then the
/// normalisation with them. Evaluation (`None`): the running statistics.
pub fn forward(
    dev: &Device,
    problems: &Problems<NormProblem>,
    rows: usize,
    buffers: &NormBuffers<'_>,
    state: Option<&CudaSlice<MemberState>>,
) -> Result<(), DriverError> {
    if problems.is_empty() {
        return Ok(());
    }
    let rows_arg = rows as i32;
    if let Some(s) = state {
        let mut b = dev.stream.launch_builder(&dev.kernels.batch_norm_stats);
        b.arg(&problems.device)
            .arg(&rows_arg)
            .arg(buffers.acts)
            .arg(buffers.stats)
            .arg(s);
        // SAFETY: the problems lie inside the buffers for `rows` rows; arguments match.
        unsafe { b.launch(per_channel(&problems.host)) }?;
    }
    let batch_stats = i32::from(state.is_some());
    let mut b = dev.stream.launch_builder(&dev.kernels.batch_norm_forward);
    b.arg(&problems.device)
        .arg(&rows_arg)
        .arg(buffers.acts)
        .arg(buffers.params)
        .arg(buffers.stats)
        .arg(&batch_stats);
    match state {
        Some(s) => b.arg(s),
        None => b.arg(&NULL),
    };
    let cfg = problems.element_grid(|p| rows * (p.channels * p.spatial) as usize);
    // SAFETY: as above.
    unsafe { b.launch(cfg) }.map(drop)
}

/// `dγ`, `dβ` into `grad` and (where the problem says so) the input's gradient into
/// `deltas`: with `batch_stats` through the batch's statistics (training), else through the
/// running ones (the CPU's evaluation-mode gradient check).
pub fn backward(
    dev: &Device,
    problems: &Problems<NormProblem>,
    (rows, batch_stats): (usize, bool),
    buffers: &NormBuffers<'_>,
    (deltas, grad): (&CudaSlice<f32>, &CudaSlice<f32>),
    state: &CudaSlice<MemberState>,
) -> Result<(), DriverError> {
    if problems.is_empty() {
        return Ok(());
    }
    let (rows_arg, batch_stats) = (rows as i32, i32::from(batch_stats));
    let mut b = dev.stream.launch_builder(&dev.kernels.batch_norm_backward);
    b.arg(&problems.device)
        .arg(&rows_arg)
        .arg(buffers.acts)
        .arg(buffers.params)
        .arg(buffers.stats)
        .arg(&batch_stats)
        .arg(deltas)
        .arg(grad)
        .arg(state);
    // SAFETY: as in `forward`.
    unsafe { b.launch(per_channel(&problems.host)) }.map(drop)
}

/// A block per problem, its threads over the channels.
pub fn running_grid(problems: &[NormProblem]) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (problems.len() as u32, 1, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Every alive member's running statistics towards this step's batch statistics.
pub fn update_running(
    dev: &Device,
    problems: &Problems<NormProblem>,
    rows: usize,
    (stats, params): (&CudaSlice<f32>, &CudaSlice<f32>),
    state: &CudaSlice<MemberState>,
) -> Result<(), DriverError> {
    if problems.is_empty() {
        return Ok(());
    }
    let rows_arg = rows as i32;
    let mut b = dev.stream.launch_builder(&dev.kernels.batch_norm_running);
    b.arg(&problems.device)
        .arg(&rows_arg)
        .arg(stats)
        .arg(params)
        .arg(state);
    let cfg = running_grid(&problems.host);
    // SAFETY: as in `forward`.
    unsafe { b.launch(cfg) }.map(drop)
}
