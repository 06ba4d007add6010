//! A population of layered networks — CNNs (convolutions, pooling, batch norm, dropout and
//! spatial dropout), vision transformers (patch embedding, LayerNorm, attention, GELU MLPs,
//! residual forks, token pooling) and MLPs of any activation beside them — resolved for the
//! CUDA kernels, each member's layer list walked as the CPU twin does
//! (`backend/cpu/network/`), and its steps as plans (`plan.rs`); `network_population.rs`
//! runs them on the device.
//!
//! Members are ragged (their filters, heads, widths, depths and kernel sizes differ), so a step is laid
//! out by layer *index*: at index `l`, the members whose `l`-th layer is a convolution (or a
//! dense layer) share one implicit-GEMM launch per pass, those with a pooling layer there
//! one pooling launch, and so on. A step's launch count depends on the deepest member and
//! the kinds present, never on P, and the whole step is captured once as a CUDA graph.
//!
//! Buffers: one activations buffer holds the shared minibatch (at offset 0, where the
//! gather writes it) and then every member's blocks, `capacity` rows each; the deltas
//! buffer mirrors it. Gradients go to a buffer shaped as the parameters, and one optimizer
//! launch over every member's trainable range applies them after the backward pass.

mod resolve;

use super::activation;
use super::attention;
use super::conv::{self, ConvPass};
use super::dropout::{self, DropoutPass};
use super::gather;
use super::layout::{
    AttentionProblem, ConvProblem, ElementProblem, LayerNormProblem, LossProblem, NormProblem,
    PoolProblem, TokenProblem, ATTENTION_MAX_TOKENS,
};
use super::loss;
use super::norm;
use super::optim;
use super::plan::{Buffer, Group, Launch};
use super::pool;
use super::tokens;
use crate::model::layers::{Arch, Layer};
pub use resolve::BufferLengths;
use resolve::{resolve, MemberPlan, Resolved};

/// Why `arch` cannot train on the network kernels, or `None` when it can.
pub fn unsupported_layers(arch: &Arch) -> Option<&'static str> {
    if arch.layers.first().is_none_or(|l| l.widths().is_none()) {
        return Some("a first layer that works in place on the input");
    }
    arch.layers.iter().find_map(|layer| match layer {
        Layer::Attention(a) if a.tokens > ATTENTION_MAX_TOKENS => Some(
            "attention over more than 65 tokens (its kernel keeps the scores in shared memory)",
        ),
        _ => None,
    })
}

/// The problem tables of one layer index, one per layer kind (and pass subset).
#[derive(Default)]
struct LayerTables {
    linear: Vec<ConvProblem>,
    linear_dx: Vec<ConvProblem>,
    pool: Vec<PoolProblem>,
    pool_dx: Vec<PoolProblem>,
    norm: Vec<NormProblem>,
    activation: Vec<ElementProblem>,
    dropout: Vec<ElementProblem>,
    token: Vec<TokenProblem>,
    layer_norm: Vec<LayerNormProblem>,
    attention: Vec<AttentionProblem>,
}

impl LayerTables {
    fn of(layers: &[Resolved]) -> Self {
        let mut t = LayerTables::default();
        for r in layers {
            match *r {
                Resolved::Linear(p, with_dx) => {
                    t.linear.push(p);
                    if with_dx {
                        t.linear_dx.push(p);
                    }
                }
                Resolved::Pool(p, with_dx) => {
                    t.pool.push(p);
                    if with_dx {
                        t.pool_dx.push(p);
                    }
                }
                Resolved::Norm(p) => t.norm.push(p),
                Resolved::Activation(p) => t.activation.push(p),
                Resolved::Dropout(p) => t.dropout.push(p),
                Resolved::Token(p) => t.token.push(p),
                Resolved::LayerNorm(p) => t.layer_norm.push(p),
                Resolved::Attention(p) => t.attention.push(p),
            }
        }
        t
    }
}

/// A problem table on the host, typed.
pub enum Table<'a> {
    Conv(&'a [ConvProblem]),
    Pool(&'a [PoolProblem]),
    Norm(&'a [NormProblem]),
    Element(&'a [ElementProblem]),
    Token(&'a [TokenProblem]),
    LayerNorm(&'a [LayerNormProblem]),
    Attention(&'a [AttentionProblem]),
    Loss(&'a [LossProblem]),
    /// `(start, end)` pairs.
    Ranges(&'a [i64]),
}

/// A population of layered networks resolved into problem tables, and the launches of its
/// steps (host only: `network_population.rs` puts it on the device).
pub struct NetworkPlan {
    capacity: usize,
    n_features: usize,
    /// `offsets[s]..offsets[s + 1]` is slot `s`'s range in the flat parameter buffers.
    offsets: Vec<usize>,
    sizes: BufferLengths,
    /// Per layer index, in order.
    layers: Vec<LayerTables>,
    /// Every batch norm of every member: the running statistics' update.
    norms: Vec<NormProblem>,
    loss: Vec<LossProblem>,
    trainable: Vec<i64>,
}

impl NetworkPlan {
    /// `archs` (every one passing [`unsupported_layers`]) with room for batches of up to
    /// `capacity` rows.
    pub fn new(archs: &[&Arch], capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let n_features = archs.first().map_or(1, |a| a.inputs);
        let mut sizes = BufferLengths {
            acts: capacity * n_features,
            ..BufferLengths::default()
        };
        let mut offsets = vec![0usize];
        let plans: Vec<MemberPlan> = (archs.iter().enumerate())
            .map(|(slot, arch)| {
                let param_off = offsets[slot];
                offsets.push(param_off + arch.param_count());
                resolve(arch, (slot, param_off), capacity, &mut sizes)
            })
            .collect();
        let depth = plans.iter().map(|p| p.layers.len()).max().unwrap_or(0);
        let layers = (0..depth)
            .map(|l| {
                let at: Vec<Resolved> = (plans.iter())
                    .filter_map(|p| p.layers.get(l))
                    .copied()
                    .collect();
                LayerTables::of(&at)
            })
            .collect();
        let all: Vec<Resolved> = plans.iter().flat_map(|p| p.layers.clone()).collect();
        NetworkPlan {
            capacity,
            n_features,
            offsets,
            sizes,
            layers,
            norms: LayerTables::of(&all).norm,
            loss: plans.iter().map(|p| p.loss).collect(),
            trainable: (plans.iter())
                .flat_map(|p| [p.trainable.0 as i64, p.trainable.1 as i64])
                .collect(),
        }
    }

    pub fn members(&self) -> usize {
        self.loss.len()
    }

    /// Rows a batch may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Each slot's range in the flat parameter buffers, as `offsets[s]..offsets[s + 1]`.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// Length of each buffer the plan sizes: activations (and deltas), picks,
    /// statistics, skips, saved inputs and attention weights.
    pub fn buffer_lengths(&self) -> BufferLengths {
        self.sizes
    }

    /// Every problem table with the buffer its launches name.
    pub fn tables(&self) -> Vec<(Buffer, Table<'_>)> {
        let mut tables = vec![
            (Buffer::Norms, Table::Norm(&self.norms)),
            (Buffer::Loss, Table::Loss(&self.loss)),
            (Buffer::Trainable, Table::Ranges(&self.trainable)),
        ];
        for (l, t) in self.layers.iter().enumerate() {
            let at = |g| Buffer::Problems(l, g);
            tables.extend([
                (at(Group::Linear), Table::Conv(&t.linear)),
                (at(Group::LinearDx), Table::Conv(&t.linear_dx)),
                (at(Group::Pool), Table::Pool(&t.pool)),
                (at(Group::PoolDx), Table::Pool(&t.pool_dx)),
                (at(Group::Norm), Table::Norm(&t.norm)),
                (at(Group::Activation), Table::Element(&t.activation)),
                (at(Group::Dropout), Table::Element(&t.dropout)),
                (at(Group::Token), Table::Token(&t.token)),
                (at(Group::LayerNorm), Table::LayerNorm(&t.layer_norm)),
                (at(Group::Attention), Table::Attention(&t.attention)),
            ]);
        }
        tables
    }

    /// The forward pass of every member on the `rows` at the start of the activations: a
    /// training step's (`training`: batch statistics, dropout, diverged members skipped) or
    /// evaluation's.
    fn forward(&self, rows: usize, training: bool, launches: &mut Vec<Launch>) {
        for (l, t) in self.layers.iter().enumerate() {
            let at = |g| Buffer::Problems(l, g);
            if !t.linear.is_empty() {
                let pass = (ConvPass::Forward, rows);
                launches.push(conv::launch(&t.linear, at(Group::Linear), pass, training));
            }
            if !t.pool.is_empty() {
                launches.push(pool::forward(&t.pool, at(Group::Pool), rows, training));
            }
            if !t.norm.is_empty() {
                launches.extend(norm::forward(&t.norm, at(Group::Norm), rows, training));
            }
            if !t.layer_norm.is_empty() {
                let table = at(Group::LayerNorm);
                launches.push(norm::layer_norm_forward(
                    &t.layer_norm,
                    table,
                    rows,
                    training,
                ));
            }
            if !t.token.is_empty() {
                launches.push(tokens::forward(&t.token, at(Group::Token), rows, training));
            }
            if !t.attention.is_empty() {
                let table = at(Group::Attention);
                launches.push(attention::forward(&t.attention, table, rows, training));
            }
            if !t.activation.is_empty() {
                let table = at(Group::Activation);
                launches.push(activation::forward(&t.activation, table, rows, training));
            }
            if training && !t.dropout.is_empty() {
                let pass = (DropoutPass::Forward, rows);
                launches.push(dropout::launch(&t.dropout, at(Group::Dropout), pass));
            }
        }
    }

    /// The backward pass from the loss gradient, layer indices deepest first, into the
    /// gradient buffer.
    fn backward(&self, rows: usize, launches: &mut Vec<Launch>) {
        for (l, t) in self.layers.iter().enumerate().rev() {
            let at = |g| Buffer::Problems(l, g);
            if !t.dropout.is_empty() {
                let pass = (DropoutPass::Backward, rows);
                launches.push(dropout::launch(&t.dropout, at(Group::Dropout), pass));
            }
            if !t.activation.is_empty() {
                let table = at(Group::Activation);
                launches.push(activation::backward(&t.activation, table, rows));
            }
            if !t.attention.is_empty() {
                launches.push(attention::backward(
                    &t.attention,
                    at(Group::Attention),
                    rows,
                ));
            }
            if !t.token.is_empty() {
                launches.push(tokens::backward(&t.token, at(Group::Token), rows));
            }
            if !t.layer_norm.is_empty() {
                let table = at(Group::LayerNorm);
                launches.extend(norm::layer_norm_backward(&t.layer_norm, table, rows));
            }
            if !t.norm.is_empty() {
                launches.push(norm::backward(&t.norm, at(Group::Norm), rows, true));
            }
            if !t.pool_dx.is_empty() {
                launches.push(pool::backward(&t.pool_dx, at(Group::PoolDx), rows));
            }
            if !t.linear.is_empty() {
                let pass = (ConvPass::BackwardW, rows);
                launches.push(conv::launch(&t.linear, at(Group::Linear), pass, true));
            }
            if !t.linear_dx.is_empty() {
                let pass = (ConvPass::BackwardX, rows);
                launches.push(conv::launch(&t.linear_dx, at(Group::LinearDx), pass, true));
            }
        }
    }

    /// One optimizer step of every alive member on rows `first .. first + rows` of the
    /// order (plus `rows` per batch the cursor counts, with `cursor`): gather, forward, the
    /// loss, the running statistics' update, backward, the optimizer. The learning-rate
    /// schedules count epochs of `steps_per_epoch` batches.
    pub fn train_step(
        &self,
        (first, cursor): (usize, bool),
        rows: usize,
        steps_per_epoch: usize,
    ) -> Vec<Launch> {
        assert!(rows <= self.capacity, "batch larger than the buffers");
        let mut launches = vec![gather::planned(self.n_features, first, cursor, rows)];
        self.forward(rows, true, &mut launches);
        launches.push(loss::planned(self.members(), (rows, steps_per_epoch), true));
        // After the loss kernel: a member that diverged in this step keeps its statistics.
        if !self.norms.is_empty() {
            launches.push(norm::update_running(&self.norms, rows));
        }
        self.backward(rows, &mut launches);
        launches.push(optim::planned(self.members()));
        launches
    }

    /// Evaluation of every member on rows `first .. first + rows` of the order (no
    /// dropout; batch norm with its running statistics), into the eval sums.
    pub fn evaluate(&self, first: usize, rows: usize) -> Vec<Launch> {
        assert!(rows <= self.capacity, "batch larger than the buffers");
        let mut launches = vec![gather::planned(self.n_features, first, false, rows)];
        self.forward(rows, false, &mut launches);
        launches.push(loss::planned(self.members(), (rows, 1), false));
        launches
    }
}
