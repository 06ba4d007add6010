//! Gaussian-process regression for GP-EI: the model (kernel, fit) and the acquisition,
//! kept apart from the sampler protocol in `gp_ei.rs`.
//!
//! Notation (as Optuna's `_gp`): `n` training points `X_train` `(n, d)` in the unit cube
//! (a categorical dimension holds its choice index), `y_train` `(n)` standardised so that
//! larger is better; `K = k(X_train, X_train) + ν·I` `(n, n)`, `L = chol(K)` lower
//! triangular, `α = K⁻¹·y_train`. The posterior of the latent function at `x` has mean
//! `k*ᵀ·α` and variance `s − k*ᵀ·K⁻¹·k*`, with `k* = k(X_train, x)` `(n)`.

pub mod acquisition;
pub mod feasibility;
pub mod kernel;
pub mod lbfgs;

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Par, Side};
use kernel::{matern52, matern52_grad_r2, sq_diff, sq_dist, KernelParams};
use lbfgs::{minimize, LbfgsOptions};

/// The noise variance (of the standardised values) never goes below this, which keeps `K`
/// well conditioned when points repeat. Optuna's floor is 1e-6; at that floor a
/// deterministic objective cannot be resolved finer than the floor allows near its optimum
/// (Branin's median regret stalled at 2e-5). A noisy metric is unaffected: the marginal
/// likelihood fits its noise well above either floor. 1e-7 was chosen on seeds 0-19 of
/// `cargo bench --bench sampler_quality` and checked on seeds 20-99, where P(regret below
/// Optuna's) went 0.54 → 0.85 (Branin), 0.49 → 0.55 (Hartmann-6), 0.44 → 0.49
/// (Rosenbrock-10), 0.60 → 0.50 (Levy-10), 0.89 → 0.89 (mixed); 1e-8 was better still on
/// Branin but worse than Optuna on both 10-d functions.
pub const MIN_NOISE: f64 = 1e-7;

/// The coordinate of a conditional dimension that is inactive (its condition unmet): the
/// centre of the cube, so an inactive point is at most half the range from an active one
/// (SMAC's imputation of inactive parameters; Lévesque et al. 2017 compare the options).
pub const INACTIVE: f64 = 0.5;

/// Training inputs and which dimensions are categorical.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// `(n, d)` row-major.
    pub x: Vec<f64>,
    pub d: usize,
    pub categorical: Vec<bool>,
}

impl Inputs {
    pub fn n(&self) -> usize {
        self.x.len().checked_div(self.d).unwrap_or(0)
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
}

/// A GP conditioned on its training data with fixed hyperparameters.
pub struct GpModel {
    pub inputs: Inputs,
    pub params: KernelParams,
    /// `L = chol(K)`, lower triangular.
    l: Mat<f64>,
    alpha: Vec<f64>,
}

/// `K = s·matern(X, X) + ν·I`.
fn kernel_matrix(inputs: &Inputs, p: &KernelParams) -> Mat<f64> {
    let n = inputs.n();
    let mut k = Mat::<f64>::zeros(n, n);
    for a in 0..n {
        k[(a, a)] = p.scale + p.noise;
        for b in 0..a {
            let r2 = sq_dist(
                inputs.row(a),
                inputs.row(b),
                &p.inv_sq_lengthscales,
                &inputs.categorical,
            );
            let v = p.scale * matern52(r2);
            k[(a, b)] = v;
            k[(b, a)] = v;
        }
    }
    k
}

impl GpModel {
    /// Conditions on `(inputs, y)`; `None` if `K` is not positive definite.
    pub fn new(inputs: Inputs, y: &[f64], params: KernelParams) -> Option<GpModel> {
        let llt = kernel_matrix(&inputs, &params).llt(Side::Lower).ok()?;
        Some(Self::with_factor(inputs, y, params, llt.L().to_owned()))
    }

    fn with_factor(inputs: Inputs, y: &[f64], params: KernelParams, l: Mat<f64>) -> GpModel {
        let mut alpha = Mat::<f64>::from_fn(y.len(), 1, |i, _| y[i]);
        solve_with_factor(l.as_ref(), alpha.as_mut());
        GpModel {
            inputs,
            params,
            alpha: alpha.col(0).iter().copied().collect(),
            l,
        }
    }

    /// This model conditioned on `p` more points `xs` `(p, d)` with values `ys`, same
    /// kernel. Block Cholesky: `L' = [[L, 0], [B, C]]` with `Bᵀ = L⁻¹·K(X, xs)` and
    /// `C = chol(K(xs, xs) + ν·I − B·Bᵀ)` costs `O(n²·p)` instead of `O((n + p)³)` — what
    /// makes a kriging-believer batch cheap, each suggestion adding the pending points to
    /// one fixed model of the complete ones. `y` is the whole value vector, old then new.
    pub fn extended(&self, xs: &[f64], y: &[f64]) -> Option<GpModel> {
        let (n, d) = (self.inputs.n(), self.inputs.d);
        let p_new = xs.len().checked_div(d).unwrap_or(0);
        let kp = &self.params;
        let mut inputs = self.inputs.clone();
        inputs.x.extend_from_slice(xs);
        let k_cross = |i: usize, j: usize| {
            let r2 = sq_dist(
                inputs.row(i),
                inputs.row(j),
                &kp.inv_sq_lengthscales,
                &inputs.categorical,
            );
            kp.scale * matern52(r2)
        };
        let mut bt = self.cross_covariance(0, xs);
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            self.l.as_ref(),
            bt.as_mut(),
            Par::Seq,
        );
        let schur = Mat::<f64>::from_fn(p_new, p_new, |a, b| {
            let k = if a == b {
                kp.scale + kp.noise
            } else {
                k_cross(n + a, n + b)
            };
            k - (0..n).map(|i| bt[(i, a)] * bt[(i, b)]).sum::<f64>()
        });
        let c = schur.llt(Side::Lower).ok()?;
        let c = c.L();
        let l = Mat::<f64>::from_fn(n + p_new, n + p_new, |i, j| match (i < n, j < n) {
            (true, true) => self.l[(i, j)],
            (true, false) => 0.0,
            (false, true) => bt[(j, i - n)],
            (false, false) => c[(i - n, j - n)],
        });
        Some(Self::with_factor(inputs, y, self.params.clone(), l))
    }

    /// Posterior mean and variance at each of the `m` rows of `xs` `(m, d)`, batched: one
    /// triangular solve with `m` right-hand sides.
    pub fn posterior(&self, xs: &[f64]) -> Vec<(f64, f64)> {
        self.posterior_whitened(&self.whiten(xs), xs)
    }

    /// `K(X, xs)` and `L⁻¹·K(X, xs)` for the rows of `xs`: what
    /// [`GpModel::posterior_whitened`] needs of them, computed once.
    pub fn whiten(&self, xs: &[f64]) -> Whitened {
        let kstar = self.cross_covariance(0, xs);
        let mut solved = kstar.clone();
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            self.l.as_ref(),
            solved.as_mut(),
            Par::Seq,
        );
        Whitened { kstar, solved }
    }

    /// The posterior at the points `w` was made from (`xs`), where `w` came from a model
    /// whose training points are the first `n` of this one's (this model extended it by
    /// `p` more): with `L' = [[L, 0], [B, C]]`, `L'⁻¹·k = [v; C⁻¹·(k_p − B·v)]` for the
    /// cached `v = L⁻¹·k_n`, so a point costs `O(p·n)` instead of `O((n + p)²)`.
    pub fn posterior_whitened(&self, w: &Whitened, xs: &[f64]) -> Vec<(f64, f64)> {
        let (n, m) = (w.kstar.nrows(), w.kstar.ncols());
        let p = self.inputs.n() - n;
        let k_new = self.cross_covariance(n, xs);
        let mut v_new = k_new.clone();
        if p > 0 {
            let b = self.l.as_ref().submatrix(n, 0, p, n);
            faer::linalg::matmul::matmul(
                v_new.as_mut(),
                faer::Accum::Add,
                b,
                w.solved.as_ref(),
                -1.0,
                Par::Seq,
            );
            faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                self.l.as_ref().submatrix(n, n, p, p),
                v_new.as_mut(),
                Par::Seq,
            );
        }
        (0..m)
            .map(|j| {
                let mean: f64 = (0..n)
                    .map(|i| w.kstar[(i, j)] * self.alpha[i])
                    .chain((0..p).map(|q| k_new[(q, j)] * self.alpha[n + q]))
                    .sum();
                let explained: f64 = (0..n)
                    .map(|i| w.solved[(i, j)] * w.solved[(i, j)])
                    .chain((0..p).map(|q| v_new[(q, j)] * v_new[(q, j)]))
                    .sum();
                (mean, (self.params.scale - explained).max(1e-12))
            })
            .collect()
    }

    /// `K(X[from..], xs)` `(n − from, m)`.
    fn cross_covariance(&self, from: usize, xs: &[f64]) -> Mat<f64> {
        let (n, d) = (self.inputs.n(), self.inputs.d);
        let m = xs.len().checked_div(d).unwrap_or(0);
        let p = &self.params;
        Mat::<f64>::from_fn(n - from, m, |i, j| {
            let r2 = sq_dist(
                self.inputs.row(from + i),
                &xs[j * d..(j + 1) * d],
                &p.inv_sq_lengthscales,
                &self.inputs.categorical,
            );
            p.scale * matern52(r2)
        })
    }

    /// Mean, variance and their gradients with respect to the non-categorical coordinates
    /// of one point `x` (categorical entries of the gradients are 0).
    pub fn posterior_with_grad(&self, x: &[f64]) -> (f64, f64, Vec<f64>, Vec<f64>) {
        let (n, d) = (self.inputs.n(), self.inputs.d);
        let p = &self.params;
        let mut kstar = vec![0.0; n];
        // dk_i/dx_j = s · matern'(r²) · 2 λ_j (x_j − X_ij); the scalar part per row here.
        let mut dk_scale = vec![0.0; n];
        for i in 0..n {
            let r2 = sq_dist(
                self.inputs.row(i),
                x,
                &p.inv_sq_lengthscales,
                &self.inputs.categorical,
            );
            kstar[i] = p.scale * matern52(r2);
            dk_scale[i] = 2.0 * p.scale * matern52_grad_r2(r2);
        }
        let mean: f64 = kstar.iter().zip(&self.alpha).map(|(k, a)| k * a).sum();
        // K⁻¹·k* by two triangular solves (n² flops): cheaper than forming K⁻¹ (n³) for
        // the few dozen points a local search visits.
        let mut solved = Mat::<f64>::from_fn(n, 1, |i, _| kstar[i]);
        solve_with_factor(self.l.as_ref(), solved.as_mut());
        let w: Vec<f64> = solved.col(0).iter().copied().collect();
        let explained: f64 = kstar.iter().zip(&w).map(|(k, w)| k * w).sum();
        let var = (p.scale - explained).max(1e-12);
        let mut dmean = vec![0.0; d];
        let mut dvar = vec![0.0; d];
        for i in 0..n {
            let row = self.inputs.row(i);
            let (am, av) = (dk_scale[i] * self.alpha[i], -2.0 * dk_scale[i] * w[i]);
            for j in 0..d {
                if !self.inputs.categorical[j] {
                    let t = p.inv_sq_lengthscales[j] * (x[j] - row[j]);
                    dmean[j] += am * t;
                    dvar[j] += av * t;
                }
            }
        }
        (mean, var, dmean, dvar)
    }
}

/// A fixed set of points' covariances with a model's training points (see
/// [`GpModel::whiten`]).
pub struct Whitened {
    /// `K(X, xs)` `(n, m)`.
    kstar: Mat<f64>,
    /// `L⁻¹·K(X, xs)` `(n, m)`.
    solved: Mat<f64>,
}

/// `rhs ← K⁻¹·rhs` given `L = chol(K)`: `L⁻ᵀ·(L⁻¹·rhs)`.
fn solve_with_factor(l: faer::MatRef<'_, f64>, mut rhs: faer::MatMut<'_, f64>) {
    use faer::linalg::triangular_solve as tri;
    tri::solve_lower_triangular_in_place(l, rhs.as_mut(), Par::Seq);
    tri::solve_upper_triangular_in_place(l.transpose(), rhs, Par::Seq);
}

/// The raw (log) parameters the fit optimises: `(ln λ, ln s, ln(ν − ν_min))`.
fn to_raw(p: &KernelParams) -> Vec<f64> {
    let mut raw: Vec<f64> = p.inv_sq_lengthscales.iter().map(|l| l.ln()).collect();
    raw.push(p.scale.ln());
    raw.push((p.noise - 0.99 * MIN_NOISE).max(1e-300).ln());
    raw
}

fn from_raw(raw: &[f64]) -> KernelParams {
    let d = raw.len() - 2;
    KernelParams {
        inv_sq_lengthscales: raw[..d].iter().map(|v| v.exp()).collect(),
        scale: raw[d].exp(),
        noise: raw[d + 1].exp() + MIN_NOISE,
    }
}

/// Per-dimension squared differences `δ_j(x_a, x_b)` of every pair `b < a`, computed once
/// per fit: each likelihood evaluation then needs one dot product per pair for `r²`.
struct PairDiffs {
    d: usize,
    /// Pair `(a, b)` at row `a(a−1)/2 + b`, `d` values per row.
    diffs: Vec<f64>,
}

impl PairDiffs {
    fn new(inputs: &Inputs) -> Self {
        let (n, d) = (inputs.n(), inputs.d);
        let mut diffs = Vec::with_capacity(n * n.saturating_sub(1) / 2 * d);
        for a in 0..n {
            for b in 0..a {
                let (ra, rb) = (inputs.row(a), inputs.row(b));
                diffs.extend((0..d).map(|j| sq_diff(ra[j], rb[j], inputs.categorical[j])));
            }
        }
        PairDiffs { d, diffs }
    }
}

/// Negative log marginal likelihood minus log prior, and its gradient in raw parameters:
/// `∂ log p(y)/∂θ = ½·tr((αα ᵀ − K⁻¹)·∂K/∂θ)`.
fn neg_log_posterior(pairs: &PairDiffs, y: &[f64], raw: &[f64]) -> (f64, Vec<f64>) {
    const SQRT5: f64 = 2.236_067_977_499_79;
    let p = from_raw(raw);
    let (n, d) = (y.len(), pairs.d);
    let lambda = &p.inv_sq_lengthscales;
    // One exp per pair gives both the correlation and its r²-derivative.
    let n_pairs = n * n.saturating_sub(1) / 2;
    let (mut corr, mut corr_grad) = (Vec::with_capacity(n_pairs), Vec::with_capacity(n_pairs));
    let mut k = Mat::<f64>::zeros(n, n);
    let mut row = 0;
    for a in 0..n {
        k[(a, a)] = p.scale + p.noise;
        for b in 0..a {
            let diff = &pairs.diffs[row * d..(row + 1) * d];
            let r2: f64 = diff.iter().zip(lambda).map(|(x, l)| x * l).sum();
            let r = r2.sqrt();
            let e = (-SQRT5 * r).exp();
            let c = (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * e;
            corr.push(c);
            corr_grad.push(-5.0 / 6.0 * (1.0 + SQRT5 * r) * e);
            k[(a, b)] = p.scale * c;
            k[(b, a)] = p.scale * c;
            row += 1;
        }
    }
    let failed = (f64::INFINITY, vec![0.0; raw.len()]);
    let Ok(llt) = k.llt(Side::Lower) else {
        return failed;
    };
    let mut alpha = Mat::<f64>::from_fn(n, 1, |i, _| y[i]);
    llt.solve_in_place(alpha.as_mut());
    let l = llt.L();
    let log_det: f64 = (0..n).map(|i| l[(i, i)].ln()).sum::<f64>() * 2.0;
    let fit: f64 = (0..n).map(|i| y[i] * alpha[(i, 0)]).sum();
    let log_ml = -0.5 * fit - 0.5 * log_det - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    let k_inv = llt.inverse();
    let w = |a: usize, b: usize| alpha[(a, 0)] * alpha[(b, 0)] - k_inv[(a, b)];
    let mut grad = vec![0.0; d + 2];
    let mut row = 0;
    for a in 0..n {
        let wa = w(a, a);
        grad[d] += 0.5 * wa * p.scale; // ∂K_aa/∂ln s = s
        grad[d + 1] += 0.5 * wa * (p.noise - MIN_NOISE);
        for b in 0..a {
            let wab = w(a, b); // counted twice: K is symmetric
            grad[d] += wab * p.scale * corr[row];
            let g = wab * p.scale * corr_grad[row];
            let diff = &pairs.diffs[row * d..(row + 1) * d];
            for j in 0..d {
                grad[j] += g * lambda[j] * diff[j];
            }
            row += 1;
        }
    }
    let (prior, prior_grad) = kernel::log_prior(&p, MIN_NOISE);
    let value = -(log_ml + prior);
    let grad = grad
        .iter()
        .zip(&prior_grad)
        .map(|(g, pg)| -(g + pg))
        .collect();
    (value, grad)
}

/// Maximises the marginal likelihood times the prior over the hyperparameters, from
/// `start` (a previous fit, or [`KernelParams::initial`]); falls back to the start when
/// the optimiser cannot improve on it.
pub fn fit(inputs: &Inputs, y: &[f64], start: &KernelParams) -> KernelParams {
    let options = LbfgsOptions {
        gtol: 1e-2,
        max_iters: 100,
        memory: 10,
        wolfe: true,
    };
    let pairs = PairDiffs::new(inputs);
    let (raw, value) = minimize(
        |r| neg_log_posterior(&pairs, y, r),
        to_raw(start),
        None,
        options,
    );
    if value.is_finite() {
        from_raw(&raw)
    } else {
        start.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Inputs, Vec<f64>) {
        let n = 12;
        let x: Vec<f64> = (0..n)
            .flat_map(|i| {
                [
                    i as f64 / n as f64,
                    ((i * 7) % n) as f64 / n as f64,
                    (i % 3) as f64,
                ]
            })
            .collect();
        let inputs = Inputs {
            x,
            d: 3,
            categorical: vec![false, false, true],
        };
        let y: Vec<f64> = (0..n)
            .map(|i| (6.0 * inputs.row(i)[0]).sin() + 0.3 * inputs.row(i)[2])
            .collect();
        (inputs, y)
    }

    #[test]
    fn likelihood_gradient_matches_finite_differences() {
        let (inputs, y) = toy();
        let raw = vec![0.3, -0.5, 0.1, 0.2, -3.0];
        let pairs = PairDiffs::new(&inputs);
        let (_, grad) = neg_log_posterior(&pairs, &y, &raw);
        for i in 0..raw.len() {
            let (mut up, mut down) = (raw.clone(), raw.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric = (neg_log_posterior(&pairs, &y, &up).0
                - neg_log_posterior(&pairs, &y, &down).0)
                / 2e-6;
            assert!(
                (numeric - grad[i]).abs() < 1e-4 * (1.0 + numeric.abs()),
                "{i}: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn fit_improves_the_posterior_and_interpolates() {
        let (inputs, y) = toy();
        let start = KernelParams::initial(3);
        let fitted = fit(&inputs, &y, &start);
        let pairs = PairDiffs::new(&inputs);
        assert!(
            neg_log_posterior(&pairs, &y, &to_raw(&fitted)).0
                < neg_log_posterior(&pairs, &y, &to_raw(&start)).0
        );
        let model = GpModel::new(inputs.clone(), &y, fitted).unwrap();
        let post = model.posterior(&inputs.x);
        for (i, (mean, var)) in post.iter().enumerate() {
            assert!((mean - y[i]).abs() < 0.2, "point {i}: {mean} vs {}", y[i]);
            assert!(*var < 0.1);
        }
        // Far from the data the variance grows back towards the prior scale.
        let far = model.posterior(&[5.0, 5.0, 7.0]);
        assert!(far[0].1 > 0.5 * model.params.scale);
    }

    #[test]
    fn posterior_gradients_match_finite_differences() {
        let (inputs, y) = toy();
        let model = GpModel::new(inputs, &y, KernelParams::initial(3)).unwrap();
        let x = [0.31, 0.62, 1.0];
        let (m, v, dm, dv) = model.posterior_with_grad(&x);
        let (pm, pv) = model.posterior(&x)[0];
        assert!((m - pm).abs() < 1e-10 && (v - pv).abs() < 1e-10);
        for j in 0..2 {
            let (mut up, mut down) = (x, x);
            up[j] += 1e-6;
            down[j] -= 1e-6;
            let (mu, vu) = model.posterior(&up)[0];
            let (md, vd) = model.posterior(&down)[0];
            assert!(((mu - md) / 2e-6 - dm[j]).abs() < 1e-5, "dmean {j}");
            assert!(((vu - vd) / 2e-6 - dv[j]).abs() < 1e-5, "dvar {j}");
        }
    }

    #[test]
    fn extended_model_equals_the_model_of_all_points() {
        let (inputs, y) = toy();
        let params = KernelParams {
            inv_sq_lengthscales: vec![4.0, 0.5, 2.0],
            scale: 1.3,
            noise: 1e-4,
        };
        let n = inputs.n();
        let (keep, extra) = (n - 3, 3);
        let head = Inputs {
            x: inputs.x[..keep * inputs.d].to_vec(),
            ..inputs.clone()
        };
        let base = GpModel::new(head, &y[..keep], params.clone()).unwrap();
        let grown = base
            .extended(&inputs.x[keep * inputs.d..], &y[..keep + extra])
            .unwrap();
        let whole = GpModel::new(inputs.clone(), &y, params).unwrap();
        let probes: Vec<f64> = (0..5 * inputs.d)
            .map(|i| (i as f64 * 0.77).fract())
            .collect();
        for ((gm, gv), (wm, wv)) in grown
            .posterior(&probes)
            .into_iter()
            .zip(whole.posterior(&probes))
        {
            assert!(
                (gm - wm).abs() < 1e-9 && (gv - wv).abs() < 1e-9,
                "{gm} {gv} vs {wm} {wv}"
            );
        }
        // The whitened path: covariances with the base's points computed once.
        let whitened = base.whiten(&probes);
        for ((gm, gv), (wm, wv)) in grown
            .posterior_whitened(&whitened, &probes)
            .into_iter()
            .zip(whole.posterior(&probes))
        {
            assert!(
                (gm - wm).abs() < 1e-9 && (gv - wv).abs() < 1e-9,
                "{gm} {gv} vs {wm} {wv}"
            );
        }
        // ... and differs from the model without the extra points.
        let (bm, _) = base.posterior(&probes)[0];
        assert!((bm - whole.posterior(&probes)[0].0).abs() > 1e-6);
    }
}
