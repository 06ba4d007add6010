//! Launch of `kernels/gather.cu`: the shared minibatch, copied out of the device-resident
//! data set in the epoch's order. CPU twin: `Dataset::subset`.

use super::device::{Device, Transfer};
use super::plan::{Arg, Buffer, Kernel, Launch};
use crate::data::Dataset;
use cudarc::driver::{CudaSlice, DriverError, LaunchConfig, PushKernelArg};

/// A data set on the device, with the identity order for evaluation passes.
pub struct DeviceData {
    pub features: CudaSlice<f32>,
    pub labels: CudaSlice<u32>,
    pub identity: CudaSlice<u32>,
    pub rows: usize,
    pub n_features: usize,
}

impl DeviceData {
    pub fn upload(dev: &Device, data: &Dataset) -> Result<Self, DriverError> {
        let identity: Vec<u32> = (0..data.len() as u32).collect();
        Ok(DeviceData {
            features: dev.upload(Transfer::Data, &data.features)?,
            labels: dev.upload(Transfer::Data, &data.labels)?,
            identity: dev.upload(Transfer::Data, &identity)?,
            rows: data.len(),
            n_features: data.n_features,
        })
    }
}

/// Where a minibatch starts in the epoch's order: a fixed row, or that row plus `rows` times
/// a device-side step counter (so a captured step can be replayed).
pub enum BatchStart<'a> {
    Row(usize),
    Cursor(usize, &'a CudaSlice<i32>),
}

/// Rows `order[start .. start + rows)` of `data` into `x` `(rows, features)` and `y`.
pub fn gather_rows(
    dev: &Device,
    data: &DeviceData,
    order: &CudaSlice<u32>,
    start: BatchStart<'_>,
    rows: usize,
    x: &CudaSlice<f32>,
    y: &CudaSlice<u32>,
) -> Result<(), DriverError> {
    const NULL: u64 = 0;
    let total = (rows * data.n_features) as u32;
    let (rows, d) = (rows as i32, data.n_features as i32);
    let mut b = dev.stream.launch_builder(&dev.kernels.gather_rows);
    b.arg(&data.features).arg(&data.labels).arg(order);
    let first = match start {
        BatchStart::Row(r) | BatchStart::Cursor(r, _) => r as i32,
    };
    b.arg(&first);
    match &start {
        BatchStart::Row(_) => b.arg(&NULL),
        BatchStart::Cursor(_, cursor) => b.arg(*cursor),
    };
    b.arg(&rows).arg(&d).arg(x).arg(y);
    let cfg = LaunchConfig {
        grid_dim: (total.div_ceil(256).clamp(1, 4096), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the caller keeps every batch it starts within `order`, and x/y sized for `rows`.
    unsafe { b.launch(cfg) }.map(drop)
}

/// [`gather_rows`] as a plan entry (`plan.rs`): `rows` rows from `first` in the order (plus
/// `rows` times the cursor, with `cursor`) into the start of the activations and the
/// targets.
pub fn planned(n_features: usize, first: usize, cursor: bool, rows: usize) -> Launch {
    let total = (rows * n_features) as u32;
    let int = |v: usize| Arg::Int(i32::try_from(v).expect("a data set fits in i32"));
    Launch {
        kernel: Kernel::GatherRows,
        config: LaunchConfig {
            grid_dim: (total.div_ceil(256).clamp(1, 4096), 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        },
        args: vec![
            Arg::Buf(Buffer::Features),
            Arg::Buf(Buffer::Labels),
            Arg::Buf(Buffer::Order),
            int(first),
            if cursor {
                Arg::Buf(Buffer::Cursor)
            } else {
                Arg::Null
            },
            int(rows),
            int(n_features),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Targets),
        ],
    }
}

/// Moves a [`BatchStart::Cursor`] on by one batch.
pub fn advance_cursor(dev: &Device, cursor: &CudaSlice<i32>) -> Result<(), DriverError> {
    let mut b = dev.stream.launch_builder(&dev.kernels.advance_cursor);
    b.arg(cursor);
    // SAFETY: one thread increments the one element.
    unsafe { b.launch(LaunchConfig::for_num_elems(1)) }.map(drop)
}
