//! The population on the device: the flat parameter and moment buffers exactly as the
//! host's `Population` lays them out, per-member hyperparameter and state arrays, and the
//! activation and delta buffers of every member's layers. A training step is a fixed
//! sequence of launches — gather, one forward GEMM per layer index, the loss, then per
//! layer index (deepest first) the input-gradient GEMM and the weight-gradient GEMM with the
//! optimizer fused in — so the number of launches depends on the deepest member, never on P.

use super::device::Device;
use super::gather::{gather_rows, BatchStart, DeviceData};
use super::layout::GemmProblem;
use super::linear::{self, GemmLaunch, MemberLayout, Members, Pass};
use super::loss::{softmax_cross_entropy, LossLaunch};
use super::slots::{self, SlotWeights, Slots};
use crate::population::Member;
use cudarc::driver::{CudaSlice, DriverError};
use std::collections::HashMap;
use std::sync::Arc;

/// The launches of one step for a given number of rows (the last batch of an epoch and
/// evaluation chunks may be shorter than the batch).
struct StepPlan {
    /// Per layer index: the problems of every member that has that layer.
    forward: Vec<GemmLaunch>,
    backward_x: Vec<Option<GemmLaunch>>,
    backward_w: Vec<GemmLaunch>,
}

pub struct DevicePopulation {
    dev: Arc<Device>,
    layouts: Vec<MemberLayout>,
    /// Rows the activation buffers hold per layer.
    capacity: usize,
    slots: Slots,
    acts: CudaSlice<f32>,
    deltas: CudaSlice<f32>,
    x: CudaSlice<f32>,
    y: CudaSlice<u32>,
    /// Batches done within a replayed run of steps (`BatchStart::Cursor`).
    cursor: CudaSlice<i32>,
    loss: LossLaunch,
    plans: HashMap<usize, StepPlan>,
    /// Batches an epoch: the learning-rate schedules' clock.
    steps_per_epoch: usize,
}

impl DevicePopulation {
    /// `members` laid out on the device, slot `s` taking its weights and moments from
    /// `weights[s]`, with room for batches of up to `capacity` rows. The hyperparameters and
    /// state (steps, alive mask) come from `members`.
    pub fn build(
        dev: &Arc<Device>,
        members: &[Member],
        capacity: usize,
        weights: &[SlotWeights<'_>],
    ) -> Result<Self, DriverError> {
        let capacity = capacity.max(1);
        let mut act_total = 0;
        let mut offsets = vec![0usize];
        let layouts: Vec<MemberLayout> = members
            .iter()
            .enumerate()
            .map(|(slot, m)| {
                let dims = m.spec.arch.dense_widths();
                let act_off = dims[1..]
                    .iter()
                    .map(|&w| {
                        let off = act_total;
                        act_total += capacity * w;
                        off
                    })
                    .collect();
                let param_off = offsets[slot];
                offsets.push(param_off + m.spec.arch.param_count());
                MemberLayout {
                    dims,
                    param_off,
                    act_off,
                    member: slot,
                }
            })
            .collect();
        let n_features = layouts.first().map_or(1, |l| l.dims[0]);
        let s = &dev.stream;
        Ok(DevicePopulation {
            slots: Slots::build(dev, members, offsets, weights)?,
            acts: s.alloc_zeros(act_total.max(1))?,
            deltas: s.alloc_zeros(act_total.max(1))?,
            x: s.alloc_zeros(capacity * n_features)?,
            y: s.alloc_zeros(capacity)?,
            cursor: s.alloc_zeros(1)?,
            loss: LossLaunch::new(dev, &layouts)?,
            dev: dev.clone(),
            layouts,
            capacity,
            plans: HashMap::new(),
            steps_per_epoch: 1,
        })
    }

    /// The members' weights, hyperparameters and state.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    pub fn len(&self) -> usize {
        self.layouts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layouts.is_empty()
    }

    /// Sets the epoch's length in batches, which the learning-rate schedules count in.
    pub fn set_steps_per_epoch(&mut self, steps: usize) {
        self.steps_per_epoch = steps.max(1);
    }

    /// Rows a batch may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Launches of one training step: gather, the loss, and three GEMMs per layer index
    /// but the first layer's input gradient (plus the cursor's advance in a graph).
    pub fn launches_per_step(&self) -> usize {
        let depth = self.layouts.iter().map(|m| m.n_layers()).max().unwrap_or(0);
        2 + 3 * depth - usize::from(depth > 0) + usize::from(self.dev.graphs())
    }

    fn plan(&mut self, rows: usize) -> Result<&StepPlan, DriverError> {
        if !self.plans.contains_key(&rows) {
            let depth = self.layouts.iter().map(|m| m.n_layers()).max().unwrap_or(0);
            let problems = |pass: Pass, layer: usize| -> Vec<GemmProblem> {
                self.layouts
                    .iter()
                    .filter(|m| m.n_layers() > layer)
                    .map(|m| linear::problem(pass, m, layer, rows))
                    .collect()
            };
            let dev = &self.dev;
            let mut plan = StepPlan {
                forward: Vec::new(),
                backward_x: Vec::new(),
                backward_w: Vec::new(),
            };
            for layer in 0..depth {
                plan.forward
                    .push(GemmLaunch::new(dev, &problems(Pass::Forward, layer))?);
                plan.backward_x.push(if layer == 0 {
                    None
                } else {
                    Some(GemmLaunch::new(dev, &problems(Pass::BackwardX, layer))?)
                });
                plan.backward_w
                    .push(GemmLaunch::new(dev, &problems(Pass::BackwardW, layer))?);
            }
            self.plans.insert(rows, plan);
        }
        Ok(&self.plans[&rows])
    }

    /// One optimizer step of every alive member on rows `order[start .. start + rows)`.
    pub fn train_step(
        &mut self,
        data: &DeviceData,
        order: &CudaSlice<u32>,
        start: usize,
        rows: usize,
    ) -> Result<(), DriverError> {
        assert!(rows <= self.capacity, "batch larger than the buffers");
        self.plan(rows)?;
        self.launch_step(data, order, BatchStart::Row(start), rows)
    }

    /// `steps` optimizer steps on consecutive batches of `rows` from `start` in `order`.
    /// With graphs on, the step's launches are captured once (the batch start coming from a
    /// device-side cursor) and replayed: one graph launch per step instead of
    /// `launches_per_step` kernel launches.
    pub fn train_steps(
        &mut self,
        data: &DeviceData,
        order: &CudaSlice<u32>,
        start: usize,
        steps: usize,
        rows: usize,
    ) -> Result<(), DriverError> {
        if !self.dev.graphs() || steps < 2 {
            for s in 0..steps {
                self.train_step(data, order, start + s * rows, rows)?;
            }
            return Ok(());
        }
        assert!(rows <= self.capacity, "batch larger than the buffers");
        self.plan(rows)?;
        self.dev.stream.memset_zeros(&mut self.cursor)?;
        slots::replay_step(&self.dev, &self.cursor, steps, || {
            self.launch_step(data, order, BatchStart::Cursor(start, &self.cursor), rows)
        })
    }

    /// Enqueues the launches of one training step.
    fn launch_step(
        &self,
        data: &DeviceData,
        order: &CudaSlice<u32>,
        start: BatchStart<'_>,
        rows: usize,
    ) -> Result<(), DriverError> {
        let plan = &self.plans[&rows];
        let dev = &*self.dev;
        gather_rows(dev, data, order, start, rows, &self.x, &self.y)?;
        let members = Members {
            hparams: &self.slots.hparams,
            state: Some(&self.slots.state),
        };
        for (layer, launch) in plan.forward.iter().enumerate() {
            let input = if layer == 0 { &self.x } else { &self.acts };
            linear::forward(dev, launch, input, &self.slots.params, &self.acts, &members)?;
        }
        softmax_cross_entropy(
            dev,
            &self.loss,
            &self.acts,
            &self.y,
            (rows, self.steps_per_epoch),
            Some(&self.deltas),
            &self.slots.hparams,
            &self.slots.state,
        )?;
        for layer in (0..plan.forward.len()).rev() {
            if let Some(launch) = &plan.backward_x[layer] {
                linear::backward_x(
                    dev,
                    launch,
                    &self.deltas,
                    &self.slots.params,
                    &self.acts,
                    &members,
                    &self.slots.state,
                )?;
            }
            let input = if layer == 0 { &self.x } else { &self.acts };
            linear::backward_w(
                dev,
                &plan.backward_w[layer],
                input,
                &self.deltas,
                &self.slots.params,
                (&self.slots.moment1, &self.slots.moment2),
                &self.slots.hparams,
                &self.slots.state,
            )?;
        }
        Ok(())
    }

    /// Adds every member's loss and correct count on all of `data` (no dropout) to its
    /// state's eval sums.
    pub fn evaluate(&mut self, data: &DeviceData) -> Result<(), DriverError> {
        let mut start = 0;
        while start < data.rows {
            let rows = self.capacity.min(data.rows - start);
            self.plan(rows)?;
            let plan = &self.plans[&rows];
            let dev = &*self.dev;
            gather_rows(
                dev,
                data,
                &data.identity,
                BatchStart::Row(start),
                rows,
                &self.x,
                &self.y,
            )?;
            let members = Members {
                hparams: &self.slots.hparams,
                state: None,
            };
            for (layer, launch) in plan.forward.iter().enumerate() {
                let input = if layer == 0 { &self.x } else { &self.acts };
                linear::forward(dev, launch, input, &self.slots.params, &self.acts, &members)?;
            }
            softmax_cross_entropy(
                dev,
                &self.loss,
                &self.acts,
                &self.y,
                (rows, self.steps_per_epoch),
                None,
                &self.slots.hparams,
                &self.slots.state,
            )?;
            start += rows;
        }
        Ok(())
    }
}
