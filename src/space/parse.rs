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
    let err = |key: &str, message: String| SpaceError::at(name, key, &message);
    let scalar = |key: &str, v: &Value| {
        value_of(v).ok_or_else(|| {
            err(
                key,
                format!("expected a number, string or bool, got {}", shown(v)),
            )
        })
    };
    let kind = match p.distribution.as_deref() {
        Some(d) => d.to_string(),
        None if p.values.is_some() => "categorical".into(),
        None if p.value.is_some() => "constant".into(),
        // W&B infers uniform or int_uniform from the type of the bounds.
        None if p.min.is_some() || p.max.is_some() => {
            let ints = [&p.min, &p.max]
                .iter()
                .all(|v| v.as_ref().is_some_and(|v| v.is_i64() || v.is_u64()));
            if ints { "int_uniform" } else { "uniform" }.into()
        }
        None => {
            return Err(err(
                "",
                "give `value`, `values`, or `distribution` with `min` and `max`".into(),
            ))
        }
    };
    let bounds = || -> Result<(f64, f64), SpaceError> {
        let get = |key: &str, v: &Option<Value>| {
            v.as_ref()
                .and_then(Value::as_f64)
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    err(
                        key,
                        format!("distribution {kind} needs a finite numeric `{key}`"),
                    )
                })
        };
        let (min, max) = (get("min", &p.min)?, get("max", &p.max)?);
        if min > max {
            return Err(err("min", format!("min {min} is greater than max {max}")));
        }
        Ok((min, max))
    };
    let int_bounds = || -> Result<(i64, i64), SpaceError> {
        let (min, max) = bounds()?;
        if min.fract() != 0.0 || max.fract() != 0.0 {
            return Err(err(
                "min",
                format!("{kind} needs integer bounds, got {min} and {max}"),
            ));
        }
        Ok((min as i64, max as i64))
    };
    let positive_min = |min: f64| {
        if min > 0.0 {
            Ok(())
        } else {
            Err(err(
                "min",
                format!("{kind} is on a log scale and needs min > 0, got {min}"),
            ))
        }
    };
    // A key the distribution has no use for is a mistake worth naming (a `mu` on a
    // uniform, a `q` on a plain normal is caught below with a hint).
    let uses = |key: &str| match key {
        "mu" | "sigma" => kind.ends_with("normal"),
        "a" | "b" => kind.ends_with("beta"),
        "probabilities" => kind == "categorical",
        _ => true,
    };
    for (key, given) in [
        ("mu", p.mu.is_some()),
        ("sigma", p.sigma.is_some()),
        ("a", p.a.is_some()),
        ("b", p.b.is_some()),
        ("probabilities", p.probabilities.is_some()),
    ] {
        if given && !uses(key) {
            return Err(err(key, format!("distribution {kind} takes no `{key}`")));
        }
    }
    let log = p.log.unwrap_or(false);
    let q = match &p.q {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|q| *q > 0.0 && q.is_finite())
                .ok_or_else(|| {
                    err(
                        "q",
                        format!("q must be a positive number, got {}", shown(v)),
                    )
                })?,
        ),
    };
    let q_is_int = p.q.as_ref().is_some_and(|v| v.is_i64() || v.is_u64());
    let dist = match kind.as_str() {
        "constant" => {
            let v = p
                .value
                .as_ref()
                .ok_or_else(|| err("", "constant needs `value`".into()))?;
            Distribution::Categorical {
                choices: vec![scalar("value", v)?],
                weights: None,
            }
        }
        "categorical" => {
            let values = p.values.as_deref().unwrap_or_default();
            if values.is_empty() {
                return Err(err("values", "needs at least one value".into()));
            }
            let choices = values
                .iter()
                .map(|v| scalar("values", v))
                .collect::<Result<Vec<_>, _>>()?;
            for (i, c) in choices.iter().enumerate() {
                if choices[..i].contains(c) {
                    return Err(err("values", format!("{c} is listed twice")));
                }
            }
            let weights = match &p.probabilities {
                None => None,
                Some(w) => {
                    Some(probabilities(w, choices.len()).map_err(|m| err("probabilities", m))?)
                }
            };
            Distribution::Categorical { choices, weights }
        }
        "q_uniform" if q_is_int => {
            // W&B returns integers for an integer q: the multiples of q inside the bounds.
            let (min, max) = bounds()?;
            let q = q.expect("an integer q was given");
            let (low, high) = ((min / q).ceil() * q, (max / q).floor() * q);
            if low > high {
                return Err(err(
                    "q",
                    format!("no multiple of {q} lies in [{min}, {max}]"),
                ));
            }
            Distribution::Int {
                low: low as i64,
                high: high as i64,
                log: false,
                step: q as i64,
            }
        }
        "uniform"
        | "q_uniform"
        | "log_uniform_values"
        | "log_uniform"
        | "inv_log_uniform"
        | "inv_log_uniform_values"
        | "float" => {
            let (min, max) = bounds()?;
            // 1/X log-uniform is X log-uniform: W&B's inverse forms differ from the plain
            // ones only in how the bounds are written (`inv_log_uniform`: X = exp(−U(min,
            // max)), so X lies in [e^−max, e^−min]; the `_values` form gives X's bounds).
            let log = matches!(
                kind.as_str(),
                "log_uniform_values" | "log_uniform" | "inv_log_uniform" | "inv_log_uniform_values"
            ) || (kind == "float" && log);
            let step = match kind.as_str() {
                "q_uniform" => q,
                "float" => p.step.as_ref().and_then(Value::as_f64),
                _ => None,
            };
            if let Some(s) = step.filter(|&s| !(s > 0.0 && s.is_finite())) {
                return Err(err("step", format!("step {s} must be positive")));
            }
            if log && step.is_some() {
                return Err(err(
                    "step",
                    "a log-scale float cannot also have a step".into(),
                ));
            }
            // W&B's log_uniform takes natural-log bounds: the value is exp(U(min, max)).
            let (low, high) = match kind.as_str() {
                "log_uniform" => (min.exp(), max.exp()),
                "inv_log_uniform" => ((-max).exp(), (-min).exp()),
                _ => (min, max),
            };
            // q_uniform: the multiples of q inside the bounds.
            let (low, high) = match (kind.as_str(), step) {
                ("q_uniform", Some(q)) => {
                    let (lo, hi) = ((low / q).ceil() * q, (high / q).floor() * q);
                    if lo > hi {
                        return Err(err(
                            "q",
                            format!("no multiple of {q} lies in [{min}, {max}]"),
                        ));
                    }
                    (lo, hi)
                }
                _ => (low, high),
            };
            if log {
                positive_min(low)?;
            }
            Distribution::Float {
                low,
                high,
                log,
                step,
            }
        }
        "int_uniform" | "int" => {
            let (low, high) = int_bounds()?;
            let step = match &p.step {
                None => 1,
                Some(v) => v
                    .as_i64()
                    .filter(|&s| s >= 1)
                    .ok_or_else(|| err("step", format!("step {v:?} must be a positive integer")))?,
            };
            if log {
                positive_min(low as f64)?;
                if step != 1 {
                    return Err(err("step", "a log-scale int needs step 1".into()));
                }
            }
            Distribution::Int {
                low,
                high,
                log,
                step,
            }
        }
        // popsweep's architecture helper: widths (or filters) as the powers of two in
        // [min, max], an ordered categorical, e.g. min 16, max 512 → 16, 32, …, 512.
        "pow2" => {
            let (low, high) = int_bounds()?;
            positive_min(low as f64)?;
            let choices: Vec<ParamValue> = (0..63)
                .map(|k| 1i64 << k)
                .filter(|v| (low..=high).contains(v))
                .map(ParamValue::Int)
                .collect();
            if choices.is_empty() {
                return Err(err(
                    "min",
                    format!("no power of two lies in [{low}, {high}]"),
                ));
            }
            Distribution::Categorical {
                choices,
                weights: None,
            }
        }
        "q_log_uniform"
        | "q_log_uniform_values"
        | "normal"
        | "q_normal"
        | "log_normal"
        | "q_log_normal"
        | "beta"
        | "q_beta" => {
            let (mu, sigma) = (p.mu.unwrap_or(0.0), p.sigma.unwrap_or(1.0));
            let shape = match kind.as_str() {
                "q_log_uniform" => {
                    let (min, max) = bounds()?;
                    Shape::LogUniform {
                        low: min.exp(),
                        high: max.exp(),
                    }
                }
                "q_log_uniform_values" => {
                    let (low, high) = bounds()?;
                    positive_min(low)?;
                    Shape::LogUniform { low, high }
                }
                "normal" | "q_normal" => Shape::Normal { mu, sigma },
                "log_normal" | "q_log_normal" => Shape::LogNormal { mu, sigma },
                _ => Shape::Beta {
                    a: p.a.unwrap_or(1.0),
                    b: p.b.unwrap_or(1.0),
                },
            };
            shape.validate().map_err(|(key, m)| err(key, m))?;
            let quantised = kind.starts_with("q_");
            if !quantised && p.q.is_some() {
                return Err(err(
                    "q",
                    format!("{kind} takes no `q` (did you mean q_{kind}?)"),
                ));
            }
            let q = if quantised {
                Some(q.unwrap_or(1.0))
            } else {
                None
            };
            Distribution::Shaped {
                shape,
                q,
                int: quantised && q_is_int,
            }
        }
        other => {
            return Err(err(
                "distribution",
                format!("distribution `{other}` is not supported (supported: {SUPPORTED})"),
            ))
        }
    };
    let condition = match p.condition {
        None => None,
        Some(map) => {
            let mut entries = map.into_iter();
            match (entries.next(), entries.next()) {
                (Some((parent, v)), None) => {
                    let values = match &v {
                        Value::Sequence(items) => items
                            .iter()
                            .map(|i| scalar("condition", i))
                            .collect::<Result<Vec<_>, _>>()?,
                        single => vec![scalar("condition", single)?],
                    };
                    Some(Condition { parent, values })
                }
                _ => {
                    return Err(err(
                        "condition",
                        "give exactly one parent: `condition: {parent: [values]}`".into(),
                    ))
                }
            }
        }
    };
    Ok(ParamDef {
        name: name.to_string(),
        dist,
        condition,
    })
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
