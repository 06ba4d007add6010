//! What the interactive report draws, as one JSON object: the run's trials with their
//! parameters, values, curves and place on the population's clock, the space's axes, the
//! importance, and the parts only Rust knows how to word (headline, flags, test scores).
//! `report.html` embeds it; `popsweep dashboard` serves it as `data.json` and the same page
//! polls it — so the live page and the offline report draw the same object the same way.

use super::diagnostics::{overfitting, Overfitting};
use super::importance::{importance, Importance};
use super::run::RunData;
use crate::space::{Distribution, ParamDef};
use crate::storage::{TrialRecord, TrialState};
use serde_json::{json, Value};

/// What the report derives from the records beyond the records themselves, computed
/// once for the page and for `report`'s text summary.
pub struct Findings {
    pub importance: Vec<Importance>,
    pub flags: Vec<Overfitting>,
}

impl Findings {
    pub fn of(run: &RunData) -> Findings {
        let metric = &run.sweep.metric;
        Findings {
            importance: importance(&run.sweep.space, &run.observations(), metric.maximize),
            flags: overfitting(&run.trials),
        }
    }
}

/// The page's data object. `live` marks the dashboard's copy (the page then polls).
pub fn page_data(run: &RunData, findings: &Findings, live: bool) -> Value {
    let sweep = &run.sweep;
    let ranked = run.ranked();
    let gap_trials: Vec<usize> = ranked.iter().take(5).map(|t| t.number).collect();
    let starts = clock_starts(run);
    let trials: Vec<Value> = (run.trials.iter().zip(&starts))
        .map(|(t, &start)| trial(run, t, start, gap_trials.contains(&t.number)))
        .collect();
    let fraction = sweep.epoch_fraction;
    json!({
        "name": sweep.name,
        "metric": sweep.metric.name.as_str(),
        "maximize": sweep.metric.maximize,
        "unit": match () {
            _ if sweep.external.is_some() => "report".to_string(),
            _ if fraction < 1.0 => format!("unit of {fraction} epoch"),
            _ => "epoch".into(),
        },
        "cv": sweep.cv.is_some(),
        "live": live,
        "finished": run.summary.is_some(),
        "params": sweep.space.params.iter().map(axis).collect::<Vec<_>>(),
        "objectives": sweep.objectives.iter()
            .map(|o| json!({"name": o.name.as_str(), "maximize": o.maximize}))
            .collect::<Vec<_>>(),
        "trials": trials,
        "pareto": pareto(run),
        "importance": findings.importance,
        "headline": super::html::headline(run),
        "flags": super::html::flags_html(&findings.flags),
        "test": super::html::test_scores(run),
        "lrFind": lr_find(run),
        "progress": progress(run),
    })
}

/// The sweep's latest progress line while it runs (`progress.json`; none once the
/// summary is written, or if the file is unreadable).
fn progress(run: &RunData) -> Option<String> {
    if run.summary.is_some() {
        return None;
    }
    let text = std::fs::read_to_string(run.file(super::run_files::PROGRESS)?).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    Some(v["line"].as_str()?.trim().to_string())
}

/// The learning-rate range test `popsweep lr-find --out RUN_DIR` left in the run
/// directory (`lr_find.json`: each seed's curve and the suggested rates), if any.
fn lr_find(run: &RunData) -> Option<Value> {
    let text = std::fs::read_to_string(run.file("lr_find.json")?).ok()?;
    serde_json::from_str(&text).ok()
}

/// One trial, in short keys (a 10,000-trial study stays a few megabytes): number, fold,
/// state, params, value, epochs, clock start, rungs, curve, gap, size, FLOPs, objectives.
fn trial(run: &RunData, t: &TrialRecord, start: usize, with_gap: bool) -> Value {
    let metric = &run.sweep.metric.name;
    let state = match t.state {
        TrialState::Failed if t.diverged() => "diverged",
        s => s.name(),
    };
    let finite = |v: f64| v.is_finite().then_some(v);
    let curve: Vec<[f64; 2]> = match t.history.is_empty() {
        true => t.rungs.iter().map(|r| [r.epochs as f64, r.value]).collect(),
        false => (t.history.iter())
            .filter_map(|h| Some([h.epoch as f64, finite(h.get(metric)?)?]))
            .collect(),
    };
    let mut out = json!({
        "n": t.number,
        "s": state,
        "p": t.params,
        "v": t.last_value(),
        "e": t.epochs,
        "t0": start,
        "r": t.rungs.iter().map(|r| [r.epochs as f64, r.value]).collect::<Vec<_>>(),
        "c": curve,
    });
    let o = out.as_object_mut().expect("an object");
    if let Some(fold) = t.outer {
        o.insert("f".into(), fold.into());
    }
    if with_gap {
        let gap: Vec<[f64; 2]> = (t.history.iter())
            .filter_map(|h| Some([h.epoch as f64, finite(h.gap())?]))
            .collect();
        o.insert("g".into(), json!(gap));
    }
    if t.param_count > 0 {
        o.insert("z".into(), t.param_count.into());
        o.insert("fl".into(), t.flops_per_sample.into());
    }
    if !run.sweep.objectives.is_empty() && t.state == TrialState::Complete {
        let values = run
            .sweep
            .objective_values(t, t.last_value().unwrap_or(f64::NAN));
        o.insert(
            "o".into(),
            json!(values.iter().map(|&v| finite(v)).collect::<Vec<_>>()),
        );
    }
    if let Some(e) = &t.error {
        o.insert("err".into(), e.as_str().into());
    }
    out
}

/// A parameter's axis: its scale and range from the space (a shaped prior's range comes
/// from the data in the page).
fn axis(def: &ParamDef) -> Value {
    match &def.dist {
        Distribution::Float { low, high, log, .. } => json!({
            "name": def.name, "scale": if *log { "log" } else { "linear" }, "min": low, "max": high,
        }),
        // A handful of integers (depth, layers) reads best as labelled positions.
        Distribution::Int {
            low,
            high,
            log: false,
            step,
        } if (high - low) / step.max(&1) < 12 => json!({
            "name": def.name, "scale": "cat",
            "values": (0..=(high - low) / step.max(&1)).map(|k| low + k * step).collect::<Vec<_>>(),
        }),
        Distribution::Int { low, high, log, .. } => json!({
            "name": def.name, "scale": if *log { "log" } else { "linear" }, "min": low, "max": high,
        }),
        Distribution::Categorical { choices, .. } => json!({
            "name": def.name, "scale": "cat", "values": choices,
        }),
        Distribution::Shaped { .. } => json!({"name": def.name, "scale": "data"}),
    }
}

/// Where each trial's first epoch sits on the population's clock (units of population
/// training; the timeline draws `[start, start + epochs)`). A slot schedule records it; a
/// bracket schedule trains its brackets together in one population, or one after another
/// (then each bracket's trials, numbered in turn, start when the one before has ended).
fn clock_starts(run: &RunData) -> Vec<usize> {
    let mut starts: Vec<usize> = run.trials.iter().map(|t| t.first_unit).collect();
    let Some(summary) = &run.summary else {
        return starts;
    };
    let sizes: Vec<usize> = (summary["brackets"].as_array().into_iter().flatten())
        .filter_map(|b| b["trials"].as_u64().map(|n| n as usize))
        .collect();
    let population = summary["population"].as_u64().unwrap_or(0) as usize;
    if sizes.len() < 2 || population >= sizes.iter().sum::<usize>() || run.sweep.cv.is_some() {
        return starts;
    }
    let (mut first, mut offset) = (0, 0);
    for size in sizes {
        let members = first..(first + size).min(run.trials.len());
        let longest = (run.trials[members.clone()].iter())
            .map(|t| t.epochs)
            .max()
            .unwrap_or(0);
        starts[members].iter_mut().for_each(|s| *s = offset);
        (first, offset) = (first + size, offset + longest);
        if first >= run.trials.len() {
            break;
        }
    }
    starts
}

/// The numbers of the complete trials on the Pareto front, when the sweep has several
/// objectives: `summary.pareto_front` once the sweep has ended, else computed from the
/// records so far.
fn pareto(run: &RunData) -> Vec<usize> {
    let sweep = &run.sweep;
    if sweep.objectives.is_empty() {
        return Vec::new();
    }
    if let Some(front) = run
        .summary
        .as_ref()
        .and_then(|s| s["pareto_front"].as_array())
    {
        return front
            .iter()
            .filter_map(|p| p["trial"].as_u64().map(|n| n as usize))
            .collect();
    }
    let signs: Vec<f64> = std::iter::once(sweep.metric.maximize)
        .chain(sweep.objectives.iter().map(|o| o.maximize))
        .map(|max| if max { -1.0 } else { 1.0 })
        .collect();
    let complete: Vec<&TrialRecord> = (run.trials.iter())
        .filter(|t| t.state == TrialState::Complete && t.last_value().is_some())
        .filter(|t| {
            (sweep.metric.constraints.iter()).all(|c| c.violation_value(c.name.of(t)) <= 0.0)
        })
        .collect();
    let points: Vec<Vec<f64>> = (complete.iter())
        .map(|t| {
            let values = sweep.objective_values(t, t.last_value().unwrap_or(f64::NAN));
            values.iter().zip(&signs).map(|(v, s)| v * s).collect()
        })
        .collect();
    let violations = vec![0.0; points.len()];
    let fronts = crate::tuner::pareto::fronts(&points, &violations);
    (fronts.first().into_iter().flatten())
        .map(|&i| complete[i].number)
        .collect()
}
