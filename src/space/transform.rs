//! Maps between parameter values and the continuous coordinates the model-based samplers
//! work in.
//!
//! The *transformed* space of a numeric parameter is its value axis, logarithmic for `log`
//! distributions and widened by half a step on each side for discrete ones (so every
//! integer owns an equal-width bin, as in Optuna's TPE). The *unit* space rescales that to
//! [0, 1]; a categorical parameter with `k` choices splits [0, 1] into `k` equal bins.

use super::prior::quantise;
use super::{Distribution, ParamValue};

/// `(low, high)` of a numeric distribution in transformed space; `None` for categorical.
pub fn transformed_bounds(dist: &Distribution) -> Option<(f64, f64)> {
    match *dist {
        Distribution::Float {
            low,
            high,
            log,
            step,
        } => {
            let half = step.map_or(0.0, |s| s / 2.0);
            Some(if log {
                (low.ln(), high.ln())
            } else {
                (low - half, high + half)
            })
        }
        Distribution::Int {
            low,
            high,
            log,
            step,
        } => {
            let half = step as f64 / 2.0;
            let (lo, hi) = (low as f64 - half, high as f64 + half);
            Some(if log { (lo.ln(), hi.ln()) } else { (lo, hi) })
        }
        // A shaped prior's coordinate is its CDF.
        Distribution::Shaped { .. } => Some((0.0, 1.0)),
        Distribution::Categorical { .. } => None,
    }
}

/// A numeric value's transformed coordinate; a categorical value's choice index.
pub fn to_transformed(dist: &Distribution, value: &ParamValue) -> f64 {
    match dist {
        Distribution::Float { log, .. } | Distribution::Int { log, .. } => {
            let x = value.as_f64().unwrap_or(f64::NAN);
            if *log {
                x.ln()
            } else {
                x
            }
        }
        Distribution::Categorical { choices, .. } => {
            choices.iter().position(|c| c == value).unwrap_or(0) as f64
        }
        Distribution::Shaped { shape, .. } => shape.cdf(value.as_f64().unwrap_or(f64::NAN)),
    }
}

/// The value at transformed coordinate `t` (clamped into range, snapped to the step);
/// for a categorical, `t` is rounded to a choice index.
pub fn from_transformed(dist: &Distribution, t: f64) -> ParamValue {
    match dist {
        Distribution::Float {
            low,
            high,
            log,
            step,
        } => {
            let x = if *log { t.exp() } else { t };
            let x = match step {
                Some(s) => {
                    let k = ((x - low) / s)
                        .round()
                        .clamp(0.0, ((high - low) / s + 1e-9).floor());
                    low + k * s
                }
                None => x,
            };
            ParamValue::Float(x.clamp(*low, *high))
        }
        Distribution::Int {
            low,
            high,
            log,
            step,
        } => {
            let x = if *log { t.exp() } else { t };
            let max_k = (high - low) / step;
            let k = ((x - *low as f64) / *step as f64)
                .round()
                .clamp(0.0, max_k as f64) as i64;
            ParamValue::Int(low + k * step)
        }
        Distribution::Categorical { choices, .. } => {
            let i = (t.round().max(0.0) as usize).min(choices.len() - 1);
            choices[i].clone()
        }
        Distribution::Shaped { shape, q, int } => {
            let x = shape.ppf(t);
            let x = q.map_or(x, |q| quantise(x, q));
            if *int {
                ParamValue::Int(x.round() as i64)
            } else {
                ParamValue::Float(x)
            }
        }
    }
}

/// The value at unit coordinate `u` in [0, 1].
pub fn from_unit(dist: &Distribution, u: f64) -> ParamValue {
    match transformed_bounds(dist) {
        Some((lo, hi)) => from_transformed(dist, lo + u * (hi - lo)),
        None => {
            let Distribution::Categorical { choices, weights } = dist else {
                unreachable!("only categorical distributions lack transformed bounds")
            };
            let k = choices.len();
            let i = match weights {
                None => (u * k as f64) as usize,
                // The first choice whose bin ends past u; a zero-weight bin is empty.
                Some(w) => {
                    let mut end = 0.0;
                    w.iter()
                        .position(|p| {
                            end += p;
                            *p > 0.0 && u < end
                        })
                        .unwrap_or_else(|| w.iter().rposition(|p| *p > 0.0).unwrap_or(k - 1))
                }
            };
            choices[i.min(k - 1)].clone()
        }
    }
}

/// A value's unit coordinate: its position in transformed space rescaled to [0, 1]; for
/// a categorical, the centre of its choice's bin.
pub fn to_unit(dist: &Distribution, value: &ParamValue) -> f64 {
    let t = to_transformed(dist, value);
    match (transformed_bounds(dist), dist) {
        (Some((lo, hi)), _) if hi > lo => (t - lo) / (hi - lo),
        (Some(_), _) => 0.5,
        (None, Distribution::Categorical { choices, weights }) => match weights {
            None => (t + 0.5) / choices.len() as f64,
            Some(w) => {
                let i = t as usize;
                w[..i].iter().sum::<f64>() + w[i] / 2.0
            }
        },
        (None, _) => unreachable!("only categorical distributions lack transformed bounds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_round_trips_every_kind() {
        let dists = [
            Distribution::Float {
                low: 1e-4,
                high: 1.0,
                log: true,
                step: None,
            },
            Distribution::Float {
                low: -1.0,
                high: 1.0,
                log: false,
                step: Some(0.5),
            },
            Distribution::Int {
                low: 1,
                high: 1024,
                log: true,
                step: 1,
            },
            Distribution::Int {
                low: 0,
                high: 10,
                log: false,
                step: 5,
            },
            Distribution::Categorical {
                choices: vec![ParamValue::Str("a".into()), ParamValue::Int(3)],
                weights: None,
            },
            Distribution::Categorical {
                choices: vec![1.into(), 2.into(), 3.into()],
                weights: Some(vec![0.7, 0.0, 0.3]),
            },
        ];
        for d in &dists {
            for i in 0..=100 {
                let v = from_unit(d, i as f64 / 100.0);
                assert!(d.contains(&v), "{v:?} outside {d:?}");
                let back = from_unit(d, to_unit(d, &v));
                assert_eq!(back, v, "{d:?}");
            }
        }
    }

    #[test]
    fn every_integer_owns_an_equal_bin() {
        let d = Distribution::Int {
            low: 1,
            high: 3,
            log: false,
            step: 1,
        };
        let counts = (0..3000).fold([0; 3], |mut c, i| {
            let ParamValue::Int(v) = from_unit(&d, (i as f64 + 0.5) / 3000.0) else {
                unreachable!()
            };
            c[(v - 1) as usize] += 1;
            c
        });
        assert_eq!(counts, [1000, 1000, 1000]);
    }
}
