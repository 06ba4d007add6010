//! Multi-head scaled dot-product self-attention over one sample's tokens, forward and
//! backward, with GEMMs over strided views of the packed `[q | k | v]` rows (no copies per
//! head). A plain-loop reference checks it in the tests.
//!
//! Shapes per sample: `qkv` `(T, 3D)` (token `t`'s query, key and value side by side),
//! heads of `dh = D/H` columns each; the attention weights `p` `(H, T, T)` are kept for
//! the backward pass; the output `o` `(T, D)` holds the heads side by side.
//! CUDA twin: `kernels/attention.cu` (checked under emulation, tests/plan_emulation.rs).

use super::Real;
use crate::model::layers::Attention;

/// Attention dropout's per-weight scales `(batch, H, T, T)` and a `T×T` scratch for the
/// dropped weights of one head.
pub struct Dropped<'a, T> {
    pub mask: &'a [T],
    pub kept: &'a mut [T],
}

/// `o = softmax(q·kᵀ/√dh)·v` per head for `batch` samples; `p` receives the weights. With
/// `dropped`, the weights are dropped out (`p ⊙ mask`) before they weigh the values; `p`
/// keeps them whole for the backward pass.
pub fn attention_forward<T: Real>(
    a: &Attention,
    batch: usize,
    qkv: &[T],
    p: &mut [T],
    mut dropped: Option<Dropped<'_, T>>,
    o: &mut [T],
) {
    let (t, d, h) = (a.tokens, a.dim, a.heads);
    let dh = d / h;
    let scale = T::one() / T::from_f32(dh as f32).sqrt();
    for n in 0..batch {
        let x = &qkv[n * t * 3 * d..(n + 1) * t * 3 * d];
        let out = &mut o[n * t * d..(n + 1) * t * d];
        for head in 0..h {
            let w = &mut p[(n * h + head) * t * t..(n * h + head + 1) * t * t];
            let (q, k, v) = (head * dh, d + head * dh, 2 * d + head * dh);
            // scores = q_h · k_hᵀ · scale
            T::gemm(
                t,
                dh,
                t,
                scale,
                (&x[q..], 3 * d, 1),
                (&x[k..], 1, 3 * d),
                T::zero(),
                (w, t, 1),
            );
            for row in w.chunks_exact_mut(t) {
                softmax_in_place(row);
            }
            let at = (n * h + head) * t * t;
            let w: &[T] = match dropped.as_mut() {
                Some(dr) => {
                    let kept = &mut dr.kept[..t * t];
                    for ((k, &pv), &m) in kept.iter_mut().zip(&*w).zip(&dr.mask[at..]) {
                        *k = pv * m;
                    }
                    kept
                }
                None => w,
            };
            // o_h = p_h · v_h
            T::gemm(
                t,
                t,
                dh,
                T::one(),
                (w, t, 1),
                (&x[v..], 3 * d, 1),
                T::zero(),
                (&mut out[head * dh..], d, 1),
            );
        }
    }
}

fn softmax_in_place<T: Real>(row: &mut [T]) {
    let max = row.iter().copied().fold(T::neg_infinity(), T::max);
    let mut sum = T::zero();
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v = *v / sum;
    }
}

/// The gradient of `qkv` from `do`'s, given the forward pass's inputs and weights `p`:
/// `dv = p'ᵀ·do` and `dp = (do·vᵀ) ⊙ mask` with `p' = p ⊙ mask` (or `p` without dropout),
/// `ds = p ⊙ (dp − Σ_j dp·p)`, `dq = ds·k·scale`, `dk = dsᵀ·q·scale`. `ds` is scratch of
/// `T×T`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<T: Real>(
    a: &Attention,
    batch: usize,
    qkv: &[T],
    p: &[T],
    mut dropped: Option<Dropped<'_, T>>,
    d_out: &[T],
    d_qkv: &mut [T],
    ds: &mut [T],
) {
    let (t, d, h) = (a.tokens, a.dim, a.heads);
    let dh = d / h;
    let scale = T::one() / T::from_f32(dh as f32).sqrt();
    let ds = &mut ds[..t * t];
    for n in 0..batch {
        let x = &qkv[n * t * 3 * d..(n + 1) * t * 3 * d];
        let dy = &d_out[n * t * d..(n + 1) * t * d];
        let dx = &mut d_qkv[n * t * 3 * d..(n + 1) * t * 3 * d];
        for head in 0..h {
            let at = (n * h + head) * t * t;
            let w = &p[at..at + t * t];
            let (q, k, v, o) = (head * dh, d + head * dh, 2 * d + head * dh, head * dh);
            let (seen, mask) = match dropped.as_mut() {
                Some(dr) => {
                    let mask = &dr.mask[at..at + t * t];
                    let kept = &mut dr.kept[..t * t];
                    for ((k, &pv), &m) in kept.iter_mut().zip(w).zip(mask) {
                        *k = pv * m;
                    }
                    (&*kept, Some(mask))
                }
                None => (w, None),
            };
            // dv = p'ᵀ · do
            T::gemm(
                t,
                t,
                dh,
                T::one(),
                (seen, 1, t),
                (&dy[o..], d, 1),
                T::zero(),
                (&mut dx[v..], 3 * d, 1),
            );
            // dp = do · vᵀ
            T::gemm(
                t,
                dh,
                t,
                T::one(),
                (&dy[o..], d, 1),
                (&x[v..], 1, 3 * d),
                T::zero(),
                (ds, t, 1),
            );
            if let Some(mask) = mask {
                for (g, &m) in ds.iter_mut().zip(mask) {
                    *g *= m;
                }
            }
            for (dp, pw) in ds.chunks_exact_mut(t).zip(w.chunks_exact(t)) {
                let dot: T = dp.iter().zip(pw).map(|(&g, &pv)| g * pv).sum();
                for (g, &pv) in dp.iter_mut().zip(pw) {
                    *g = pv * (*g - dot);
                }
            }
            // dq = ds · k · scale;  dk = dsᵀ · q · scale
            T::gemm(
                t,
                t,
                dh,
                scale,
                (ds, t, 1),
                (&x[k..], 3 * d, 1),
                T::zero(),
                (&mut dx[q..], 3 * d, 1),
            );
            T::gemm(
                t,
                t,
                dh,
                scale,
                (ds, 1, t),
                (&x[q..], 3 * d, 1),
                T::zero(),
                (&mut dx[k..], 3 * d, 1),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct loops over one sample: scores, softmax, weighted values.
    fn reference(a: &Attention, qkv: &[f64]) -> Vec<f64> {
        let (t, d, h) = (a.tokens, a.dim, a.heads);
        let dh = d / h;
        let mut out = vec![0.0; t * d];
        for head in 0..h {
            for i in 0..t {
                let scores: Vec<f64> = (0..t)
                    .map(|j| {
                        (0..dh)
                            .map(|c| {
                                qkv[i * 3 * d + head * dh + c] * qkv[j * 3 * d + d + head * dh + c]
                            })
                            .sum::<f64>()
                            / (dh as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..dh {
                    out[i * d + head * dh + c] = (0..t)
                        .map(|j| e[j] / z * qkv[j * 3 * d + 2 * d + head * dh + c])
                        .sum();
                }
            }
        }
        out
    }

    #[test]
    fn attention_equals_direct_loops_on_random_inputs() {
        // (tokens, dim, heads): one token, odd lengths, one head and several.
        for (tokens, dim, heads) in [(1, 4, 1), (5, 6, 3), (7, 8, 2), (16, 8, 4), (3, 5, 1)] {
            let a = Attention { tokens, dim, heads };
            let batch = 2;
            let qkv: Vec<f64> = (0..batch * tokens * 3 * dim)
                .map(|i| ((i * 7919 % 1000) as f64 / 500.0 - 1.0) * 1.5)
                .collect();
            let mut p = vec![0.0; batch * heads * tokens * tokens];
            let mut o = vec![0.0; batch * tokens * dim];
            attention_forward(&a, batch, &qkv, &mut p, None, &mut o);
            for n in 0..batch {
                let want = reference(&a, &qkv[n * tokens * 3 * dim..(n + 1) * tokens * 3 * dim]);
                for (g, w) in o[n * tokens * dim..].iter().zip(&want) {
                    assert!((g - w).abs() < 1e-12, "{a:?}: {g} vs {w}");
                }
            }
            for row in p.chunks_exact(tokens) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
    }
}
