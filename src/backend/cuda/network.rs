//! The population of layered networks on the device — CNNs with convolutions, pooling,
//! batch norm, ReLU, dropout and spatial dropout, and MLPs beside them — walking each
//! member's layer list as the CPU twin does (`backend/cpu/network/`).
//!
//! Members are ragged (their filters, depths and kernel sizes differ), so a step is laid
//! out by layer *index*: at index `l`, the members whose `l`-th layer is a convolution (or a
//! dense layer) share one implicit-GEMM launch per pass, those with a pooling layer there
//! one pooling launch, and so on. A step's launch count depends on the deepest member and
//! the kinds present, never on P, and the whole step is captured once as a CUDA graph.
//!
//! Buffers: one activations buffer holds the shared minibatch (at offset 0, where the
//! gather writes it) and then every member's blocks, `capacity` rows each; the deltas
//! buffer mirrors it. Gradients go to a buffer shaped as the parameters, and one optimizer
//! launch over every member's trainable range applies them after the backward pass.

use super::activation;
use super::conv::{self, conv_problem, dense_problem, ConvBuffers, ConvPass, LayerPlace};
use super::device::{Device, Transfer};
use super::dropout::{self, DropoutPass};
use super::gather::{gather_rows, BatchStart, DeviceData};
use super::layout::{ConvProblem, ElementProblem, LossProblem, NormProblem, PoolProblem, Problems};
use super::loss::{softmax_cross_entropy, LossLaunch};
use super::norm::{self, NormBuffers};
use super::optim;
use super::pool::{self, pool_problem, PoolKind};
use super::slots::{self, SlotWeights, Slots};
use crate::model::hparams::Activation;
use crate::model::layers::{Arch, Layer};
use crate::population::Member;
use cudarc::driver::{CudaSlice, DriverError};
use std::sync::Arc;

/// Why `arch` cannot train on the network kernels, or `None` when it can.
pub fn unsupported_layers(arch: &Arch) -> Option<&'static str> {
    if arch.layers.first().is_none_or(|l| l.widths().is_none()) {
        return Some("a first layer that works in place on the input");
    }
    arch.layers.iter().find_map(|layer| match layer {
        Layer::Dense { .. }
        | Layer::Conv2d(_)
        | Layer::MaxPool(_)
        | Layer::AvgPool(_)
        | Layer::GlobalAvgPool(_)
        | Layer::BatchNorm(_)
        | Layer::Activation(Activation::Relu)
        | Layer::Dropout
        | Layer::SpatialDropout { .. } => None,
        Layer::Activation(_) => Some("an activation other than ReLU"),
        _ => Some("a transformer layer (attention has no CUDA kernel yet)"),
    })
}

/// One member's layer resolved against the device buffers. `with_dx`: the layer's input
/// is a block of the member's own, so its gradient is needed (the minibatch's is not).
#[derive(Clone, Copy, Debug)]
enum Resolved {
    Linear(ConvProblem, bool),
    Pool(PoolProblem, bool),
    Norm(NormProblem),
    Relu(ElementProblem),
    Dropout(ElementProblem),
}

/// Running totals of the buffers as members are resolved.
struct Sizes {
    /// Activations (and deltas): the minibatch first, then every block.
    acts: usize,
    picks: usize,
    stats: usize,
}

/// A member's resolved layers, its loss problem and its trainable range.
struct MemberPlan {
    layers: Vec<Resolved>,
    loss: LossProblem,
    trainable: (usize, usize),
}

/// Resolves `arch` for slot `member`, its parameters at `param_off`, with room for
/// `capacity` rows; the layers' blocks, picks and statistics are appended to `sizes`.
fn resolve(
    arch: &Arch,
    (member, param_off): (usize, usize),
    capacity: usize,
    sizes: &mut Sizes,
) -> MemberPlan {
    let mut slices = arch.param_slices().into_iter();
    let mut states = arch.state_offsets().into_iter();
    // The block being written: (offset, width, index in the member's network); the
    // minibatch is the block before the first.
    let mut current = (0usize, arch.inputs, None::<usize>);
    let mut blocks = 0usize;
    let mut layers = Vec::with_capacity(arch.layers.len());
    let int = |v: usize| i32::try_from(v).expect("layer sizes fit in i32");
    for layer in &arch.layers {
        let input = current;
        if let Some((_, outputs)) = layer.widths() {
            current = (sizes.acts, outputs, Some(blocks));
            sizes.acts += capacity * outputs;
            blocks += 1;
        }
        let with_dx = input.2.is_some();
        let mut place = || {
            let slice = slices.next().expect("a slice per parameterised layer");
            LayerPlace {
                x_off: input.0,
                y_off: current.0,
                w_off: param_off + slice.weights,
                b_off: param_off + slice.bias,
                member,
            }
        };
        let element = |channels: usize| ElementProblem {
            off: current.0 as i64,
            width: int(current.1),
            channels: int(channels),
            member: int(member),
            layer: int(current.2.expect("an in-place layer follows a block")),
        };
        let pooled = |p, kind, picks| {
            Resolved::Pool(
                pool_problem(p, kind, (input.0, current.0, picks), member),
                with_dx,
            )
        };
        layers.push(match *layer {
            Layer::Dense { inputs, outputs } => {
                Resolved::Linear(dense_problem(inputs, outputs, place()), with_dx)
            }
            Layer::Conv2d(c) => Resolved::Linear(conv_problem(&c, place()), with_dx),
            Layer::MaxPool(p) => {
                let picks = sizes.picks;
                sizes.picks += capacity * p.out_size();
                pooled(&p, PoolKind::Max, picks)
            }
            Layer::AvgPool(p) => pooled(&p, PoolKind::Avg, 0),
            Layer::GlobalAvgPool(p) => pooled(&p, PoolKind::Global, 0),
            Layer::BatchNorm(n) => {
                let at = place();
                let stats = sizes.stats;
                sizes.stats += 3 * n.channels;
                Resolved::Norm(NormProblem {
                    x_off: at.x_off as i64,
                    y_off: at.y_off as i64,
                    gamma_off: at.w_off as i64,
                    state_off: (param_off + states.next().expect("a state per batch norm")) as i64,
                    stats_off: stats as i64,
                    channels: int(n.channels),
                    spatial: int(n.spatial),
                    member: int(member),
                    has_dx: i32::from(with_dx),
                })
            }
            Layer::Activation(_) => Resolved::Relu(element(0)),
            Layer::Dropout => Resolved::Dropout(element(0)),
            Layer::SpatialDropout { channels } => Resolved::Dropout(element(channels)),
            _ => unreachable!("refused by unsupported_layers: {layer:?}"),
        });
    }
    MemberPlan {
        layers,
        loss: LossProblem {
            logits_off: current.0 as i64,
            classes: int(current.1),
            member: int(member),
        },
        trainable: (param_off, param_off + arch.trainable_params()),
    }
}

/// The launches of one layer index, one per layer kind present there.
struct LayerLaunches {
    linear: Problems<ConvProblem>,
    linear_dx: Problems<ConvProblem>,
    pool: Problems<PoolProblem>,
    pool_dx: Problems<PoolProblem>,
    norm: Problems<NormProblem>,
    relu: Problems<ElementProblem>,
    dropout: Problems<ElementProblem>,
}

impl LayerLaunches {
    fn new(dev: &Device, layers: &[Resolved]) -> Result<Self, DriverError> {
        let linears = |dx_only: bool| -> Vec<ConvProblem> {
            (layers.iter())
                .filter_map(|r| match r {
                    Resolved::Linear(p, with_dx) if *with_dx || !dx_only => Some(*p),
                    _ => None,
                })
                .collect()
        };
        let pools = |dx_only: bool| -> Vec<PoolProblem> {
            (layers.iter())
                .filter_map(|r| match r {
                    Resolved::Pool(p, with_dx) if *with_dx || !dx_only => Some(*p),
                    _ => None,
                })
                .collect()
        };
        let elements = |relu: bool| -> Vec<ElementProblem> {
            (layers.iter())
                .filter_map(|r| match (r, relu) {
                    (Resolved::Relu(p), true) | (Resolved::Dropout(p), false) => Some(*p),
                    _ => None,
                })
                .collect()
        };
        let norms: Vec<NormProblem> = (layers.iter())
            .filter_map(|r| match r {
                Resolved::Norm(p) => Some(*p),
                _ => None,
            })
            .collect();
        Ok(LayerLaunches {
            linear: Problems::new(dev, linears(false))?,
            linear_dx: Problems::new(dev, linears(true))?,
            pool: Problems::new(dev, pools(false))?,
            pool_dx: Problems::new(dev, pools(true))?,
            norm: Problems::new(dev, norms)?,
            relu: Problems::new(dev, elements(true))?,
            dropout: Problems::new(dev, elements(false))?,
        })
    }

    /// Kernel launches of a training step at this index: forward, then backward.
    fn launches(&self) -> usize {
        let n = |present: bool, count: usize| if present { count } else { 0 };
        n(!self.linear.is_empty(), 2)
            + n(!self.linear_dx.is_empty(), 1)
            + n(!self.pool.is_empty(), 1)
            + n(!self.pool_dx.is_empty(), 1)
            + n(!self.norm.is_empty(), 3)
            + n(!self.relu.is_empty(), 2)
            + n(!self.dropout.is_empty(), 2)
    }
}

pub struct NetworkPopulation {
    dev: Arc<Device>,
    slots: Slots,
    /// Rows every block holds.
    capacity: usize,
    n_features: usize,
    grad: CudaSlice<f32>,
    /// Each member's trainable range `[start, end)` in the flat buffers.
    trainable: CudaSlice<i64>,
    acts: CudaSlice<f32>,
    deltas: CudaSlice<f32>,
    picks: CudaSlice<u32>,
    stats: CudaSlice<f32>,
    y: CudaSlice<u32>,
    /// Batches done within a replayed run of steps (`BatchStart::Cursor`).
    cursor: CudaSlice<i32>,
    /// Per layer index, in order.
    layers: Vec<LayerLaunches>,
    /// Every batch norm of every member: the running statistics' update.
    norms: Problems<NormProblem>,
    loss: LossLaunch,
}

impl NetworkPopulation {
    /// `members` laid out on the device, slot `s` taking its weights and moments from
    /// `weights[s]`, with room for batches of up to `capacity` rows. Every member's
    /// architecture must pass [`unsupported_layers`].
    pub fn build(
        dev: &Arc<Device>,
        members: &[Member],
        capacity: usize,
        weights: &[SlotWeights<'_>],
    ) -> Result<Self, DriverError> {
        let capacity = capacity.max(1);
        let n_features = members.first().map_or(1, |m| m.spec.arch.inputs);
        let mut sizes = Sizes {
            acts: capacity * n_features,
            picks: 0,
            stats: 0,
        };
        let mut offsets = vec![0usize];
        let plans: Vec<MemberPlan> = (members.iter().enumerate())
            .map(|(slot, m)| {
                let param_off = offsets[slot];
                offsets.push(param_off + m.spec.arch.param_count());
                resolve(&m.spec.arch, (slot, param_off), capacity, &mut sizes)
            })
            .collect();
        let depth = plans.iter().map(|p| p.layers.len()).max().unwrap_or(0);
        let layers = (0..depth)
            .map(|l| {
                let at: Vec<Resolved> = (plans.iter())
                    .filter_map(|p| p.layers.get(l))
                    .copied()
                    .collect();
                LayerLaunches::new(dev, &at)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let norms: Vec<NormProblem> = (plans.iter().flat_map(|p| &p.layers))
            .filter_map(|r| match r {
                Resolved::Norm(p) => Some(*p),
                _ => None,
            })
            .collect();
        let trainable: Vec<i64> = (plans.iter())
            .flat_map(|p| [p.trainable.0 as i64, p.trainable.1 as i64])
            .collect();
        let loss: Vec<LossProblem> = plans.iter().map(|p| p.loss).collect();
        let s = &dev.stream;
        let total = *offsets.last().expect("offsets start at 0");
        Ok(NetworkPopulation {
            slots: Slots::build(dev, members, offsets, weights)?,
            capacity,
            n_features,
            grad: s.alloc_zeros(total.max(1))?,
            trainable: dev.upload(Transfer::Layout, &trainable)?,
            acts: s.alloc_zeros(sizes.acts.max(1))?,
            deltas: s.alloc_zeros(sizes.acts.max(1))?,
            picks: s.alloc_zeros(sizes.picks.max(1))?,
            stats: s.alloc_zeros(sizes.stats.max(1))?,
            y: s.alloc_zeros(capacity)?,
            cursor: s.alloc_zeros(1)?,
            layers,
            norms: Problems::new(dev, norms)?,
            loss: LossLaunch::of(dev, &loss)?,
            dev: dev.clone(),
        })
    }

    /// The members' weights, hyperparameters and state.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Rows a batch may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Kernel launches of one training step: gather, the loss, the running statistics'
    /// update (with batch norm), the layers' launches, the optimizer (plus the cursor's
    /// advance in a graph). Depends on the layer kinds at each index, not on P.
    pub fn launches_per_step(&self) -> usize {
        let layers: usize = self.layers.iter().map(LayerLaunches::launches).sum();
        3 + layers + usize::from(!self.norms.is_empty()) + usize::from(self.dev.graphs())
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
        self.launch_step(data, order, BatchStart::Row(start), rows)
    }

    /// `steps` optimizer steps on consecutive batches of `rows` from `start` in `order`,
    /// replayed from one captured graph when graphs are on.
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
        self.dev.stream.memset_zeros(&mut self.cursor)?;
        slots::replay_step(&self.dev, &self.cursor, steps, || {
            self.launch_step(data, order, BatchStart::Cursor(start, &self.cursor), rows)
        })
    }

    /// The forward pass of every member on the `rows` in the activations buffer: a
    /// training step's (`training`: batch statistics, dropout) or evaluation's.
    fn forward(&self, rows: usize, training: bool) -> Result<(), DriverError> {
        let dev = &*self.dev;
        let state = training.then_some(&self.slots.state);
        let norm_buffers = NormBuffers {
            acts: &self.acts,
            params: &self.slots.params,
            stats: &self.stats,
        };
        for at in &self.layers {
            let buffers = ConvBuffers {
                a: &self.acts,
                b: &self.slots.params,
                out: &self.acts,
                state,
            };
            conv::launch(dev, &at.linear, ConvPass::Forward, rows, &buffers)?;
            pool::forward(dev, &at.pool, rows, (&self.acts, &self.picks), state)?;
            norm::forward(dev, &at.norm, rows, &norm_buffers, state)?;
            activation::relu_forward(dev, &at.relu, rows, &self.acts, state)?;
            if training {
                let pass = (DropoutPass::Forward, rows);
                let (hp, st) = (&self.slots.hparams, &self.slots.state);
                dropout::launch(dev, &at.dropout, pass, &self.acts, hp, st)?;
            }
        }
        Ok(())
    }

    /// The backward pass from the loss gradient, layer indices deepest first, into the
    /// gradient buffer.
    fn backward(&self, rows: usize) -> Result<(), DriverError> {
        let dev = &*self.dev;
        let (hp, state) = (&self.slots.hparams, &self.slots.state);
        let norm_buffers = NormBuffers {
            acts: &self.acts,
            params: &self.slots.params,
            stats: &self.stats,
        };
        for at in self.layers.iter().rev() {
            let pass = (DropoutPass::Backward, rows);
            dropout::launch(dev, &at.dropout, pass, &self.deltas, hp, state)?;
            activation::relu_backward(dev, &at.relu, rows, (&self.acts, &self.deltas), state)?;
            let deltas_grad = (&self.deltas, &self.grad);
            norm::backward(
                dev,
                &at.norm,
                (rows, true),
                &norm_buffers,
                deltas_grad,
                state,
            )?;
            pool::backward(dev, &at.pool_dx, rows, (&self.deltas, &self.picks), state)?;
            let weights = ConvBuffers {
                a: &self.deltas,
                b: &self.acts,
                out: &self.grad,
                state: Some(state),
            };
            conv::launch(dev, &at.linear, ConvPass::BackwardW, rows, &weights)?;
            let inputs = ConvBuffers {
                a: &self.deltas,
                b: &self.slots.params,
                out: &self.deltas,
                state: Some(state),
            };
            conv::launch(dev, &at.linear_dx, ConvPass::BackwardX, rows, &inputs)?;
        }
        Ok(())
    }

    /// Enqueues the launches of one training step.
    fn launch_step(
        &self,
        data: &DeviceData,
        order: &CudaSlice<u32>,
        start: BatchStart<'_>,
        rows: usize,
    ) -> Result<(), DriverError> {
        let dev = &*self.dev;
        let (hp, state) = (&self.slots.hparams, &self.slots.state);
        gather_rows(dev, data, order, start, rows, &self.acts, &self.y)?;
        self.forward(rows, true)?;
        let dlogits = Some(&self.deltas);
        softmax_cross_entropy(
            dev, &self.loss, &self.acts, &self.y, rows, dlogits, hp, state,
        )?;
        // After the loss kernel: a member that diverged in this step keeps its statistics.
        let running = (&self.stats, &self.slots.params);
        norm::update_running(dev, &self.norms, rows, running, state)?;
        self.backward(rows)?;
        let moments = (&self.slots.moment1, &self.slots.moment2);
        let (params, members) = (&self.slots.params, self.len());
        optim::optimizer_step(
            dev,
            &self.grad,
            params,
            moments,
            &self.trainable,
            hp,
            state,
            members,
        )
    }

    /// Adds every member's loss and correct count on all of `data` (no dropout, batch norm
    /// with its running statistics) to its state's eval sums.
    pub fn evaluate(&mut self, data: &DeviceData) -> Result<(), DriverError> {
        assert_eq!(
            data.n_features, self.n_features,
            "the data the members read"
        );
        let mut start = 0;
        while start < data.rows {
            let rows = self.capacity.min(data.rows - start);
            let dev = &*self.dev;
            let at = BatchStart::Row(start);
            gather_rows(dev, data, &data.identity, at, rows, &self.acts, &self.y)?;
            self.forward(rows, false)?;
            let (hp, state) = (&self.slots.hparams, &self.slots.state);
            softmax_cross_entropy(dev, &self.loss, &self.acts, &self.y, rows, None, hp, state)?;
            start += rows;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cnn::{CnnSpec, ImageShape};

    fn cnn(filters: usize, layers: usize, batch_norm: bool) -> Arch {
        let image = ImageShape {
            channels: 1,
            height: 12,
            width: 12,
        };
        let spec = CnnSpec {
            filters,
            layers,
            batch_norm,
            spatial_dropout: true,
            fc_width: 16,
            ..CnnSpec::default()
        };
        Arch::cnn(image, &spec, Activation::Relu, 10).unwrap()
    }

    /// The resolved layers of a ragged population address exactly what the CPU twin's
    /// steps do: each member's parameter slices and running statistics, blocks that never
    /// overlap (the minibatch first), dropout keyed by the block it acts on, the logits in
    /// the last block, and only the trainable parameters updated.
    #[test]
    fn resolved_layers_follow_the_cpu_layout_without_overlap() {
        let archs = [cnn(4, 2, true), cnn(3, 3, false), Arch::mlp(144, &[20], 10)];
        let capacity = 4;
        let mut sizes = Sizes {
            acts: capacity * 144,
            picks: 0,
            stats: 0,
        };
        let mut regions = vec![(0, capacity * 144)];
        let mut param_off = 0;
        for (member, arch) in archs.iter().enumerate() {
            let plan = resolve(arch, (member, param_off), capacity, &mut sizes);
            assert_eq!(plan.layers.len(), arch.layers.len());
            let mut slices = arch.param_slices().into_iter();
            let mut states = arch.state_offsets().into_iter();
            let mut block = None::<(usize, usize)>;
            let mut blocks = 0;
            for (layer, resolved) in arch.layers.iter().zip(&plan.layers) {
                let input = block;
                if let Some((_, outputs)) = layer.widths() {
                    let (off, _) = match resolved {
                        Resolved::Linear(p, _) => (p.y_off as usize, 0),
                        Resolved::Pool(p, _) => (p.y_off as usize, 0),
                        Resolved::Norm(p) => (p.y_off as usize, 0),
                        other => panic!("{other:?} writes no block"),
                    };
                    regions.push((off, off + capacity * outputs));
                    block = Some((off, blocks));
                    blocks += 1;
                }
                let x_off = input.map_or(0, |(off, _)| off);
                match *resolved {
                    Resolved::Linear(p, with_dx) => {
                        let s = slices.next().unwrap();
                        assert_eq!(p.w_off as usize, param_off + s.weights);
                        assert_eq!(p.b_off as usize, param_off + s.bias);
                        assert_eq!(p.x_off as usize, x_off);
                        assert_eq!(with_dx, input.is_some());
                    }
                    Resolved::Norm(p) => {
                        let s = slices.next().unwrap();
                        assert_eq!(p.gamma_off as usize, param_off + s.weights);
                        assert_eq!(p.state_off as usize, param_off + states.next().unwrap());
                        assert_eq!(p.x_off as usize, x_off);
                        assert_eq!(p.has_dx, i32::from(input.is_some()));
                    }
                    Resolved::Pool(p, with_dx) => {
                        assert_eq!(p.x_off as usize, x_off);
                        assert_eq!(with_dx, input.is_some());
                    }
                    Resolved::Relu(p) | Resolved::Dropout(p) => {
                        let (off, index) = block.unwrap();
                        assert_eq!((p.off as usize, p.layer as usize), (off, index));
                    }
                }
            }
            assert!(slices.next().is_none(), "every parameter slice is used");
            let (last, _) = block.unwrap();
            assert_eq!(plan.loss.logits_off as usize, last);
            assert_eq!(plan.loss.classes, 10);
            assert_eq!(
                plan.trainable,
                (param_off, param_off + arch.trainable_params())
            );
            param_off += arch.param_count();
        }
        regions.sort();
        for pair in regions.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "blocks overlap: {pair:?}");
        }
        assert_eq!(
            regions.last().unwrap().1,
            sizes.acts,
            "the buffer ends at the last block"
        );
    }

    #[test]
    fn only_layers_with_kernels_pass() {
        assert_eq!(unsupported_layers(&cnn(4, 2, true)), None);
        let gelu = Arch::mlp(8, &[4], 2).with_activation(Activation::Gelu);
        assert_eq!(
            unsupported_layers(&gelu),
            Some("an activation other than ReLU")
        );
    }
}
