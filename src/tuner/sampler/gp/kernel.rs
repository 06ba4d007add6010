//! Matérn-5/2 kernel with automatic relevance determination, on the unit cube, and the
//! priors on its hyperparameters (Optuna's `default_log_prior`).
//!
//! `k(x, x') = s · (1 + √5·r + 5/3·r²) · exp(−√5·r)`, `r² = Σ_j λ_j · δ_j(x, x')`, where
//! `δ_j = (x_j − x'_j)²` for a numeric dimension and `[x_j ≠ x'_j]` (Hamming) for a
//! categorical one; `λ_j` are the inverse squared lengthscales and `s` the kernel scale.

const SQRT5: f64 = 2.236_067_977_499_79;

/// Hyperparameters of the kernel and the observation noise.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelParams {
    pub inv_sq_lengthscales: Vec<f64>,
    pub scale: f64,
    pub noise: f64,
}

impl KernelParams {
    /// Optuna's starting point: every λ, the scale and the noise equal to 1.
    pub fn initial(dims: usize) -> Self {
        KernelParams {
            inv_sq_lengthscales: vec![1.0; dims],
            scale: 1.0,
            noise: 1.0,
        }
    }
}

/// `δ_j(a, b)` per dimension.
#[inline]
pub fn sq_diff(a: f64, b: f64, categorical: bool) -> f64 {
    if categorical {
        f64::from(u8::from(a != b))
    } else {
        (a - b) * (a - b)
    }
}

/// `r² = Σ λ_j δ_j(a, b)`.
#[inline]
pub fn sq_dist(a: &[f64], b: &[f64], lambda: &[f64], categorical: &[bool]) -> f64 {
    a.iter()
        .zip(b)
        .zip(lambda.iter().zip(categorical))
        .map(|((&x, &y), (&l, &c))| l * sq_diff(x, y, c))
        .sum()
}

/// `k(r²)/s`: the Matérn-5/2 correlation at squared distance `r2`.
#[inline]
pub fn matern52(r2: f64) -> f64 {
    let r = r2.sqrt();
    (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * (-SQRT5 * r).exp()
}

/// `d(k/s)/d(r²)`: `−5/6 · (1 + √5·r) · exp(−√5·r)` (finite at `r = 0`).
#[inline]
pub fn matern52_grad_r2(r2: f64) -> f64 {
    let r = r2.sqrt();
    -5.0 / 6.0 * (1.0 + SQRT5 * r) * (-SQRT5 * r).exp()
}

/// The log prior and its gradient with respect to the raw (log) parameters
/// `(ln λ_1 … ln λ_d, ln s, ln(ν − ν_min))`:
/// `Σ_j −(0.1/λ_j + 0.1·λ_j) + Gamma(s; 2, 1) + Gamma(ν; 1.1, 30)` (unnormalised).
pub fn log_prior(p: &KernelParams, min_noise: f64) -> (f64, Vec<f64>) {
    let mut value = 0.0;
    let mut grad = Vec::with_capacity(p.inv_sq_lengthscales.len() + 2);
    for &l in &p.inv_sq_lengthscales {
        value -= 0.1 / l + 0.1 * l;
        grad.push(0.1 / l - 0.1 * l);
    }
    value += p.scale.ln() - p.scale;
    grad.push(1.0 - p.scale);
    value += 0.1 * p.noise.ln() - 30.0 * p.noise;
    grad.push((0.1 / p.noise - 30.0) * (p.noise - min_noise));
    (value, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matern_gradient_matches_finite_differences() {
        for &r2 in &[1e-6, 0.1, 1.0, 4.0] {
            let h = 1e-7;
            let numeric = (matern52(r2 + h) - matern52(r2 - h)) / (2.0 * h);
            assert!((numeric - matern52_grad_r2(r2)).abs() < 1e-6, "r2 {r2}");
        }
        assert_eq!(matern52(0.0), 1.0);
    }

    #[test]
    fn prior_gradient_matches_finite_differences() {
        let p = KernelParams {
            inv_sq_lengthscales: vec![0.5, 3.0],
            scale: 1.7,
            noise: 0.01,
        };
        let min_noise = 1e-6;
        let (_, grad) = log_prior(&p, min_noise);
        let raw = |p: &KernelParams| {
            let mut r: Vec<f64> = p.inv_sq_lengthscales.iter().map(|l| l.ln()).collect();
            r.push(p.scale.ln());
            r.push((p.noise - min_noise).ln());
            r
        };
        let from_raw = |r: &[f64]| KernelParams {
            inv_sq_lengthscales: r[..2].iter().map(|x| x.exp()).collect(),
            scale: r[2].exp(),
            noise: r[3].exp() + min_noise,
        };
        let base = raw(&p);
        for i in 0..4 {
            let (mut up, mut down) = (base.clone(), base.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric = (log_prior(&from_raw(&up), min_noise).0
                - log_prior(&from_raw(&down), min_noise).0)
                / 2e-6;
            assert!(
                (numeric - grad[i]).abs() < 1e-5,
                "{i}: {numeric} vs {}",
                grad[i]
            );
        }
    }
}
