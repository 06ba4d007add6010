//! Warm starts of a sweep (`warm_start: {from: PATH}`): the finished trials of an earlier
//! run directory, ask/tell study or Optuna study (a journal file, as Optuna's
//! `JournalFileBackend` writes it) seed the sampler, after a check that they were tuned
//! over the same space for the same metric; `enqueue`'s configurations come first.

use super::study_outcome;
use crate::config::{self, Sweep};
use crate::error::{Error, Result};
use crate::space::Space;
use crate::storage::{FrozenTrial, RunStorage, Storage, TrialState};
use crate::tuner::study::{Outcome, Study};
use std::path::Path;

/// Adds the warm start's trials and the enqueued configurations to a fresh study.
pub(crate) fn seed(study: &mut Study, sweep: &Sweep) -> Result<()> {
    let earlier = earlier_trials(sweep)?;
    if let (Some(added), Some(dir)) = (
        study.seed_once(&earlier, &sweep.enqueue)?,
        &sweep.warm_start,
    ) {
        eprintln!(
            "warm start: {added} finished trials of {} seed the sampler",
            dir.display()
        );
    }
    Ok(())
}

/// The finished trials of `sweep.warm_start` (none without one), refused with the reason
/// when they come from another space or metric.
pub fn earlier_trials(sweep: &Sweep) -> Result<Vec<FrozenTrial>> {
    let Some(dir) = &sweep.warm_start else {
        return Ok(Vec::new());
    };
    let err = |message: String| Error::Config {
        file: dir.display().to_string(),
        line: None,
        field: "warm_start.from".into(),
        message,
    };
    if dir.is_file() {
        from_optuna(dir, sweep).map_err(&err)
    } else if dir.join("trials.jsonl").is_file() {
        from_run(dir, sweep).map_err(&err)
    } else if dir.join("journal.jsonl").is_file() {
        from_study(dir, sweep).map_err(&err)
    } else {
        Err(err(
            "neither a run directory (trials.jsonl), an ask/tell study (journal.jsonl) nor \
             an Optuna journal file"
                .into(),
        ))
    }
}

/// A run directory: its kept sweep file says what it tuned; its records, what came of it.
fn from_run(dir: &Path, sweep: &Sweep) -> std::result::Result<Vec<FrozenTrial>, String> {
    let path = dir.join("sweep.yaml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("its sweep file {} cannot be read: {e}", path.display()))?;
    let earlier = config::parse(&text, &path.display().to_string()).map_err(|e| e.to_string())?;
    same_space(&earlier.space, &sweep.space)?;
    if earlier.metric.name != sweep.metric.name || earlier.metric.maximize != sweep.metric.maximize
    {
        return Err(format!(
            "it tuned for {} ({}); this sweep tunes for {} ({})",
            earlier.metric.name,
            goal(earlier.metric.maximize),
            sweep.metric.name,
            goal(sweep.metric.maximize)
        ));
    }
    if earlier.objectives != sweep.objectives {
        return Err(
            "it tuned for other objectives besides its metric (`metric` lists differ)".into(),
        );
    }
    let mut storage = RunStorage::read(dir).map_err(|e| e.to_string())?;
    let records = storage.records().map_err(|e| e.to_string())?;
    let mut trials: std::collections::BTreeMap<usize, FrozenTrial> = Default::default();
    // A nested cross-validation's records are per outer fold: they do not seed.
    for r in records.into_iter().filter(|r| r.outer.is_none()) {
        let (state, value, values) = match study_outcome(&r) {
            Outcome::Complete(v) if !sweep.objectives.is_empty() => {
                (TrialState::Complete, None, sweep.objective_values(&r, v))
            }
            Outcome::Complete(v) => (TrialState::Complete, Some(v), Vec::new()),
            Outcome::Pruned => (TrialState::Pruned, None, Vec::new()),
            Outcome::Failed => continue,
        };
        let intermediate = r.rungs.iter().map(|v| (v.epochs as u64, v.value)).collect();
        trials.insert(
            r.number,
            FrozenTrial {
                number: r.number,
                params: r.params,
                state,
                value,
                intermediate,
                completed_rungs: Vec::new(),
                values,
                constraints: Vec::new(),
            },
        );
    }
    Ok(trials.into_values().collect())
}

/// An ask/tell study: its header holds its space and direction.
fn from_study(dir: &Path, sweep: &Sweep) -> std::result::Result<Vec<FrozenTrial>, String> {
    let mut storage = RunStorage::study(dir).map_err(|e| e.to_string())?;
    let state = storage.state().map_err(|e| e.to_string())?;
    let header = state.header.as_ref().ok_or("the study has no trial yet")?;
    let space = config::parse_space(&header.space, &dir.display().to_string())
        .map_err(|e| e.to_string())?;
    same_space(&space, &sweep.space)?;
    let theirs = match header.directions.is_empty() {
        true => vec![header.direction],
        false => header.directions.clone(),
    };
    let ours = sweep.directions();
    if theirs != ours {
        return Err(format!(
            "the study's objectives go {}; this sweep's go {}",
            names(&theirs),
            names(&ours)
        ));
    }
    Ok(state.trials.clone())
}

/// An Optuna study exported as a journal file (`JournalFileBackend`): its trials, each
/// checked against this sweep's space (Optuna's studies declare no space of their own).
fn from_optuna(path: &Path, sweep: &Sweep) -> std::result::Result<Vec<FrozenTrial>, String> {
    let (directions, mut trials) = crate::report::optuna_journal::import(path)?;
    let ours = sweep.directions();
    if directions != ours {
        return Err(format!(
            "the Optuna study's objectives go {}; this sweep's go {}",
            names(&directions),
            names(&ours)
        ));
    }
    trials.retain(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned));
    for t in &mut trials {
        sweep.space.coerce(&mut t.params);
        sweep.space.check(&t.params).map_err(|e| {
            format!(
                "Optuna trial {}: {e}; it is not of this sweep's space",
                t.number
            )
        })?;
    }
    Ok(trials)
}

fn names(directions: &[crate::storage::Direction]) -> String {
    directions
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn goal(maximize: bool) -> &'static str {
    if maximize {
        "maximize"
    } else {
        "minimize"
    }
}

/// Refuses another space, naming the first parameter where they part.
fn same_space(earlier: &Space, now: &Space) -> std::result::Result<(), String> {
    if earlier == now {
        return Ok(());
    }
    let names = |s: &Space| s.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let (a, b) = (names(earlier), names(now));
    let differs = a
        .iter()
        .chain(&b)
        .find(|n| earlier.get(n) != now.get(n))
        .cloned()
        .unwrap_or_default();
    Err(format!(
        "its trials come from another search space (they part at `{differs}`); a warm start \
         needs the same parameters and distributions"
    ))
}
