//! The Parzen estimator behind TPE: a mixture of product kernels, one component per
//! observation plus a prior component, following Optuna's `_ParzenEstimator` (v4–v5).
//!
//! Notation: `n` observations; component `c < n` sits on observation `c`, component `n`
//! is the prior (centre of the range, width of the whole range). Numeric dimensions use
//! truncated normals in transformed space (log for log distributions; bounds widened by
//! half a step for discrete ones, whose density is the mass of the value's bin);
//! categorical dimensions use a smoothed histogram per component.
//! Values are passed in *internal* form: the number itself (numeric) or the choice index.

mod bandwidth;
mod terms;

pub use bandwidth::order_key;
use bandwidth::{bandwidths, scott};
use terms::{continuous_terms, ln_runs, log_sum_exp, pick, truncnorm_draw};

use crate::space::transform::transformed_bounds;
use crate::space::Distribution;
use crate::tuner::normal::{log_mass, straddling_mass, LN_SQRT_2PI};
use rand::RngExt;
use std::cell::OnceCell;

/// Optuna's TPE defaults: prior weight 1, magic clip on, endpoints off, neighbour-gap
/// bandwidths, old observations down-weighted, Optuna's categorical kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParzenParams {
    pub prior_weight: f64,
    pub consider_magic_clip: bool,
    pub consider_endpoints: bool,
    pub bandwidth: Bandwidth,
    /// Every observation weighs the same (else Optuna's `default_weights`).
    pub uniform_weights: bool,
    /// `Some(b)`: an observation's categorical kernel puts 1 − b on its own choice and
    /// spreads b over the others (Watanabe 2023); `None`: Optuna's kernel.
    pub categorical_spread: Option<f64>,
}

/// How wide each numeric kernel is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bandwidth {
    /// Optuna's: the larger gap to the sorted neighbours, clipped by the magic clip.
    Neighbours,
    /// Scott's rule over the observations and the prior's centre, one width for all,
    /// at least `min_factor` of the range (Watanabe 2023's recommended setting).
    Scott { min_factor: f64 },
}

impl Default for ParzenParams {
    fn default() -> Self {
        ParzenParams {
            prior_weight: 1.0,
            consider_magic_clip: true,
            consider_endpoints: false,
            bandwidth: Bandwidth::Neighbours,
            uniform_weights: false,
            categorical_spread: None,
        }
    }
}

/// Optuna's `default_weights`: equal weights up to 25 observations, beyond that the
/// oldest `n − 25` ramp linearly from `1/n` to 1 (observations in trial order).
pub fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| {
            if ramp == 1 {
                1.0 / n as f64
            } else {
                1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

enum Kernel {
    Numeric {
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        /// Transformed bounds.
        low: f64,
        high: f64,
        log: bool,
        /// `(step, value low, value high)` of a discrete distribution.
        discrete: Option<(f64, f64, f64)>,
        /// `1/σ_c` and `−ln σ_c − ln √(2π)`: the per-component constants of the continuous
        /// log density, so the hot loop is one multiply-add per component. The truncation's
        /// normaliser is added per component, and only where it can matter (see `log_pdfs`).
        inv_sigmas: Vec<f64>,
        log_coefs: Vec<f64>,
    },
    Categorical {
        /// `probs[c][k]`: probability of choice `k` under component `c`.
        probs: Vec<Vec<f64>>,
        /// `log_probs[k][c] = ln probs[c][k]`, laid out choice-major for the density loop.
        log_probs: Vec<Vec<f64>>,
    },
}

pub struct ParzenEstimator {
    log_weights: Vec<f64>,
    weights: Vec<f64>,
    kernels: Vec<Kernel>,
    /// Per component, `−Σ_d ln(Φ(b_d) − Φ(a_d))`: what truncating its numeric dimensions to
    /// their ranges adds to its log density. Each costs two normal tails per dimension, so
    /// it is computed on first need: most components of a long history lie too far from
    /// every candidate to count, which `truncation_bounds` (two comparisons per dimension)
    /// shows beforehand.
    truncation: Vec<OnceCell<f64>>,
    truncation_bounds: Vec<f64>,
    /// The kernels of the continuous numeric dimensions, by index into `kernels`.
    continuous: Vec<usize>,
    /// Component-major `(μ, 1/σ, −ln σ − ln √(2π))` of each continuous dimension, in the
    /// order of `continuous`: what scoring reads per component, contiguous (see
    /// `continuous_terms`).
    packed: Vec<f64>,
}

/// Points scored together: one vector register of f64 on AVX-512.
const LANES: usize = 8;

/// The continuous numeric kernels' indices and their parameters packed component-major
/// (see `ParzenEstimator::packed`).
fn pack(kernels: &[Kernel], components: usize) -> (Vec<usize>, Vec<f64>) {
    let continuous: Vec<usize> = kernels
        .iter()
        .enumerate()
        .filter(|(_, k)| matches!(k, Kernel::Numeric { discrete: None, .. }))
        .map(|(d, _)| d)
        .collect();
    // Filled dimension by dimension (one kernel's arrays at a time, strided writes): a
    // match and a bounds check per value made this a tenth of an ask.
    let stride = 3 * continuous.len();
    let mut packed = vec![0.0; components * stride];
    for (j, &d) in continuous.iter().enumerate() {
        if let Kernel::Numeric {
            mus,
            inv_sigmas,
            log_coefs,
            ..
        } = &kernels[d]
        {
            let columns = mus.iter().zip(inv_sigmas).zip(log_coefs);
            for (slot, ((&mu, &inv), &coef)) in packed[3 * j..].chunks_mut(stride).zip(columns) {
                slot[..3].copy_from_slice(&[mu, inv, coef]);
            }
        }
    }
    (continuous, packed)
}

/// `−ln(Φ(1) − Φ(0))`: the most that truncation to `[low, high]` adds to a kernel's log
/// density when its centre is in the range and its width at most the range — the
/// truncated interval then holds 0 and is at least one σ wide, so its mass is at least
/// that of `[0, 1]`.
const TRUNCATION_BOUND: f64 = 1.074_862_326_862_071_4;

/// Beyond this many σ from both ends of its range, truncation takes less than 1e-16 of a
/// kernel's mass (`2Φ(−8.5) < 2e-17`).
const TAIL_FREE_SIGMAS: f64 = 8.5;

/// The most truncation adds to the log density of a kernel centred at `m` in `[low,
/// high]`, at most as wide as the range (`inv_sigma = 1/σ`): nothing to speak of far from
/// both ends, TRUNCATION_BOUND near one. Branch-free, so the loop over components
/// vectorises (a table by whole σ to each end was finer, but its lookups made building
/// the bounds a tenth of a TPE ask).
fn regular_truncation_bound(m: f64, inv_sigma: f64, low: f64, high: f64) -> f64 {
    if (m - low).min(high - m) * inv_sigma < TAIL_FREE_SIGMAS {
        TRUNCATION_BOUND
    } else {
        1e-16
    }
}

/// Terms of a log-sum-exp more than this far below its largest are left out (less than
/// 1e-17 of the sum each).
const LSE_CUTOFF: f64 = 40.0;

impl ParzenEstimator {
    /// `observations[i][d]` is observation `i` in dimension `d` (internal form), in trial
    /// order (the weights favour the most recent).
    pub fn new(
        dists: &[&Distribution],
        observations: &[impl AsRef<[f64]>],
        params: ParzenParams,
    ) -> Self {
        ParzenEstimator::with_orders(dists, observations, params, &[])
    }

    /// As `new`, given for each dimension `d` with `orders[d]` non-empty the observations'
    /// indices sorted by their value there, ties by index (what Optuna's bandwidths sort
    /// for; a caller that keeps it across asks saves the sort).
    pub fn with_orders(
        dists: &[&Distribution],
        observations: &[impl AsRef<[f64]>],
        params: ParzenParams,
        orders: &[Vec<u32>],
    ) -> Self {
        let n = observations.len();
        let mut weights = if params.uniform_weights {
            vec![1.0; n]
        } else {
            default_weights(n)
        };
        weights.push(if n == 0 { 1.0 } else { params.prior_weight });
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let kernels: Vec<Kernel> = dists
            .iter()
            .enumerate()
            .map(|(d, dist)| {
                let column: Vec<f64> = observations.iter().map(|o| o.as_ref()[d]).collect();
                let order = orders.get(d).filter(|o| o.len() == column.len());
                kernel(dist, &column, params, order.map(Vec::as_slice))
            })
            .collect();
        let mut truncation_bounds = vec![0.0; n + 1];
        for kernel in &kernels {
            if let Kernel::Numeric {
                mus,
                sigmas,
                inv_sigmas,
                low,
                high,
                ..
            } = kernel
            {
                let (low, high) = (*low, *high);
                // `&`, not `&&`: no branches, so the loop vectorises.
                let regular = |m: f64, s: f64| (low <= m) & (m <= high) & (s <= high - low);
                let columns = || mus.iter().zip(sigmas);
                for (bound, ((&m, &s), &inv)) in
                    truncation_bounds.iter_mut().zip(columns().zip(inv_sigmas))
                {
                    let near = regular_truncation_bound(m, inv, low, high);
                    *bound += if regular(m, s) { near } else { 0.0 };
                }
                // A centre outside its range or a kernel wider than it (rare): the exact
                // term, which may be large.
                for (bound, (&m, &s)) in truncation_bounds.iter_mut().zip(columns()) {
                    if !regular(m, s) {
                        *bound -= log_mass((low - m) / s, (high - m) / s);
                    }
                }
            }
        }
        let (continuous, packed) = pack(&kernels, n + 1);
        ParzenEstimator {
            log_weights: ln_runs(&weights),
            weights,
            kernels,
            truncation: (0..=n).map(|_| OnceCell::new()).collect(),
            truncation_bounds,
            continuous,
            packed,
        }
    }

    /// Component `c`'s truncation term (see `truncation`), computed once. A centre inside
    /// its range (the usual case) loses mass only to the two tails; those dimensions'
    /// masses are multiplied and take one `ln` between them, not one each.
    fn truncation(&self, c: usize) -> f64 {
        *self.truncation[c].get_or_init(|| {
            let (mut inside, mut term) = (1.0, 0.0);
            for kernel in &self.kernels {
                if let Kernel::Numeric {
                    mus,
                    sigmas,
                    low,
                    high,
                    ..
                } = kernel
                {
                    let (m, s) = (mus[c], sigmas[c]);
                    let (a, b) = ((low - m) / s, (high - m) / s);
                    if a < 0.0 && b > 0.0 {
                        inside *= straddling_mass(a, b);
                    } else {
                        term -= log_mass(a, b);
                    }
                    // Each such mass is at least Φ(0) − Φ(a): far from underflow for any
                    // sensible width, but a thousand dimensions should not find out.
                    if inside < 1e-200 {
                        term -= inside.ln();
                        inside = 1.0;
                    }
                }
            }
            term - inside.ln()
        })
    }

    /// The same estimator with its observations weighted in proportion to `weights` (one
    /// per observation; multi-objective TPE weighs good trials by their hypervolume
    /// contribution). The prior keeps its share.
    pub fn reweighted(mut self, weights: &[f64]) -> Self {
        let n = self.weights.len() - 1;
        if weights.len() != n || n == 0 {
            return self;
        }
        let prior = self.weights[n];
        let total: f64 = weights.iter().sum();
        if total.is_nan() || total <= 0.0 || total.is_infinite() {
            return self;
        }
        let mut new: Vec<f64> = weights.iter().map(|w| w / total * (1.0 - prior)).collect();
        new.push(prior);
        self.log_weights = ln_runs(&new);
        self.weights = new;
        self
    }

    /// The components' weights, summing to 1: one per observation, the prior's last.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// `count` draws from the components picked with `weights` (one per component, summing
    /// to 1), every numeric kernel's width times `bandwidth`. `self.weights()` and 1 draw
    /// from the mixture itself.
    pub fn sample(
        &self,
        rng: &mut impl RngExt,
        count: usize,
        bandwidth: f64,
        weights: &[f64],
    ) -> Vec<Vec<f64>> {
        debug_assert_eq!(weights.len(), self.weights.len());
        (0..count)
            .map(|_| {
                let c = pick(weights, rng.random::<f64>());
                self.kernels
                    .iter()
                    .map(|k| match k {
                        Kernel::Numeric {
                            mus,
                            sigmas,
                            low,
                            high,
                            log,
                            discrete,
                            ..
                        } => {
                            let (mu, sigma) = (mus[c], sigmas[c] * bandwidth);
                            let t = truncnorm_draw(mu, sigma, *low, *high, rng.random::<f64>());
                            let x = if *log { t.exp() } else { t };
                            match discrete {
                                Some((step, vlow, vhigh)) => {
                                    (vlow + ((x - vlow) / step).round() * step).clamp(*vlow, *vhigh)
                                }
                                None => x,
                            }
                        }
                        Kernel::Categorical { probs, .. } => {
                            pick(&probs[c], rng.random::<f64>()) as f64
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Log density (log mass for discrete dimensions) of each point of `xs` under the
    /// mixture. Points go through in blocks of LANES: every component's parameters are
    /// read once per block rather than once per point, which kept scoring bound by the
    /// cache, not by arithmetic.
    pub fn log_pdfs(&self, xs: &[impl AsRef<[f64]>]) -> Vec<f64> {
        let n = self.log_weights.len();
        let mut out = Vec::with_capacity(xs.len());
        let mut acc = vec![[0.0; LANES]; n];
        for block in xs.chunks(LANES) {
            let lanes = block.len();
            // A short block repeats its last point in the lanes it does not use.
            let point = |lane: usize| block[lane.min(lanes - 1)].as_ref();
            let continuous_x: Vec<[f64; LANES]> = self
                .continuous
                .iter()
                .map(|&d| {
                    let log = matches!(self.kernels[d], Kernel::Numeric { log: true, .. });
                    std::array::from_fn(|lane| {
                        let v = point(lane)[d];
                        if log {
                            v.ln()
                        } else {
                            v
                        }
                    })
                })
                .collect();
            continuous_terms(&mut acc, &self.log_weights, &self.packed, &continuous_x);
            for (kernel, d) in self.kernels.iter().zip(0..) {
                match kernel {
                    Kernel::Numeric {
                        mus,
                        sigmas,
                        log,
                        discrete: Some((step, _, _)),
                        ..
                    } => {
                        let tf = |v: f64| if *log { v.ln() } else { v };
                        for lane in 0..lanes {
                            let xd = point(lane)[d];
                            let (lo, hi) = (tf(xd - step / 2.0), tf(xd + step / 2.0));
                            for (c, a) in acc.iter_mut().enumerate() {
                                let (s, m) = (sigmas[c], mus[c]);
                                a[lane] += log_mass((lo - m) / s, (hi - m) / s);
                            }
                        }
                    }
                    Kernel::Numeric { .. } => {}
                    Kernel::Categorical { log_probs, .. } => {
                        for lane in 0..lanes {
                            let row = &log_probs[point(lane)[d] as usize];
                            for (a, lp) in acc.iter_mut().zip(row) {
                                a[lane] += lp;
                            }
                        }
                    }
                }
            }
            // Each component still lacks its truncation term, which is ≥ 0 and at most its
            // bound: one whose bound cannot lift it to within LSE_CUTOFF of the largest
            // unlifted term is left out, exactly as the log-sum-exp would leave it out,
            // and its tails are never computed.
            let mut floor = [f64::NEG_INFINITY; LANES];
            for a in &acc {
                for lane in 0..LANES {
                    floor[lane] = floor[lane].max(a[lane]);
                }
            }
            floor.iter_mut().for_each(|f| *f -= LSE_CUTOFF);
            for (c, a) in acc.iter_mut().enumerate() {
                let bound = self.truncation_bounds[c];
                if (0..lanes).any(|lane| a[lane] + bound > floor[lane]) {
                    let truncation = self.truncation(c);
                    for lane in 0..LANES {
                        a[lane] = if a[lane] + bound > floor[lane] {
                            a[lane] + truncation
                        } else {
                            f64::NEG_INFINITY
                        };
                    }
                } else {
                    *a = [f64::NEG_INFINITY; LANES];
                }
            }
            out.extend_from_slice(&log_sum_exp(&acc)[..lanes]);
        }
        out
    }

    /// The log density of one point (see `log_pdfs`).
    #[cfg(test)]
    pub fn log_pdf(&self, x: &[f64]) -> f64 {
        self.log_pdfs(&[x])[0]
    }
}

#[cfg(test)]
impl Kernel {
    /// Component `c` alone, as a one-component kernel.
    fn component(&self, c: usize) -> Kernel {
        match self {
            Kernel::Numeric {
                mus,
                sigmas,
                low,
                high,
                log,
                discrete,
                inv_sigmas,
                log_coefs,
            } => Kernel::Numeric {
                mus: vec![mus[c]],
                sigmas: vec![sigmas[c]],
                low: *low,
                high: *high,
                log: *log,
                discrete: *discrete,
                inv_sigmas: vec![inv_sigmas[c]],
                log_coefs: vec![log_coefs[c]],
            },
            Kernel::Categorical { probs, log_probs } => Kernel::Categorical {
                probs: vec![probs[c].clone()],
                log_probs: log_probs.iter().map(|row| vec![row[c]]).collect(),
            },
        }
    }
}

fn kernel(
    dist: &Distribution,
    column: &[f64],
    params: ParzenParams,
    order: Option<&[u32]>,
) -> Kernel {
    let n = column.len();
    if let Distribution::Categorical { choices, weights } = dist {
        let k = choices.len();
        let n_kernels = n + 1;
        // The prior over choices, scaled so that uniform is all ones (Optuna's kernel);
        // W&B's probabilities, when given, shape it.
        let prior: Vec<f64> = match weights {
            Some(w) => w.iter().map(|p| p * k as f64).collect(),
            None => vec![1.0; k],
        };
        let mut probs = Vec::with_capacity(n_kernels);
        if let (Some(b), true) = (params.categorical_spread, k > 1) {
            let total: f64 = prior.iter().sum();
            for c in 0..n_kernels {
                let row = if c < n {
                    let mut row = vec![b / (k - 1) as f64; k];
                    row[column[c] as usize] = 1.0 - b;
                    row
                } else {
                    prior.iter().map(|p| p / total).collect()
                };
                probs.push(row);
            }
        }
        for c in probs.len()..n_kernels {
            let mut row: Vec<f64> = prior
                .iter()
                .map(|p| p * params.prior_weight / n_kernels as f64)
                .collect();
            if c < n {
                row[column[c] as usize] += 1.0;
            }
            if n == 0 {
                row = prior.clone();
            }
            let total: f64 = row.iter().sum();
            probs.push(row.into_iter().map(|p| p / total).collect());
        }
        let log_probs = (0..k)
            .map(|choice| {
                probs
                    .iter()
                    .map(|row: &Vec<f64>| row[choice].ln())
                    .collect()
            })
            .collect();
        return Kernel::Categorical { probs, log_probs };
    }
    let (low, high) = transformed_bounds(dist).expect("numeric distributions have bounds");
    let (log, discrete) = match *dist {
        Distribution::Float {
            low,
            high,
            log,
            step,
            ..
        } => (log, step.map(|s| (s, low, high))),
        Distribution::Int {
            low,
            high,
            log,
            step,
            ..
        } => (log, Some((step as f64, low as f64, high as f64))),
        // Shaped priors arrive as CDF values, continuous on [0, 1].
        Distribution::Shaped { .. } => (false, None),
        Distribution::Categorical { .. } => unreachable!("handled above"),
    };
    // The branch outside the loop: inside, LLVM turns it into a select and takes the `ln`
    // of every value whether or not the distribution is log (a third of building `g`).
    let mut mus: Vec<f64> = if log {
        column.iter().map(|v| v.ln()).collect()
    } else {
        column.to_vec()
    };
    let mut sigmas = match params.bandwidth {
        Bandwidth::Neighbours => bandwidths(&mus, low, high, params, order),
        Bandwidth::Scott { min_factor } => {
            let mut with_prior = mus.clone();
            with_prior.push(0.5 * (low + high));
            let range = high - low;
            vec![scott(&with_prior).clamp(min_factor * range, range); n]
        }
    };
    mus.push(0.5 * (low + high));
    sigmas.push(high - low);
    let inv_sigmas = sigmas.iter().map(|s| 1.0 / s).collect();
    let log_coefs = ln_runs(&sigmas)
        .iter()
        .map(|ln_s| -ln_s - LN_SQRT_2PI)
        .collect();
    Kernel::Numeric {
        mus,
        sigmas,
        low,
        high,
        log,
        discrete,
        inv_sigmas,
        log_coefs,
    }
}

#[cfg(test)]
mod tests {
    use super::bandwidth::from_order_key;
    use super::*;
    use rand::SeedableRng;

    /// The same observations and points given to Optuna 5.0's `_ParzenEstimator.log_pdf`
    /// (float, log float, int, categorical jointly) give these values. (No tied
    /// observations: which of two equal values gets which bandwidth is arbitrary — NumPy's
    /// unstable argsort in Optuna, a stable sort here — and changes joint densities.)
    #[test]
    fn log_pdf_matches_optuna() {
        let dists = [
            Distribution::Float {
                low: -5.0,
                high: 10.0,
                log: false,
                step: None,
            },
            Distribution::Float {
                low: 1e-4,
                high: 1.0,
                log: true,
                step: None,
            },
            Distribution::Int {
                low: 1,
                high: 10,
                log: false,
                step: 1,
            },
            Distribution::Categorical {
                choices: vec!["a".into(), "b".into(), "c".into(), "d".into()],
                weights: None,
            },
        ];
        let refs: Vec<&Distribution> = dists.iter().collect();
        let obs = vec![
            vec![1.0, 1e-3, 3.0, 1.0],
            vec![2.5, 0.05, 4.0, 1.0],
            vec![-3.0, 0.2, 6.0, 0.0],
            vec![7.0, 1e-4, 9.0, 3.0],
            vec![0.3, 0.5, 1.0, 2.0],
        ];
        let pe = ParzenEstimator::new(&refs, &obs, ParzenParams::default());
        let points = [
            [0.0, 0.01, 4.0, 1.0],
            [5.0, 0.9, 10.0, 3.0],
            [-4.9, 2e-4, 1.0, 0.0],
        ];
        let optuna = [
            -7.152_117_116_860_134_5,
            -10.437_723_266_437_224,
            -10.488_609_866_041_122,
        ];
        for (p, want) in points.iter().zip(optuna) {
            let got = pe.log_pdf(p);
            assert!((got - want).abs() < 1e-9, "{p:?}: {got} vs Optuna {want}");
        }
    }

    #[test]
    fn weights_match_optuna() {
        assert_eq!(default_weights(3), vec![1.0; 3]);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && (w[4] - 1.0).abs() < 1e-12);
        assert!(w[5..].iter().all(|&x| x == 1.0));
    }

    /// Optuna's bandwidth rule on a worked example: range [0, 10], observations 2, 3, 7.
    #[test]
    fn bandwidths_follow_optuna_rule() {
        let s = bandwidths(&[7.0, 2.0, 3.0], 0.0, 10.0, ParzenParams::default(), None);
        // Sorted 2, 3, 7: inner max gap for 3 is 4; ends use their inner gap (1 and 4).
        // Magic clip: min sigma = 10 / min(100, 1 + 4) = 2.
        assert_eq!(s, vec![4.0, 2.0, 4.0]);
    }

    /// Truncating a kernel centred in its range, at most the range wide, adds at most
    /// TRUNCATION_BOUND — the premise of leaving components out of `log_pdfs` unexamined.
    #[test]
    fn truncation_bound_holds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..100_000 {
            let (low, high) = (-1.0, 3.0);
            let m = low + (high - low) * rng.random::<f64>();
            let s = (high - low) * rng.random::<f64>().max(1e-9);
            let added = -log_mass((low - m) / s, (high - m) / s);
            assert!(added <= TRUNCATION_BOUND + 1e-12, "m {m}, s {s}: {added}");
        }
        let edge = -log_mass(0.0, 1.0);
        assert!((edge - TRUNCATION_BOUND).abs() < 1e-14, "{edge}");
        // The finer bound for centres far from both ends.
        for _ in 0..100_000 {
            let (low, high) = (0.0, 1.0);
            let m = rng.random::<f64>();
            let s = rng.random::<f64>().max(1e-6);
            let added = -log_mass((low - m) / s, (high - m) / s);
            let bound = regular_truncation_bound(m, 1.0 / s, low, high);
            assert!(added <= bound, "m {m}, s {s}: {added} > {bound}");
        }
    }

    /// `log_pdfs`, which adds the truncation terms only where they can matter, equals the
    /// log-sum-exp over every component with every term, for a long mixed history and
    /// points near and far from it.
    #[test]
    fn log_pdf_equals_the_sum_over_every_component() {
        let dists = [
            Distribution::Float {
                low: 1e-4,
                high: 1.0,
                log: true,
                step: None,
            },
            Distribution::Float {
                low: -5.0,
                high: 5.0,
                log: false,
                step: None,
            },
            Distribution::Int {
                low: 1,
                high: 50,
                log: false,
                step: 1,
            },
            Distribution::Categorical {
                choices: vec!["a".into(), "b".into(), "c".into()],
                weights: None,
            },
        ];
        let refs: Vec<&Distribution> = dists.iter().collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let draw = |rng: &mut rand_chacha::ChaCha8Rng| {
            vec![
                (1e-4f64.ln() * rng.random::<f64>()).exp(),
                -5.0 + 10.0 * rng.random::<f64>(),
                (1.0 + 49.0 * rng.random::<f64>()).round(),
                (3.0 * rng.random::<f64>()).floor(),
            ]
        };
        let obs: Vec<Vec<f64>> = (0..400).map(|_| draw(&mut rng)).collect();
        for params in [
            ParzenParams::default(),
            ParzenParams {
                bandwidth: Bandwidth::Scott { min_factor: 0.01 },
                uniform_weights: true,
                categorical_spread: Some(0.2),
                ..ParzenParams::default()
            },
        ] {
            let pe = ParzenEstimator::new(&refs, &obs, params);
            // Scored as one batch: six full blocks of LANES and a short one.
            let xs: Vec<Vec<f64>> = (0..6 * LANES + 3).map(|_| draw(&mut rng)).collect();
            for (x, got) in xs.iter().zip(pe.log_pdfs(&xs)) {
                let every: Vec<f64> = (0..=obs.len())
                    .map(|c| {
                        let kernels: Vec<Kernel> =
                            pe.kernels.iter().map(|k| k.component(c)).collect();
                        let (continuous, packed) = pack(&kernels, 1);
                        let one = ParzenEstimator {
                            log_weights: vec![pe.log_weights[c]],
                            weights: vec![1.0],
                            kernels,
                            truncation: vec![OnceCell::new()],
                            truncation_bounds: vec![f64::INFINITY],
                            continuous,
                            packed,
                        };
                        one.log_pdf(x)
                    })
                    .collect();
                let max = every.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let want = max + every.iter().map(|e| (e - max).exp()).sum::<f64>().ln();
                assert!(
                    (got - want).abs() < 1e-12 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
    }

    /// Scott's rule against NumPy (`1.059·min(IQR/1.34, std(ddof=1))·n^-0.2` with
    /// `np.percentile`'s linear quartiles): the IQR term wins on the first, std on the second.
    #[test]
    fn scott_matches_numpy() {
        let cases = [
            (vec![0.1, 0.4, 0.35, 0.9, 0.5], 0.085_918_842_966_568_6),
            (vec![2.0, 3.0, 7.0, 5.0], 1.647_069_242_843_248_7),
        ];
        for (xs, numpy) in cases {
            assert!((scott(&xs) - numpy).abs() < 1e-12, "{xs:?}: {}", scott(&xs));
        }
    }

    /// Scott's rule with quartiles by selection equals it with quartiles from a full sort,
    /// for every length from 1 (where the quartiles' indices coincide) and with ties.
    #[test]
    fn scott_by_selection_equals_scott_by_sort() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for n in 1..60 {
            let xs: Vec<f64> = (0..n)
                .map(|_| (rng.random::<f64>() * 8.0).round() - 3.0 + rng.random::<f64>() * 0.1)
                .chain([-0.0, 0.0].into_iter().take(n % 3))
                .collect();
            let mut sorted = xs.clone();
            sorted.sort_by(f64::total_cmp);
            let m = sorted.len();
            let quartile = |q: f64| {
                let at = q * (m - 1) as f64;
                let i = at.floor() as usize;
                sorted[i] + (at - at.floor()) * (sorted[(i + 1).min(m - 1)] - sorted[i])
            };
            let mean = xs.iter().sum::<f64>() / m as f64;
            let ddof = if m > 1 { 1.0 } else { 0.0 };
            let sd =
                (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m as f64 - ddof)).sqrt();
            let iqr = quartile(0.75) - quartile(0.25);
            let want = 1.059 * (iqr / 1.34).min(sd) * (m as f64).powf(-0.2);
            assert_eq!(scott(&xs), want, "{xs:?}");
        }
        for x in [-1.5, -0.0, 0.0, 3e-300, 7.25, f64::INFINITY] {
            assert_eq!(from_order_key(order_key(x)).to_bits(), f64::to_bits(x));
        }
    }

    /// Watanabe's setting: one Scott width for every observation (at least 1% of the range),
    /// the prior as wide as the range, and categorical kernels keeping `b` for the rest.
    #[test]
    fn watanabe_kernels() {
        let params = ParzenParams {
            bandwidth: Bandwidth::Scott { min_factor: 0.01 },
            uniform_weights: true,
            categorical_spread: Some(0.2),
            ..ParzenParams::default()
        };
        let cont = Distribution::Float {
            low: 0.0,
            high: 10.0,
            log: false,
            step: None,
        };
        let cat = Distribution::Categorical {
            choices: vec!["a".into(), "b".into(), "c".into()],
            weights: None,
        };
        // Scott over 2, 3, 7 and the prior's centre 5 is NumPy's 1.647 above.
        let obs = vec![vec![2.0, 0.0], vec![3.0, 2.0], vec![7.0, 2.0]];
        let pe = ParzenEstimator::new(&[&cont, &cat], &obs, params);
        let Kernel::Numeric { sigmas, .. } = &pe.kernels[0] else {
            panic!("numeric kernel")
        };
        assert!(sigmas[..3]
            .iter()
            .all(|s| (s - 1.647_069_242_843_248_7).abs() < 1e-12));
        assert_eq!(sigmas[3], 10.0);
        let Kernel::Categorical { probs, .. } = &pe.kernels[1] else {
            panic!("categorical kernel")
        };
        assert_eq!(probs[0], vec![0.8, 0.1, 0.1]);
        assert_eq!(probs[1], vec![0.1, 0.1, 0.8]);
        assert!(probs[3].iter().all(|p| (p - 1.0 / 3.0).abs() < 1e-15));
        assert!(pe.weights.iter().all(|w| (w - 0.25).abs() < 1e-15));
        // Tight observations: the width stops at 1% of the range.
        let tight = vec![vec![5.0, 0.0], vec![5.0, 0.0]];
        let pe = ParzenEstimator::new(&[&cont, &cat], &tight, params);
        let Kernel::Numeric { sigmas, .. } = &pe.kernels[0] else {
            panic!("numeric kernel")
        };
        assert_eq!(sigmas[0], 0.1);
    }

    #[test]
    fn density_integrates_to_one_and_mass_sums_to_one() {
        let cont = Distribution::Float {
            low: 0.0,
            high: 1.0,
            log: false,
            step: None,
        };
        let obs = vec![vec![0.2], vec![0.25], vec![0.9]];
        let pe = ParzenEstimator::new(&[&cont], &obs, ParzenParams::default());
        let m = 20_000;
        let integral: f64 = (0..m)
            .map(|i| pe.log_pdf(&[(i as f64 + 0.5) / m as f64]).exp() / m as f64)
            .sum();
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");

        let int = Distribution::Int {
            low: 1,
            high: 9,
            log: true,
            step: 1,
        };
        let pe = ParzenEstimator::new(&[&int], &[vec![2.0], vec![8.0]], ParzenParams::default());
        let total: f64 = (1..=9).map(|k| pe.log_pdf(&[k as f64]).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn samples_stay_in_range_and_follow_observations() {
        let cat = Distribution::Categorical {
            choices: vec![1.into(), 2.into(), 3.into()],
            weights: None,
        };
        let int = Distribution::Int {
            low: 0,
            high: 100,
            log: false,
            step: 5,
        };
        let obs: Vec<Vec<f64>> = (0..20).map(|_| vec![2.0, 50.0]).collect();
        let pe = ParzenEstimator::new(&[&cat, &int], &obs, ParzenParams::default());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let draws = pe.sample(&mut rng, 2000, 1.0, pe.weights());
        let at_obs = draws.iter().filter(|d| d[0] == 2.0).count();
        assert!(at_obs > 1500, "{at_obs}");
        assert!(draws
            .iter()
            .all(|d| (0.0..=100.0).contains(&d[1]) && d[1] % 5.0 == 0.0));
        assert!(pe.log_pdf(&[2.0, 50.0]) > pe.log_pdf(&[0.0, 0.0]));
    }

    /// Drawing with narrower kernels: the spread about the observations shrinks by the
    /// factor, and draws stay in range.
    #[test]
    fn narrower_draws_shrink_the_spread_by_the_factor() {
        let x = Distribution::Float {
            low: 0.0,
            high: 1.0,
            log: false,
            step: None,
        };
        // Observations packed about 0.5: every kernel is at the magic clip's floor (1% of
        // the range), far from the ends.
        let obs: Vec<Vec<f64>> = (0..200).map(|i| vec![0.5 + 1e-6 * i as f64]).collect();
        let pe = ParzenEstimator::new(&[&x], &obs, ParzenParams::default());
        let spread = |bandwidth: f64| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
            let draws = pe.sample(&mut rng, 20_000, bandwidth, pe.weights());
            assert!(draws.iter().all(|d| (0.0..=1.0).contains(&d[0])));
            // The median distance from the observations (robust to the prior's draws).
            let mut distance: Vec<f64> = draws.iter().map(|d| (d[0] - 0.5).abs()).collect();
            distance.sort_by(f64::total_cmp);
            distance[distance.len() / 2]
        };
        let ratio = spread(0.25) / spread(1.0);
        assert!((0.23..0.27).contains(&ratio), "{ratio}");
    }

    /// Draws pick components by the weights given, not the estimator's: with three
    /// observations 10 apart and kernels narrowed to width 1, each draw lands by the one
    /// it came from, as often as the weights say.
    #[test]
    fn draws_follow_the_weights_given() {
        let x = Distribution::Float {
            low: 0.0,
            high: 30.0,
            log: false,
            step: None,
        };
        let obs = vec![vec![5.0], vec![15.0], vec![25.0]];
        let pe = ParzenEstimator::new(&[&x], &obs, ParzenParams::default());
        let weights = [0.6, 0.1, 0.3, 0.0];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let draws = pe.sample(&mut rng, 20_000, 0.1, &weights);
        let mut counts = [0.0; 3];
        for d in &draws {
            counts[((d[0] / 10.0) as usize).min(2)] += 1.0 / draws.len() as f64;
        }
        for (c, w) in counts.iter().zip(weights) {
            assert!((c - w).abs() < 0.015, "{counts:?} vs {weights:?}");
        }
    }

    /// W&B's probabilities are the categorical prior: with no observation the estimator
    /// is exactly them, and with uniform ones it is Optuna's kernel unchanged.
    #[test]
    fn categorical_probabilities_are_the_prior() {
        let weighted = Distribution::Categorical {
            choices: vec![1.into(), 2.into(), 3.into()],
            weights: Some(vec![0.5, 0.2, 0.3]),
        };
        let none: Vec<Vec<f64>> = Vec::new();
        let pe = ParzenEstimator::new(&[&weighted], &none, ParzenParams::default());
        for (c, p) in [0.5f64, 0.2, 0.3].iter().enumerate() {
            assert!((pe.log_pdf(&[c as f64]) - p.ln()).abs() < 1e-12);
        }
        let uniform = |weights| Distribution::Categorical {
            choices: vec![1.into(), 2.into(), 3.into()],
            weights,
        };
        let obs = vec![vec![0.0], vec![2.0], vec![2.0]];
        let plain = ParzenEstimator::new(&[&uniform(None)], &obs, ParzenParams::default());
        let thirds = uniform(Some(vec![1.0 / 3.0; 3]));
        let same = ParzenEstimator::new(&[&thirds], &obs, ParzenParams::default());
        for c in 0..3 {
            let x = [c as f64];
            assert!((plain.log_pdf(&x) - same.log_pdf(&x)).abs() < 1e-12);
        }
    }
}
