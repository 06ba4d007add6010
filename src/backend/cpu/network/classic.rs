//! The forward and backward steps of the classic layers — dense (also token-wise),
//! convolution, pooling, activation, dropout and batch norm — on the workspace's blocks.

use super::{input_of, io, pass_back, NetworkWorkspace, NormStats, StepDropout};
use crate::backend::cpu::activation::{
    activation_backward, activation_forward, relu_backward, relu_forward,
};
use crate::backend::cpu::conv::{conv_backward, conv_forward};
use crate::backend::cpu::dropout::{dropout_backward, dropout_forward, dropout_mask, DropoutKey};
use crate::backend::cpu::linear::{linear_backward, linear_forward, LinearShape};
use crate::backend::cpu::norm::{batch_stats, inverse_std, norm_backward, norm_forward};
use crate::backend::cpu::pool::{
    avg_pool_backward, avg_pool_forward, global_avg_pool_backward, global_avg_pool_forward,
    max_pool_backward, max_pool_forward,
};
use crate::backend::cpu::Real;
use crate::model::hparams::Activation;
use crate::model::layers::{Conv2d, Norm, Pool};
use crate::rng::Stream;

#[derive(Clone, Copy, Debug)]
pub(super) enum ClassicStep {
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
    /// One scale per sample and channel in `mask`.
    SpatialDropout {
        block: usize,
        mask: usize,
        channels: usize,
    },
    Norm(BatchNormStep),
}

/// A batch-norm layer resolved against the workspace.
#[derive(Clone, Copy, Debug)]
pub(super) struct BatchNormStep {
    pub norm: Norm,
    pub gamma: usize,
    pub beta: usize,
    /// The running mean's offset in the member's slice (the variance follows it).
    pub state: usize,
    pub block: usize,
    /// Index into the workspace's per-norm statistics.
    pub stats: usize,
}

/// One step of the forward pass, one arm per layer kind. `batch_stats`: batch norm
/// normalises with the batch's statistics (a training step) rather than its running ones.
pub(super) fn forward<T: Real>(
    step: ClassicStep,
    params: &[T],
    x: &[T],
    batch: usize,
    (dropout, batch_stats): (Option<StepDropout>, bool),
    ws: &mut NetworkWorkspace<T>,
) {
    match step {
        ClassicStep::Dense {
            shape: (n_in, n_out),
            tokens,
            weights,
            bias,
            block,
        } => {
            let (input, out) = io(x, &mut ws.blocks, block);
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
                &mut out[..rows * n_out],
            );
        }
        ClassicStep::Conv {
            conv,
            weights,
            bias,
            block,
        } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            conv_forward(
                &conv,
                batch,
                input,
                &params[weights..bias],
                &params[bias..bias + conv.out_channels],
                out,
                &mut ws.col,
            );
        }
        ClassicStep::MaxPool { pool, block, picks } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            max_pool_forward(&pool, batch, input, out, &mut ws.picks[picks]);
        }
        ClassicStep::AvgPool { pool, block } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            avg_pool_forward(&pool, batch, input, out);
        }
        ClassicStep::GlobalAvgPool { pool, block } => {
            let (input, out) = io(x, &mut ws.blocks, block);
            global_avg_pool_forward(&pool, batch, input, out);
        }
        ClassicStep::Activation {
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
        ClassicStep::Dropout { block, mask } => {
            drop_forward(ws, batch, dropout, (block, mask, None));
        }
        ClassicStep::SpatialDropout {
            block,
            mask,
            channels,
        } => drop_forward(ws, batch, dropout, (block, mask, Some(channels))),
        ClassicStep::Norm(step) => {
            batch_norm_forward_step(step, (params, x), batch, batch_stats, ws);
        }
    }
}

/// One step of the backward pass: `ws.delta` from the gradient of the step's output to
/// that of its input, its parameters' gradient into `grad`; one arm per layer kind.
pub(super) fn backward<T: Real>(
    step: ClassicStep,
    params: &[T],
    x: &[T],
    batch: usize,
    (dropout_on, batch_stats): (bool, bool),
    ws: &mut NetworkWorkspace<T>,
    grad: &mut [T],
) {
    match step {
        ClassicStep::Dense {
            shape: (n_in, n_out),
            tokens,
            weights,
            bias,
            block,
        } => {
            let input = input_of(x, &ws.blocks, block);
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
        ClassicStep::Conv {
            conv,
            weights,
            bias,
            block,
        } => {
            let input = input_of(x, &ws.blocks, block);
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
        ClassicStep::MaxPool { pool, block, picks } => pass_back(
            (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
            block,
            batch * pool.in_size(),
            |dy, argmax, dx| max_pool_backward(&pool, batch, dy, &argmax[picks], dx),
        ),
        ClassicStep::AvgPool { pool, block } => pass_back(
            (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
            block,
            batch * pool.in_size(),
            |dy, _, dx| avg_pool_backward(&pool, batch, dy, dx),
        ),
        ClassicStep::GlobalAvgPool { pool, block } => pass_back(
            (&mut ws.delta, &mut ws.delta_prev, &ws.picks),
            block,
            batch * pool.in_size(),
            |dy, _, dx| global_avg_pool_backward(&pool, batch, dy, dx),
        ),
        ClassicStep::Activation {
            activation,
            block,
            saved,
        } => {
            let n = batch * ws.widths[block];
            match saved {
                None => relu_backward(&ws.blocks[block][..n], &mut ws.delta[..n]),
                Some(s) => activation_backward(activation, &ws.saved[s][..n], &mut ws.delta[..n]),
            }
        }
        ClassicStep::Dropout { block, mask } => {
            drop_backward(ws, batch, dropout_on, (block, mask, None));
        }
        ClassicStep::SpatialDropout {
            block,
            mask,
            channels,
        } => drop_backward(ws, batch, dropout_on, (block, mask, Some(channels))),
        ClassicStep::Norm(step) => {
            batch_norm_backward_step(step, (params, x), (batch, batch_stats), ws, grad);
        }
    }
}

/// Dropout (`channels: None`, a scale per value) or spatial dropout (a scale per sample
/// and channel) of the block at `block` in a training step: the mask drawn for this step,
/// keyed by the block it acts on, so a member's masks depend only on its seed, step and
/// layer.
fn drop_forward<T: Real>(
    ws: &mut NetworkWorkspace<T>,
    batch: usize,
    dropout: Option<StepDropout>,
    (block, mask, channels): (usize, usize, Option<usize>),
) {
    let Some(d) = dropout.filter(|d| d.rate > 0.0) else {
        return;
    };
    let key = DropoutKey {
        seed: d.seed,
        step: d.step,
        layer: block as u32,
    };
    let width = ws.widths[block];
    let values = &mut ws.blocks[block][..batch * width];
    match channels {
        None => dropout_forward(values, &mut ws.masks[mask][..batch * width], d.rate, key),
        Some(c) => {
            let scales = &mut ws.masks[mask][..batch * c];
            dropout_mask(scales, d.rate, key, Stream::SpatialDropout);
            scale_planes(values, scales, width / c);
        }
    }
}

/// The gradient through [`drop_forward`]'s mask.
fn drop_backward<T: Real>(
    ws: &mut NetworkWorkspace<T>,
    batch: usize,
    dropout_on: bool,
    (block, mask, channels): (usize, usize, Option<usize>),
) {
    if !dropout_on {
        return;
    }
    let width = ws.widths[block];
    let dy = &mut ws.delta[..batch * width];
    match channels {
        None => dropout_backward(&ws.masks[mask][..batch * width], dy),
        Some(c) => scale_planes(dy, &ws.masks[mask][..batch * c], width / c),
    }
}

/// Batch norm's forward step: with `batch_stats` the batch's own statistics (kept for the
/// backward pass and the running update), else the running ones.
fn batch_norm_forward_step<T: Real>(
    step: BatchNormStep,
    (params, x): (&[T], &[T]),
    batch: usize,
    batch_stats: bool,
    ws: &mut NetworkWorkspace<T>,
) {
    let BatchNormStep {
        norm,
        gamma,
        beta,
        state,
        block,
        stats,
    } = step;
    let (input, out) = io(x, &mut ws.blocks, block);
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
    let saved = (&st.mean[..], &st.invstd[..]);
    norm_forward(&norm, batch, input, affine, saved, &mut out[..n]);
}

/// Batch norm's backward step.
fn batch_norm_backward_step<T: Real>(
    step: BatchNormStep,
    (params, x): (&[T], &[T]),
    (batch, batch_stats): (usize, bool),
    ws: &mut NetworkWorkspace<T>,
    grad: &mut [T],
) {
    let BatchNormStep {
        norm,
        gamma,
        beta,
        block,
        stats,
        ..
    } = step;
    let input = input_of(x, &ws.blocks, block);
    let c = norm.channels;
    let (dgamma, dbeta) = grad[gamma..beta + c].split_at_mut(c);
    let n = batch * norm.size();
    let dx = (block > 0).then(|| &mut ws.delta_prev[..n]);
    let st = &ws.norms[stats];
    let saved = (&st.mean[..], &st.invstd[..]);
    let (gamma, dy) = (&params[gamma..beta], &ws.delta[..n]);
    norm_backward(
        &norm,
        batch,
        input,
        gamma,
        saved,
        batch_stats,
        dy,
        dx,
        (dgamma, dbeta),
    );
    if block > 0 {
        std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
    }
}

/// The batch's statistics into `st`.
fn batch_stats_into<T: Real>(norm: &Norm, batch: usize, x: &[T], st: &mut NormStats<T>) {
    batch_stats(norm, batch, x, &mut st.mean, &mut st.var);
    inverse_std(&st.var, &mut st.invstd);
}

/// Each `plane` values of `values` times their scale: a sample's channel planes in order.
fn scale_planes<T: Real>(values: &mut [T], scales: &[T], plane: usize) {
    for (values, &scale) in values.chunks_exact_mut(plane).zip(scales) {
        for v in values {
            *v *= scale;
        }
    }
}
