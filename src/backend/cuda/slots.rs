//! What every device population keeps per slot — the flat parameter and optimizer-moment
//! buffers, the table of each slot's range in them, the members' hyperparameters and their
//! device-side state — and what it does with them between epochs: lay them out from the
//! previous layout or the host, clear the metric sums, check the parameters, read the state
//! back, export a slot. The MLP population (`population.rs`) and the layered networks'
//! (`network.rs`) differ only in the launches of a step.

use super::device::{Device, Transfer};
use super::epoch;
use super::gather::advance_cursor;
use super::layout::{MemberHparams, MemberState};
use crate::population::Member;
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaSlice, DriverError};
use std::ops::Range;
use std::sync::Arc;

pub struct Slots {
    dev: Arc<Device>,
    pub params: CudaSlice<f32>,
    pub moment1: CudaSlice<f32>,
    pub moment2: CudaSlice<f32>,
    /// `offsets[s]..offsets[s + 1]` is slot `s`'s range in the three flat buffers; the same
    /// table on the device for the per-member kernels.
    pub offsets: Vec<usize>,
    pub param_offsets: CudaSlice<i64>,
    pub hparams: CudaSlice<MemberHparams>,
    pub state: CudaSlice<MemberState>,
}

impl Slots {
    /// `members` at `offsets` (one more than the members, from 0), slot `s` taking its
    /// weights and moments from `weights[s]`, its hyperparameters and state (steps, alive
    /// mask) from `members[s]`.
    pub fn build(
        dev: &Arc<Device>,
        members: &[Member],
        offsets: Vec<usize>,
        weights: &[SlotWeights<'_>],
    ) -> Result<Self, DriverError> {
        let [params, moment1, moment2] = lay_out_weights(dev, &offsets, weights)?;
        let (hparams, state) = member_tables(dev, members)?;
        let device_offsets: Vec<i64> = offsets.iter().map(|&o| o as i64).collect();
        Ok(Slots {
            dev: dev.clone(),
            params,
            moment1,
            moment2,
            param_offsets: dev.upload(Transfer::Layout, &device_offsets)?,
            offsets,
            hparams,
            state,
        })
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn flat(&self) -> [&CudaSlice<f32>; 3] {
        [&self.params, &self.moment1, &self.moment2]
    }

    /// Slot `slot`'s weights as the source of a new layout.
    pub fn slot_weights(&self, slot: usize) -> SlotWeights<'_> {
        SlotWeights::Device(self.flat(), self.offsets[slot]..self.offsets[slot + 1])
    }

    /// Starts an epoch: clears every member's metric sums.
    pub fn begin_epoch(&self) -> Result<(), DriverError> {
        epoch::clear_epoch_sums(&self.dev, &self.state, self.len())
    }

    /// Ends an epoch: counts each member's non-finite parameters into its state.
    pub fn check_params(&self) -> Result<(), DriverError> {
        let members = self.len();
        epoch::check_params(
            &self.dev,
            &self.params,
            &self.param_offsets,
            &self.state,
            members,
        )
    }

    /// Waits for the device and returns every member's state (the per-epoch metrics).
    pub fn read_state(&self) -> Result<Vec<MemberState>, DriverError> {
        let mut state = self.dev.download(Transfer::Metrics, &self.state)?;
        state.truncate(self.len());
        Ok(state)
    }

    /// Slot `slot`'s parameters, or with `moments` also both optimizer moments, copied to
    /// the host: how a member leaves the device.
    pub fn export_slot(&self, slot: usize, moments: bool) -> Result<Vec<Vec<f32>>, DriverError> {
        let range = self.offsets[slot]..self.offsets[slot + 1];
        let buffers = if moments {
            &self.flat()[..]
        } else {
            &self.flat()[..1]
        };
        buffers
            .iter()
            .map(|b| {
                self.dev
                    .download(Transfer::Weights, &b.slice(range.clone()))
            })
            .collect()
    }
}

/// Captures the launches `record` enqueues — one training step whose batch starts at the
/// device-side `cursor` (zeroed by the caller) — and the cursor's advance as a CUDA graph,
/// and replays it `steps` times: one graph launch per step instead of one per kernel.
pub fn replay_step(
    dev: &Device,
    cursor: &CudaSlice<i32>,
    steps: usize,
    record: impl FnOnce() -> Result<(), DriverError>,
) -> Result<(), DriverError> {
    let stream = &dev.stream;
    stream.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)?;
    let recorded = record().and_then(|()| advance_cursor(dev, cursor));
    // End the capture even when recording failed, or the stream stays unusable.
    let graph = stream.end_capture(CUgraphInstantiate_flags(0));
    recorded?;
    let graph = graph?.expect("a captured step holds launches");
    for _ in 0..steps {
        graph.launch()?;
    }
    Ok(())
}

/// Where a slot's weights and optimizer moments come from when a population is laid out.
pub enum SlotWeights<'a> {
    /// A slot of the layout being replaced (its parameter and moment buffers, and the
    /// slot's range in them): copied on the device, never over the bus.
    Device([&'a CudaSlice<f32>; 3], Range<usize>),
    /// Host buffers (a new member's initial weights, an import): uploaded.
    Host([&'a [f32]; 3]),
}

/// The flat parameter and moment buffers of a new layout, slot `s` at
/// `offsets[s]..offsets[s + 1]` and filled from `weights[s]`.
fn lay_out_weights(
    dev: &Device,
    offsets: &[usize],
    weights: &[SlotWeights<'_>],
) -> Result<[CudaSlice<f32>; 3], DriverError> {
    let s = &dev.stream;
    let total = *offsets.last().expect("offsets start at 0");
    let mut params = s.alloc_zeros::<f32>(total.max(1))?;
    let mut moment1 = s.alloc_zeros::<f32>(total.max(1))?;
    let mut moment2 = s.alloc_zeros::<f32>(total.max(1))?;
    for (slot, source) in weights.iter().enumerate() {
        let range = offsets[slot]..offsets[slot + 1];
        let targets = [&mut params, &mut moment1, &mut moment2];
        match source {
            SlotWeights::Device(from, old) => {
                assert_eq!(old.len(), range.len(), "a slot keeps its parameter count");
                for (dst, src) in targets.into_iter().zip(from) {
                    s.memcpy_dtod(&src.slice(old.clone()), &mut dst.slice_mut(range.clone()))?;
                }
            }
            SlotWeights::Host(host) => {
                for (dst, src) in targets.into_iter().zip(host) {
                    assert_eq!(src.len(), range.len(), "host weights fit the slot");
                    // The buffers start zeroed: a new member's moments need no copy.
                    if src.iter().any(|v| v.to_bits() != 0) {
                        let dst = &mut dst.slice_mut(range.clone());
                        dev.upload_into(Transfer::Weights, src, dst)?;
                    }
                }
            }
        }
    }
    Ok([params, moment1, moment2])
}

/// The members' hyperparameters and state (steps, alive mask) on the device.
fn member_tables(
    dev: &Device,
    members: &[Member],
) -> Result<(CudaSlice<MemberHparams>, CudaSlice<MemberState>), DriverError> {
    let hp: Vec<MemberHparams> = members.iter().map(|m| MemberHparams::of(&m.spec)).collect();
    let state: Vec<MemberState> = members
        .iter()
        .map(|m| MemberState {
            steps: m.steps,
            alive: i32::from(m.is_alive()),
            ..Default::default()
        })
        .collect();
    Ok((
        dev.upload(Transfer::Layout, &hp)?,
        dev.upload(Transfer::Layout, &state)?,
    ))
}
