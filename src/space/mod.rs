//! Search spaces: named parameters, each with a distribution from a small closed set
//! (Optuna's: float and int with `log` and `step`, and categorical; a constant is a
//! one-value categorical), optionally active only when a parent parameter has given values.

mod parse;
pub mod prior;
pub mod transform;

pub use parse::{parse_parameters, RawParam, SpaceError};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A parameter's value as a trial sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl ParamValue {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ParamValue::Int(i) => Some(i as f64),
            ParamValue::Float(f) => Some(f),
            ParamValue::Bool(_) | ParamValue::Str(_) => None,
        }
    }
}

impl From<i64> for ParamValue {
    fn from(v: i64) -> Self {
        ParamValue::Int(v)
    }
}

impl From<f64> for ParamValue {
    fn from(v: f64) -> Self {
        ParamValue::Float(v)
    }
}

impl From<&str> for ParamValue {
    fn from(v: &str) -> Self {
        ParamValue::Str(v.to_string())
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            // Four significant digits, in plain notation where that stays short.
            ParamValue::Float(x) if *x == 0.0 || (1e-3..1e4).contains(&x.abs()) => {
                let decimals = (3 - x.abs().log10().floor() as i32).max(0) as usize;
                write!(f, "{x:.decimals$}")
            }
            ParamValue::Float(x) => write!(f, "{x:.3e}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Str(s) => f.write_str(s),
        }
    }
}

/// One trial's parameters, by name (sorted, so JSON output is stable). A conditional
/// parameter whose condition does not hold is absent.
pub type Params = BTreeMap<String, ParamValue>;

#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    /// Uniform on `[low, high]`, log-uniform when `log` (then `low > 0`), on the grid
    /// `low + k·step` when `step` is given (then not `log`).
    Float {
        low: f64,
        high: f64,
        log: bool,
        step: Option<f64>,
    },
    /// Uniform on the integers `low, low + step, …` up to `high`; log-uniform when `log`
    /// (then `low ≥ 1` and `step = 1`).
    Int {
        low: i64,
        high: i64,
        log: bool,
        step: i64,
    },
    /// One of `choices`. `weights` (W&B's `probabilities`, summing to 1) give each
    /// choice its share of the unit interval, so random and Sobol sampling draw it that
    /// often and TPE takes them as its prior; `None` is uniform.
    Categorical {
        choices: Vec<ParamValue>,
        weights: Option<Vec<f64>>,
    },
    /// W&B's shaped priors (normal, log-normal, beta, quantised log-uniform): `ppf(u)`,
    /// rounded to a multiple of `q` when given, and an integer when `int` (W&B returns
    /// integers when `q` is written as one).
    Shaped {
        shape: prior::Shape,
        q: Option<f64>,
        int: bool,
    },
}

impl Distribution {
    /// Whether `value` is one this distribution can produce.
    pub fn contains(&self, value: &ParamValue) -> bool {
        match (self, value) {
            (
                Distribution::Float {
                    low, high, step, ..
                },
                ParamValue::Float(x),
            ) => {
                (*low..=*high).contains(x)
                    && step.is_none_or(|s| {
                        let k = (x - low) / s;
                        (k - k.round()).abs() < 1e-6
                    })
            }
            (
                Distribution::Int {
                    low, high, step, ..
                },
                ParamValue::Int(i),
            ) => (*low..=*high).contains(i) && (i - low) % step == 0,
            (Distribution::Categorical { choices, .. }, v) => choices.contains(v),
            (Distribution::Shaped { shape, q, int }, v) => {
                let x = match (v, int) {
                    (ParamValue::Int(i), true) => *i as f64,
                    (ParamValue::Float(x), false) => *x,
                    _ => return false,
                };
                // Rounding to q may step just outside the support (a q_beta's 1.0 from
                // 0.97), as it does in W&B; the nearest supported value is within q/2.
                let near = |x: f64| {
                    q.map_or(shape.supports(x), |q| {
                        shape.supports(x)
                            || shape.supports(x - q / 2.0)
                            || shape.supports(x + q / 2.0)
                    })
                };
                near(x) && q.is_none_or(|q| prior::is_multiple(x, q))
            }
            _ => false,
        }
    }

    /// How many values it can take, when finite (categorical, int, stepped float).
    pub fn cardinality(&self) -> Option<u64> {
        match self {
            Distribution::Categorical { choices, .. } => Some(choices.len() as u64),
            Distribution::Int {
                low, high, step, ..
            } => Some(((high - low) / step) as u64 + 1),
            Distribution::Float {
                low,
                high,
                step: Some(s),
                ..
            } => Some(((high - low) / s + 1e-9).floor() as u64 + 1),
            Distribution::Float { step: None, .. } | Distribution::Shaped { .. } => None,
        }
    }
}

/// A parameter is active only when `parent` took one of `values`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub parent: String,
    pub values: Vec<ParamValue>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamDef {
    pub name: String,
    pub dist: Distribution,
    pub condition: Option<Condition>,
}

/// The parameters a sweep tunes. Order matters only in that a parent comes before the
/// parameters conditioned on it; [`Space::new`] sorts by name otherwise.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Space {
    pub params: Vec<ParamDef>,
}

impl Space {
    /// Orders `params` so every parent precedes its children (names sorted within a
    /// level). Errors name a missing parent, a cycle or a duplicate.
    pub fn new(mut params: Vec<ParamDef>) -> Result<Space, SpaceError> {
        params.sort_by(|a, b| a.name.cmp(&b.name));
        for w in params.windows(2) {
            if w[0].name == w[1].name {
                return Err(SpaceError::at(&w[0].name, "", "defined twice"));
            }
        }
        let mut ordered: Vec<ParamDef> = Vec::with_capacity(params.len());
        while !params.is_empty() {
            let before = params.len();
            let mut rest = Vec::new();
            for p in params {
                let ready = p
                    .condition
                    .as_ref()
                    .is_none_or(|c| ordered.iter().any(|q| q.name == c.parent));
                if ready {
                    ordered.push(p);
                } else {
                    rest.push(p);
                }
            }
            params = rest;
            if params.len() == before {
                let p = &params[0];
                let parent = &p
                    .condition
                    .as_ref()
                    .expect("only conditional params wait")
                    .parent;
                let known = params.iter().any(|q| &q.name == parent);
                let message = if known {
                    format!("condition on `{parent}` forms a cycle")
                } else {
                    format!("condition names `{parent}`, which is not a parameter")
                };
                return Err(SpaceError::at(&p.name, "condition", &message));
            }
        }
        Ok(Space { params: ordered })
    }

    pub fn get(&self, name: &str) -> Option<&ParamDef> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether `def` is active given the values assigned so far.
    pub fn is_active(def: &ParamDef, assigned: &Params) -> bool {
        def.condition.as_ref().is_none_or(|c| {
            assigned
                .get(&c.parent)
                .is_some_and(|v| c.values.contains(v))
        })
    }

    /// Whether `params` is a complete, valid assignment: every active parameter present
    /// and inside its distribution, no inactive or unknown parameter present.
    /// An integer written for a float parameter (`lr: 1` in YAML or JSON) is that float.
    pub fn coerce(&self, params: &mut Params) {
        for def in &self.params {
            if let (Distribution::Float { .. }, Some(ParamValue::Int(n))) =
                (&def.dist, params.get(&def.name))
            {
                let x = *n as f64;
                params.insert(def.name.clone(), ParamValue::Float(x));
            }
        }
    }

    pub fn check(&self, params: &Params) -> Result<(), String> {
        for def in &self.params {
            match (Space::is_active(def, params), params.get(&def.name)) {
                (true, None) => return Err(format!("`{}` is active but missing", def.name)),
                (false, Some(_)) => return Err(format!("`{}` is inactive but present", def.name)),
                (true, Some(v)) if !def.dist.contains(v) => {
                    return Err(format!("`{}` = {v:?} is outside {:?}", def.name, def.dist))
                }
                _ => {}
            }
        }
        match params.keys().find(|k| self.get(k).is_none()) {
            Some(k) => Err(format!("`{k}` is not in the space")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, parent: Option<(&str, i64)>) -> ParamDef {
        ParamDef {
            name: name.into(),
            dist: Distribution::Int {
                low: 1,
                high: 3,
                log: false,
                step: 1,
            },
            condition: parent.map(|(p, v)| Condition {
                parent: p.into(),
                values: vec![ParamValue::Int(v)],
            }),
        }
    }

    #[test]
    fn parents_come_first_and_bad_conditions_are_named() {
        let space = Space::new(vec![def("a_child", Some(("z", 2))), def("z", None)]).unwrap();
        assert_eq!(space.params[0].name, "z");
        let e = Space::new(vec![def("a", Some(("nope", 1)))]).unwrap_err();
        assert!(
            e.to_string().contains("`nope`, which is not a parameter"),
            "{e}"
        );
        let e = Space::new(vec![def("a", Some(("b", 1))), def("b", Some(("a", 1)))]).unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
    }

    #[test]
    fn check_enforces_activity_and_bounds() {
        let space = Space::new(vec![def("child", Some(("depth", 2))), def("depth", None)]).unwrap();
        let mut p = Params::new();
        p.insert("depth".into(), ParamValue::Int(1));
        assert!(space.check(&p).is_ok());
        p.insert("child".into(), ParamValue::Int(1));
        assert!(space.check(&p).is_err());
        p.insert("depth".into(), ParamValue::Int(2));
        assert!(space.check(&p).is_ok());
        p.insert("child".into(), ParamValue::Int(9));
        assert!(space.check(&p).is_err());
    }

    #[test]
    fn stepped_contains_and_cardinality() {
        let d = Distribution::Float {
            low: 0.0,
            high: 1.0,
            log: false,
            step: Some(0.25),
        };
        assert!(d.contains(&ParamValue::Float(0.75)));
        assert!(!d.contains(&ParamValue::Float(0.7)));
        assert_eq!(d.cardinality(), Some(5));
        let i = Distribution::Int {
            low: 2,
            high: 11,
            log: false,
            step: 3,
        };
        assert_eq!(i.cardinality(), Some(4));
        assert!(i.contains(&ParamValue::Int(8)) && !i.contains(&ParamValue::Int(9)));
    }
}
