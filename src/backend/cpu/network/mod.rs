//! One member's training step on the CPU, walking its layer list ([`Arch`]): the forward
//! pass, the fused loss, and the backward pass into the member's gradient slice (layout:
//! [`Arch::param_slices`]). The population's CPU backend runs it per member; the LR range
//! test runs it on one.
//!
//! Batch norm normalises a training step with the batch's statistics, which
//! [`update_running_stats`] then folds into the running ones; evaluation uses those.
//!
//! Buffers: each layer that changes a row's shape (dense, convolution, pooling, batch
//! norm, LayerNorm, attention, a residual's sum) writes a block `(batch, outputs)`; the
//! activation, dropout and position layers after it work in place on that block (an
//! activation other than ReLU keeps a copy of its input, since GELU's derivative cannot be
//! recovered from its output). The backward pass walks the list in reverse with one
//! gradient buffer and one spare; a residual's gradient waits in its own buffer until the
//! walk reaches its fork.
//!
//! The steps are resolved once per workspace (`steps.rs`) and run by family: the classic
//! layers (`classic.rs`) and the transformer's (`transformer.rs`).

mod classic;
mod steps;
mod transformer;

use super::loss::{loss_backward, loss_forward, LossSums};
use super::norm::update_running;
use super::Real;
use crate::data::Targets;
use crate::model::layers::Arch;
use classic::{BatchNormStep, ClassicStep};
use steps::Step;

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
    /// Attention dropout: each attention layer's mask (shaped as its weights), one head's
    /// dropped weights, and whether the last forward pass dropped any.
    attention_masks: Vec<Vec<T>>,
    scores_kept: Vec<T>,
    attention_dropout: bool,
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

impl<T> NetworkWorkspace<T> {
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
    /// The rate on attention weights (transformers).
    pub attn_rate: f32,
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
    ws.attention_dropout = dropout.is_some_and(|d| d.attn_rate > 0.0);
    let batch_stats = training && !ws.running_stats;
    for i in 0..ws.steps.len() {
        match ws.steps[i] {
            Step::Classic(s) => classic::forward(s, params, x, batch, (dropout, batch_stats), ws),
            Step::Token(s) => transformer::forward(s, params, x, batch, dropout, ws),
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
        if let Step::Classic(ClassicStep::Norm(BatchNormStep {
            norm, state, stats, ..
        })) = *step
        {
            let c = norm.channels;
            let (mean, var) = params[state..state + 2 * c].split_at_mut(c);
            let st = &ws.norms[stats];
            update_running(ws.rows * norm.spatial, (&st.mean, &st.var), (mean, var));
        }
    }
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
    for i in (0..ws.steps.len()).rev() {
        match ws.steps[i] {
            Step::Classic(s) => {
                classic::backward(s, params, x, batch, (dropout_on, batch_stats), ws, grad)
            }
            Step::Token(s) => transformer::backward(s, params, x, batch, ws, grad),
        }
    }
}

/// A layer without parameters: `f(dy, max-pool picks, dx)` passes the gradient back to the
/// block before it, of `n` values (the first layer needs none).
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

/// The input of the layer that writes block `block` (the network's input `x` for the
/// first), and that block.
fn io<'a, T>(x: &'a [T], blocks: &'a mut [Vec<T>], block: usize) -> (&'a [T], &'a mut [T]) {
    let (done, rest) = blocks.split_at_mut(block);
    (if block == 0 { x } else { &done[block - 1] }, &mut rest[0])
}

/// The input of the layer that writes block `block`.
fn input_of<'a, T>(x: &'a [T], blocks: &'a [Vec<T>], block: usize) -> &'a [T] {
    if block == 0 {
        x
    } else {
        &blocks[block - 1]
    }
}

/// The model's outputs (logits, or values for a regression) for every row of `x`, in
/// forward passes of `chunk` rows, without dropout, into `out` (`rows · outputs`).
pub fn predict<T: Real>(
    arch: &Arch,
    params: &[T],
    x: &[T],
    ws: &mut NetworkWorkspace<T>,
    chunk: usize,
    out: &mut [T],
) {
    let (d, outputs) = (arch.inputs, arch.outputs());
    let rows = out.len() / outputs.max(1);
    for start in (0..rows).step_by(chunk.max(1)) {
        let n = chunk.min(rows - start);
        let logits = forward(params, &x[start * d..(start + n) * d], n, (None, false), ws);
        out[start * outputs..(start + n) * outputs].copy_from_slice(logits);
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
