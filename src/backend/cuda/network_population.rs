//! A population of layered networks on the device: its plan's problem tables uploaded once
//! per layout, its buffers, and the plans of its steps (`network.rs`) run as launches —
//! or, with graphs on, one step captured and replayed.

use super::device::{Device, Transfer};
use super::gather::DeviceData;
use super::layout::{
    AttentionProblem, ConvProblem, ElementProblem, LayerNormProblem, LossProblem, NormProblem,
    PoolProblem, TokenProblem,
};
use super::network::{NetworkPlan, Table};
use super::plan::{Arg, Buffer, Kernel, Launch};
use super::slots::{self, SlotWeights, Slots};
use crate::population::Member;
use cudarc::driver::{CudaFunction, CudaSlice, DriverError, LaunchArgs, PushKernelArg};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A problem table on the device.
enum DeviceTable {
    Conv(CudaSlice<ConvProblem>),
    Pool(CudaSlice<PoolProblem>),
    Norm(CudaSlice<NormProblem>),
    Element(CudaSlice<ElementProblem>),
    Token(CudaSlice<TokenProblem>),
    LayerNorm(CudaSlice<LayerNormProblem>),
    Attention(CudaSlice<AttentionProblem>),
    Loss(CudaSlice<LossProblem>),
    Ranges(CudaSlice<i64>),
}

impl DeviceTable {
    fn upload(dev: &Device, table: &Table<'_>) -> Result<Self, DriverError> {
        let up = Transfer::Layout;
        Ok(match table {
            Table::Conv(t) => DeviceTable::Conv(dev.upload(up, t)?),
            Table::Pool(t) => DeviceTable::Pool(dev.upload(up, t)?),
            Table::Norm(t) => DeviceTable::Norm(dev.upload(up, t)?),
            Table::Element(t) => DeviceTable::Element(dev.upload(up, t)?),
            Table::Token(t) => DeviceTable::Token(dev.upload(up, t)?),
            Table::LayerNorm(t) => DeviceTable::LayerNorm(dev.upload(up, t)?),
            Table::Attention(t) => DeviceTable::Attention(dev.upload(up, t)?),
            Table::Loss(t) => DeviceTable::Loss(dev.upload(up, t)?),
            Table::Ranges(t) => DeviceTable::Ranges(dev.upload(up, t)?),
        })
    }
}

pub struct NetworkPopulation {
    dev: Arc<Device>,
    slots: Slots,
    plan: NetworkPlan,
    tables: BTreeMap<Buffer, DeviceTable>,
    grad: CudaSlice<f32>,
    acts: CudaSlice<f32>,
    deltas: CudaSlice<f32>,
    picks: CudaSlice<u32>,
    stats: CudaSlice<f32>,
    skips: CudaSlice<f32>,
    saved: CudaSlice<f32>,
    weights: CudaSlice<f32>,
    targets: CudaSlice<u32>,
    /// Batches done within a replayed run of steps.
    cursor: CudaSlice<i32>,
    /// Batches an epoch: the learning-rate schedules' clock.
    steps_per_epoch: usize,
}

/// The buffers of the data a run of launches reads.
struct DataArgs<'a> {
    data: &'a DeviceData,
    order: &'a CudaSlice<u32>,
}

const NULL: u64 = 0;

impl NetworkPopulation {
    /// `members` laid out on the device, slot `s` taking its weights and moments from
    /// `weights[s]`, with room for batches of up to `capacity` rows. Every member's
    /// architecture must pass [`super::network::unsupported_layers`].
    pub fn build(
        dev: &Arc<Device>,
        members: &[Member],
        capacity: usize,
        weights: &[SlotWeights<'_>],
    ) -> Result<Self, DriverError> {
        let archs: Vec<_> = members.iter().map(|m| &m.spec.arch).collect();
        let plan = NetworkPlan::new(&archs, capacity);
        let tables = (plan.tables().iter())
            .map(|(buffer, table)| Ok((*buffer, DeviceTable::upload(dev, table)?)))
            .collect::<Result<BTreeMap<_, _>, DriverError>>()?;
        let lengths = plan.buffer_lengths();
        let s = &dev.stream;
        let total = *plan.offsets().last().expect("offsets start at 0");
        Ok(NetworkPopulation {
            slots: Slots::build(dev, members, plan.offsets().to_vec(), weights)?,
            grad: s.alloc_zeros(total.max(1))?,
            acts: s.alloc_zeros(lengths.acts.max(1))?,
            deltas: s.alloc_zeros(lengths.acts.max(1))?,
            picks: s.alloc_zeros(lengths.picks.max(1))?,
            stats: s.alloc_zeros(lengths.stats.max(1))?,
            skips: s.alloc_zeros(lengths.skips.max(1))?,
            saved: s.alloc_zeros(lengths.saved.max(1))?,
            weights: s.alloc_zeros(lengths.weights.max(1))?,
            targets: s.alloc_zeros(plan.capacity())?,
            cursor: s.alloc_zeros(1)?,
            steps_per_epoch: 1,
            tables,
            plan,
            dev: dev.clone(),
        })
    }

    /// The members' weights, hyperparameters and state.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// Sets the epoch's length in batches, which the learning-rate schedules count in.
    pub fn set_steps_per_epoch(&mut self, steps: usize) {
        self.steps_per_epoch = steps.max(1);
    }

    /// Rows a batch may hold.
    pub fn capacity(&self) -> usize {
        self.plan.capacity()
    }

    /// Kernel launches of one training step (plus the cursor's advance in a graph): fixed
    /// by the layer kinds at each index, never by P.
    pub fn launches_per_step(&self) -> usize {
        let step = (self.plan).train_step((0, self.dev.graphs()), self.capacity(), 1);
        step.len() + usize::from(self.dev.graphs())
    }

    /// `steps` optimizer steps on consecutive batches of `rows` from `start` in `order`,
    /// replayed from one captured graph when graphs are on (and there are two or more).
    pub fn train_steps(
        &mut self,
        data: &DeviceData,
        order: &CudaSlice<u32>,
        start: usize,
        steps: usize,
        rows: usize,
    ) -> Result<(), DriverError> {
        let at = DataArgs { data, order };
        if !self.dev.graphs() || steps < 2 {
            for s in 0..steps {
                let step =
                    (self.plan).train_step((start + s * rows, false), rows, self.steps_per_epoch);
                self.run(&step, &at)?;
            }
            return Ok(());
        }
        let step = self
            .plan
            .train_step((start, true), rows, self.steps_per_epoch);
        self.dev.stream.memset_zeros(&mut self.cursor)?;
        slots::replay_step(&self.dev, &self.cursor, steps, || self.run(&step, &at))
    }

    /// Adds every member's loss and correct count on all of `data` (no dropout, batch norm
    /// with its running statistics) to its state's eval sums.
    pub fn evaluate(&mut self, data: &DeviceData) -> Result<(), DriverError> {
        assert_eq!(
            data.n_features,
            self.plan.n_features(),
            "the data the members read"
        );
        let at = DataArgs {
            data,
            order: &data.identity,
        };
        let mut start = 0;
        while start < data.rows {
            let rows = self.capacity().min(data.rows - start);
            self.run(&self.plan.evaluate(start, rows), &at)?;
            start += rows;
        }
        Ok(())
    }

    fn function(&self, kernel: Kernel) -> &CudaFunction {
        let k = &self.dev.kernels;
        match kernel {
            Kernel::GatherRows => &k.gather_rows,
            Kernel::ConvForward => &k.conv_forward,
            Kernel::ConvBackwardX => &k.conv_backward_x,
            Kernel::ConvBackwardW => &k.conv_backward_w,
            Kernel::PoolForward => &k.pool_forward,
            Kernel::PoolBackward => &k.pool_backward,
            Kernel::BatchNormStats => &k.batch_norm_stats,
            Kernel::BatchNormForward => &k.batch_norm_forward,
            Kernel::BatchNormBackward => &k.batch_norm_backward,
            Kernel::BatchNormRunning => &k.batch_norm_running,
            Kernel::ActivationForward => &k.activation_forward,
            Kernel::ActivationBackward => &k.activation_backward,
            Kernel::TokenForward => &k.token_forward,
            Kernel::TokenBackward => &k.token_backward,
            Kernel::LayerNormForward => &k.layer_norm_forward,
            Kernel::LayerNormBackward => &k.layer_norm_backward,
            Kernel::LayerNormParams => &k.layer_norm_params,
            Kernel::AttentionForward => &k.attention_forward,
            Kernel::AttentionBackward => &k.attention_backward,
            Kernel::DropoutForward => &k.dropout_forward,
            Kernel::DropoutBackward => &k.dropout_backward,
            Kernel::SoftmaxCrossEntropy => &k.softmax_cross_entropy,
            Kernel::OptimizerStep => &k.optimizer_step,
        }
    }

    /// Pushes the device buffer that plays `buffer`.
    fn push<'a>(&'a self, b: &mut LaunchArgs<'a>, buffer: Buffer, at: &DataArgs<'a>) {
        match buffer {
            Buffer::Features => b.arg(&at.data.features),
            Buffer::Labels => b.arg(&at.data.labels),
            Buffer::Order => b.arg(at.order),
            Buffer::Cursor => b.arg(&self.cursor),
            Buffer::Acts => b.arg(&self.acts),
            Buffer::Deltas => b.arg(&self.deltas),
            Buffer::Targets => b.arg(&self.targets),
            Buffer::Picks => b.arg(&self.picks),
            Buffer::Stats => b.arg(&self.stats),
            Buffer::Grad => b.arg(&self.grad),
            Buffer::Skips => b.arg(&self.skips),
            Buffer::Saved => b.arg(&self.saved),
            Buffer::Weights => b.arg(&self.weights),
            Buffer::Params => b.arg(&self.slots.params),
            Buffer::Moment1 => b.arg(&self.slots.moment1),
            Buffer::Moment2 => b.arg(&self.slots.moment2),
            Buffer::Hparams => b.arg(&self.slots.hparams),
            Buffer::State => b.arg(&self.slots.state),
            Buffer::Trainable | Buffer::Problems(..) | Buffer::Norms | Buffer::Loss => {
                match &self.tables[&buffer] {
                    DeviceTable::Conv(t) => b.arg(t),
                    DeviceTable::Pool(t) => b.arg(t),
                    DeviceTable::Norm(t) => b.arg(t),
                    DeviceTable::Element(t) => b.arg(t),
                    DeviceTable::Token(t) => b.arg(t),
                    DeviceTable::LayerNorm(t) => b.arg(t),
                    DeviceTable::Attention(t) => b.arg(t),
                    DeviceTable::Loss(t) => b.arg(t),
                    DeviceTable::Ranges(t) => b.arg(t),
                }
            }
        };
    }

    /// Enqueues `launches` in order.
    fn run(&self, launches: &[Launch], at: &DataArgs<'_>) -> Result<(), DriverError> {
        for launch in launches {
            let mut b = self.dev.stream.launch_builder(self.function(launch.kernel));
            for arg in &launch.args {
                match arg {
                    Arg::Buf(buffer) => self.push(&mut b, *buffer, at),
                    Arg::Int(v) => {
                        b.arg(v);
                    }
                    Arg::Float(v) => {
                        b.arg(v);
                    }
                    Arg::Null => {
                        b.arg(&NULL);
                    }
                }
            }
            // SAFETY: the plan's problems were resolved inside these buffers' lengths for
            // the launch's rows, and each launch's arguments follow its kernel's signature
            // (the order the kernel-emulation test runs them in, against the CPU twins).
            unsafe { b.launch(launch.config) }?;
        }
        Ok(())
    }
}
