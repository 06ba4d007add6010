//! W&B's shaped distributions — normal, log-normal, beta and the quantised log-uniform —
//! defined by their quantile function, as W&B's own sampler defines them: a value is
//! `ppf(u)` for `u` uniform on (0, 1), rounded to a multiple of `q` when quantised. The
//! CDF maps a value back to its unit coordinate, so every sampler that works on [0, 1]
//! (random, Sobol, TPE, GP) handles these priors with no special case.
//!
//! The special functions (the regularised incomplete beta and its inverse) come from
//! `statrs`, not from hand-written series.

use statrs::distribution::{Beta, ContinuousCDF, LogNormal, Normal};

/// The shape of a prior; the bounds of the log-uniform are values, not exponents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Normal { mu: f64, sigma: f64 },
    LogNormal { mu: f64, sigma: f64 },
    Beta { a: f64, b: f64 },
    LogUniform { low: f64, high: f64 },
}

/// Unit coordinates are kept this far inside (0, 1) so an unbounded prior's quantile stays
/// finite (the normal's at 1e-12 is μ − 7σ).
const EDGE: f64 = 1e-12;

impl Shape {
    /// Checks the shape's parameters; the message names the offending key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive = |key: &'static str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err((key, format!("`{key}` must be a positive number, got {v}")))
            }
        };
        match *self {
            Shape::Normal { mu, sigma } | Shape::LogNormal { mu, sigma } => {
                if !mu.is_finite() {
                    return Err(("mu", format!("`mu` must be finite, got {mu}")));
                }
                positive("sigma", sigma)
            }
            Shape::Beta { a, b } => positive("a", a).and(positive("b", b)),
            Shape::LogUniform { low, high } => {
                positive("min", low)?;
                positive("max", high)?;
                if low > high {
                    return Err(("min", format!("min {low} is greater than max {high}")));
                }
                Ok(())
            }
        }
    }

    /// The value at probability `u` (the quantile function).
    pub fn ppf(&self, u: f64) -> f64 {
        let u = u.clamp(EDGE, 1.0 - EDGE);
        match *self {
            Shape::Normal { mu, sigma } => normal(mu, sigma).inverse_cdf(u),
            Shape::LogNormal { mu, sigma } => log_normal(mu, sigma).inverse_cdf(u),
            Shape::Beta { a, b } => beta(a, b).inverse_cdf(u),
            Shape::LogUniform { low, high } => (low.ln() + u * (high / low).ln()).exp(),
        }
    }

    /// The probability of a value at most `x` (the CDF).
    pub fn cdf(&self, x: f64) -> f64 {
        let p = match *self {
            Shape::Normal { mu, sigma } => normal(mu, sigma).cdf(x),
            Shape::LogNormal { mu, sigma } => log_normal(mu, sigma).cdf(x),
            Shape::Beta { a, b } => beta(a, b).cdf(x),
            Shape::LogUniform { low, high } if high > low => {
                ((x.ln() - low.ln()) / (high / low).ln()).clamp(0.0, 1.0)
            }
            Shape::LogUniform { .. } => 0.5,
        };
        if p.is_nan() {
            0.5
        } else {
            p
        }
    }

    /// Whether `x` lies in the support.
    pub fn supports(&self, x: f64) -> bool {
        match *self {
            Shape::Normal { .. } => x.is_finite(),
            Shape::LogNormal { .. } => x > 0.0 && x.is_finite(),
            Shape::Beta { .. } => (0.0..=1.0).contains(&x),
            Shape::LogUniform { low, high } => (low..=high).contains(&x),
        }
    }
}

// The constructors fail only on parameters `validate` rejects first.
fn normal(mu: f64, sigma: f64) -> Normal {
    Normal::new(mu, sigma).expect("validated normal parameters")
}

fn log_normal(mu: f64, sigma: f64) -> LogNormal {
    LogNormal::new(mu, sigma).expect("validated log-normal parameters")
}

fn beta(a: f64, b: f64) -> Beta {
    Beta::new(a, b).expect("validated beta parameters")
}

/// `x` rounded to the nearest multiple of `q` (W&B's `round(x / q) · q`).
pub fn quantise(x: f64, q: f64) -> f64 {
    (x / q).round() * q
}

/// Whether `x` is a multiple of `q`, up to rounding error.
pub fn is_multiple(x: f64, q: f64) -> bool {
    let k = x / q;
    (k - k.round()).abs() < 1e-6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppf_inverts_cdf() {
        let shapes = [
            Shape::Normal {
                mu: 1.0,
                sigma: 2.0,
            },
            Shape::LogNormal {
                mu: -1.0,
                sigma: 0.5,
            },
            Shape::Beta { a: 2.0, b: 5.0 },
            Shape::LogUniform {
                low: 1e-4,
                high: 1.0,
            },
        ];
        for s in shapes {
            for i in 1..100 {
                let u = i as f64 / 100.0;
                let x = s.ppf(u);
                assert!(s.supports(x), "{s:?} at {u}: {x}");
                assert!(
                    (s.cdf(x) - u).abs() < 1e-6,
                    "{s:?} at {u}: cdf {}",
                    s.cdf(x)
                );
            }
        }
    }

    #[test]
    fn known_quantiles() {
        let n = Shape::Normal {
            mu: 0.0,
            sigma: 1.0,
        };
        assert!((n.ppf(0.975) - 1.959964).abs() < 1e-5);
        // Beta(1, 1) is uniform; Beta(2, 1) has CDF x², so its median is √½.
        assert!((Shape::Beta { a: 1.0, b: 1.0 }.ppf(0.3) - 0.3).abs() < 1e-9);
        assert!((Shape::Beta { a: 2.0, b: 1.0 }.ppf(0.5) - 0.5f64.sqrt()).abs() < 1e-9);
        assert_eq!(quantise(0.37, 0.25), 0.25);
        assert!(is_multiple(0.75, 0.25) && !is_multiple(0.7, 0.25));
    }

    #[test]
    fn bad_parameters_name_their_key() {
        let e = Shape::Normal {
            mu: 0.0,
            sigma: 0.0,
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.0, "sigma");
        let e = Shape::Beta { a: 1.0, b: -1.0 }.validate().unwrap_err();
        assert_eq!(e.0, "b");
    }
}
