//! Hyperparameter importance from finished trials, two ways:
//! - PED-ANOVA (Watanabe et al., IJCAI 2023, Optuna's `PedAnovaImportanceEvaluator`): a
//!   parameter matters as much as the distribution of its values among the best `γ` of the
//!   trials departs from its distribution among all of them — the Pearson divergence
//!   `∫ (p_top/p_all − 1)² p_all`, with both densities as Gaussian kernel estimates on the
//!   parameter's unit (log where the space says log) scale, or frequencies for categories.
//!   Normalised to sum to 1.
//! - Spearman's rank correlation of each parameter with the objective, signed so that a
//!   positive value means "higher is better".

use crate::space::transform::to_unit;
use crate::space::{Distribution, ParamDef, Params, Space};
use serde::Serialize;

/// Fraction of trials that counts as "top" (Optuna's default `target_quantile`).
pub const TOP_QUANTILE: f64 = 0.1;
/// Grid points over [0, 1] on which the densities are compared.
const GRID: usize = 50;

#[derive(Clone, Debug, Serialize)]
pub struct Importance {
    pub param: String,
    /// PED-ANOVA importance, normalised over the parameters.
    pub ped_anova: f64,
    /// Spearman correlation with the objective, positive when higher values do better.
    pub spearman: f64,
}

/// Importances of every parameter of `space`, most important first, from `(params,
/// objective)` of finished trials. Parameters a trial lacks (inactive) are skipped for it.
pub fn importance(space: &Space, trials: &[(Params, f64)], maximize: bool) -> Vec<Importance> {
    let finite: Vec<&(Params, f64)> = trials.iter().filter(|(_, v)| v.is_finite()).collect();
    let mut order: Vec<usize> = (0..finite.len()).collect();
    order.sort_by(|&a, &b| {
        let o = finite[a].1.total_cmp(&finite[b].1);
        if maximize {
            o.reverse()
        } else {
            o
        }
    });
    let n_top = ((finite.len() as f64 * TOP_QUANTILE).ceil() as usize)
        .max(2)
        .min(finite.len());
    let top: Vec<&(Params, f64)> = order[..n_top].iter().map(|&i| finite[i]).collect();
    let mut out: Vec<Importance> = space
        .params
        .iter()
        .map(|def| Importance {
            param: def.name.clone(),
            ped_anova: pearson_divergence(def, &top, &finite),
            spearman: spearman(def, &finite, maximize),
        })
        .collect();
    let total: f64 = out.iter().map(|i| i.ped_anova).sum();
    if total > 0.0 {
        out.iter_mut().for_each(|i| i.ped_anova /= total);
    }
    out.sort_by(|a, b| b.ped_anova.total_cmp(&a.ped_anova));
    out
}

fn units(def: &ParamDef, trials: &[&(Params, f64)]) -> Vec<f64> {
    trials
        .iter()
        .filter_map(|(p, _)| p.get(&def.name).map(|v| to_unit(&def.dist, v)))
        .collect()
}

/// The density of `xs` on the grid (or per category), normalised to sum to 1.
fn density(def: &ParamDef, xs: &[f64]) -> Vec<f64> {
    let mut d = match &def.dist {
        Distribution::Categorical { choices, .. } => {
            let k = choices.len();
            let mut counts = vec![1e-3; k];
            for &x in xs {
                counts[((x * k as f64) as usize).min(k - 1)] += 1.0;
            }
            counts
        }
        _ => {
            let n = xs.len().max(1) as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            // Scott's rule, floored so a tight cluster still has a smooth density.
            let h = (1.06 * sd * n.powf(-0.2)).max(0.05);
            (0..GRID)
                .map(|g| {
                    let at = (g as f64 + 0.5) / GRID as f64;
                    1e-12
                        + xs.iter()
                            .map(|x| (-0.5 * ((at - x) / h).powi(2)).exp())
                            .sum::<f64>()
                })
                .collect()
        }
    };
    let total: f64 = d.iter().sum();
    d.iter_mut().for_each(|v| *v /= total);
    d
}

fn pearson_divergence(def: &ParamDef, top: &[&(Params, f64)], all: &[&(Params, f64)]) -> f64 {
    let (xt, xa) = (units(def, top), units(def, all));
    if xt.len() < 2 || xa.len() < 2 {
        return 0.0;
    }
    let (pt, pa) = (density(def, &xt), density(def, &xa));
    pt.iter()
        .zip(&pa)
        .map(|(t, a)| a * (t / a - 1.0).powi(2))
        .sum()
}

/// Ranks with ties averaged.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

fn spearman(def: &ParamDef, trials: &[&(Params, f64)], maximize: bool) -> f64 {
    let pairs: Vec<(f64, f64)> = trials
        .iter()
        .filter_map(|(p, v)| p.get(&def.name).map(|x| (to_unit(&def.dist, x), *v)))
        .collect();
    if pairs.len() < 3 {
        return 0.0;
    }
    let rx = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let ry = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    if vx == 0.0 || vy == 0.0 {
        return 0.0;
    }
    let rho = cov / (vx * vy).sqrt();
    if maximize {
        rho
    } else {
        -rho
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_space;
    use crate::space::ParamValue;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn ranks_a_known_structure() {
        // f = 10·x1 + x2 + 0·x3 on uniform samples: x1 matters most, x3 not at all.
        let space = parse_space(
            "x1: {distribution: uniform, min: 0, max: 1}\nx2: {distribution: uniform, min: 0, max: 1}\nx3: {distribution: uniform, min: 0, max: 1}\n",
            "s.yaml",
        )
        .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let trials: Vec<(Params, f64)> = (0..400)
            .map(|_| {
                let x: Vec<f64> = (0..3).map(|_| rng.random::<f64>()).collect();
                let mut p = Params::new();
                for (i, v) in x.iter().enumerate() {
                    p.insert(format!("x{}", i + 1), ParamValue::Float(*v));
                }
                (p, 10.0 * x[0] + x[1])
            })
            .collect();
        for maximize in [true, false] {
            let imp = importance(&space, &trials, maximize);
            let names: Vec<&str> = imp.iter().map(|i| i.param.as_str()).collect();
            assert_eq!(names, ["x1", "x2", "x3"], "maximize {maximize}: {imp:?}");
            let by = |n: &str| imp.iter().find(|i| i.param == n).unwrap().clone();
            assert!((imp.iter().map(|i| i.ped_anova).sum::<f64>() - 1.0).abs() < 1e-9);
            let sign = if maximize { 1.0 } else { -1.0 };
            assert!(sign * by("x1").spearman > 0.9, "{:?}", by("x1"));
            assert!(by("x3").spearman.abs() < 0.15 && by("x3").ped_anova < 0.1);
        }
    }

    #[test]
    fn ties_share_their_rank() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![2.5, 0.0, 2.5, 1.0]);
    }
}
