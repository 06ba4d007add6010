//! The `parameters` block of a sweep file (W&B's syntax plus popsweep's `step`, `log` and
//! `condition`) turned into a [`Space`]. Model-agnostic: which names a model accepts is
//! checked by its caller.

use super::prior::Shape;
use super::{Condition, Distribution, ParamDef, ParamValue, Space};
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::fmt;

/// An error at `path` inside the parameters block, e.g. `["lr", "min"]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpaceError {
    pub path: Vec<String>,
    pub message: String,
}

impl SpaceError {
    pub fn at(name: &str, key: &str, message: &str) -> Self {
        let mut path = vec![name.to_string()];
        if !key.is_empty() {
            path.push(key.to_string());
        }
        SpaceError {
            path,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for SpaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.join("."), self.message)
    }
}

/// One parameter as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    value: Option<Value>,
    values: Option<Vec<Value>>,
    distribution: Option<String>,
    min: Option<Value>,
    max: Option<Value>,
    /// W&B's quantisation step (`q_uniform`, `q_log_uniform`, `q_normal`, …): values are
    /// rounded to multiples of it, and are integers when it is written as one.
    q: Option<Value>,
    /// W&B's normal and log-normal: mean and standard deviation (of the log).
    mu: Option<f64>,
    sigma: Option<f64>,
    /// W&B's beta: shape parameters.
    a: Option<f64>,
    b: Option<f64>,
    /// W&B's nested parameter dictionary: its parameters are named `outer.inner`.
    parameters: Option<BTreeMap<String, RawParam>>,
    /// popsweep: grid step of a `float` or `int` distribution.
    step: Option<Value>,
    /// popsweep: log scale for a `float` or `int` distribution.
    log: Option<bool>,
    /// popsweep: `{parent: value or [values]}`: active only when the parent takes one of them.
    condition: Option<BTreeMap<String, Value>>,
    /// W&B's: the chance of each of `values` under random search.
    probabilities: Option<Vec<f64>>,
}

/// W&B's `probabilities` for `n` values: as many non-negative numbers, summing to 1 (to
/// 1e-6: what a written decimal can miss by), renormalised to sum to 1 exactly.
fn probabilities(w: &[f64], n: usize) -> Result<Vec<f64>, String> {
    if w.len() != n {
        return Err(format!("{} probabilities for {n} values", w.len()));
    }
    if let Some(bad) = w.iter().find(|p| !(p.is_finite() && **p >= 0.0)) {
        return Err(format!("{bad} is not a probability"));
    }
    let sum: f64 = w.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(format!("they sum to {sum}, not 1"));
    }
    Ok(w.iter().map(|p| p / sum).collect())
}

const SUPPORTED: &str = "constant, categorical, uniform, int_uniform, q_uniform, log_uniform, \
                         log_uniform_values, q_log_uniform, q_log_uniform_values, \
                         inv_log_uniform, inv_log_uniform_values, normal, q_normal, log_normal, \
                         q_log_normal, beta, q_beta, float, int, pow2";

/// The space the `parameters` block describes. A nested dictionary (`{parameters: {...}}`)
/// contributes its parameters under dotted names, `outer.inner`.
pub fn parse_parameters(raw: BTreeMap<String, RawParam>) -> Result<Space, SpaceError> {
    let mut defs = Vec::new();
    flatten("", raw, &mut defs)?;
    Space::new(defs)
}

fn flatten(
    prefix: &str,
    raw: BTreeMap<String, RawParam>,
    defs: &mut Vec<ParamDef>,
) -> Result<(), SpaceError> {
    for (name, mut p) in raw {
        let name = format!("{prefix}{name}");
        match p.parameters.take() {
            Some(inner) => {
                if p.distribution.is_some() || p.value.is_some() || p.values.is_some() {
                    return Err(SpaceError::at(
                        &name,
                        "parameters",
                        "a nested dictionary holds only `parameters`",
                    ));
                }
                if inner.is_empty() {
                    return Err(SpaceError::at(&name, "parameters", "is empty"));
                }
                flatten(&format!("{name}."), inner, defs)?;
            }
            None => defs.push(parse_param(&name, p)?),
        }
    }
    Ok(())
}

/// A YAML scalar as a parameter value.
pub fn value_of(v: &Value) -> Option<ParamValue> {
    match v {
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => ParamValue::Int(i),
            None => ParamValue::Float(n.as_f64()?),
        }),
        Value::String(s) => Some(ParamValue::Str(s.clone())),
        Value::Bool(b) => Some(ParamValue::Bool(*b)),
        _ => None,
    }
}

/// A value as the user would write it (JSON), for error messages.
fn shown(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
}

fn parse_param(name: &str, p: RawParam) -> Result<ParamDef, SpaceError> {
    let r = ParamReader {
        name,
        kind: distribution_kind(name, &p)?,
        p: &p,
    };
    r.refuse_unused_keys()?;
    let q = r.q()?;
    let dist = match r.kind.as_str() {
        "constant" => r.constant()?,
        "categorical" => r.categorical()?,
        // W&B returns integers for an integer q: the multiples of q inside the bounds.
        "q_uniform" if r.q_is_int() => r.int_multiples(q.expect("an integer q was given"))?,
        "uniform"
        | "q_uniform"
        | "log_uniform_values"
        | "log_uniform"
        | "inv_log_uniform"
        | "inv_log_uniform_values"
        | "float" => r.float(q)?,
        "int_uniform" | "int" => r.int()?,
        "pow2" => r.pow2()?,
        "q_log_uniform"
        | "q_log_uniform_values"
        | "normal"
        | "q_normal"
        | "log_normal"
        | "q_log_normal"
        | "beta"
        | "q_beta" => r.shaped(q)?,
        other => {
            return Err(r.err(
                "distribution",
                format!("distribution `{other}` is not supported (supported: {SUPPORTED})"),
            ))
        }
    };
    Ok(ParamDef {
        name: name.to_string(),
        dist,
        condition: r.condition()?,
    })
}

/// The distribution a parameter names, or the one W&B infers: `categorical` from `values`,
/// `constant` from `value`, uniform or int_uniform from the type of the bounds.
fn distribution_kind(name: &str, p: &RawParam) -> Result<String, SpaceError> {
    Ok(match p.distribution.as_deref() {
        Some(d) => d.to_string(),
        None if p.values.is_some() => "categorical".into(),
        None if p.value.is_some() => "constant".into(),
        None if p.min.is_some() || p.max.is_some() => {
            let ints = [&p.min, &p.max]
                .iter()
                .all(|v| v.as_ref().is_some_and(|v| v.is_i64() || v.is_u64()));
            if ints { "int_uniform" } else { "uniform" }.into()
        }
        None => {
            return Err(SpaceError::at(
                name,
                "",
                "give `value`, `values`, or `distribution` with `min` and `max`",
            ))
        }
    })
}

/// One parameter's raw keys read for its distribution `kind`; every error names the
/// parameter and the key.
struct ParamReader<'a> {
    name: &'a str,
    kind: String,
    p: &'a RawParam,
}

impl ParamReader<'_> {
    fn err(&self, key: &str, message: String) -> SpaceError {
        SpaceError::at(self.name, key, &message)
    }

    fn scalar(&self, key: &str, v: &Value) -> Result<ParamValue, SpaceError> {
        value_of(v).ok_or_else(|| {
            self.err(
                key,
                format!("expected a number, string or bool, got {}", shown(v)),
            )
        })
    }

    /// `min` and `max`, finite and in order.
    fn bounds(&self) -> Result<(f64, f64), SpaceError> {
        let get = |key: &str, v: &Option<Value>| {
            v.as_ref()
                .and_then(Value::as_f64)
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    self.err(
                        key,
                        format!("distribution {} needs a finite numeric `{key}`", self.kind),
                    )
                })
        };
        let (min, max) = (get("min", &self.p.min)?, get("max", &self.p.max)?);
        if min > max {
            return Err(self.err("min", format!("min {min} is greater than max {max}")));
        }
        Ok((min, max))
    }

    fn int_bounds(&self) -> Result<(i64, i64), SpaceError> {
        let (min, max) = self.bounds()?;
        if min.fract() != 0.0 || max.fract() != 0.0 {
            return Err(self.err(
                "min",
                format!("{} needs integer bounds, got {min} and {max}", self.kind),
            ));
        }
        Ok((min as i64, max as i64))
    }

    fn positive_min(&self, min: f64) -> Result<(), SpaceError> {
        if min > 0.0 {
            Ok(())
        } else {
            Err(self.err(
                "min",
                format!(
                    "{} is on a log scale and needs min > 0, got {min}",
                    self.kind
                ),
            ))
        }
    }

    /// A key the distribution has no use for is a mistake worth naming (a `mu` on a
    /// uniform; a `q` on a plain normal is caught in `shaped` with a hint).
    fn refuse_unused_keys(&self) -> Result<(), SpaceError> {
        let kind = &self.kind;
        let uses = |key: &str| match key {
            "mu" | "sigma" => kind.ends_with("normal"),
            "a" | "b" => kind.ends_with("beta"),
            "probabilities" => kind == "categorical",
            _ => true,
        };
        let p = self.p;
        for (key, given) in [
            ("mu", p.mu.is_some()),
            ("sigma", p.sigma.is_some()),
            ("a", p.a.is_some()),
            ("b", p.b.is_some()),
            ("probabilities", p.probabilities.is_some()),
        ] {
            if given && !uses(key) {
                return Err(self.err(key, format!("distribution {kind} takes no `{key}`")));
            }
        }
        Ok(())
    }

    /// W&B's quantisation step, positive and finite when given.
    fn q(&self) -> Result<Option<f64>, SpaceError> {
        let Some(v) = &self.p.q else {
            return Ok(None);
        };
        v.as_f64()
            .filter(|q| *q > 0.0 && q.is_finite())
            .map(Some)
            .ok_or_else(|| {
                self.err(
                    "q",
                    format!("q must be a positive number, got {}", shown(v)),
                )
            })
    }

    fn q_is_int(&self) -> bool {
        self.p.q.as_ref().is_some_and(|v| v.is_i64() || v.is_u64())
    }

    fn constant(&self) -> Result<Distribution, SpaceError> {
        let v = self
            .p
            .value
            .as_ref()
            .ok_or_else(|| self.err("", "constant needs `value`".into()))?;
        Ok(Distribution::Categorical {
            choices: vec![self.scalar("value", v)?],
            weights: None,
        })
    }

    fn categorical(&self) -> Result<Distribution, SpaceError> {
        let values = self.p.values.as_deref().unwrap_or_default();
        if values.is_empty() {
            return Err(self.err("values", "needs at least one value".into()));
        }
        let choices = values
            .iter()
            .map(|v| self.scalar("values", v))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, c) in choices.iter().enumerate() {
            if choices[..i].contains(c) {
                return Err(self.err("values", format!("{c} is listed twice")));
            }
        }
        let weights = match &self.p.probabilities {
            None => None,
            Some(w) => {
                Some(probabilities(w, choices.len()).map_err(|m| self.err("probabilities", m))?)
            }
        };
        Ok(Distribution::Categorical { choices, weights })
    }

    /// The integer multiples of `q` inside the bounds.
    fn int_multiples(&self, q: f64) -> Result<Distribution, SpaceError> {
        let (min, max) = self.bounds()?;
        let (low, high) = ((min / q).ceil() * q, (max / q).floor() * q);
        if low > high {
            return Err(self.err("q", format!("no multiple of {q} lies in [{min}, {max}]")));
        }
        Ok(Distribution::Int {
            low: low as i64,
            high: high as i64,
            log: false,
            step: q as i64,
        })
    }

    /// The uniform family over reals: plain, quantised, log-uniform in W&B's three ways of
    /// writing its bounds, and popsweep's `float` with `log` or `step`.
    fn float(&self, q: Option<f64>) -> Result<Distribution, SpaceError> {
        let kind = self.kind.as_str();
        let (min, max) = self.bounds()?;
        // 1/X log-uniform is X log-uniform: W&B's inverse forms differ from the plain
        // ones only in how the bounds are written (`inv_log_uniform`: X = exp(−U(min,
        // max)), so X lies in [e^−max, e^−min]; the `_values` form gives X's bounds).
        let log = matches!(
            kind,
            "log_uniform_values" | "log_uniform" | "inv_log_uniform" | "inv_log_uniform_values"
        ) || (kind == "float" && self.p.log.unwrap_or(false));
        let step = match kind {
            "q_uniform" => q,
            "float" => self.p.step.as_ref().and_then(Value::as_f64),
            _ => None,
        };
        if let Some(s) = step.filter(|&s| !(s > 0.0 && s.is_finite())) {
            return Err(self.err("step", format!("step {s} must be positive")));
        }
        if log && step.is_some() {
            return Err(self.err("step", "a log-scale float cannot also have a step".into()));
        }
        // W&B's log_uniform takes natural-log bounds: the value is exp(U(min, max)).
        let (low, high) = match kind {
            "log_uniform" => (min.exp(), max.exp()),
            "inv_log_uniform" => ((-max).exp(), (-min).exp()),
            _ => (min, max),
        };
        // q_uniform: the multiples of q inside the bounds.
        let (low, high) = match (kind, step) {
            ("q_uniform", Some(q)) => {
                let (lo, hi) = ((low / q).ceil() * q, (high / q).floor() * q);
                if lo > hi {
                    return Err(self.err("q", format!("no multiple of {q} lies in [{min}, {max}]")));
                }
                (lo, hi)
            }
            _ => (low, high),
        };
        if log {
            self.positive_min(low)?;
        }
        Ok(Distribution::Float {
            low,
            high,
            log,
            step,
        })
    }

    fn int(&self) -> Result<Distribution, SpaceError> {
        let (low, high) = self.int_bounds()?;
        let step = match &self.p.step {
            None => 1,
            Some(v) => v.as_i64().filter(|&s| s >= 1).ok_or_else(|| {
                self.err("step", format!("step {v:?} must be a positive integer"))
            })?,
        };
        let log = self.p.log.unwrap_or(false);
        if log {
            self.positive_min(low as f64)?;
            if step != 1 {
                return Err(self.err("step", "a log-scale int needs step 1".into()));
            }
        }
        Ok(Distribution::Int {
            low,
            high,
            log,
            step,
        })
    }

    /// popsweep's architecture helper: widths (or filters) as the powers of two in
    /// [min, max], an ordered categorical, e.g. min 16, max 512 → 16, 32, …, 512.
    fn pow2(&self) -> Result<Distribution, SpaceError> {
        let (low, high) = self.int_bounds()?;
        self.positive_min(low as f64)?;
        let choices: Vec<ParamValue> = (0..63)
            .map(|k| 1i64 << k)
            .filter(|v| (low..=high).contains(v))
            .map(ParamValue::Int)
            .collect();
        if choices.is_empty() {
            return Err(self.err("min", format!("no power of two lies in [{low}, {high}]")));
        }
        Ok(Distribution::Categorical {
            choices,
            weights: None,
        })
    }

    /// W&B's shaped priors (normal, log-normal, beta, quantised log-uniform), sampled
    /// through their quantile functions.
    fn shaped(&self, q: Option<f64>) -> Result<Distribution, SpaceError> {
        let (kind, p) = (self.kind.as_str(), self.p);
        let (mu, sigma) = (p.mu.unwrap_or(0.0), p.sigma.unwrap_or(1.0));
        let shape = match kind {
            "q_log_uniform" => {
                let (min, max) = self.bounds()?;
                Shape::LogUniform {
                    low: min.exp(),
                    high: max.exp(),
                }
            }
            "q_log_uniform_values" => {
                let (low, high) = self.bounds()?;
                self.positive_min(low)?;
                Shape::LogUniform { low, high }
            }
            "normal" | "q_normal" => Shape::Normal { mu, sigma },
            "log_normal" | "q_log_normal" => Shape::LogNormal { mu, sigma },
            _ => Shape::Beta {
                a: p.a.unwrap_or(1.0),
                b: p.b.unwrap_or(1.0),
            },
        };
        shape.validate().map_err(|(key, m)| self.err(key, m))?;
        let quantised = kind.starts_with("q_");
        if !quantised && p.q.is_some() {
            return Err(self.err("q", format!("{kind} takes no `q` (did you mean q_{kind}?)")));
        }
        Ok(Distribution::Shaped {
            shape,
            q: quantised.then(|| q.unwrap_or(1.0)),
            int: quantised && self.q_is_int(),
        })
    }

    /// `condition: {parent: value or [values]}`: exactly one parent.
    fn condition(&self) -> Result<Option<Condition>, SpaceError> {
        let Some(map) = &self.p.condition else {
            return Ok(None);
        };
        let mut entries = map.iter();
        match (entries.next(), entries.next()) {
            (Some((parent, v)), None) => {
                let values = match v {
                    Value::Sequence(items) => items
                        .iter()
                        .map(|i| self.scalar("condition", i))
                        .collect::<Result<Vec<_>, _>>()?,
                    single => vec![self.scalar("condition", single)?],
                };
                Ok(Some(Condition {
                    parent: parent.clone(),
                    values,
                }))
            }
            _ => Err(self.err(
                "condition",
                "give exactly one parent: `condition: {parent: [values]}`".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Space, SpaceError> {
        parse_parameters(serde_yaml_ng::from_str(yaml).unwrap())
    }

    #[test]
    fn every_supported_form_parses() {
        let space = parse(
            "a: {value: 3}\nb: {values: [x, y]}\nc: {min: 1, max: 4}\nd: {min: 0.1, max: 0.2}\n\
             e: {distribution: q_uniform, min: 0, max: 1, q: 0.25}\n\
             f: {distribution: log_uniform, min: -2, max: 0}\n\
             g: {distribution: float, min: 1e-3, max: 1, log: true}\n\
             h: {distribution: int, min: 2, max: 64, log: true, condition: {b: y}}\n",
        )
        .unwrap();
        let dist = |n: &str| space.get(n).unwrap().dist.clone();
        assert_eq!(dist("a").cardinality(), Some(1));
        assert!(matches!(
            dist("c"),
            Distribution::Int {
                low: 1,
                high: 4,
                ..
            }
        ));
        assert!(matches!(
            dist("d"),
            Distribution::Float {
                log: false,
                step: None,
                ..
            }
        ));
        assert!(matches!(dist("e"), Distribution::Float { step: Some(s), .. } if s == 0.25));
        let Distribution::Float { low, high, log, .. } = dist("f") else {
            panic!()
        };
        assert!(log && (low - (-2f64).exp()).abs() < 1e-12 && (high - 1.0).abs() < 1e-12);
        assert_eq!(
            space.get("h").unwrap().condition.as_ref().unwrap().parent,
            "b"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("lr: {distribution: uniform, min: 2, max: 1}").unwrap_err();
        assert_eq!(e.path, vec!["lr", "min"]);
        let e = parse("lr: {distribution: log_uniform_values, min: 0, max: 1}").unwrap_err();
        assert_eq!(
            (e.path.join("."), e.message.contains("min > 0")),
            ("lr.min".into(), true)
        );
        let e = parse("lr: {distribution: beta_prime, min: 0, max: 1}").unwrap_err();
        assert_eq!(e.path, vec!["lr", "distribution"]);
        let e = parse("k: {values: [1, 1]}").unwrap_err();
        assert!(e.message.contains("twice"));
    }
}
