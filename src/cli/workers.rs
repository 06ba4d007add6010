//! `run --storage URL`: a worker of a sweep whose study lives in PostgreSQL. The same
//! command started on several machines (or several times on one) joins one study: each
//! worker trains its own population, sized to its own device, and they share the sampler's
//! history, the schedule's rung decisions, `run_cap` and `metric.target`.

use super::run::Loaded;
use crate::config::Sweep;
use crate::error::{Error, Result};
use crate::storage::{Op, PgStorage, Storage, StudyHeader, TrialRecord};
use std::time::Duration;

/// Where a worker's study is, and how it keeps its leases.
pub(super) struct SharedStudy {
    pub(super) url: String,
    pub(super) name: String,
    pub(super) heartbeat: Duration,
    pub(super) max_retries: usize,
}

/// `run`'s worker flags, as given.
pub(super) struct WorkerFlags {
    pub(super) storage: Option<String>,
    pub(super) study_name: Option<String>,
    pub(super) heartbeat: f64,
    pub(super) max_retries: usize,
}

fn flag_error(field: &str, message: String) -> Error {
    Error::Config {
        file: "command line".into(),
        line: None,
        field: field.into(),
        message,
    }
}

/// The shared study a `run` works on: `--storage`, else the sweep file's `storage`; `None`
/// for a sweep of its own run directory. Refuses what cannot run across workers.
pub(super) fn shared_study(flags: WorkerFlags, loaded: &Loaded) -> Result<Option<SharedStudy>> {
    let sweep = &loaded.sweep;
    let Some(url) = flags.storage.or_else(|| sweep.storage.clone()) else {
        if flags.study_name.is_some() {
            return Err(flag_error(
                "--study-name",
                "names a study of --storage; give --storage too".into(),
            ));
        }
        return Ok(None);
    };
    if !crate::storage::postgres::is_url(&url) {
        return Err(flag_error(
            "--storage",
            "must be a PostgreSQL URL (postgresql://user:password@host:port/database)".into(),
        ));
    }
    let refuse = |why: String| {
        Err(Error::Config {
            file: loaded.source.clone(),
            line: None,
            field: "--storage".into(),
            message: why,
        })
    };
    if sweep.external.is_some() {
        return refuse(
            "an external program's study lives in its run directory's journal; --storage \
             shares the study of a built-in sweep"
                .into(),
        );
    }
    if sweep.cv.is_some() {
        return refuse("a nested cross-validation runs in one process".into());
    }
    if let Some(why) = sweep.schedule.across_workers() {
        let kind = sweep.schedule.kind();
        return refuse(format!(
            "the `{kind}` schedule cannot run across workers: {why}"
        ));
    }
    if !(flags.heartbeat.is_finite() && flags.heartbeat > 0.0) {
        return Err(flag_error(
            "--heartbeat",
            format!("{} must be a positive number of seconds", flags.heartbeat),
        ));
    }
    Ok(Some(SharedStudy {
        url,
        name: flags.study_name.unwrap_or_else(|| sweep.name.clone()),
        heartbeat: Duration::from_secs_f64(flags.heartbeat),
        max_retries: flags.max_retries,
    }))
}

/// `run --population N`: the slots of an ASHA or median schedule, for this process only.
pub(super) fn set_population(sweep: &mut Sweep, n: usize) -> Result<()> {
    use crate::config::Schedule;
    if n == 0 || n > crate::limits::MAX_TRIALS as usize {
        return Err(flag_error(
            "--population",
            format!(
                "{n}: a population holds 1 to {} trials",
                crate::limits::MAX_TRIALS
            ),
        ));
    }
    match &mut sweep.schedule {
        Schedule::Asha { slots, .. } | Schedule::Median { slots, .. } => {
            *slots = n;
            sweep.population_given = true;
            Ok(())
        }
        other => Err(flag_error(
            "--population",
            format!(
                "sets the slots of asha and median schedules; `{}` sizes its population \
                 from its brackets or run_cap",
                other.kind()
            ),
        )),
    }
}

/// Opens the worker's study: created by the first worker with the sweep's space, joined
/// by the others, refused when a study of that name has another space.
pub(super) fn open_shared(shared: &SharedStudy, sweep: &Sweep, text: &str) -> Result<PgStorage> {
    let mut storage = PgStorage::open(&shared.url, &shared.name, true)?
        .with_heartbeat(shared.heartbeat, shared.max_retries)?;
    let header = StudyHeader {
        direction: sweep.directions()[0],
        directions: match sweep.objectives.is_empty() {
            true => Vec::new(),
            false => sweep.directions(),
        },
        sampler: sweep.sampler,
        seed: sweep.seed,
        space: parameters_text(text),
        name: shared.name.clone(),
        pruner: None,
        sweep: text.to_string(),
    };
    let storage_dyn: &mut dyn Storage = &mut storage;
    let existing = storage_dyn
        .transact(|state| match &state.header {
            Some(h) => Ok((Vec::new(), h.clone())),
            None => Ok((vec![Op::Study(header.clone())], header.clone())),
        })?
        .map_err(Error::Run)?;
    if existing.space != header.space || existing.directions != header.directions {
        return Err(Error::Config {
            file: storage.shown_url(),
            line: None,
            field: "--study-name".into(),
            message: format!(
                "a study named `{}` exists with another search space or metric; choose \
                 another name (--study-name), or start this worker on the same sweep file",
                shared.name
            ),
        });
    }
    Ok(storage)
}

/// The sweep file's `parameters` block as JSON: the space every worker of a study must
/// share (other keys, such as the population's slots, may differ between workers).
fn parameters_text(text: &str) -> String {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap_or_default();
    serde_json::to_string(&value.get("parameters")).unwrap_or_default()
}

/// `report --storage URL --study-name NAME [--out DIR]`: the study's sweep file and
/// records written into DIR (default `runs/NAME/`) as a run directory, which `report`
/// then reads. A directory holding a run of its own is refused; one written before by
/// this command is brought up to date.
pub(super) fn study_run_dir(
    url: &str,
    name: &str,
    out: Option<std::path::PathBuf>,
) -> Result<std::path::PathBuf> {
    let (mut storage, sweep) = workers_study(url, name)?;
    let dir = out.unwrap_or_else(|| std::path::Path::new("runs").join(name));
    let marker = dir.join(STUDY_MARKER);
    if dir.join("trials.jsonl").exists() && !marker.exists() {
        return Err(Error::Config {
            file: dir.display().to_string(),
            line: None,
            field: "--out".into(),
            message: "this directory holds a run of its own; choose another".into(),
        });
    }
    let records = storage.records()?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let _ = std::fs::remove_file(dir.join("trials.jsonl"));
    std::fs::write(&marker, format!("{}\n", storage.shown_url()))
        .map_err(|e| Error::io(&marker, e))?;
    crate::report::run_files::RunFiles::new(&dir).write_text("sweep.yaml", &sweep)?;
    keep_records(&dir, &records)?;
    Ok(dir)
}

/// The study `name` of `url` and the sweep file its `run --storage` workers share; an
/// ask/tell study (no sweep file) is refused in one line.
pub(super) fn workers_study(url: &str, name: &str) -> Result<(PgStorage, String)> {
    let mut storage = PgStorage::open(url, name, false)?;
    let sweep = (storage.state()?.header.as_ref()).map_or(String::new(), |h| h.sweep.clone());
    if sweep.is_empty() {
        return Err(Error::Config {
            file: storage.shown_url(),
            line: None,
            field: "--study-name".into(),
            message: format!(
                "study `{name}` was not made by `run --storage` workers, so it has no sweep \
                 file to draw; use `best` or `export --optuna-journal`"
            ),
        });
    }
    Ok((storage, sweep))
}

/// A worker's run directory names its study here (`resume RUN_DIR --storage URL`).
pub(super) const STUDY_NAME_FILE: &str = "study-name";

/// `resume RUN_DIR --storage URL`: the worker whose run directory this is starts again and
/// rejoins its study (its unfinished trials were failed and re-queued when their leases
/// lapsed; it takes trials from the study like any worker).
pub(super) fn resume_worker(
    run_dir: &std::path::Path,
    flags: WorkerFlags,
    (quiet, json): (bool, bool),
) -> Result<()> {
    let name_file = run_dir.join(STUDY_NAME_FILE);
    let name = std::fs::read_to_string(&name_file).map_err(|_| Error::Config {
        file: run_dir.display().to_string(),
        line: None,
        field: "--storage".into(),
        message: "not the run directory of a `run --storage` worker (it names no study)".into(),
    })?;
    if run_dir.join("trials.jsonl").exists() {
        return Err(Error::Config {
            file: run_dir.display().to_string(),
            line: None,
            field: "--storage".into(),
            message: "this worker finished; start another with `popsweep run SWEEP --storage URL`"
                .into(),
        });
    }
    let loaded = super::resume::load_run_dir(run_dir)?;
    let flags = WorkerFlags {
        study_name: Some(name.trim().to_string()),
        ..flags
    };
    let shared = shared_study(flags, &loaded)?.expect("--storage was given");
    if !quiet {
        println!(
            "worker of study `{}` starting again in {}",
            shared.name,
            run_dir.display()
        );
    }
    let target = super::run::Target::Shared(Some(run_dir.to_path_buf()), shared);
    super::run::run(loaded, target, (None, None), (quiet, json), false)
}

/// Marks a run directory written from a database study (`study_run_dir`).
const STUDY_MARKER: &str = "study-storage";

/// A worker's end: the study's records kept in its run directory, and where the final
/// test evaluation is when another worker does it.
pub(super) fn finish(
    run_dir: &std::path::Path,
    outcome: &crate::sweep::SweepOutcome,
    quiet: bool,
) -> Result<()> {
    keep_records(run_dir, &outcome.trials)?;
    if outcome.summary.best.is_none() && !quiet {
        println!(
            "the study's final test evaluation is the last worker's to finish (see its output)"
        );
    }
    Ok(())
}

/// The study's records as this worker last saw them, kept in its own run directory too:
/// `popsweep report RUN_DIR` reads them there.
pub(super) fn keep_records(run_dir: &std::path::Path, records: &[TrialRecord]) -> Result<()> {
    let mut local = crate::storage::RunStorage::create(run_dir, crate::storage::OpsIn::Memory)?;
    for r in records {
        local.record(r)?;
    }
    local.sync()
}
