//! One member's layer list resolved against the device buffers, as the CPU twin's
//! `NetworkWorkspace::new` walks it (`backend/cpu/network/steps.rs`): where each layer's
//! input and output blocks, parameters, statistics, picks, saved inputs, attention
//! weights and residual gradients lie.

use crate::backend::cuda::activation;
use crate::backend::cuda::conv::{conv_problem, dense_problem, token_dense_problem, LayerPlace};
use crate::backend::cuda::layout::{
    AttentionProblem, ConvProblem, ElementProblem, LayerNormProblem, LossProblem, NormProblem,
    PoolProblem, TokenProblem, TOKEN_CLASS, TOKEN_FIRST, TOKEN_FORK, TOKEN_MEAN, TOKEN_POSITION,
    TOKEN_RESIDUAL, TOKEN_TRANSPOSE,
};
use crate::backend::cuda::pool::{pool_problem, PoolKind};
use crate::model::hparams::Activation;
use crate::model::layers::{Arch, Layer, ParamSlice};

/// One member's layer resolved against the device buffers. `with_dx`: the layer's input
/// is a block of the member's own, so its gradient is needed (the minibatch's is not).
#[derive(Clone, Copy, Debug)]
pub(super) enum Resolved {
    Linear(ConvProblem, bool),
    Pool(PoolProblem, bool),
    Norm(NormProblem),
    Activation(ElementProblem),
    Dropout(ElementProblem),
    Token(TokenProblem),
    LayerNorm(LayerNormProblem),
    Attention(AttentionProblem),
}

/// Lengths of the buffers a population's layout needs (in elements): running totals as
/// members are resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferLengths {
    /// Activations (and deltas): the minibatch first, then every block.
    pub acts: usize,
    pub picks: usize,
    pub stats: usize,
    pub skips: usize,
    pub saved: usize,
    pub weights: usize,
}

/// A member's resolved layers, its loss problem and its trainable range.
pub(super) struct MemberPlan {
    pub layers: Vec<Resolved>,
    pub loss: LossProblem,
    pub trainable: (usize, usize),
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
    sizes: &'a mut BufferLengths,
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
pub(super) fn resolve(
    arch: &Arch,
    (member, param_off): (usize, usize),
    capacity: usize,
    sizes: &mut BufferLengths,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cuda::network::unsupported_layers;
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
        let mut sizes = BufferLengths {
            acts: capacity * 144,
            ..BufferLengths::default()
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
