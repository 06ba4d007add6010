//! A member's layer list resolved against its workspace: one [`Step`] per layer, saying
//! which block it writes or changes in place and where its parameters, mask or saved
//! values live, and the workspace's buffers sized for a batch.

use super::classic::ClassicStep;
use super::transformer::TokenStep;
use super::{NetworkWorkspace, NormStats};
use crate::backend::cpu::conv::col_len;
use crate::backend::cpu::Real;
use crate::model::hparams::Activation;
use crate::model::layers::{Arch, Layer};

/// One layer, resolved against the workspace.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
    Classic(ClassicStep),
    Token(TokenStep),
}

impl<T: Real> NetworkWorkspace<T> {
    /// Buffers for `arch` on batches of up to `batch` rows. The list must chain (a
    /// programming error otherwise: architectures come from builders such as `Arch::mlp`).
    // One arm per layer kind, each a few lines of buffers and offsets: kept in one
    // match so that a new kind is one more arm.
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
            let step = match *layer {
                Layer::Dense { inputs, outputs } => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    Step::Classic(ClassicStep::Dense {
                        shape: (inputs, outputs),
                        tokens: 1,
                        weights: slice.weights,
                        bias: slice.bias,
                        block: new_block,
                    })
                }
                Layer::TokenDense {
                    tokens,
                    inputs,
                    outputs,
                } => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    Step::Classic(ClassicStep::Dense {
                        shape: (inputs, outputs),
                        tokens,
                        weights: slice.weights,
                        bias: slice.bias,
                        block: new_block,
                    })
                }
                Layer::LayerNorm { tokens, dim } => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    ws.norms.push(NormStats {
                        mean: zeros(tokens),
                        invstd: zeros(tokens),
                        var: Vec::new(),
                    });
                    Step::Token(TokenStep::LayerNorm {
                        dim,
                        gamma: slice.weights,
                        beta: slice.bias,
                        block: new_block,
                        stats: ws.norms.len() - 1,
                    })
                }
                Layer::Transpose { rows, cols } => Step::Token(TokenStep::Transpose {
                    rows,
                    cols,
                    block: new_block,
                }),
                Layer::PositionEmbed { .. } => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    Step::Token(TokenStep::Position {
                        embedding: slice.weights,
                        block,
                    })
                }
                Layer::Attention(attention) => {
                    let t = attention.tokens;
                    ws.attention.push(zeros(attention.heads * t * t));
                    ws.attention_masks.push(zeros(attention.heads * t * t));
                    let len = (t * t).max(ws.scores_grad.len());
                    ws.scores_grad.resize(len, T::zero());
                    ws.scores_kept.resize(len, T::zero());
                    Step::Token(TokenStep::Attention {
                        attention,
                        block: new_block,
                        weights: ws.attention.len() - 1,
                    })
                }
                Layer::Fork => {
                    ws.skips.push(zeros(ws.widths[block]));
                    open_forks.push((block, ws.skips.len() - 1));
                    Step::Token(TokenStep::Fork {
                        block,
                        skip: ws.skips.len() - 1,
                    })
                }
                Layer::Residual { .. } => {
                    let (source, skip) = open_forks.pop().expect("a consistent list nests forks");
                    Step::Token(TokenStep::Residual {
                        block: new_block,
                        source,
                        skip,
                    })
                }
                Layer::TokenMean { tokens, dim } => Step::Token(TokenStep::TokenMean {
                    tokens,
                    dim,
                    block: new_block,
                }),
                Layer::Conv2d(conv) => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    let len = col_len(&conv).max(ws.col.len());
                    ws.col.resize(len, T::zero());
                    ws.dcol.resize(len, T::zero());
                    Step::Classic(ClassicStep::Conv {
                        conv,
                        weights: slice.weights,
                        bias: slice.bias,
                        block: new_block,
                    })
                }
                Layer::MaxPool(pool) => {
                    ws.picks.push(vec![0; batch * pool.out_size()]);
                    Step::Classic(ClassicStep::MaxPool {
                        pool,
                        block: new_block,
                        picks: ws.picks.len() - 1,
                    })
                }
                Layer::AvgPool(pool) => Step::Classic(ClassicStep::AvgPool {
                    pool,
                    block: new_block,
                }),
                Layer::GlobalAvgPool(pool) => Step::Classic(ClassicStep::GlobalAvgPool {
                    pool,
                    block: new_block,
                }),
                Layer::Activation(activation) => Step::Classic(ClassicStep::Activation {
                    activation,
                    block,
                    saved: (activation != Activation::Relu).then(|| {
                        ws.saved.push(zeros(ws.widths[block]));
                        ws.saved.len() - 1
                    }),
                }),
                Layer::Dropout => {
                    ws.masks.push(zeros(ws.widths[block]));
                    Step::Classic(ClassicStep::Dropout {
                        block,
                        mask: ws.masks.len() - 1,
                    })
                }
                Layer::BatchNorm(norm) => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    let per_channel = || vec![T::zero(); norm.channels];
                    ws.norms.push(NormStats {
                        mean: per_channel(),
                        invstd: per_channel(),
                        var: per_channel(),
                    });
                    Step::Classic(ClassicStep::Norm {
                        norm,
                        gamma: slice.weights,
                        beta: slice.bias,
                        state: states.next().expect("a state offset per batch norm"),
                        block: new_block,
                        stats: ws.norms.len() - 1,
                    })
                }
            };
            ws.steps.push(step);
        }
        let max_width = ws.widths.iter().copied().max().unwrap_or(0);
        ws.delta = vec![T::zero(); batch * max_width];
        ws.delta_prev = vec![T::zero(); batch * max_width];
        ws
    }
}
