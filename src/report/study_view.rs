//! An ask/tell study directory seen as a run, so the report's views draw it: the study
//! becomes the sweep of an external program whose metric, `value`, is the study's
//! objective (the first, for several), over the study's space — its `parameters` block,
//! or for a define-by-run study one inferred from the values asked. Intermediate values
//! are its rungs and learning curves.

use super::run::RunData;
use crate::error::{Error, Result};
use crate::space::ParamValue;
use crate::storage::{FrozenTrial, RunStorage, RungValue, Storage, TrialRecord, TrialState};
use serde_json::{json, Map, Value};
use std::path::Path;

pub fn load(dir: &Path) -> Result<RunData> {
    if !dir.join("journal.jsonl").is_file() {
        return Err(Error::Config {
            file: dir.display().to_string(),
            line: None,
            field: "--study".into(),
            message: "no study here (no journal.jsonl)".into(),
        });
    }
    let mut storage = RunStorage::study(dir)?;
    let state = storage.state()?.clone();
    let header = state.header.clone().ok_or_else(|| Error::Config {
        file: dir.display().to_string(),
        line: None,
        field: "--study".into(),
        message: "the study has no trial yet".into(),
    })?;
    let parameters: Value = match header.space.trim() {
        "" => inferred_space(&state.trials),
        text => serde_yaml_ng::from_str(text).map_err(|e| Error::Config {
            file: dir.join("journal.jsonl").display().to_string(),
            line: None,
            field: "space".into(),
            message: e.to_string(),
        })?,
    };
    let name = match header.name.as_str() {
        "" => dir
            .file_name()
            .map_or("study".into(), |n| n.to_string_lossy().into_owned()),
        n => n.to_string(),
    };
    let sweep = json!({
        "name": name,
        "command": ["ask/tell"],
        "method": "random",
        "metric": {"name": "value", "goal": if header.direction.maximize() { "maximize" } else { "minimize" }},
        "parameters": parameters,
    });
    let text = serde_yaml_ng::to_string(&sweep).map_err(|e| Error::Run(e.to_string()))?;
    let sweep = crate::config::parse(&text, &format!("{} (as a sweep)", dir.display()))?;
    Ok(RunData {
        dir: dir.to_path_buf(),
        sweep,
        summary: None,
        trials: state.trials.iter().map(record).collect(),
    })
}

/// A study trial as a run's record: its intermediate values as rungs, its objective last.
fn record(t: &FrozenTrial) -> TrialRecord {
    let mut rungs: Vec<RungValue> = (t.intermediate.iter().enumerate())
        .map(|(k, &(step, value))| RungValue {
            rung: k,
            epochs: step as usize,
            value,
        })
        .collect();
    if let Some(v) = t.value.or_else(|| t.values.first().copied()) {
        let epochs = rungs.last().map_or(0, |r| r.epochs);
        rungs.push(RungValue {
            rung: rungs.len(),
            epochs,
            value: v,
        });
    }
    let record = json!({
        "number": t.number,
        "params": t.params,
        "state": t.state.name(),
        "epochs": t.intermediate.len(),
        "rungs": rungs,
    });
    let mut r: TrialRecord = serde_json::from_value(record).expect("a record's fields");
    if t.state == TrialState::Failed {
        r.error = Some("failed (told so)".into());
    }
    r
}

/// A `parameters` block covering every value the trials were asked: a range for numbers
/// (integers stay integers), the values seen for anything else.
fn inferred_space(trials: &[FrozenTrial]) -> Value {
    let mut seen: std::collections::BTreeMap<&str, Vec<&ParamValue>> = Default::default();
    for t in trials {
        for (k, v) in &t.params {
            seen.entry(k.as_str()).or_default().push(v);
        }
    }
    let mut out = Map::new();
    for (name, values) in seen {
        let nums: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
        let ints = values.iter().all(|v| matches!(v, ParamValue::Int(_)));
        let spec = if nums.len() == values.len() {
            let lo = nums.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = nums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            match ints {
                true => json!({"min": lo as i64, "max": (hi as i64).max(lo as i64 + 1)}),
                false if hi > lo => json!({"distribution": "uniform", "min": lo, "max": hi}),
                false => json!({"distribution": "uniform", "min": lo - 0.5, "max": lo + 0.5}),
            }
        } else {
            let mut distinct: Vec<&ParamValue> = Vec::new();
            for v in values {
                if !distinct.contains(&v) {
                    distinct.push(v);
                }
            }
            json!({"values": distinct})
        };
        out.insert(name.to_string(), spec);
    }
    Value::Object(out)
}
