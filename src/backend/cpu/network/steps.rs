//! A member's layer list resolved against its workspace: one [`Step`] per layer, saying
//! which block it writes or changes in place and where its parameters, mask or saved
//! values live, and the workspace's buffers sized for a batch.

use super::classic::{BatchNormStep, ClassicStep};
use super::transformer::TokenStep;
use super::{NetworkWorkspace, NormStats};
use crate::backend::cpu::conv::col_len;
use crate::backend::cpu::Real;
use crate::model::hparams::Activation;
use crate::model::layers::{Arch, Layer, ParamSlice};

/// One layer, resolved against the workspace.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
    Classic(ClassicStep),
    Token(TokenStep),
}

/// Where the layer being resolved stands: its input block, the block it writes (if it
/// writes one), and what the layers before it took of the parameter layout.
struct Cursor<'a> {
    slices: &'a mut std::vec::IntoIter<ParamSlice>,
    states: &'a mut std::vec::IntoIter<usize>,
    /// The forks still open, innermost last: the block each adds back, and its skip buffer.
    open_forks: &'a mut Vec<(usize, usize)>,
    batch: usize,
    block: usize,
    new_block: usize,
}

impl Cursor<'_> {
    /// A zeroed buffer of `width` values per row of a batch.
    fn zeros<T: Real>(&self, width: usize) -> Vec<T> {
        vec![T::zero(); self.batch * width]
    }
}

impl<T: Real> NetworkWorkspace<T> {
    /// Buffers for `arch` on batches of up to `batch` rows. The list must chain (a
    /// programming error otherwise: architectures come from builders such as `Arch::mlp`).
    pub fn new(arch: &Arch, batch: usize) -> Self {
        assert!(
            arch.is_consistent(),
            "layer list does not chain: {:?}",
            arch.layers
        );
        let mut ws = NetworkWorkspace {
            steps: Vec::with_capacity(arch.layers.len()),
            blocks: Vec::new(),
            widths: Vec::new(),
            masks: Vec::new(),
            saved: Vec::new(),
            picks: Vec::new(),
            norms: Vec::new(),
            attention: Vec::new(),
            scores_grad: Vec::new(),
            attention_masks: Vec::new(),
            scores_kept: Vec::new(),
            attention_dropout: false,
            skips: Vec::new(),
            running_stats: false,
            rows: 0,
            col: Vec::new(),
            dcol: Vec::new(),
            delta: Vec::new(),
            delta_prev: Vec::new(),
        };
        let mut slices = arch.param_slices().into_iter();
        let mut states = arch.state_offsets().into_iter();
        // The skip buffers of the forks still open, innermost last.
        let mut open_forks = Vec::new();
        for layer in &arch.layers {
            let block = ws.blocks.len().saturating_sub(1);
            let zeros = |width: usize| vec![T::zero(); batch * width];
            if let Some((_, outputs)) = layer.widths() {
                ws.blocks.push(zeros(outputs));
                ws.widths.push(outputs);
            }
            let new_block = ws.blocks.len().saturating_sub(1);
            let mut at = Cursor {
                slices: &mut slices,
                states: &mut states,
                open_forks: &mut open_forks,
                batch,
                block,
                new_block,
            };
            let step = match layer {
                Layer::TokenDense { .. }
                | Layer::LayerNorm { .. }
                | Layer::Transpose { .. }
                | Layer::PositionEmbed { .. }
                | Layer::Attention(_)
                | Layer::Fork
                | Layer::Residual { .. }
                | Layer::TokenMean { .. }
                | Layer::ClassToken { .. }
                | Layer::FirstToken { .. } => ws.token_step(layer, &mut at),
                _ => ws.classic_step(layer, &mut at),
            };
            ws.steps.push(step);
        }
        let max_width = ws.widths.iter().copied().max().unwrap_or(0);
        ws.delta = vec![T::zero(); batch * max_width];
        ws.delta_prev = vec![T::zero(); batch * max_width];
        ws
    }

    /// A classic layer's step (dense, convolution, pooling, activation, dropout, batch
    /// norm), its buffers added to the workspace.
    fn classic_step(&mut self, layer: &Layer, c: &mut Cursor) -> Step {
        match *layer {
            Layer::Dense { inputs, outputs } => {
                let slice = c.slices.next().expect("a slice per parameterised layer");
                Step::Classic(ClassicStep::Dense {
                    shape: (inputs, outputs),
                    tokens: 1,
                    weights: slice.weights,
                    bias: slice.bias,
                    block: c.new_block,
                })
            }
            Layer::Conv2d(conv) => {
                let slice = c.slices.next().expect("a slice per parameterised layer");
                let len = col_len(&conv).max(self.col.len());
                self.col.resize(len, T::zero());
                self.dcol.resize(len, T::zero());
                Step::Classic(ClassicStep::Conv {
                    conv,
                    weights: slice.weights,
                    bias: slice.bias,
                    block: c.new_block,
                })
            }
            Layer::MaxPool(pool) => {
                self.picks.push(vec![0; c.batch * pool.out_size()]);
                Step::Classic(ClassicStep::MaxPool {
                    pool,
                    block: c.new_block,
                    picks: self.picks.len() - 1,
                })
            }
            Layer::AvgPool(pool) => Step::Classic(ClassicStep::AvgPool {
                pool,
                block: c.new_block,
            }),
            Layer::GlobalAvgPool(pool) => Step::Classic(ClassicStep::GlobalAvgPool {
                pool,
                block: c.new_block,
            }),
            Layer::Activation(activation) => Step::Classic(ClassicStep::Activation {
                activation,
                block: c.block,
                saved: (activation != Activation::Relu).then(|| {
                    self.saved.push(c.zeros(self.widths[c.block]));
                    self.saved.len() - 1
                }),
            }),
            Layer::Dropout => {
                self.masks.push(c.zeros(self.widths[c.block]));
                Step::Classic(ClassicStep::Dropout {
                    block: c.block,
                    mask: self.masks.len() - 1,
                })
            }
            Layer::SpatialDropout { channels } => {
                self.masks.push(c.zeros(channels));
                Step::Classic(ClassicStep::SpatialDropout {
                    block: c.block,
                    mask: self.masks.len() - 1,
                    channels,
                })
            }
            Layer::BatchNorm(norm) => {
                let slice = c.slices.next().expect("a slice per parameterised layer");
                let per_channel = || vec![T::zero(); norm.channels];
                self.norms.push(NormStats {
                    mean: per_channel(),
                    invstd: per_channel(),
                    var: per_channel(),
                });
                Step::Classic(ClassicStep::Norm(BatchNormStep {
                    norm,
                    gamma: slice.weights,
                    beta: slice.bias,
                    state: c.states.next().expect("a state offset per batch norm"),
                    block: c.new_block,
                    stats: self.norms.len() - 1,
                }))
            }

            _ => unreachable!("new() sends only the classic layers here"),
        }
    }

    /// A transformer layer's step (token-wise dense, LayerNorm, tokens, attention,
    /// residual forks), its buffers added to the workspace.
    fn token_step(&mut self, layer: &Layer, c: &mut Cursor) -> Step {
        match *layer {
            Layer::TokenDense {
                tokens,
                inputs,
                outputs,
            } => {
                let slice = c.slices.next().expect("a slice per parameterised layer");
                Step::Classic(ClassicStep::Dense {
                    shape: (inputs, outputs),
                    tokens,
                    weights: slice.weights,
                    bias: slice.bias,
                    block: c.new_block,
                })
            }
            Layer::LayerNorm { tokens, dim } => {
                let slice = c.slices.next().expect("a slice per parameterised layer");
                self.norms.push(NormStats {
                    mean: c.zeros(tokens),
                    invstd: c.zeros(tokens),
                    var: Vec::new(),
                });
                Step::Token(TokenStep::LayerNorm {
                    dim,
                    gamma: slice.weights,
                    beta: slice.bias,
                    block: c.new_block,
                    stats: self.norms.len() - 1,
                })
            }
            Layer::Transpose { rows, cols } => Step::Token(TokenStep::Transpose {
                rows,
                cols,
                block: c.new_block,
            }),
            Layer::PositionEmbed { .. } => {
                let slice = c.slices.next().expect("a slice per parameterised layer");
                Step::Token(TokenStep::Position {
                    embedding: slice.weights,
                    block: c.block,
                })
            }
            Layer::Attention(attention) => {
                let t = attention.tokens;
                self.attention.push(c.zeros(attention.heads * t * t));
                self.attention_masks.push(c.zeros(attention.heads * t * t));
                let len = (t * t).max(self.scores_grad.len());
                self.scores_grad.resize(len, T::zero());
                self.scores_kept.resize(len, T::zero());
                Step::Token(TokenStep::Attention {
                    attention,
                    block: c.new_block,
                    weights: self.attention.len() - 1,
                })
            }
            Layer::Fork => {
                self.skips.push(c.zeros(self.widths[c.block]));
                c.open_forks.push((c.block, self.skips.len() - 1));
                Step::Token(TokenStep::Fork {
                    block: c.block,
                    skip: self.skips.len() - 1,
                })
            }
            Layer::Residual { .. } => {
                let (source, skip) = c.open_forks.pop().expect("a consistent list nests forks");
                Step::Token(TokenStep::Residual {
                    block: c.new_block,
                    source,
                    skip,
                })
            }
            Layer::TokenMean { tokens, dim } => Step::Token(TokenStep::TokenMean {
                tokens,
                dim,
                block: c.new_block,
            }),
            Layer::ClassToken { tokens, dim } => {
                let slice = c.slices.next().expect("a slice per parameterised layer");
                Step::Token(TokenStep::ClassToken {
                    tokens,
                    dim,
                    class: slice.weights,
                    block: c.new_block,
                })
            }
            Layer::FirstToken { tokens, dim } => Step::Token(TokenStep::FirstToken {
                tokens,
                dim,
                block: c.new_block,
            }),
            _ => unreachable!("new() sends only the transformer's layers here"),
        }
    }
}
