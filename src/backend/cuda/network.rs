//! A population of layered networks — CNNs with convolutions, pooling, batch norm, ReLU,
//! dropout and spatial dropout, and MLPs beside them — resolved for the CUDA kernels, each
//! member's layer list walked as the CPU twin does (`backend/cpu/network/`), and its steps
//! as plans (`plan.rs`); `network_population.rs` runs them on the device.
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
use super::attention;
use super::conv::{self, conv_problem, dense_problem, token_dense_problem, ConvPass, LayerPlace};
use super::dropout::{self, DropoutPass};
use super::gather;
use super::layout::{
    AttentionProblem, ConvProblem, ElementProblem, LayerNormProblem, LossProblem, NormProblem,
    PoolProblem, TokenProblem, ATTENTION_MAX_TOKENS, TOKEN_CLASS, TOKEN_FIRST, TOKEN_FORK,
    TOKEN_MEAN, TOKEN_POSITION, TOKEN_RESIDUAL, TOKEN_TRANSPOSE,
};
use super::loss;
use super::norm;
use super::optim;
use super::plan::{Buffer, Group, Launch};
use super::pool::{self, pool_problem, PoolKind};
use super::tokens;
use crate::model::hparams::Activation;
use crate::model::layers::{Arch, Layer, ParamSlice};

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

/// One member's layer resolved against the device buffers. `with_dx`: the layer's input
/// is a block of the member's own, so its gradient is needed (the minibatch's is not).
#[derive(Clone, Copy, Debug)]
enum Resolved {
    Linear(ConvProblem, bool),
    Pool(PoolProblem, bool),
    Norm(NormProblem),
    Activation(ElementProblem),
    Dropout(ElementProblem),
    Token(TokenProblem),
    LayerNorm(LayerNormProblem),
    Attention(AttentionProblem),
}

/// Running totals of the buffers as members are resolved.
#[derive(Clone, Copy, Debug, Default)]
struct Sizes {
    /// Activations (and deltas): the minibatch first, then every block.
    acts: usize,
    picks: usize,
    stats: usize,
    skips: usize,
    saved: usize,
    weights: usize,
}

/// A member's resolved layers, its loss problem and its trainable range.
struct MemberPlan {
    layers: Vec<Resolved>,
    loss: LossProblem,
    trainable: (usize, usize),
}

fn int(v: usize) -> i32 {
    i32::try_from(v).expect("layer sizes fit in i32")
}

/// A block of the member's: its offset in the activations, its width, its index in the
/// member's network (`None`: the minibatch, the block before the first).
type Block = (usize, usize, Option<usize>);

/// One member's walk through its layer list, as the CPU twin's `NetworkWorkspace::new`.
struct Resolver<'a> {
    member: usize,
    param_off: usize,
    capacity: usize,
    sizes: &'a mut Sizes,
    slices: std::vec::IntoIter<ParamSlice>,
    states: std::vec::IntoIter<usize>,
    /// The forks still open, innermost last: the block each adds back, its skip buffer.
    open_forks: Vec<(usize, usize)>,
}

impl Resolver<'_> {
    fn place(&mut self, input: Block, output: Block) -> LayerPlace {
        let slice = self.slices.next().expect("a slice per parameterised layer");
        LayerPlace {
            x_off: input.0,
            y_off: output.0,
            w_off: self.param_off + slice.weights,
            b_off: self.param_off + slice.bias,
            member: self.member,
        }
    }

    /// `n` values per row of a batch, appended to the buffer whose running size is `size`.
    fn take(capacity: usize, size: &mut usize, n: usize) -> usize {
        let at = *size;
        *size += capacity * n;
        at
    }

    fn element(&self, block: Block, channels: usize) -> ElementProblem {
        ElementProblem {
            off: block.0 as i64,
            width: int(block.1),
            channels: int(channels),
            member: int(self.member),
            layer: int(block.2.expect("an in-place layer follows a block")),
            ..Default::default()
        }
    }

    /// The layer that reads `input` and writes (or changes in place) `output`.
    fn layer(&mut self, layer: &Layer, input: Block, output: Block) -> Resolved {
        let with_dx = input.2.is_some();
        let (capacity, member) = (self.capacity, self.member);
        let pooled = |p, kind, picks| {
            let at = (input.0, output.0, picks);
            Resolved::Pool(pool_problem(p, kind, at, member), with_dx)
        };
        match *layer {
            Layer::Dense { inputs, outputs } => Resolved::Linear(
                dense_problem(inputs, outputs, self.place(input, output)),
                with_dx,
            ),
            Layer::Conv2d(c) => {
                Resolved::Linear(conv_problem(&c, self.place(input, output)), with_dx)
            }
            Layer::MaxPool(p) => {
                let picks = Self::take(capacity, &mut self.sizes.picks, p.out_size());
                pooled(&p, PoolKind::Max, picks)
            }
            Layer::AvgPool(p) => pooled(&p, PoolKind::Avg, 0),
            Layer::GlobalAvgPool(p) => pooled(&p, PoolKind::Global, 0),
            Layer::BatchNorm(n) => {
                let at = self.place(input, output);
                let stats = self.sizes.stats;
                self.sizes.stats += 3 * n.channels;
                let state = self.states.next().expect("a state per batch norm");
                Resolved::Norm(NormProblem {
                    x_off: at.x_off as i64,
                    y_off: at.y_off as i64,
                    gamma_off: at.w_off as i64,
                    state_off: (self.param_off + state) as i64,
                    stats_off: stats as i64,
                    channels: int(n.channels),
                    spatial: int(n.spatial),
                    member: int(member),
                    has_dx: i32::from(with_dx),
                })
            }
            Layer::Activation(a) => {
                let saved = if a == Activation::Relu {
                    0
                } else {
                    Self::take(capacity, &mut self.sizes.saved, output.1)
                };
                Resolved::Activation(ElementProblem {
                    aux_off: saved as i64,
                    kind: activation::kind(a),
                    ..self.element(output, 0)
                })
            }
            Layer::Dropout => Resolved::Dropout(self.element(output, 0)),
            Layer::SpatialDropout { channels } => Resolved::Dropout(self.element(output, channels)),
            _ => self.transformer_layer(layer, input, output),
        }
    }

    /// A transformer layer (token-wise dense, LayerNorm, attention, the token layers).
    fn transformer_layer(&mut self, layer: &Layer, input: Block, output: Block) -> Resolved {
        let (capacity, member) = (self.capacity, self.member);
        let token = |kind, (a, b): (usize, usize)| TokenProblem {
            x_off: input.0 as i64,
            y_off: output.0 as i64,
            a: int(a),
            b: int(b),
            kind,
            member: int(member),
            has_dx: i32::from(input.2.is_some()),
            ..Default::default()
        };
        match *layer {
            Layer::TokenDense {
                tokens,
                inputs,
                outputs,
            } => {
                let at = self.place(input, output);
                let problem = token_dense_problem(tokens, inputs, outputs, at);
                Resolved::Linear(problem, input.2.is_some())
            }
            Layer::LayerNorm { tokens, dim } => {
                let at = self.place(input, output);
                let stats = Self::take(capacity, &mut self.sizes.stats, 2 * tokens);
                Resolved::LayerNorm(LayerNormProblem {
                    x_off: at.x_off as i64,
                    y_off: at.y_off as i64,
                    gamma_off: at.w_off as i64,
                    stats_off: stats as i64,
                    tokens: int(tokens),
                    dim: int(dim),
                    member: int(member),
                    has_dx: i32::from(input.2.is_some()),
                })
            }
            Layer::Attention(a) => {
                let weights = Self::take(
                    capacity,
                    &mut self.sizes.weights,
                    a.heads * a.tokens * a.tokens,
                );
                Resolved::Attention(AttentionProblem {
                    x_off: input.0 as i64,
                    y_off: output.0 as i64,
                    p_off: weights as i64,
                    tokens: int(a.tokens),
                    dim: int(a.dim),
                    heads: int(a.heads),
                    member: int(member),
                    layer: int(output.2.expect("attention writes a block")),
                    pad: 0,
                })
            }
            Layer::Transpose { rows, cols } => {
                Resolved::Token(token(TOKEN_TRANSPOSE, (rows, cols)))
            }
            Layer::PositionEmbed { .. } => {
                let at = self.place(input, output);
                Resolved::Token(TokenProblem {
                    x_off: output.0 as i64,
                    param_off: at.w_off as i64,
                    ..token(TOKEN_POSITION, (output.1, 0))
                })
            }
            Layer::ClassToken { tokens, dim } => {
                let at = self.place(input, output);
                Resolved::Token(TokenProblem {
                    param_off: at.w_off as i64,
                    ..token(TOKEN_CLASS, (tokens, dim))
                })
            }
            Layer::TokenMean { tokens, dim } => Resolved::Token(token(TOKEN_MEAN, (tokens, dim))),
            Layer::FirstToken { tokens, dim } => Resolved::Token(token(TOKEN_FIRST, (tokens, dim))),
            Layer::Fork => {
                let skip = Self::take(capacity, &mut self.sizes.skips, output.1);
                self.open_forks.push((output.0, skip));
                Resolved::Token(TokenProblem {
                    x_off: output.0 as i64,
                    param_off: skip as i64,
                    ..token(TOKEN_FORK, (output.1, 0))
                })
            }
            Layer::Residual { width } => {
                let (source, skip) = self
                    .open_forks
                    .pop()
                    .expect("a consistent list nests forks");
                Resolved::Token(TokenProblem {
                    aux_off: source as i64,
                    param_off: skip as i64,
                    ..token(TOKEN_RESIDUAL, (width, 0))
                })
            }
            _ => unreachable!("every layer kind is resolved: {layer:?}"),
        }
    }
}

/// Resolves `arch` for slot `member`, its parameters at `param_off`, with room for
/// `capacity` rows; the layers' blocks, picks, statistics and saved values are appended to
/// `sizes`.
fn resolve(
    arch: &Arch,
    (member, param_off): (usize, usize),
    capacity: usize,
    sizes: &mut Sizes,
) -> MemberPlan {
    let mut current: Block = (0, arch.inputs, None);
    let mut blocks = 0usize;
    let mut layers = Vec::with_capacity(arch.layers.len());
    let mut resolver = Resolver {
        member,
        param_off,
        capacity,
        sizes,
        slices: arch.param_slices().into_iter(),
        states: arch.state_offsets().into_iter(),
        open_forks: Vec::new(),
    };
    for layer in &arch.layers {
        let input = current;
        if let Some((_, outputs)) = layer.widths() {
            let at = Resolver::take(capacity, &mut resolver.sizes.acts, outputs);
            current = (at, outputs, Some(blocks));
            blocks += 1;
        }
        layers.push(resolver.layer(layer, input, current));
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

/// Lengths of the buffers a [`NetworkPlan`] sizes (in elements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferLengths {
    pub acts: usize,
    pub picks: usize,
    pub stats: usize,
    pub skips: usize,
    pub saved: usize,
    pub weights: usize,
}

/// A population of layered networks resolved into problem tables, and the launches of its
/// steps (host only: `network_population.rs` puts it on the device).
pub struct NetworkPlan {
    capacity: usize,
    n_features: usize,
    /// `offsets[s]..offsets[s + 1]` is slot `s`'s range in the flat parameter buffers.
    offsets: Vec<usize>,
    sizes: Sizes,
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
        let mut sizes = Sizes {
            acts: capacity * n_features,
            ..Sizes::default()
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
        let s = self.sizes;
        BufferLengths {
            acts: s.acts,
            picks: s.picks,
            stats: s.stats,
            skips: s.skips,
            saved: s.saved,
            weights: s.weights,
        }
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
    /// loss, the running statistics' update, backward, the optimizer.
    pub fn train_step(&self, first: usize, cursor: bool, rows: usize) -> Vec<Launch> {
        assert!(rows <= self.capacity, "batch larger than the buffers");
        let mut launches = vec![gather::planned(self.n_features, first, cursor, rows)];
        self.forward(rows, true, &mut launches);
        launches.push(loss::planned(self.members(), rows, true));
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
        launches.push(loss::planned(self.members(), rows, false));
        launches
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
            ..Sizes::default()
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
                    Resolved::Activation(p) | Resolved::Dropout(p) => {
                        let (off, index) = block.unwrap();
                        assert_eq!((p.off as usize, p.layer as usize), (off, index));
                    }
                    // The transformers' layers: checked end to end under emulation
                    // (tests/kernel_emulation.rs).
                    other => panic!("{other:?} in a CNN or an MLP"),
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
        assert_eq!(unsupported_layers(&gelu), None);
        use crate::model::vit::VitSpec;
        let mnist = ImageShape::square(784).unwrap();
        let vit = |patch| {
            Arch::vit(
                mnist,
                &VitSpec {
                    patch,
                    ..VitSpec::default()
                },
                10,
            )
        };
        assert_eq!(unsupported_layers(&vit(7).unwrap()), None);
        let long = unsupported_layers(&vit(2).unwrap()).unwrap();
        assert!(long.contains("more than 65 tokens"), "{long}");
    }
}
