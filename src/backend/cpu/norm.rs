//! Normalisation layers. Batch normalisation over `(channels, spatial)` samples (see
//! [`crate::model::layers::Norm`]): each channel is normalised over the batch and its
//! positions, then scaled by `γ` and shifted by `β`, as PyTorch's `BatchNorm2d` (and
//! `BatchNorm1d` with `spatial = 1`).
//!
//! Training normalises with the batch's own mean and biased variance and moves the running
//! statistics towards them (momentum 0.1, the running variance unbiased, as PyTorch);
//! evaluation normalises with the running statistics. The running statistics live in the
//! member's state behind its trainable parameters, so `copy` and `export` carry them.
//!
//! Layer normalisation (transformers) normalises each token over its own features with
//! no running statistics. CUDA twin: `kernels/norm.cu`.

use super::Real;
use crate::model::layers::Norm;

/// Added to the variance before the square root (PyTorch's default).
pub const NORM_EPS: f64 = 1e-5;
/// How far one batch moves the running statistics (PyTorch's default).
pub const NORM_MOMENTUM: f64 = 0.1;

/// Calls `f(channel, values)` for every sample's positions of each channel: the channel's
/// `spatial` values in sample `n` are `x[n·size + c·spatial ..][..spatial]`.
#[inline(always)]
fn per_channel<T: Real>(nm: &Norm, batch: usize, x: &[T], mut f: impl FnMut(usize, &[T])) {
    let (size, s) = (nm.size(), nm.spatial);
    for n in 0..batch {
        for c in 0..nm.channels {
            let at = n * size + c * s;
            f(c, &x[at..at + s]);
        }
    }
}

/// The batch's per-channel mean and biased variance (two passes: the variance of values
/// far from zero keeps its digits).
pub fn batch_stats<T: Real>(nm: &Norm, batch: usize, x: &[T], mean: &mut [T], var: &mut [T]) {
    let count = T::from_f32((batch * nm.spatial) as f32);
    mean.fill(T::zero());
    per_channel(nm, batch, x, |c, xs| {
        mean[c] += xs.iter().copied().sum::<T>()
    });
    for m in mean.iter_mut() {
        *m = *m / count;
    }
    var.fill(T::zero());
    per_channel(nm, batch, x, |c, xs| {
        var[c] += xs.iter().map(|&v| (v - mean[c]) * (v - mean[c])).sum::<T>()
    });
    for v in var.iter_mut() {
        *v = *v / count;
    }
}

/// `1/√(var + ε)` per channel.
pub fn inverse_std<T: Real>(var: &[T], invstd: &mut [T]) {
    let eps = T::from_f32(NORM_EPS as f32);
    for (i, &v) in invstd.iter_mut().zip(var) {
        *i = T::one() / (v + eps).sqrt();
    }
}

/// `y = γ·(x − mean)·invstd + β` per channel.
pub fn norm_forward<T: Real>(
    nm: &Norm,
    batch: usize,
    x: &[T],
    (gamma, beta): (&[T], &[T]),
    (mean, invstd): (&[T], &[T]),
    y: &mut [T],
) {
    let (size, s) = (nm.size(), nm.spatial);
    for n in 0..batch {
        for c in 0..nm.channels {
            let at = n * size + c * s;
            let (scale, m) = (gamma[c] * invstd[c], mean[c]);
            for (o, &v) in y[at..at + s].iter_mut().zip(&x[at..at + s]) {
                *o = (v - m) * scale + beta[c];
            }
        }
    }
}

/// Gradients of `norm_forward` from `dy`: `dγ = Σ dy·x̂`, `dβ = Σ dy` (overwritten), and
/// with `dx` the input's gradient. With `batch_stats` the mean and variance were the
/// batch's own, so they too depend on `x`:
/// `dx = invstd/N · (N·dx̂ − Σdx̂ − x̂·Σ dx̂·x̂)` with `dx̂ = γ·dy` and `N = batch·spatial`;
/// with the running statistics the layer is affine, `dx = γ·invstd·dy`.
#[allow(clippy::too_many_arguments)]
pub fn norm_backward<T: Real>(
    nm: &Norm,
    batch: usize,
    x: &[T],
    gamma: &[T],
    (mean, invstd): (&[T], &[T]),
    batch_stats: bool,
    dy: &[T],
    dx: Option<&mut [T]>,
    (dgamma, dbeta): (&mut [T], &mut [T]),
) {
    let (size, s) = (nm.size(), nm.spatial);
    dgamma.fill(T::zero());
    dbeta.fill(T::zero());
    for n in 0..batch {
        for c in 0..nm.channels {
            let at = n * size + c * s;
            for (&v, &g) in x[at..at + s].iter().zip(&dy[at..at + s]) {
                dgamma[c] += g * (v - mean[c]) * invstd[c];
                dbeta[c] += g;
            }
        }
    }
    let Some(dx) = dx else { return };
    let count = T::from_f32((batch * s) as f32);
    for n in 0..batch {
        for c in 0..nm.channels {
            let at = n * size + c * s;
            let scale = gamma[c] * invstd[c];
            let xs = x[at..at + s].iter().zip(&dy[at..at + s]);
            for (o, (&v, &g)) in dx[at..at + s].iter_mut().zip(xs) {
                *o = if batch_stats {
                    // Σdx̂ = γ·dβ and Σdx̂·x̂ = γ·dγ.
                    let xhat = (v - mean[c]) * invstd[c];
                    scale * (g - (dbeta[c] + xhat * dgamma[c]) / count)
                } else {
                    scale * g
                };
            }
        }
    }
}

/// Moves the running statistics towards a batch's: `r ← (1 − m)·r + m·batch`, the
/// variance unbiased by `N/(N − 1)` as PyTorch does.
pub fn update_running<T: Real>(
    count: usize,
    (mean, var): (&[T], &[T]),
    (running_mean, running_var): (&mut [T], &mut [T]),
) {
    let m = T::from_f32(NORM_MOMENTUM as f32);
    let unbias = T::from_f32(count as f32 / count.saturating_sub(1).max(1) as f32);
    for (r, &b) in running_mean.iter_mut().zip(mean) {
        *r = (T::one() - m) * *r + m * b;
    }
    for (r, &b) in running_var.iter_mut().zip(var) {
        *r = (T::one() - m) * *r + m * b * unbias;
    }
}

/// Layer normalisation of `rows` rows of `dim` (each token over its features):
/// `y = γ·(x − mean)·invstd + β`, keeping each row's mean and `invstd` for the backward pass.
pub fn layer_norm_forward<T: Real>(
    dim: usize,
    x: &[T],
    (gamma, beta): (&[T], &[T]),
    (mean, invstd): (&mut [T], &mut [T]),
    y: &mut [T],
) {
    let n = T::from_f32(dim as f32);
    let eps = T::from_f32(NORM_EPS as f32);
    let rows = x.chunks_exact(dim).zip(y.chunks_exact_mut(dim));
    for ((xs, ys), (m, inv)) in rows.zip(mean.iter_mut().zip(invstd.iter_mut())) {
        *m = xs.iter().copied().sum::<T>() / n;
        let var = xs.iter().map(|&v| (v - *m) * (v - *m)).sum::<T>() / n;
        *inv = T::one() / (var + eps).sqrt();
        for (((o, &v), &g), &b) in ys.iter_mut().zip(xs).zip(gamma).zip(beta) {
            *o = (v - *m) * *inv * g + b;
        }
    }
}

/// Gradients of [`layer_norm_forward`]: `dγ`, `dβ` (overwritten) and `dx` =
/// `invstd · (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))` per row, with `dx̂ = γ·dy`.
pub fn layer_norm_backward<T: Real>(
    dim: usize,
    x: &[T],
    gamma: &[T],
    (mean, invstd): (&[T], &[T]),
    dy: &[T],
    mut dx: Option<&mut [T]>,
    (dgamma, dbeta): (&mut [T], &mut [T]),
) {
    let n = T::from_f32(dim as f32);
    dgamma.fill(T::zero());
    dbeta.fill(T::zero());
    for (r, (xs, gs)) in x.chunks_exact(dim).zip(dy.chunks_exact(dim)).enumerate() {
        let (m, inv) = (mean[r], invstd[r]);
        let (mut sum, mut dot) = (T::zero(), T::zero());
        for (c, (&v, &g)) in xs.iter().zip(gs).enumerate() {
            let xhat = (v - m) * inv;
            dgamma[c] += g * xhat;
            dbeta[c] += g;
            sum += g * gamma[c];
            dot += g * gamma[c] * xhat;
        }
        if let Some(dx) = dx.as_deref_mut() {
            let out = &mut dx[r * dim..(r + 1) * dim];
            for (c, (o, (&v, &g))) in out.iter_mut().zip(xs.iter().zip(gs)).enumerate() {
                let xhat = (v - m) * inv;
                *o = inv * (g * gamma[c] - (sum + xhat * dot) / n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_output_has_zero_mean_and_unit_variance_per_channel() {
        let nm = Norm {
            channels: 2,
            spatial: 3,
        };
        let x: Vec<f64> = (0..12).map(|i| (i * i % 7) as f64 + 100.0).collect();
        let (mut mean, mut var, mut inv) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        batch_stats(&nm, 2, &x, &mut mean, &mut var);
        inverse_std(&var, &mut inv);
        let mut y = vec![0.0; 12];
        norm_forward(
            &nm,
            2,
            &x,
            (&[1.0, 2.0], &[0.0, 5.0]),
            (&mean, &inv),
            &mut y,
        );
        for (c, (scale, shift)) in [(1.0, 0.0), (2.0, 5.0)].into_iter().enumerate() {
            let vals: Vec<f64> = (0..2)
                .flat_map(|n| y[n * 6 + c * 3..n * 6 + c * 3 + 3].to_vec())
                .map(|v| (v - shift) / scale)
                .collect();
            let m = vals.iter().sum::<f64>() / 6.0;
            let v = vals.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 6.0;
            assert!(m.abs() < 1e-9, "channel {c} mean {m}");
            // The ε in the denominator leaves the variance just under 1.
            assert!(
                (v - var[c] / (var[c] + NORM_EPS)).abs() < 1e-9,
                "channel {c} var {v}"
            );
        }
    }

    #[test]
    fn running_statistics_move_by_the_momentum() {
        let (mut rm, mut rv) = ([0.0f64], [1.0f64]);
        update_running(5, (&[2.0], &[4.0]), (&mut rm, &mut rv));
        assert!((rm[0] - 0.2).abs() < 1e-7);
        assert!((rv[0] - (0.9 + 0.1 * 4.0 * 5.0 / 4.0)).abs() < 1e-7);
    }
}
