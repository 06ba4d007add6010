//! A study or run written in Optuna 5's JournalStorage format (one JSON operation per
//! line), so that optuna-dashboard and `optuna.visualization` open a popsweep study:
//! `JournalStorage(JournalFileBackend(path))`. One `CREATE_STUDY`, then one `CREATE_TRIAL`
//! per trial carrying its state, value(s), parameters in Optuna's internal representation
//! with their distributions, and intermediate values.
//!
//! Distributions Optuna cannot express are exported as the closest one it has, and each
//! such parameter is named in the export's notes: W&B's shaped priors (normal, log-normal,
//! beta) as uniform over the range they and the trials cover; choice probabilities are
//! dropped; a define-by-run study's parameters (no declared space) get the range of the
//! values its trials took.

use super::run::RunData;
use crate::config;
use crate::error::{Error, Result};
use crate::space::transform::from_unit;
use crate::space::{Distribution, ParamValue, Space};
use crate::storage::{Direction, FrozenTrial, RunStorage, Storage, TrialState};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// What `export` made: the journal's lines, and what did not translate exactly.
pub struct Export {
    pub lines: Vec<String>,
    pub notes: Vec<String>,
    pub trials: usize,
}

/// Optuna's `JournalOperation` codes.
const CREATE_STUDY: u8 = 0;
const CREATE_TRIAL: u8 = 4;
const WORKER: &str = "popsweep-export";

/// Exports the ask/tell study (a directory with `journal.jsonl`) or the run directory
/// (`trials.jsonl` and `sweep.yaml`) in `dir`.
pub fn export(dir: &Path) -> Result<Export> {
    let name = dir
        .file_name()
        .map_or("popsweep".into(), |n| n.to_string_lossy().into_owned());
    let (space, directions, trials) = if dir.join("trials.jsonl").is_file() {
        from_run(dir)?
    } else if dir.join("journal.jsonl").is_file() {
        from_study(&mut RunStorage::study(dir)?, &dir.display().to_string())?
    } else {
        return Err(Error::Config {
            file: dir.display().to_string(),
            line: None,
            field: "--study".into(),
            message: "neither a run directory (trials.jsonl) nor an ask/tell study \
                      (journal.jsonl)"
                .into(),
        });
    };
    Ok(write(&name, &space, &directions, &trials))
}

/// Exports the study `name` kept in `storage` (a database), shown as `shown` in messages.
pub fn export_storage(storage: &mut dyn Storage, name: &str, shown: &str) -> Result<Export> {
    let (space, directions, trials) = from_study(storage, shown)?;
    Ok(write(name, &space, &directions, &trials))
}

/// The journal's lines for a study's trials.
fn write(name: &str, space: &Space, directions: &[Direction], trials: &[FrozenTrial]) -> Export {
    let mut notes = Vec::new();
    let dists = distributions(space, trials, &mut notes);
    let directions: Vec<u8> = directions
        .iter()
        .map(|d| if d.maximize() { 2 } else { 1 })
        .collect();
    let mut lines = vec![json!({
        "op_code": CREATE_STUDY,
        "worker_id": WORKER,
        "study_name": name,
        "directions": directions,
    })
    .to_string()];
    let mut dropped_nan = 0;
    for t in trials {
        let (line, dropped) = trial_line(t, &dists);
        dropped_nan += dropped;
        lines.push(line.to_string());
    }
    if dropped_nan > 0 {
        notes.push(format!(
            "{dropped_nan} non-finite intermediate values left out (Optuna stores numbers only)"
        ));
    }
    Export {
        lines,
        notes,
        trials: trials.len(),
    }
}

/// A run directory: its sweep file's space and metric(s); each record as a trial whose
/// intermediate values are the sweep metric after each epoch.
fn from_run(dir: &Path) -> Result<(Space, Vec<Direction>, Vec<FrozenTrial>)> {
    let run = RunData::load(dir)?;
    let sweep = &run.sweep;
    let directions = sweep.directions();
    let mut by_number: BTreeMap<usize, FrozenTrial> = BTreeMap::new();
    for r in run.trials.iter().filter(|r| r.outer.is_none()) {
        let value = r.rungs.last().map(|v| v.value).filter(|v| v.is_finite());
        let state = match (r.state, value) {
            (TrialState::Complete, None) => TrialState::Failed,
            (s, _) => s,
        };
        let intermediate = r
            .history
            .iter()
            .map(|h| {
                (
                    h.epoch as u64,
                    h.get(&sweep.metric.name).unwrap_or(f64::NAN),
                )
            })
            .collect();
        let complete = value.filter(|_| state == TrialState::Complete);
        // Several objectives: each one's value, as the sweep told the sampler.
        let (value, values) = match (complete, sweep.objectives.is_empty()) {
            (Some(v), false) => (None, sweep.objective_values(r, v)),
            (v, _) => (v, Vec::new()),
        };
        by_number.insert(
            r.number,
            FrozenTrial {
                number: r.number,
                params: r.params.clone(),
                state,
                value,
                intermediate,
                completed_rungs: Vec::new(),
                values,
                constraints: Vec::new(),
            },
        );
    }
    Ok((
        sweep.space.clone(),
        directions,
        by_number.into_values().collect(),
    ))
}

/// An ask/tell study: its header's space and directions, its trials as recorded.
fn from_study(
    storage: &mut dyn Storage,
    shown: &str,
) -> Result<(Space, Vec<Direction>, Vec<FrozenTrial>)> {
    for w in storage.take_warnings() {
        eprintln!("warning: {w}");
    }
    let state = storage.state()?;
    let header = state.header.clone().ok_or_else(|| Error::Config {
        file: shown.to_string(),
        line: None,
        field: "--study".into(),
        message: "the study has no trial yet".into(),
    })?;
    let space = match header.space.is_empty() {
        true => Space::default(),
        false => config::parse_space(&header.space, shown)?,
    };
    let directions = match header.directions.is_empty() {
        true => vec![header.direction],
        false => header.directions.clone(),
    };
    Ok((space, directions, state.trials.clone()))
}

/// An Optuna distribution: its JSON form and how it writes a value internally.
enum OptunaDist {
    Float {
        low: f64,
        high: f64,
        log: bool,
        step: Option<f64>,
    },
    Int {
        low: i64,
        high: i64,
        log: bool,
        step: i64,
    },
    Categorical {
        choices: Vec<ParamValue>,
    },
}

impl OptunaDist {
    fn json(&self) -> Value {
        let (name, attributes) = match self {
            OptunaDist::Float {
                low,
                high,
                log,
                step,
            } => (
                "FloatDistribution",
                json!({"low": low, "high": high, "log": log, "step": step}),
            ),
            OptunaDist::Int {
                low,
                high,
                log,
                step,
            } => (
                "IntDistribution",
                json!({"low": low, "high": high, "log": log, "step": step}),
            ),
            OptunaDist::Categorical { choices } => {
                ("CategoricalDistribution", json!({ "choices": choices }))
            }
        };
        json!({"name": name, "attributes": attributes})
    }

    /// Optuna's internal representation of `v`: the number, or a choice's index.
    fn internal(&self, v: &ParamValue) -> Option<f64> {
        match self {
            OptunaDist::Categorical { choices } => {
                choices.iter().position(|c| c == v).map(|i| i as f64)
            }
            _ => v.as_f64(),
        }
    }
}

/// Each parameter's Optuna distribution, from the space (or, for a define-by-run study,
/// from the values its trials took), wide enough for every value recorded.
fn distributions(
    space: &Space,
    trials: &[FrozenTrial],
    notes: &mut Vec<String>,
) -> BTreeMap<String, OptunaDist> {
    let mut seen: BTreeMap<&str, Vec<&ParamValue>> = BTreeMap::new();
    for t in trials {
        for (name, v) in &t.params {
            seen.entry(name).or_default().push(v);
        }
    }
    let numbers = |values: &[&ParamValue]| -> (f64, f64) {
        values
            .iter()
            .filter_map(|v| v.as_f64())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x), hi.max(x))
            })
    };
    let mut out = BTreeMap::new();
    for (name, values) in &seen {
        let def = space.get(name);
        let dist = match def.map(|d| &d.dist) {
            Some(Distribution::Float {
                low,
                high,
                log,
                step,
            }) => {
                let (lo, hi) = numbers(values);
                let high = match step {
                    // Optuna's grid must end on a step.
                    Some(s) => low + ((high - low) / s).floor() * s,
                    None => high.max(hi),
                };
                OptunaDist::Float {
                    low: low.min(lo),
                    high,
                    log: *log,
                    step: *step,
                }
            }
            Some(Distribution::Int {
                low,
                high,
                log,
                step,
            }) => OptunaDist::Int {
                low: *low,
                high: *high,
                log: *log,
                step: *step,
            },
            Some(Distribution::Categorical { choices, weights }) => {
                if weights.is_some() {
                    notes.push(format!("`{name}`: its choice probabilities are dropped"));
                }
                OptunaDist::Categorical {
                    choices: choices.clone(),
                }
            }
            Some(dist @ Distribution::Shaped { shape, int, .. }) => {
                let (lo, hi) = numbers(values);
                let edge = |u: f64| from_unit(dist, u).as_f64().unwrap_or(f64::NAN);
                let (low, high) = (edge(1e-3).min(lo), edge(1.0 - 1e-3).max(hi));
                let log = matches!(
                    shape,
                    crate::space::prior::Shape::LogNormal { .. }
                        | crate::space::prior::Shape::LogUniform { .. }
                ) && low > 0.0;
                notes.push(format!(
                    "`{name}`: W&B's {shape:?} prior exported as a {}uniform distribution \
                     over [{low}, {high}] (Optuna has no shaped priors)",
                    if log { "log-" } else { "" }
                ));
                match int {
                    true => OptunaDist::Int {
                        low: low.floor() as i64,
                        high: high.ceil() as i64,
                        log,
                        step: 1,
                    },
                    false => OptunaDist::Float {
                        low,
                        high,
                        log,
                        step: None,
                    },
                }
            }
            None => inferred(name, values, notes),
        };
        out.insert(name.to_string(), dist);
    }
    out
}

/// A define-by-run parameter's distribution, from the values it took.
fn inferred(name: &str, values: &[&ParamValue], notes: &mut Vec<String>) -> OptunaDist {
    notes.push(format!(
        "`{name}`: no declared distribution (define-by-run); exported over the values its \
         trials took"
    ));
    if values.iter().all(|v| matches!(v, ParamValue::Int(_))) {
        let ints = values.iter().filter_map(|v| match v {
            ParamValue::Int(i) => Some(*i),
            _ => None,
        });
        let (low, high) = ints.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
        return OptunaDist::Int {
            low,
            high,
            log: false,
            step: 1,
        };
    }
    if values.iter().all(|v| v.as_f64().is_some()) {
        let (low, high) = values
            .iter()
            .filter_map(|v| v.as_f64())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x), hi.max(x))
            });
        return OptunaDist::Float {
            low,
            high,
            log: false,
            step: None,
        };
    }
    let mut choices: Vec<ParamValue> = Vec::new();
    for v in values {
        if !choices.contains(v) {
            choices.push((*v).clone());
        }
    }
    OptunaDist::Categorical { choices }
}

/// One trial's `CREATE_TRIAL` line, and how many non-finite intermediate values it left
/// out.
fn trial_line(t: &FrozenTrial, dists: &BTreeMap<String, OptunaDist>) -> (Value, usize) {
    // Optuna's TrialState: RUNNING 0, COMPLETE 1, PRUNED 2, FAIL 3.
    let state = match t.state {
        TrialState::Running => 0,
        TrialState::Complete => 1,
        TrialState::Pruned => 2,
        TrialState::Failed => 3,
    };
    let (value, values) = match (t.state, t.values.len()) {
        (TrialState::Complete, n) if n > 1 => (Value::Null, json!(t.values)),
        (TrialState::Complete, _) => (json!(t.value), Value::Null),
        _ => (Value::Null, Value::Null),
    };
    let mut distributions = serde_json::Map::new();
    let mut params = serde_json::Map::new();
    for (name, v) in &t.params {
        if let Some((d, x)) = dists.get(name).and_then(|d| Some((d, d.internal(v)?))) {
            // Optuna's `distribution_to_json` writes each as a JSON string of its own.
            distributions.insert(name.clone(), Value::String(d.json().to_string()));
            params.insert(name.clone(), json!(x));
        }
    }
    let intermediate: serde_json::Map<String, Value> = t
        .intermediate
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(s, v)| (s.to_string(), json!(v)))
        .collect();
    let dropped = t.intermediate.len() - intermediate.len();
    let mut system_attrs = serde_json::Map::new();
    if !t.constraints.is_empty() {
        // Where Optuna keeps a trial's constraint values.
        system_attrs.insert("constraints".into(), json!(t.constraints));
    }
    let line = json!({
        "op_code": CREATE_TRIAL,
        "worker_id": WORKER,
        "study_id": 0,
        "datetime_start": Value::Null,
        "state": state,
        "value": value,
        "values": values,
        "distributions": distributions,
        "params": params,
        "user_attrs": {},
        "system_attrs": system_attrs,
        "intermediate_values": intermediate,
    });
    (line, dropped)
}

/// The one study of an Optuna journal file, read back (Optuna's `import`): its
/// directions and its trials, parameters in their external form. Operations popsweep has
/// no use for (attributes, datetimes) are skipped; a file of several studies is refused.
pub fn import(path: &Path) -> std::result::Result<(Vec<Direction>, Vec<FrozenTrial>), String> {
    let text = crate::limits::read_input_text(path, "warm_start", crate::limits::MAX_JOURNAL_BYTES)
        .map_err(|e| e.to_string())?;
    let mut directions: Option<Vec<Direction>> = None;
    let mut trials: Vec<FrozenTrial> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = |m: String| format!("line {}: {m}", i + 1);
        let op: Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let trial = |trials: &mut Vec<FrozenTrial>| -> std::result::Result<usize, String> {
            op["trial_id"]
                .as_u64()
                .map(|t| t as usize)
                .filter(|&t| t < trials.len())
                .ok_or_else(|| at("names no trial created before it".into()))
        };
        match op["op_code"].as_u64() {
            Some(0) if directions.is_some() => {
                return Err(at("a second study: export one study per file".into()))
            }
            Some(0) => {
                let codes = op["directions"]
                    .as_array()
                    .ok_or_else(|| at("no directions".into()))?;
                directions = Some(
                    codes
                        .iter()
                        .map(|d| match d.as_u64() {
                            Some(2) => Direction::Maximize,
                            _ => Direction::Minimize,
                        })
                        .collect(),
                );
            }
            Some(4) => {
                let mut t = FrozenTrial::running(trials.len(), Default::default());
                if let (Some(dists), Some(params)) =
                    (op["distributions"].as_object(), op["params"].as_object())
                {
                    for (name, internal) in params {
                        let dist = dists
                            .get(name)
                            .ok_or_else(|| at(format!("`{name}` has no distribution")))?;
                        t.params
                            .insert(name.clone(), external(dist, internal).map_err(&at)?);
                    }
                }
                set_state(&mut t, &op);
                for (step, v) in op["intermediate_values"].as_object().into_iter().flatten() {
                    if let (Ok(step), Some(v)) = (step.parse(), v.as_f64()) {
                        t.intermediate.push((step, v));
                    }
                }
                trials.push(t);
            }
            Some(5) => {
                let t = trial(&mut trials)?;
                let name = op["param_name"]
                    .as_str()
                    .ok_or_else(|| at("no param_name".into()))?;
                let value =
                    external(&op["distribution"], &op["param_value_internal"]).map_err(&at)?;
                trials[t].params.insert(name.into(), value);
            }
            Some(6) => {
                let t = trial(&mut trials)?;
                set_state(&mut trials[t], &op);
            }
            Some(7) => {
                let t = trial(&mut trials)?;
                if let (Some(step), Some(v)) =
                    (op["step"].as_u64(), op["intermediate_value"].as_f64())
                {
                    trials[t].intermediate.push((step, v));
                }
            }
            Some(9) => {
                let t = trial(&mut trials)?;
                if let Some(c) = op["system_attr"]["constraints"].as_array() {
                    trials[t].constraints = c.iter().filter_map(Value::as_f64).collect();
                }
            }
            Some(_) => {}
            None => return Err(at("no op_code: not an Optuna journal".into())),
        }
    }
    let directions = directions.ok_or("no study in the file (no CREATE_STUDY operation)")?;
    Ok((directions, trials))
}

/// A trial's state and value(s) from a `CREATE_TRIAL` or `SET_TRIAL_STATE_VALUES`.
fn set_state(t: &mut FrozenTrial, op: &Value) {
    if let Some(state) = op["state"].as_u64() {
        t.state = match state {
            1 => TrialState::Complete,
            2 => TrialState::Pruned,
            3 => TrialState::Failed,
            _ => TrialState::Running,
        };
    }
    let values: Vec<f64> = match (&op["values"], &op["value"]) {
        (Value::Array(v), _) => v.iter().filter_map(Value::as_f64).collect(),
        (_, v) => v.as_f64().into_iter().collect(),
    };
    match values.len() {
        0 => {}
        1 => t.value = Some(values[0]),
        _ => t.values = values,
    }
}

/// A parameter's external value from Optuna's internal one and its distribution (a JSON
/// string, as Optuna writes it, or an object).
fn external(dist: &Value, internal: &Value) -> std::result::Result<ParamValue, String> {
    let dist: Value = match dist {
        Value::String(s) => serde_json::from_str(s).map_err(|e| e.to_string())?,
        other => other.clone(),
    };
    let x = internal
        .as_f64()
        .ok_or("a parameter value that is not a number")?;
    match dist["name"].as_str() {
        Some("FloatDistribution") => Ok(ParamValue::Float(x)),
        Some("IntDistribution") => Ok(ParamValue::Int(x.round() as i64)),
        Some("CategoricalDistribution") => {
            let choices = dist["attributes"]["choices"]
                .as_array()
                .ok_or("no choices")?;
            let choice = choices
                .get(x as usize)
                .ok_or("a choice index out of range")?;
            serde_json::from_value(choice.clone()).map_err(|e| e.to_string())
        }
        other => Err(format!("an unknown distribution {other:?}")),
    }
}
