//! The population's layout on the device, whichever kernels train it: plain ReLU MLPs run
//! the fused GEMM kernels (`population.rs`); a population with any other network walks the
//! layer lists (`network.rs`). The resident population (`resident.rs`) and the GPU bench
//! hold one.

use super::device::Device;
use super::gather::DeviceData;
use super::network_population::NetworkPopulation;
use super::population::DevicePopulation;
use super::slots::{SlotWeights, Slots};
use super::EVAL_ROWS;
use crate::model::hparams::Activation;
use crate::population::{Member, Population};
use cudarc::driver::{CudaSlice, DriverError};
use std::sync::Arc;

/// A layout of the population on the device: plain ReLU MLPs run the fused GEMM kernels
/// (`population.rs`); a population with any other network walks the layer lists
/// (`network.rs`).
// Boxed: each is several hundred bytes of buffer handles, built once per population change.
pub enum DeviceLayout {
    Mlp(Box<DevicePopulation>),
    Network(Box<NetworkPopulation>),
}

impl DeviceLayout {
    pub fn build(
        dev: &Arc<Device>,
        members: &[Member],
        batch_size: usize,
        weights: &[SlotWeights<'_>],
    ) -> Result<Self, DriverError> {
        let mlps = (members.iter()).all(|m| m.spec.arch.mlp_activation() == Some(Activation::Relu));
        Ok(if mlps {
            let capacity = batch_size.max(EVAL_ROWS);
            DeviceLayout::Mlp(Box::new(DevicePopulation::build(
                dev, members, capacity, weights,
            )?))
        } else {
            // Image blocks are wide: evaluation goes in batches, not EVAL_ROWS at once.
            DeviceLayout::Network(Box::new(NetworkPopulation::build(
                dev, members, batch_size, weights,
            )?))
        })
    }

    /// `pop` (weights, moments, hyperparameters, steps, alive mask) copied to the device.
    pub fn upload(
        dev: &Arc<Device>,
        pop: &Population,
        batch_size: usize,
    ) -> Result<Self, DriverError> {
        let [p, m1, m2] = pop.flat();
        let o = pop.offsets();
        let weights: Vec<SlotWeights> = (0..pop.len())
            .map(|s| {
                let r = o[s]..o[s + 1];
                SlotWeights::Host([&p[r.clone()], &m1[r.clone()], &m2[r]])
            })
            .collect();
        Self::build(dev, pop.members(), batch_size, &weights)
    }

    pub fn slots(&self) -> &Slots {
        match self {
            DeviceLayout::Mlp(p) => p.slots(),
            DeviceLayout::Network(p) => p.slots(),
        }
    }

    /// Whether this layout holds batches of `batch_size` rows.
    pub fn fits(&self, batch_size: usize) -> bool {
        match self {
            DeviceLayout::Mlp(p) => p.capacity() >= batch_size.max(EVAL_ROWS),
            DeviceLayout::Network(p) => p.capacity() >= batch_size,
        }
    }

    pub fn train_steps(
        &mut self,
        data: &DeviceData,
        order: &CudaSlice<u32>,
        (start, steps, rows): (usize, usize, usize),
    ) -> Result<(), DriverError> {
        match self {
            DeviceLayout::Mlp(p) => p.train_steps(data, order, start, steps, rows),
            DeviceLayout::Network(p) => p.train_steps(data, order, start, steps, rows),
        }
    }

    /// Sets the epoch's length in batches, which the learning-rate schedules count in.
    pub fn set_steps_per_epoch(&mut self, steps: usize) {
        match self {
            DeviceLayout::Mlp(p) => p.set_steps_per_epoch(steps),
            DeviceLayout::Network(p) => p.set_steps_per_epoch(steps),
        }
    }

    /// Kernel launches of one training step (see each population's).
    pub fn launches_per_step(&self) -> usize {
        match self {
            DeviceLayout::Mlp(p) => p.launches_per_step(),
            DeviceLayout::Network(p) => p.launches_per_step(),
        }
    }

    pub fn evaluate(&mut self, data: &DeviceData) -> Result<(), DriverError> {
        match self {
            DeviceLayout::Mlp(p) => p.evaluate(data),
            DeviceLayout::Network(p) => p.evaluate(data),
        }
    }
}
