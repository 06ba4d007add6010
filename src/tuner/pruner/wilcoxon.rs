//! Optuna's `WilcoxonPruner`: the trial's values against the best trial's at the same
//! steps (problem instances, folds), pruned once a one-sided Wilcoxon signed-rank test says
//! it is worse with p below the threshold. The p-value is SciPy's `wilcoxon(d,
//! zero_method="zsplit", alternative=...)` with its automatic method: the exact null
//! distribution without ties or zeros, a full sign-flip permutation test for up to 13
//! differences with them, the normal approximation beyond (and beyond 50 differences).

use super::Context;
use crate::storage::FrozenTrial;

pub(super) struct Wilcoxon {
    pub p_threshold: f64,
    pub n_startup_steps: usize,
}

impl Wilcoxon {
    pub(super) fn prune(&self, ctx: &Context<'_>, trial: &FrozenTrial) -> bool {
        let values = &trial.intermediate;
        if values.is_empty() || values.iter().any(|(_, v)| !v.is_finite()) {
            return false;
        }
        let Some(best) = best_complete(ctx) else {
            return false;
        };
        let best_values = &best.intermediate;
        if best_values.is_empty() || best_values.iter().any(|(_, v)| !v.is_finite()) {
            return false;
        }
        let mut steps: Vec<u64> = values.iter().map(|&(s, _)| s).collect();
        steps.sort_unstable();
        steps.dedup();
        let diff: Vec<f64> = steps
            .iter()
            .filter_map(|&s| Some(trial.intermediate_at(s)? - best.intermediate_at(s)?))
            .collect();
        if diff.len() < self.n_startup_steps.max(2) {
            return false;
        }
        let mean = |v: &[(u64, f64)]| v.iter().map(|&(_, x)| x).sum::<f64>() / v.len() as f64;
        let (mean_best, mean_trial) = (mean(best_values), mean(values));
        let (alternative, average_is_best) = match ctx.maximize {
            true => (Alternative::Less, mean_best <= mean_trial),
            false => (Alternative::Greater, mean_best >= mean_trial),
        };
        let p = signed_rank_p_value(&diff, alternative);
        // A test that calls the trial worse while its average is no worse than the best's
        // is overruled, as Optuna does, for safety.
        p < self.p_threshold && !average_is_best
    }
}

/// The complete trial with the best value, the earlier one on a tie (Optuna's
/// `best_trial` takes the first to reach the best value).
fn best_complete<'a>(ctx: &Context<'a>) -> Option<&'a FrozenTrial> {
    let mut best: Option<(&FrozenTrial, f64)> = None;
    for t in ctx.trials.iter() {
        let Some(v) = t.finite_value() else { continue };
        let better = match best {
            None => true,
            Some((_, b)) if ctx.maximize => v > b,
            Some((_, b)) => v < b,
        };
        if better {
            best = Some((t, v));
        }
    }
    best.map(|(t, _)| t)
}

/// Which side the signed-rank test looks at: `Less` asks whether the differences lean
/// negative, `Greater` whether they lean positive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Alternative {
    Less,
    Greater,
}

/// SciPy's one-sided Wilcoxon signed-rank p-value of `d` with `zero_method="zsplit"` and
/// `method="auto"` (no continuity correction). NaN for no differences.
pub fn signed_rank_p_value(d: &[f64], alternative: Alternative) -> f64 {
    let n = d.len();
    if n == 0 {
        return f64::NAN;
    }
    let (ranks, tie_sizes) = average_ranks(d);
    // Zeros count half to each side ("zsplit").
    let r_plus: f64 = d
        .iter()
        .zip(&ranks)
        .map(|(&x, &r)| {
            if x > 0.0 {
                r
            } else if x == 0.0 {
                r / 2.0
            } else {
                0.0
            }
        })
        .sum();
    let has_ties = tie_sizes.iter().any(|&t| t > 1);
    let has_zeros = d.contains(&0.0);
    if n > 50 || ((has_ties || has_zeros) && n > 13) {
        normal_approximation(n, r_plus, &tie_sizes, alternative)
    } else if has_ties || has_zeros {
        sign_flip_permutation(d, &ranks, r_plus, alternative)
    } else {
        exact(n, r_plus, alternative)
    }
}

/// Ranks of |d| (1-based, ties averaged) and the size of each tie group.
fn average_ranks(d: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..d.len()).collect();
    order.sort_by(|&a, &b| d[a].abs().total_cmp(&d[b].abs()));
    let mut ranks = vec![0.0; d.len()];
    let mut sizes = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && d[order[end]].abs() == d[order[start]].abs() {
            end += 1;
        }
        // Ranks start+1 ..= end, averaged.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        sizes.push(end - start);
        start = end;
    }
    (ranks, sizes)
}

fn normal_approximation(n: usize, r_plus: f64, ties: &[usize], alternative: Alternative) -> f64 {
    let count = n as f64;
    let mean = count * (count + 1.0) * 0.25;
    let var = count * (count + 1.0) * (2.0 * count + 1.0);
    let tie_correction: f64 = ties
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    let se = ((var - tie_correction / 2.0) / 24.0).sqrt();
    let z = (r_plus - mean) / se;
    match alternative {
        Alternative::Less => normal_cdf(z),
        Alternative::Greater => normal_cdf(-z),
    }
}

/// Cephes' `ndtr`, as SciPy computes the normal CDF.
fn normal_cdf(a: f64) -> f64 {
    let x = a * std::f64::consts::FRAC_1_SQRT_2;
    let z = x.abs();
    if z < std::f64::consts::FRAC_1_SQRT_2 {
        0.5 + 0.5 * libm::erf(x)
    } else {
        let y = 0.5 * libm::erfc(z);
        if x > 0.0 {
            1.0 - y
        } else {
            y
        }
    }
}

/// Every one of the 2^n sign assignments, each equally likely under the null (SciPy's
/// exact `permutation_test` for up to 13 differences), compared with SciPy's tolerance.
fn sign_flip_permutation(d: &[f64], ranks: &[f64], observed: f64, alt: Alternative) -> f64 {
    let n = d.len();
    let zero_half: f64 = d
        .iter()
        .zip(ranks)
        .filter(|(&x, _)| x == 0.0)
        .map(|(_, &r)| r / 2.0)
        .sum();
    let gamma = (f64::EPSILON * 100.0 * observed).abs();
    let mut hits = 0u64;
    for signs in 0u64..(1 << n) {
        let mut r_plus = 0.0;
        for (i, (&x, &r)) in d.iter().zip(ranks).enumerate() {
            // Flipping a sign: a positive difference becomes negative and back.
            let positive = (x > 0.0) != (signs >> i & 1 == 1);
            if x != 0.0 && positive {
                r_plus += r;
            }
        }
        let r_plus = r_plus + zero_half;
        let hit = match alt {
            Alternative::Less => r_plus <= observed + gamma,
            Alternative::Greater => r_plus >= observed - gamma,
        };
        hits += hit as u64;
    }
    hits as f64 / (1u64 << n) as f64
}

/// The exact null distribution of the statistic without ties or zeros (n ≤ 50): the
/// number of subsets of ranks 1..=n with each sum, over 2^n. A non-integral statistic is
/// rounded conservatively, as SciPy does.
fn exact(n: usize, r_plus: f64, alternative: Alternative) -> f64 {
    let pmf = &exact_null_distributions()[n];
    let max = n * (n + 1) / 2;
    let mean = (n * (n + 1)) as f64 / 4.0;
    // P(T <= k) and P(T >= k), for k anywhere (outside 0..=max they are 0 or 1).
    let cdf = |k: i64| -> f64 {
        let end = (k + 1).clamp(0, max as i64 + 1) as usize;
        pmf[..end].iter().sum()
    };
    let sf = |k: i64| -> f64 {
        let start = k.clamp(0, max as i64 + 1) as usize;
        pmf[start..].iter().sum()
    };
    match alternative {
        Alternative::Less => {
            let k = r_plus.ceil() as i64;
            match k as f64 <= mean {
                true => cdf(k),
                false => 1.0 - sf(k + 1),
            }
        }
        Alternative::Greater => {
            let k = r_plus.floor() as i64;
            match k as f64 <= mean {
                true => sf(k),
                false => 1.0 - cdf(k - 1),
            }
        }
    }
}

/// The exact null distributions for n = 0..=50, computed once (a pruner asks for them at
/// every report).
fn exact_null_distributions() -> &'static [Vec<f64>] {
    static TABLE: std::sync::OnceLock<Vec<Vec<f64>>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=50usize)
            .map(|n| {
                let max = n * (n + 1) / 2;
                // Subset counts stay below 2^50: exact in f64.
                let mut counts = vec![0f64; max + 1];
                counts[0] = 1.0;
                for rank in 1..=n {
                    for s in (rank..=max).rev() {
                        counts[s] += counts[s - rank];
                    }
                }
                let total = 2f64.powi(n as i32);
                counts.iter().map(|c| c / total).collect()
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_match_scipy() {
        // scipy.stats.wilcoxon(d, zero_method="zsplit", alternative=alt).pvalue, SciPy 1.17.
        let cases: [(&[f64], Alternative, f64); 4] = [
            // Exact: no ties, no zeros.
            (&[1.0, -2.0, 3.0, 4.0, 5.0], Alternative::Greater, 0.09375),
            (&[1.0, -2.0, 3.0, 4.0, 5.0], Alternative::Less, 0.9375),
            // Permutation: a zero and a tie.
            (&[0.0, 1.0, 1.0, 2.0, -3.0], Alternative::Greater, 0.375),
            // Normal approximation: ties beyond 13 differences.
            (&[1.0; 14], Alternative::Greater, 9.14053164909174e-05),
        ];
        for (d, alt, want) in cases {
            let got = signed_rank_p_value(d, alt);
            assert!((got - want).abs() < 1e-12, "{d:?} {alt:?}: {got} vs {want}");
        }
        assert!(signed_rank_p_value(&[], Alternative::Less).is_nan());
    }
}
