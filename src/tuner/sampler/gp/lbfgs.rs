//! A small L-BFGS minimiser (Nocedal & Wright, Algorithm 7.4/7.5) with a backtracking
//! Armijo line search and optional box bounds (by projection). It serves the GP's
//! hyperparameter fit and the acquisition's local search, whose problems have a handful
//! to a few dozen variables.

/// Stops when the largest gradient component falls below `gtol` or after `max_iters`.
#[derive(Clone, Copy, Debug)]
pub struct LbfgsOptions {
    pub gtol: f64,
    pub max_iters: usize,
    pub memory: usize,
    /// Insist on the weak Wolfe curvature condition in the line search (keeps the
    /// curvature pairs useful over long runs); without it the first step that decreases
    /// enough (Armijo) is taken, usually after one evaluation — right for short polishes.
    pub wolfe: bool,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            gtol: 1e-2,
            max_iters: 100,
            memory: 10,
            wolfe: true,
        }
    }
}

/// Minimises `f` (returning value and gradient) from `x`, keeping every coordinate inside
/// `bounds` when given. Returns the best point found and its value. Non-finite values are
/// treated as worse than anything finite, so a line search backs off from them.
///
/// Nocedal & Wright's Algorithm 7.4: each iteration takes the two-loop direction
/// (`direction`), a weak-Wolfe line search along it (`line_search`), and keeps the new
/// curvature pair.
pub fn minimize(
    mut f: impl FnMut(&[f64]) -> (f64, Vec<f64>),
    mut x: Vec<f64>,
    bounds: Option<&[(f64, f64)]>,
    options: LbfgsOptions,
) -> (Vec<f64>, f64) {
    project(&mut x, bounds);
    let (mut fx, mut g) = f(&x);
    if !fx.is_finite() {
        return (x, fx);
    }
    let mut history: Vec<(Vec<f64>, Vec<f64>)> = Vec::new(); // (s, y) pairs, newest last
    for _ in 0..options.max_iters {
        let free_grad_norm = g
            .iter()
            .enumerate()
            .map(|(i, &gi)| {
                if at_bound(&x, bounds, i, gi) {
                    0.0
                } else {
                    gi.abs()
                }
            })
            .fold(0.0, f64::max);
        if free_grad_norm < options.gtol {
            break;
        }
        let (d, no_curvature) = direction(&x, &g, bounds, &mut history);
        // Without curvature information the direction is the raw gradient, whose length
        // says nothing about a good step: start with a move of at most 0.1 per coordinate.
        let first_step = if no_curvature {
            (0.1 / d.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300)).min(1.0)
        } else {
            1.0
        };
        let here = (x.as_slice(), fx, g.as_slice());
        let Some((xn, fn_, gn, s)) = line_search(&mut f, here, &d, first_step, bounds, options)
        else {
            break;
        };
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let ys = dot(&y, &s);
        if ys > 1e-12 {
            if history.len() == options.memory {
                history.remove(0);
            }
            history.push((s, y));
        }
        let improvement = fx - fn_;
        x = xn;
        fx = fn_;
        g = gn;
        if improvement.abs() < 1e-12 * (1.0 + fx.abs()) {
            break;
        }
    }
    (x, fx)
}

/// Clamps every coordinate into its bounds.
fn project(v: &mut [f64], bounds: Option<&[(f64, f64)]>) {
    if let Some(b) = bounds {
        for (vi, &(lo, hi)) in v.iter_mut().zip(b) {
            *vi = vi.clamp(lo, hi);
        }
    }
}

/// The search direction `d = −H·g` by the two-loop recursion on the free coordinates (the
/// held ones masked out of `g` and of every `y`: their curvature is not the problem's any
/// more), with held coordinates not moving; steepest descent, and the history cleared,
/// when that is not a descent direction. Also says whether no curvature pair was usable.
fn direction(
    x: &[f64],
    g: &[f64],
    bounds: Option<&[(f64, f64)]>,
    history: &mut Vec<(Vec<f64>, Vec<f64>)>,
) -> (Vec<f64>, bool) {
    let free: Vec<bool> = (0..x.len())
        .map(|i| !at_bound(x, bounds, i, g[i]))
        .collect();
    let masked = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .zip(&free)
            .map(|(&vi, &f)| if f { vi } else { 0.0 })
            .collect()
    };
    let pairs: Vec<(&Vec<f64>, Vec<f64>, f64)> = history
        .iter()
        .filter_map(|(s, y)| {
            let ym = masked(y);
            let ys = dot(&ym, s);
            (ys > 1e-12).then(|| (s, ym, 1.0 / ys))
        })
        .collect();
    let no_curvature = pairs.is_empty();
    let mut q = masked(g);
    let mut alphas = Vec::with_capacity(pairs.len());
    for (s, y, rho) in pairs.iter().rev() {
        let a = rho * dot(s, &q);
        axpy(-a, y, &mut q);
        alphas.push(a);
    }
    if let Some((s, y, _)) = pairs.last() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
        let b = rho * dot(y, &q);
        axpy(a - b, s, &mut q);
    }
    // Coordinates held at a bound do not move (a projected step would only bend along it).
    let hold = |d: &mut Vec<f64>| {
        if let Some(b) = bounds {
            for (i, di) in d.iter_mut().enumerate() {
                if (x[i] <= b[i].0 && *di < 0.0) || (x[i] >= b[i].1 && *di > 0.0) {
                    *di = 0.0;
                }
            }
        }
    };
    let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
    hold(&mut d);
    if dot(&d, g) >= 0.0 {
        // Not a descent direction (curvature lost): restart from steepest descent.
        history.clear();
        d = g.iter().map(|v| -v).collect();
        hold(&mut d);
    }
    (d, no_curvature)
}

/// A point of the line search: position, value, gradient, and the step `s` taken to it.
type Trial = (Vec<f64>, f64, Vec<f64>, Vec<f64>);

/// Weak Wolfe line search along `d` from `(x, fx, g)` by expansion and bisection (Lewis &
/// Overton; Algorithm 3.5's role): the curvature condition keeps every stored pair's yᵀs
/// positive, so the history stays useful. Without `options.wolfe`, the first step that
/// decreases enough (Armijo) is taken. `None` when no step decreased `f`.
fn line_search(
    f: &mut impl FnMut(&[f64]) -> (f64, Vec<f64>),
    (x, fx, g): (&[f64], f64, &[f64]),
    d: &[f64],
    first_step: f64,
    bounds: Option<&[(f64, f64)]>,
    options: LbfgsOptions,
) -> Option<Trial> {
    let (mut lo, mut hi, mut step) = (0.0, f64::INFINITY, first_step);
    let mut accepted = None;
    let mut armijo_only: Option<Trial> = None;
    for _ in 0..40 {
        let mut trial: Vec<f64> = x.iter().zip(d).map(|(xi, di)| xi + step * di).collect();
        project(&mut trial, bounds);
        let moved: Vec<f64> = trial.iter().zip(x).map(|(t, xi)| t - xi).collect();
        let slope = dot(g, &moved);
        let (ft, gt) = f(&trial);
        if !ft.is_finite() || ft > fx + 1e-4 * slope {
            hi = step;
        } else if options.wolfe && dot(&gt, &moved) < 0.9 * slope {
            // Expanding is pointless once the projection pins the step to the bounds.
            let pinned = armijo_only
                .as_ref()
                .is_some_and(|(prev, ..)| *prev == trial);
            lo = step;
            armijo_only = Some((trial, ft, gt, moved));
            if pinned {
                break;
            }
        } else {
            accepted = Some((trial, ft, gt, moved));
            break;
        }
        step = if hi.is_finite() {
            0.5 * (lo + hi)
        } else {
            2.0 * lo.max(0.5)
        };
    }
    accepted.or(armijo_only)
}

/// Whether coordinate `i` sits on a bound that its gradient pushes against.
fn at_bound(x: &[f64], bounds: Option<&[(f64, f64)]>, i: usize, g: f64) -> bool {
    bounds.is_some_and(|b| (x[i] <= b[i].0 && g > 0.0) || (x[i] >= b[i].1 && g < 0.0))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_rosenbrock_and_respects_bounds() {
        let rosen = |x: &[f64]| {
            let (a, b) = (x[0], x[1]);
            let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let g = vec![
                -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
                200.0 * (b - a * a),
            ];
            (f, g)
        };
        let opts = LbfgsOptions {
            gtol: 1e-8,
            max_iters: 500,
            memory: 10,
            wolfe: true,
        };
        let (x, f) = minimize(rosen, vec![-1.2, 1.0], None, opts);
        assert!(f < 1e-10 && (x[0] - 1.0).abs() < 1e-4, "{x:?} {f}");
        let (x, _) = minimize(
            rosen,
            vec![-1.2, 1.0],
            Some(&[(-2.0, 0.5), (-2.0, 2.0)]),
            opts,
        );
        assert!(
            (x[0] - 0.5).abs() < 1e-9 && (x[1] - 0.25).abs() < 1e-4,
            "{x:?}"
        );
    }
}
