//! One member's training step on the CPU, walking its layer list ([`Arch`]): the forward
//! pass, the fused loss, and the backward pass into the member's gradient slice (layout:
//! [`Arch::param_slices`]). The population's CPU backend runs it per member; the LR range
//! test runs it on one.
//!
//! Batch norm normalises a training step with the batch's statistics, which
//! [`update_running_stats`] then folds into the running ones; evaluation uses those.
//!
//! Buffers: each dense, convolution, pooling or batch-norm layer writes a block
//! `(batch, outputs)`; the
//! activation and dropout layers after it work in place on that block (an activation other
//! than ReLU keeps a copy of its input, since GELU's derivative cannot be recovered from
//! its output). The backward pass walks the list in reverse with one gradient buffer and
//! one spare.

use super::activation::{activation_backward, activation_forward, relu_backward, relu_forward};
use super::attention::{attention_backward, attention_forward};
use super::conv::{col_len, conv_backward, conv_forward};
use super::dropout::{dropout_backward, dropout_forward, DropoutKey};
use super::linear::{linear_backward, linear_forward, LinearShape};
use super::loss::{loss_backward, loss_forward, LossSums};
use super::norm::{
    batch_stats, inverse_std, layer_norm_backward, layer_norm_forward, norm_backward, norm_forward,
    update_running,
};
use super::pool::{
    avg_pool_backward, avg_pool_forward, global_avg_pool_backward, global_avg_pool_forward,
    max_pool_backward, max_pool_forward,
};
use super::tokens::{
    add_position, position_backward, token_mean_backward, token_mean_forward, transpose,
};
use super::Real;
use crate::data::Targets;
use crate::model::hparams::Activation;
use crate::model::layers::{Arch, Attention, Conv2d, Layer, Norm, Pool};

/// One layer, resolved against the workspace: which block it writes or changes in place,
/// and where its parameters, mask or saved input live.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// A dense layer, or with `tokens > 1` the same one applied to each token.
    Dense {
        shape: (usize, usize),
        tokens: usize,
        weights: usize,
        bias: usize,
        block: usize,
    },
    Conv {
        conv: Conv2d,
        weights: usize,
        bias: usize,
        block: usize,
    },
    MaxPool {
        pool: Pool,
        block: usize,
        /// Index into the workspace's argmax buffers.
        picks: usize,
    },
    AvgPool {
        pool: Pool,
        block: usize,
    },
    GlobalAvgPool {
        pool: Pool,
        block: usize,
    },
    Activation {
        activation: Activation,
        block: usize,
        /// Index into the saved inputs; `None` for ReLU, whose backward pass reads its
        /// output instead.
        saved: Option<usize>,
    },
    Dropout {
        block: usize,
        mask: usize,
    },
    Norm {
        norm: Norm,
        gamma: usize,
        beta: usize,
        /// The running mean's offset in the member's slice (the variance follows it).
        state: usize,
        block: usize,
        /// Index into the workspace's per-norm statistics.
        stats: usize,
    },
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
}

/// One batch-norm layer's statistics in the last forward pass: the mean and `1/√(var+ε)`
/// it normalised with, and the batch's biased variance (for the running statistics).
#[derive(Debug)]
struct NormStats<T> {
    mean: Vec<T>,
    invstd: Vec<T>,
    var: Vec<T>,
}

/// Scratch buffers for one member's step, reused across steps (no allocation per step).
#[derive(Debug)]
pub struct NetworkWorkspace<T> {
    steps: Vec<Step>,
    /// Each dense layer's block, `(batch, outputs)`, after the in-place layers that follow.
    blocks: Vec<Vec<T>>,
    /// Each block's width.
    widths: Vec<usize>,
    /// Dropout scales of each dropout layer, shaped as its block.
    masks: Vec<Vec<T>>,
    /// Inputs of each activation layer other than ReLU.
    saved: Vec<Vec<T>>,
    /// Where each max-pooling layer took its values from.
    picks: Vec<Vec<u32>>,
    norms: Vec<NormStats<T>>,
    /// Each attention layer's weights `(batch, H, T, T)`, and the `(T, T)` scratch of its
    /// backward pass.
    attention: Vec<Vec<T>>,
    scores_grad: Vec<T>,
    /// Per residual: the gradient its output sends back along the skip to the fork.
    skips: Vec<Vec<T>>,
    /// Whether batch norm uses its running statistics in a training step (a gradient
    /// check of evaluation mode); evaluation always does.
    running_stats: bool,
    /// Rows of the last forward pass.
    rows: usize,
    /// One sample's im2col columns and their gradient (the largest convolution's size).
    col: Vec<T>,
    dcol: Vec<T>,
    delta: Vec<T>,
    delta_prev: Vec<T>,
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
                    Step::Dense {
                        shape: (inputs, outputs),
                        tokens: 1,
                        weights: slice.weights,
                        bias: slice.bias,
                        block: new_block,
                    }
                }
                Layer::TokenDense {
                    tokens,
                    inputs,
                    outputs,
                } => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    Step::Dense {
                        shape: (inputs, outputs),
                        tokens,
                        weights: slice.weights,
                        bias: slice.bias,
                        block: new_block,
                    }
                }
                Layer::LayerNorm { tokens, dim } => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    ws.norms.push(NormStats {
                        mean: zeros(tokens),
                        invstd: zeros(tokens),
                        var: Vec::new(),
                    });
                    Step::LayerNorm {
                        dim,
                        gamma: slice.weights,
                        beta: slice.bias,
                        block: new_block,
                        stats: ws.norms.len() - 1,
                    }
                }
                Layer::Transpose { rows, cols } => Step::Transpose {
                    rows,
                    cols,
                    block: new_block,
                },
                Layer::PositionEmbed { .. } => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    Step::Position {
                        embedding: slice.weights,
                        block,
                    }
                }
                Layer::Attention(attention) => {
                    let t = attention.tokens;
                    ws.attention.push(zeros(attention.heads * t * t));
                    let len = (t * t).max(ws.scores_grad.len());
                    ws.scores_grad.resize(len, T::zero());
                    Step::Attention {
                        attention,
                        block: new_block,
                        weights: ws.attention.len() - 1,
                    }
                }
                Layer::Fork => {
                    ws.skips.push(zeros(ws.widths[block]));
                    open_forks.push((block, ws.skips.len() - 1));
                    Step::Fork {
                        block,
                        skip: ws.skips.len() - 1,
                    }
                }
                Layer::Residual { .. } => {
                    let (source, skip) = open_forks.pop().expect("a consistent list nests forks");
                    Step::Residual {
                        block: new_block,
                        source,
                        skip,
                    }
                }
                Layer::TokenMean { tokens, dim } => Step::TokenMean {
                    tokens,
                    dim,
                    block: new_block,
                },
                Layer::Conv2d(conv) => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    let len = col_len(&conv).max(ws.col.len());
                    ws.col.resize(len, T::zero());
                    ws.dcol.resize(len, T::zero());
                    Step::Conv {
                        conv,
                        weights: slice.weights,
                        bias: slice.bias,
                        block: new_block,
                    }
                }
                Layer::MaxPool(pool) => {
                    ws.picks.push(vec![0; batch * pool.out_size()]);
                    Step::MaxPool {
                        pool,
                        block: new_block,
                        picks: ws.picks.len() - 1,
                    }
                }
                Layer::AvgPool(pool) => Step::AvgPool {
                    pool,
                    block: new_block,
                },
                Layer::GlobalAvgPool(pool) => Step::GlobalAvgPool {
                    pool,
                    block: new_block,
                },
                Layer::Activation(activation) => Step::Activation {
                    activation,
                    block,
                    saved: (activation != Activation::Relu).then(|| {
                        ws.saved.push(zeros(ws.widths[block]));
                        ws.saved.len() - 1
                    }),
                },
                Layer::Dropout => {
                    ws.masks.push(zeros(ws.widths[block]));
                    Step::Dropout {
                        block,
                        mask: ws.masks.len() - 1,
                    }
                }
                Layer::BatchNorm(norm) => {
                    let slice = slices.next().expect("a slice per parameterised layer");
                    let per_channel = || vec![T::zero(); norm.channels];
                    ws.norms.push(NormStats {
                        mean: per_channel(),
                        invstd: per_channel(),
                        var: per_channel(),
                    });
                    Step::Norm {
                        norm,
                        gamma: slice.weights,
                        beta: slice.bias,
                        state: states.next().expect("a state offset per batch norm"),
                        block: new_block,
                        stats: ws.norms.len() - 1,
                    }
                }
            };
            ws.steps.push(step);
        }
        let max_width = ws.widths.iter().copied().max().unwrap_or(0);
        ws.delta = vec![T::zero(); batch * max_width];
        ws.delta_prev = vec![T::zero(); batch * max_width];
        ws
    }

    /// Whether batch norm normalises training steps with its running statistics (as in
    /// evaluation) rather than the batch's: for checking evaluation mode's gradients.
    pub fn use_running_stats(&mut self, on: bool) {
        self.running_stats = on;
    }
}

/// Dropout for one training step, or none (evaluation, or rate 0).
#[derive(Clone, Copy, Debug)]
pub struct StepDropout {
    pub rate: f32,
    pub seed: u64,
    pub step: u64,
}

/// Forward pass; returns the last block (the logits, `(batch, outputs)`). `training`:
/// batch norm normalises with the batch's statistics (unless the workspace says otherwise).
fn forward<'w, T: Real>(
    params: &[T],
    x: &[T],
    batch: usize,
    (dropout, training): (Option<StepDropout>, bool),
    ws: &'w mut NetworkWorkspace<T>,
) -> &'w [T] {
    ws.rows = batch;
    let batch_stats = training && !ws.running_stats;
    for &step in &ws.steps {
        match step {
            Step::Dense {
                shape: (n_in, n_out),
                tokens,
                weights,
                bias,
                block,
            } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                let rows = batch * tokens;
                linear_forward(
                    LinearShape {
                        batch: rows,
                        n_in,
                        n_out,
                    },
                    input,
                    &params[weights..bias],
                    &params[bias..bias + n_out],
                    &mut rest[0][..rows * n_out],
                );
            }
            Step::LayerNorm {
                dim,
                gamma,
                beta,
                block,
                stats,
            } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                let n = batch * ws.widths[block];
                let st = &mut ws.norms[stats];
                let rows = n / dim;
                let affine = (&params[gamma..beta], &params[beta..beta + dim]);
                let saved = (&mut st.mean[..rows], &mut st.invstd[..rows]);
                layer_norm_forward(dim, &input[..n], affine, saved, &mut rest[0][..n]);
            }
            Step::Transpose { rows, cols, block } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                transpose(rows, cols, batch, input, &mut rest[0]);
            }
            Step::Position { embedding, block } => {
                let size = ws.widths[block];
                add_position(
                    batch,
                    &params[embedding..embedding + size],
                    &mut ws.blocks[block],
                );
            }
            Step::Attention {
                attention,
                block,
                weights,
            } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                attention_forward(
                    &attention,
                    batch,
                    input,
                    &mut ws.attention[weights],
                    &mut rest[0],
                );
            }
            Step::Fork { .. } => {}
            Step::Residual { block, source, .. } => {
                let n = batch * ws.widths[block];
                let (done, rest) = ws.blocks.split_at_mut(block);
                let (branch, skip) = (&done[block - 1][..n], &done[source][..n]);
                for ((o, &a), &b) in rest[0][..n].iter_mut().zip(branch).zip(skip) {
                    *o = a + b;
                }
            }
            Step::TokenMean { tokens, dim, block } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                token_mean_forward(tokens, dim, batch, input, &mut rest[0]);
            }
            Step::Conv {
                conv,
                weights,
                bias,
                block,
            } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                conv_forward(
                    &conv,
                    batch,
                    input,
                    &params[weights..bias],
                    &params[bias..bias + conv.out_channels],
                    &mut rest[0],
                    &mut ws.col,
                );
            }
            Step::MaxPool { pool, block, picks } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                max_pool_forward(&pool, batch, input, &mut rest[0], &mut ws.picks[picks]);
            }
            Step::AvgPool { pool, block } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                avg_pool_forward(&pool, batch, input, &mut rest[0]);
            }
            Step::GlobalAvgPool { pool, block } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                global_avg_pool_forward(&pool, batch, input, &mut rest[0]);
            }
            Step::Activation {
                activation,
                block,
                saved,
            } => {
                let out = &mut ws.blocks[block][..batch * ws.widths[block]];
                match saved {
                    None => relu_forward(out),
                    Some(s) => {
                        let input = &mut ws.saved[s][..out.len()];
                        input.copy_from_slice(out);
                        activation_forward(activation, input, out);
                    }
                }
            }
            Step::Norm {
                norm,
                gamma,
                beta,
                state,
                block,
                stats,
            } => {
                let (done, rest) = ws.blocks.split_at_mut(block);
                let input = if block == 0 { x } else { &done[block - 1][..] };
                let st = &mut ws.norms[stats];
                let c = norm.channels;
                if batch_stats {
                    batch_stats_into(&norm, batch, input, st);
                } else {
                    st.mean.copy_from_slice(&params[state..state + c]);
                    inverse_std(&params[state + c..state + 2 * c], &mut st.invstd);
                }
                let affine = (&params[gamma..beta], &params[beta..beta + c]);
                let n = batch * norm.size();
                norm_forward(
                    &norm,
                    batch,
                    input,
                    affine,
                    (&st.mean, &st.invstd),
                    &mut rest[0][..n],
                );
            }
            Step::Dropout { block, mask } => {
                if let Some(d) = dropout.filter(|d| d.rate > 0.0) {
                    // Keyed by the block (the dense layer it follows), so a member's masks
                    // depend only on its seed, step and layer.
                    let key = DropoutKey {
                        seed: d.seed,
                        step: d.step,
                        layer: block as u32,
                    };
                    let n = batch * ws.widths[block];
                    dropout_forward(
                        &mut ws.blocks[block][..n],
                        &mut ws.masks[mask][..n],
                        d.rate,
                        key,
                    );
                }
            }
        }
    }
    let last = ws.blocks.len() - 1;
    &ws.blocks[last][..batch * ws.widths[last]]
}

/// Mean-loss gradient of one minibatch into `grad` (same layout as `params`); returns the
/// loss sum and correct count of the batch (with dropout active, as trained).
pub fn forward_backward<T: Real>(
    arch: &Arch,
    params: &[T],
    x: &[T],
    targets: Targets<'_>,
    dropout: Option<StepDropout>,
    ws: &mut NetworkWorkspace<T>,
    grad: &mut [T],
) -> LossSums {
    let outputs = arch.outputs();
    let batch = targets.rows(outputs);
    forward(params, x, batch, (dropout, true), ws);
    let last = ws.blocks.len() - 1;
    let sums = loss_backward(
        &ws.blocks[last][..batch * outputs],
        targets,
        outputs,
        &mut ws.delta[..batch * outputs],
    );
    backward(
        params,
        x,
        batch,
        dropout.is_some_and(|d| d.rate > 0.0),
        ws,
        grad,
    );
    sums
}

/// After a training step's forward pass: every batch norm's running statistics move
/// towards the batch's (in `params`' state, behind the trainable parameters).
pub fn update_running_stats<T: Real>(ws: &NetworkWorkspace<T>, params: &mut [T]) {
    if ws.running_stats {
        return;
    }
    for step in &ws.steps {
        if let Step::Norm {
            norm, state, stats, ..
        } = *step
        {
            let c = norm.channels;
            let (mean, var) = params[state..state + 2 * c].split_at_mut(c);
            let st = &ws.norms[stats];
            update_running(ws.rows * norm.spatial, (&st.mean, &st.var), (mean, var));
        }
    }
}

/// The batch's statistics into `st`.
fn batch_stats_into<T: Real>(norm: &Norm, batch: usize, x: &[T], st: &mut NormStats<T>) {
    batch_stats(norm, batch, x, &mut st.mean, &mut st.var);
    inverse_std(&st.var, &mut st.invstd);
}

/// The backward pass from the loss gradient in `ws.delta` through the layers in reverse,
/// into `grad`.
fn backward<T: Real>(
    params: &[T],
    x: &[T],
    batch: usize,
    dropout_on: bool,
    ws: &mut NetworkWorkspace<T>,
    grad: &mut [T],
) {
    let batch_stats = !ws.running_stats;
    for &step in ws.steps.iter().rev() {
        match step {
            Step::Norm {
                norm,
                gamma,
                beta,
                block,
                stats,
                ..
            } => {
                let input = if block == 0 {
                    x
                } else {
                    &ws.blocks[block - 1][..]
                };
                let c = norm.channels;
                let (dgamma, dbeta) = grad[gamma..beta + c].split_at_mut(c);
                let n = batch * norm.size();
                let dx = (block > 0).then(|| &mut ws.delta_prev[..n]);
                let st = &ws.norms[stats];
                norm_backward(
                    &norm,
                    batch,
                    input,
                    &params[gamma..beta],
                    (&st.mean, &st.invstd),
                    batch_stats,
                    &ws.delta[..n],
                    dx,
                    (dgamma, dbeta),
                );
                if block > 0 {
                    std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
                }
            }
            Step::Dense {
                shape: (n_in, n_out),
                tokens,
                weights,
                bias,
                block,
            } => {
                let input = if block == 0 {
                    x
                } else {
                    &ws.blocks[block - 1][..]
                };
                let rows = batch * tokens;
                let (dw, db) = grad[weights..bias + n_out].split_at_mut(bias - weights);
                let dx = (block > 0).then(|| &mut ws.delta_prev[..rows * n_in]);
                linear_backward(
                    LinearShape {
                        batch: rows,
                        n_in,
                        n_out,
                    },
                    input,
                    &params[weights..bias],
                    &ws.delta[..rows * n_out],
                    dx,
                    dw,
                    db,
                );
                if block > 0 {
                    std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
                }
            }
            Step::LayerNorm {
                dim,
                gamma,
                beta,
                block,
                stats,
            } => {
                let input = if block == 0 {
                    x
                } else {
                    &ws.blocks[block - 1][..]
                };
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
            Step::Transpose { rows, cols, block } => pass_back(
                (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
                block,
                batch * rows * cols,
                |dy, _, dx| transpose(cols, rows, batch, dy, dx),
            ),
            Step::Position { embedding, block } => {
                let size = ws.widths[block];
                let d_embedding = &mut grad[embedding..embedding + size];
                position_backward(batch, &ws.delta, d_embedding);
            }
            Step::Attention {
                attention,
                block,
                weights,
            } => {
                if block > 0 {
                    let n = batch * attention.tokens * attention.dim;
                    attention_backward(
                        &attention,
                        batch,
                        &ws.blocks[block - 1],
                        &ws.attention[weights],
                        &ws.delta[..n],
                        &mut ws.delta_prev[..3 * n],
                        &mut ws.scores_grad,
                    );
                    std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
                }
            }
            Step::Residual { block, skip, .. } => {
                // The branch's output gets the gradient as it is; the fork gets a copy.
                let n = batch * ws.widths[block];
                ws.skips[skip][..n].copy_from_slice(&ws.delta[..n]);
            }
            Step::Fork { block, skip } => {
                let n = batch * ws.widths[block];
                for (d, &s) in ws.delta[..n].iter_mut().zip(&ws.skips[skip][..n]) {
                    *d += s;
                }
            }
            Step::TokenMean { tokens, dim, block } => pass_back(
                (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
                block,
                batch * tokens * dim,
                |dy, _, dx| token_mean_backward(tokens, dim, batch, dy, dx),
            ),
            Step::Conv {
                conv,
                weights,
                bias,
                block,
            } => {
                let input = if block == 0 {
                    x
                } else {
                    &ws.blocks[block - 1][..]
                };
                let o = conv.out_channels;
                let (dw, db) = grad[weights..bias + o].split_at_mut(bias - weights);
                let dx = (block > 0).then(|| &mut ws.delta_prev[..batch * conv.in_size()]);
                conv_backward(
                    &conv,
                    batch,
                    input,
                    &params[weights..bias],
                    &ws.delta[..batch * conv.out_size()],
                    dx,
                    dw,
                    db,
                    (&mut ws.col, &mut ws.dcol),
                );
                if block > 0 {
                    std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
                }
            }
            Step::MaxPool { pool, block, picks } => pass_back(
                (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
                block,
                batch * pool.in_size(),
                |dy, argmax, dx| max_pool_backward(&pool, batch, dy, &argmax[picks], dx),
            ),
            Step::AvgPool { pool, block } => pass_back(
                (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
                block,
                batch * pool.in_size(),
                |dy, _, dx| avg_pool_backward(&pool, batch, dy, dx),
            ),
            Step::GlobalAvgPool { pool, block } => pass_back(
                (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
                block,
                batch * pool.in_size(),
                |dy, _, dx| global_avg_pool_backward(&pool, batch, dy, dx),
            ),
            Step::Dropout { block, mask } => {
                if dropout_on {
                    let n = batch * ws.widths[block];
                    dropout_backward(&ws.masks[mask][..n], &mut ws.delta[..n]);
                }
            }
            Step::Activation {
                activation,
                block,
                saved,
            } => {
                let n = batch * ws.widths[block];
                match saved {
                    None => relu_backward(&ws.blocks[block][..n], &mut ws.delta[..n]),
                    Some(s) => {
                        activation_backward(activation, &ws.saved[s][..n], &mut ws.delta[..n])
                    }
                }
            }
        }
    }
}

/// A layer without parameters: `f(dy, max-pool picks, dx)` passes the gradient back to the
/// block before it, of `n` values (the first layer needs none).
/// (The workspace's fields one by one: its step list is borrowed by the caller's walk.)
fn pass_back<T: Real>(
    (delta, delta_prev, picks): (&mut Vec<T>, &mut Vec<T>, &[Vec<u32>]),
    block: usize,
    n: usize,
    f: impl FnOnce(&[T], &[Vec<u32>], &mut [T]),
) {
    if block > 0 {
        f(delta, picks, &mut delta_prev[..n]);
        std::mem::swap(delta, delta_prev);
    }
}

/// Loss sum and correct count over every row of `targets` without dropout, in chunks of
/// the workspace's batch size.
pub fn evaluate<T: Real>(
    arch: &Arch,
    params: &[T],
    x: &[T],
    targets: Targets<'_>,
    ws: &mut NetworkWorkspace<T>,
    chunk: usize,
) -> LossSums {
    let (d, outputs) = (arch.inputs, arch.outputs());
    let rows = targets.rows(outputs);
    let mut sums = LossSums::default();
    for start in (0..rows).step_by(chunk.max(1)) {
        let n = chunk.min(rows - start);
        let xs = &x[start * d..(start + n) * d];
        let logits = forward(params, xs, n, (None, false), ws);
        let part = loss_forward(logits, targets.slice(start, n, outputs), outputs);
        sums.loss += part.loss;
        sums.correct += part.correct;
    }
    sums
}
