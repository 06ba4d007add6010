//! The forward and backward steps of the transformer layers — the patch tokens'
//! transpose, position embeddings, LayerNorm, attention, residual forks and the mean over
//! tokens — on the workspace's blocks. Their token-wise dense layers are classic steps.

use super::{input_of, io, pass_back, NetworkWorkspace, StepDropout};
use crate::backend::cpu::attention::{attention_backward, attention_forward, Dropped};
use crate::backend::cpu::dropout::{dropout_mask, DropoutKey};
use crate::backend::cpu::norm::{layer_norm_backward, layer_norm_forward};
use crate::backend::cpu::tokens::{
    add_position, class_token_backward, class_token_forward, first_token_backward,
    first_token_forward, position_backward, token_mean_backward, token_mean_forward, transpose,
};
use crate::backend::cpu::Real;
use crate::model::layers::Attention;
use crate::rng::Stream;

#[derive(Clone, Copy, Debug)]
pub(super) enum TokenStep {
    LayerNorm {
        dim: usize,
        gamma: usize,
        beta: usize,
        block: usize,
        stats: usize,
    },
    Transpose {
        rows: usize,
        cols: usize,
        block: usize,
    },
    Position {
        embedding: usize,
        block: usize,
    },
    Attention {
        attention: Attention,
        block: usize,
        /// Index into the workspace's attention weights.
        weights: usize,
    },
    /// `skip`: index into the workspace's residual gradients.
    Fork {
        block: usize,
        skip: usize,
    },
    Residual {
        block: usize,
        /// The block the branch forked from.
        source: usize,
        skip: usize,
    },
    TokenMean {
        tokens: usize,
        dim: usize,
        block: usize,
    },
    /// `tokens` before the class token is put first; `class`: its parameters' offset.
    ClassToken {
        tokens: usize,
        dim: usize,
        class: usize,
        block: usize,
    },
    FirstToken {
        tokens: usize,
        dim: usize,
        block: usize,
    },
}

/// One step of the forward pass; `dropout`'s `attn_rate` drops attention weights.
pub(super) fn forward<T: Real>(
    step: TokenStep,
    params: &[T],
    x: &[T],
    batch: usize,
    dropout: Option<StepDropout>,
    ws: &mut NetworkWorkspace<T>,
) {
    match step {
        TokenStep::LayerNorm {
            dim,
            gamma,
            beta,
            block,
            stats,
        } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            let n = batch * ws.widths[block];
            let st = &mut ws.norms[stats];
            let rows = n / dim;
            let affine = (&params[gamma..beta], &params[beta..beta + dim]);
            let saved = (&mut st.mean[..rows], &mut st.invstd[..rows]);
            layer_norm_forward(dim, &input[..n], affine, saved, &mut out[..n]);
        }
        TokenStep::Transpose { rows, cols, block } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            transpose(rows, cols, batch, input, out);
        }
        TokenStep::Position { embedding, block } => {
            let size = ws.widths[block];
            add_position(
                batch,
                &params[embedding..embedding + size],
                &mut ws.blocks[block],
            );
        }
        TokenStep::Attention {
            attention,
            block,
            weights,
        } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            let n = batch * attention.heads * attention.tokens * attention.tokens;
            let dropped = match dropout.filter(|d| d.attn_rate > 0.0) {
                Some(d) => {
                    let mask = &mut ws.attention_masks[weights][..n];
                    let key = DropoutKey {
                        seed: d.seed,
                        step: d.step,
                        layer: block as u32,
                    };
                    dropout_mask(mask, d.attn_rate, key, Stream::AttentionDropout);
                    Some(Dropped {
                        mask,
                        kept: &mut ws.scores_kept,
                    })
                }
                None => None,
            };
            let weights = &mut ws.attention[weights];
            attention_forward(&attention, batch, input, weights, dropped, out);
        }
        TokenStep::Fork { .. } => {}
        TokenStep::Residual { block, source, .. } => {
            let n = batch * ws.widths[block];
            let (done, rest) = ws.blocks.split_at_mut(block);
            let (branch, skip) = (&done[block - 1][..n], &done[source][..n]);
            for ((o, &a), &b) in rest[0][..n].iter_mut().zip(branch).zip(skip) {
                *o = a + b;
            }
        }
        TokenStep::TokenMean { tokens, dim, block } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            token_mean_forward(tokens, dim, batch, input, out);
        }
        TokenStep::ClassToken {
            tokens,
            dim,
            class,
            block,
        } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            let class = &params[class..class + dim];
            class_token_forward((tokens, dim), batch, class, input, out);
        }
        TokenStep::FirstToken { tokens, dim, block } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            first_token_forward((tokens, dim), batch, input, out);
        }
    }
}

/// One step of the backward pass: `ws.delta` from the gradient of the step's output to
/// that of its input, its parameters' gradient into `grad`.
pub(super) fn backward<T: Real>(
    step: TokenStep,
    params: &[T],
    x: &[T],
    batch: usize,
    ws: &mut NetworkWorkspace<T>,
    grad: &mut [T],
) {
    match step {
        TokenStep::LayerNorm {
            dim,
            gamma,
            beta,
            block,
            stats,
        } => {
            let input = input_of(x, &ws.blocks, block);
            let n = batch * ws.widths[block];
            let (dgamma, dbeta) = grad[gamma..beta + dim].split_at_mut(dim);
            let dx = (block > 0).then(|| &mut ws.delta_prev[..n]);
            let st = &ws.norms[stats];
            let saved = (&st.mean[..n / dim], &st.invstd[..n / dim]);
            let gamma = &params[gamma..beta];
            let dy = &ws.delta[..n];
            layer_norm_backward(dim, &input[..n], gamma, saved, dy, dx, (dgamma, dbeta));
            if block > 0 {
                std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
            }
        }
        TokenStep::Transpose { rows, cols, block } => pass_back(
            (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
            block,
            batch * rows * cols,
            |dy, _, dx| transpose(cols, rows, batch, dy, dx),
        ),
        TokenStep::Position { embedding, block } => {
            let size = ws.widths[block];
            let d_embedding = &mut grad[embedding..embedding + size];
            position_backward(batch, &ws.delta, d_embedding);
        }
        TokenStep::Attention {
            attention,
            block,
            weights,
        } => {
            if block > 0 {
                let n = batch * attention.tokens * attention.dim;
                let dropped = ws.attention_dropout.then(|| Dropped {
                    mask: &ws.attention_masks[weights],
                    kept: &mut ws.scores_kept,
                });
                attention_backward(
                    &attention,
                    batch,
                    &ws.blocks[block - 1],
                    &ws.attention[weights],
                    dropped,
                    &ws.delta[..n],
                    &mut ws.delta_prev[..3 * n],
                    &mut ws.scores_grad,
                );
                std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
            }
        }
        TokenStep::Fork { block, skip } => {
            let n = batch * ws.widths[block];
            for (d, &s) in ws.delta[..n].iter_mut().zip(&ws.skips[skip][..n]) {
                *d += s;
            }
        }
        TokenStep::Residual { block, skip, .. } => {
            // The branch's output gets the gradient as it is; the fork gets a copy.
            let n = batch * ws.widths[block];
            ws.skips[skip][..n].copy_from_slice(&ws.delta[..n]);
        }
        TokenStep::TokenMean { tokens, dim, block } => pass_back(
            (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
            block,
            batch * tokens * dim,
            |dy, _, dx| token_mean_backward(tokens, dim, batch, dy, dx),
        ),
        TokenStep::ClassToken {
            tokens,
            dim,
            class,
            block,
        } => {
            let dx = (block > 0).then(|| &mut ws.delta_prev[..batch * tokens * dim]);
            let d_class = &mut grad[class..class + dim];
            class_token_backward((tokens, dim), batch, &ws.delta, d_class, dx);
            if block > 0 {
                std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
            }
        }
        TokenStep::FirstToken { tokens, dim, block } => pass_back(
            (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
            block,
            batch * tokens * dim,
            |dy, _, dx| first_token_backward((tokens, dim), batch, dy, dx),
        ),
    }
}
