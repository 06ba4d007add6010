//! Search spaces: named parameters, each with a distribution from a small closed set
//! (Optuna's: float, int, categorical; a constant is a one-value categorical).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// A parameter's value as a trial sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Str(String),
}

impl ParamValue {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ParamValue::Int(i) => Some(i as f64),
            ParamValue::Float(f) => Some(f),
            ParamValue::Str(_) => None,
        }
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
            ParamValue::Str(s) => f.write_str(s),
        }
    }
}

/// One trial's parameters, by name (sorted, so JSON output is stable).
pub type Params = BTreeMap<String, ParamValue>;

#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    /// Uniform on `[low, high]`, or log-uniform when `log` (then `low > 0`).
    Float { low: f64, high: f64, log: bool },
    /// Uniform on the integers `low..=high`.
    Int { low: i64, high: i64 },
    /// One of `choices`, each equally likely.
    Categorical { choices: Vec<ParamValue> },
}

impl Distribution {
    /// Whether `value` is one this distribution can produce.
    pub fn contains(&self, value: &ParamValue) -> bool {
        match (self, value) {
            (Distribution::Float { low, high, .. }, ParamValue::Float(x)) => {
                (*low..=*high).contains(x)
            }
            (Distribution::Int { low, high }, ParamValue::Int(i)) => (*low..=*high).contains(i),
            (Distribution::Categorical { choices }, v) => choices.contains(v),
            _ => false,
        }
    }
}

/// The parameters a sweep tunes, in a fixed (sorted) order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Space {
    pub params: BTreeMap<String, Distribution>,
}
