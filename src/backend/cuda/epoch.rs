//! Launches of `kernels/epoch.cu`: the per-epoch bookkeeping that lets a population stay on
//! the device — metric sums cleared before an epoch, parameters checked for non-finite
//! values after it. CPU twin of the check: `population::health::check_params`.

use super::device::Device;
use super::layout::MemberState;
use cudarc::driver::{CudaSlice, DriverError, LaunchConfig, PushKernelArg};

/// Zeroes every member's metric sums; a member found with non-finite parameters after
/// the last epoch is retired.
pub fn clear_epoch_sums(
    dev: &Device,
    state: &CudaSlice<MemberState>,
    members: usize,
) -> Result<(), DriverError> {
    let n = members as i32;
    let mut b = dev.stream.launch_builder(&dev.kernels.clear_epoch_sums);
    b.arg(state).arg(&n);
    // SAFETY: `state` holds `members` entries.
    unsafe { b.launch(LaunchConfig::for_num_elems(members.max(1) as u32)) }.map(drop)
}

/// Counts each alive member's non-finite parameters into its state's `nonfinite_params`.
pub fn check_params(
    dev: &Device,
    params: &CudaSlice<f32>,
    offsets: &CudaSlice<i64>,
    state: &CudaSlice<MemberState>,
    members: usize,
) -> Result<(), DriverError> {
    if members == 0 {
        return Ok(());
    }
    let mut b = dev.stream.launch_builder(&dev.kernels.check_params);
    b.arg(params).arg(offsets).arg(state);
    let cfg = LaunchConfig {
        grid_dim: (16, members as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the offsets table has members + 1 entries inside `params`.
    unsafe { b.launch(cfg) }.map(drop)
}
