//! One MLP member's training step on the CPU: the forward pass through dense layers,
//! activations and dropout, the fused loss, and the backward pass into the member's
//! gradient slice (layout: [`MlpArch::layer_offsets`]). The population's CPU backend runs
//! it per member; the LR range test runs it on one.

use super::activation::{activation_backward, activation_forward, relu_backward, relu_forward};
use super::dropout::{dropout_backward, dropout_forward, DropoutKey};
use super::linear::{linear_backward, linear_forward, LinearShape};
use super::loss::{loss_backward, loss_forward, LossSums};
use super::Real;
use crate::data::Targets;
use crate::model::hparams::Activation;
use crate::model::MlpArch;

/// Scratch buffers for one member's step, reused across steps (no allocation per step).
#[derive(Debug)]
pub struct MlpWorkspace<T> {
    /// Post-activation (post-dropout) output of each layer, `(batch, dims[l+1])`.
    acts: Vec<Vec<T>>,
    /// Dropout scales of each hidden layer, same shapes as `acts`.
    masks: Vec<Vec<T>>,
    /// Pre-activations of each hidden layer (empty for ReLU, whose backward pass reads its
    /// output instead).
    pre: Vec<Vec<T>>,
    delta: Vec<T>,
    delta_prev: Vec<T>,
    /// The architecture's `layer_offsets`, computed once rather than at every step.
    offsets: Vec<(usize, usize)>,
}

impl<T: Real> MlpWorkspace<T> {
    pub fn new(arch: &MlpArch, batch: usize) -> Self {
        let max_width = arch.dims.iter().copied().max().unwrap_or(0);
        let per_layer = || -> Vec<Vec<T>> {
            arch.dims[1..]
                .iter()
                .map(|&d| vec![T::zero(); batch * d])
                .collect()
        };
        MlpWorkspace {
            acts: per_layer(),
            masks: per_layer(),
            pre: if arch.activation == Activation::Relu {
                Vec::new()
            } else {
                per_layer()
            },
            delta: vec![T::zero(); batch * max_width],
            delta_prev: vec![T::zero(); batch * max_width],
            offsets: arch.layer_offsets(),
        }
    }
}

/// Dropout for one training step, or none (evaluation, or rate 0).
#[derive(Clone, Copy, Debug)]
pub struct StepDropout {
    pub rate: f32,
    pub seed: u64,
    pub step: u64,
}

/// Forward pass; returns the logits `(batch, classes)` inside the workspace.
fn forward<'w, T: Real>(
    arch: &MlpArch,
    params: &[T],
    x: &[T],
    batch: usize,
    dropout: Option<StepDropout>,
    ws: &'w mut MlpWorkspace<T>,
) -> &'w [T] {
    let last = arch.n_layers() - 1;
    for l in 0..arch.n_layers() {
        let (w_off, b_off) = ws.offsets[l];
        let s = LinearShape {
            batch,
            n_in: arch.dims[l],
            n_out: arch.dims[l + 1],
        };
        let (done, rest) = ws.acts.split_at_mut(l);
        let input = if l == 0 { x } else { &done[l - 1][..] };
        let out = &mut rest[0][..batch * s.n_out];
        linear_forward(
            s,
            input,
            &params[w_off..b_off],
            &params[b_off..b_off + s.n_out],
            out,
        );
        if l < last {
            if arch.activation == Activation::Relu {
                relu_forward(out);
            } else {
                let pre = &mut ws.pre[l][..batch * s.n_out];
                pre.copy_from_slice(out);
                activation_forward(arch.activation, pre, out);
            }
            if let Some(d) = dropout.filter(|d| d.rate > 0.0) {
                let key = DropoutKey {
                    seed: d.seed,
                    step: d.step,
                    layer: l as u32,
                };
                dropout_forward(out, &mut ws.masks[l][..batch * s.n_out], d.rate, key);
            }
        }
    }
    &ws.acts[last][..batch * arch.classes()]
}

/// Mean-loss gradient of one minibatch into `grad` (same layout as `params`); returns the
/// loss sum and correct count of the batch (with dropout active, as trained).
pub fn forward_backward<T: Real>(
    arch: &MlpArch,
    params: &[T],
    x: &[T],
    targets: Targets<'_>,
    dropout: Option<StepDropout>,
    ws: &mut MlpWorkspace<T>,
    grad: &mut [T],
) -> LossSums {
    let classes = arch.classes();
    let batch = targets.rows(classes);
    forward(arch, params, x, batch, dropout, ws);
    let last = arch.n_layers() - 1;
    let sums = loss_backward(
        &ws.acts[last][..batch * classes],
        targets,
        classes,
        &mut ws.delta[..batch * classes],
    );
    let dropout_on = dropout.is_some_and(|d| d.rate > 0.0);
    for l in (0..arch.n_layers()).rev() {
        let (w_off, b_off) = ws.offsets[l];
        let s = LinearShape {
            batch,
            n_in: arch.dims[l],
            n_out: arch.dims[l + 1],
        };
        let input = if l == 0 { x } else { &ws.acts[l - 1][..] };
        let (dw, db) = grad[w_off..b_off + s.n_out].split_at_mut(b_off - w_off);
        let dx = (l > 0).then(|| &mut ws.delta_prev[..batch * s.n_in]);
        linear_backward(
            s,
            input,
            &params[w_off..b_off],
            &ws.delta[..batch * s.n_out],
            dx,
            dw,
            db,
        );
        if l > 0 {
            let d_prev = &mut ws.delta_prev[..batch * s.n_in];
            if dropout_on {
                dropout_backward(&ws.masks[l - 1][..batch * s.n_in], d_prev);
            }
            if arch.activation == Activation::Relu {
                relu_backward(&ws.acts[l - 1][..batch * s.n_in], d_prev);
            } else {
                activation_backward(arch.activation, &ws.pre[l - 1][..batch * s.n_in], d_prev);
            }
            std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
        }
    }
    sums
}

/// Loss sum and correct count over every row of `targets` without dropout, in chunks of
/// the workspace's batch size.
pub fn evaluate<T: Real>(
    arch: &MlpArch,
    params: &[T],
    x: &[T],
    targets: Targets<'_>,
    ws: &mut MlpWorkspace<T>,
    chunk: usize,
) -> LossSums {
    let (d, classes) = (arch.dims[0], arch.classes());
    let rows = targets.rows(classes);
    let mut sums = LossSums::default();
    for start in (0..rows).step_by(chunk.max(1)) {
        let n = chunk.min(rows - start);
        let xs = &x[start * d..(start + n) * d];
        let logits = forward(arch, params, xs, n, None, ws);
        let part = loss_forward(logits, targets.slice(start, n, classes), classes);
        sums.loss += part.loss;
        sums.correct += part.correct;
    }
    sums
}
