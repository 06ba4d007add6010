//! Constraints in GP-EI, as Optuna's GPSampler models them: one GP per constraint value,
//! and the acquisition `log EI(x) + Σᵢ log P(cᵢ(x) ≤ 0)` — expected improvement over the
//! best feasible trial, weighed by the probability that `x` is feasible. Before any
//! trial is feasible, only the feasibility term is maximised.

use super::{GpModel, Inputs};
use crate::tuner::normal::{cdf, pdf, LN_SQRT_2PI};

/// The constraint models: each on its standardised values, with the threshold 0 moved
/// with them.
pub struct Feasibility {
    models: Vec<(GpModel, f64)>,
}

/// `(log Φ(u), d log Φ / du)`, stable far in the lower tail.
fn log_cdf(u: f64) -> (f64, f64) {
    if u > -20.0 {
        let p = cdf(u).max(f64::MIN_POSITIVE);
        (p.ln(), pdf(u) / p)
    } else {
        // Φ(u) ≈ φ(u)/|u| · (1 − 1/u²): log Φ ≈ −u²/2 − ln √2π − ln|u| + ln(1 − 1/u²).
        let u2 = u * u;
        let value = -0.5 * u2 - LN_SQRT_2PI - (-u).ln() + (1.0 - 1.0 / u2).ln();
        (value, -u - 1.0 / u + 2.0 / (u * u2 * (1.0 - 1.0 / u2)))
    }
}

impl Feasibility {
    /// Models of each constraint column of `values` (`(n, k)`, one row per row of
    /// `inputs`), fitted by `fit_params`. `None` when a kernel matrix cannot be factorised.
    pub fn new(
        inputs: &Inputs,
        values: &[Vec<f64>],
        fit_params: impl Fn(&Inputs, &[f64]) -> super::kernel::KernelParams,
    ) -> Option<Feasibility> {
        let k = values.first().map_or(0, |v| v.len());
        let mut models = Vec::with_capacity(k);
        for i in 0..k {
            // A NaN constraint value counts as worse than any seen.
            let worst = values
                .iter()
                .map(|v| v[i])
                .filter(|c| c.is_finite())
                .fold(f64::NEG_INFINITY, f64::max);
            let worst = if worst.is_finite() {
                worst.max(0.0) + 1.0
            } else {
                1.0
            };
            let column: Vec<f64> = values
                .iter()
                .map(|v| if v[i].is_finite() { v[i] } else { worst })
                .collect();
            let n = column.len() as f64;
            let mean = column.iter().sum::<f64>() / n;
            let sd = (column.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / n)
                .sqrt()
                .max(1e-10);
            let y: Vec<f64> = column.iter().map(|c| (c - mean) / sd).collect();
            let params = fit_params(inputs, &y);
            models.push((GpModel::new(inputs.clone(), &y, params)?, (0.0 - mean) / sd));
        }
        Some(Feasibility { models })
    }

    /// `log P(feasible)` at each point of `seen` (as the GP sees them).
    pub fn log_prob(&self, seen: &[f64]) -> Vec<f64> {
        let n = seen.len() / self.models.first().map_or(1, |(m, _)| m.inputs.d.max(1));
        let mut total = vec![0.0; n];
        for (model, threshold) in &self.models {
            for (t, (m, v)) in total.iter_mut().zip(model.posterior(seen)) {
                *t += log_cdf((threshold - m) / v.sqrt()).0;
            }
        }
        total
    }

    /// `log P(feasible)` at one point and its gradient.
    pub fn log_prob_with_grad(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let mut value = 0.0;
        let mut grad = vec![0.0; x.len()];
        for (model, threshold) in &self.models {
            let (m, v, dm, dv) = model.posterior_with_grad(x);
            let sigma = v.sqrt();
            let u = (threshold - m) / sigma;
            let (lp, dlp) = log_cdf(u);
            value += lp;
            for ((g, &dmj), &dvj) in grad.iter_mut().zip(&dm).zip(&dv) {
                // du/dx = −dm/σ − u·dv/(2v).
                *g += dlp * (-dmj / sigma - u * dvj / (2.0 * v));
            }
        }
        (value, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::log_cdf;

    #[test]
    fn log_cdf_is_continuous_and_its_derivative_matches() {
        for u in [-30.0, -20.0001, -19.9999, -5.0, 0.0, 3.0] {
            let (v, d) = log_cdf(u);
            let h = 1e-6;
            let fd = (log_cdf(u + h).0 - log_cdf(u - h).0) / (2.0 * h);
            assert!(
                (d - fd).abs() < 1e-4 * (1.0 + d.abs()),
                "u {u}: {d} vs {fd}"
            );
            assert!(v <= 0.0);
        }
        assert!((log_cdf(-20.0001).0 - log_cdf(-19.9999).0).abs() < 1e-2);
    }
}
