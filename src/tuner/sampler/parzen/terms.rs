//! The estimator's numeric kernels: the continuous terms of a block of candidates against
//! every component (compiled for AVX-512 and AVX2 and picked at run time, the same IEEE
//! operations in every lane), the log-sum-exp, and the draws.

use super::{LANES, LSE_CUTOFF};
use crate::tuner::normal::quantile;

widest_vectors! {
    /// `acc[c][lane] = log_weights[c] + Σ_d coef − ½((x[d][lane] − μ)/σ)²` over the continuous
    /// dimensions `d`, with component `c`'s `(μ, 1/σ, coef)` per dimension in `packed`: the
    /// inner loop of scoring, half of a TPE ask. The lanes are one vector, so it is compiled
    /// for the widest vectors the CPU has, chosen at run time (the binary stays portable);
    /// every lane does the same IEEE operations in the same order, so each version gives the
    /// same bits.
    pub(super) fn continuous_terms(
        acc: &mut [[f64; LANES]],
        log_weights: &[f64],
        packed: &[f64],
        x: &[[f64; LANES]],
    ) as continuous_terms_avx512, continuous_terms_avx2 => continuous_terms_portable
}

#[inline(always)]
pub(super) fn continuous_terms_portable(
    acc: &mut [[f64; LANES]],
    log_weights: &[f64],
    packed: &[f64],
    x: &[[f64; LANES]],
) {
    let per_component = 3 * x.len();
    if per_component == 0 {
        acc.iter_mut()
            .zip(log_weights)
            .for_each(|(a, &w)| *a = [w; LANES]);
        return;
    }
    for ((a, &w), params) in acc
        .iter_mut()
        .zip(log_weights)
        .zip(packed.chunks_exact(per_component))
    {
        let mut sum = [w; LANES];
        for (xd, p) in x.iter().zip(params.chunks_exact(3)) {
            let (mu, inv_sigma, coef) = (p[0], p[1], p[2]);
            for lane in 0..LANES {
                let z = (xd[lane] - mu) * inv_sigma;
                sum[lane] += coef - 0.5 * z * z;
            }
        }
        *a = sum;
    }
}

/// `ln` of each value, computed once per run of equal values: a long history's bandwidths
/// are mostly the magic clip's floor (or, under Scott's rule, all one width) and its
/// weights mostly 1, and `ln` was a sixth of a TPE ask.
pub(super) fn ln_runs(xs: &[f64]) -> Vec<f64> {
    // Run by run, the `ln` outside the inner loop: written as one loop with a branch, LLVM
    // speculates the `ln` for every element.
    let mut out = Vec::with_capacity(xs.len());
    let mut rest = xs;
    while let Some(&x) = rest.first() {
        // (A NaN is a run of its own.)
        let run = 1 + rest[1..]
            .iter()
            .position(|&y| y != x)
            .unwrap_or(rest.len() - 1);
        out.extend(std::iter::repeat_n(x.ln(), run));
        rest = &rest[run..];
    }
    out
}

/// A draw from N(mu, sigma²) truncated to `[low, high]`, by inverting the CDF at `u`.
pub(super) fn truncnorm_draw(mu: f64, sigma: f64, low: f64, high: f64, u: f64) -> f64 {
    let (a, b) = ((low - mu) / sigma, (high - mu) / sigma);
    let (pa, pb) = (crate::tuner::normal::cdf(a), crate::tuner::normal::cdf(b));
    let z = quantile(pa + u * (pb - pa));
    (mu + sigma * z).clamp(low, high)
}

/// The index `i` with `cum(p)[i-1] ≤ u < cum(p)[i]`.
pub(super) fn pick(probs: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.len() - 1
}

/// `ln Σ_c e^{acc[c][lane]}` for each lane, both passes across all lanes at once.
pub(super) fn log_sum_exp(acc: &[[f64; LANES]]) -> [f64; LANES] {
    let mut max = [f64::NEG_INFINITY; LANES];
    for a in acc {
        for lane in 0..LANES {
            max[lane] = max[lane].max(a[lane]);
        }
    }
    // Terms more than LSE_CUTOFF below the maximum add less than 1e-17 relative: skipping
    // them avoids exp's slow underflow path, which dominated the cost of a TPE ask.
    let mut sums = [0.0; LANES];
    for a in acc {
        for lane in 0..LANES {
            let d = a[lane] - max[lane];
            if d > -LSE_CUTOFF {
                sums[lane] += d.exp();
            }
        }
    }
    std::array::from_fn(|lane| {
        if max[lane] == f64::NEG_INFINITY {
            max[lane]
        } else {
            max[lane] + sums[lane].ln()
        }
    })
}
