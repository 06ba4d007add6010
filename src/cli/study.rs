//! `ask`, `tell` and `best` on a study kept in a journal or a database, from any language.

use crate::config;
use crate::error::{Error, Result};
use crate::pruning::PrunerSpec;
use crate::space::Space;
use crate::storage::{Direction, Op, PgStorage, RunStorage, Storage, StudyHeader};
use crate::tuner::sampler::SamplerKind;
use crate::tuner::study::{Outcome, Study};
use std::path::{Path, PathBuf};

/// Where a study lives: a directory with its journal, or a study of a PostgreSQL database.
pub(super) enum StudyAt {
    Dir(PathBuf),
    Database { url: String, name: String },
}

impl StudyAt {
    /// From the flags: `--study DIR`, or `--storage URL --study-name NAME` (clap checks
    /// that one of the two is given).
    pub(super) fn from_flags(
        study: Option<PathBuf>,
        storage: Option<String>,
        name: Option<String>,
    ) -> StudyAt {
        match (study, storage) {
            (Some(dir), _) => StudyAt::Dir(dir),
            (None, Some(url)) => StudyAt::Database {
                url,
                name: name.unwrap_or_default(),
            },
            (None, None) => unreachable!("clap requires --study or --storage"),
        }
    }

    /// The study as messages name it (a database's password hidden).
    pub(super) fn shown(&self) -> String {
        match self {
            StudyAt::Dir(dir) => dir.display().to_string(),
            StudyAt::Database { url, name } => {
                format!("{} (study {name})", crate::storage::postgres::redact(url))
            }
        }
    }

    /// The study's name: a directory's last component, or the name given.
    fn name(&self) -> String {
        match self {
            StudyAt::Dir(dir) => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            StudyAt::Database { name, .. } => name.clone(),
        }
    }

    /// Opens the storage; a directory is created only for a new study (`create`).
    fn open(&self, create: bool) -> Result<Box<dyn Storage>> {
        match self {
            StudyAt::Dir(dir) => {
                if create {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                } else if !dir.join("journal.jsonl").is_file() {
                    return Err(study_error(self, NO_STUDY));
                }
                Ok(Box::new(RunStorage::study(dir)?))
            }
            StudyAt::Database { url, name } => Ok(Box::new(PgStorage::open(url, name, create)?)),
        }
    }
}

const NO_STUDY: &str = "no study here yet; create it with `popsweep ask --space ...`";

/// Opens the study, creating it from the given settings if it has no header yet.
/// Settings given for an existing study must match the ones it was created with.
/// The study and the header it was created with (by the first ask).
pub(super) fn open_study(at: &StudyAt, new: Option<&StudyHeader>) -> Result<(Study, StudyHeader)> {
    let mut storage = at.open(new.is_some())?;
    for w in storage.take_warnings() {
        eprintln!("warning: {w}");
    }
    let existing = storage.state()?.header.clone();
    let header = match (existing, new) {
        (Some(h), _) => h,
        (None, Some(new)) => storage
            .transact(|state| match &state.header {
                Some(h) => Ok((vec![], h.clone())),
                None => Ok((vec![Op::Study(new.clone())], new.clone())),
            })?
            .map_err(Error::Run)?,
        (None, None) => return Err(study_error(at, NO_STUDY)),
    };
    let source = format!("{} (study space)", at.shown());
    let space = if header.space.is_empty() {
        Space::default()
    } else {
        config::parse_space(&header.space, &source)?
    };
    let mut study = Study::new(
        storage,
        space,
        header.sampler,
        header.direction.maximize(),
        header.seed,
    )
    .map_err(Error::Run)?
    .with_name(&header.name);
    if header.directions.len() > 1 {
        study = study
            .with_directions(&header.directions)
            .map_err(|e| study_error(at, &e))?;
    }
    if let Some(spec) = &header.pruner {
        study = study
            .with_pruner(spec)
            .map_err(|e| study_error(at, &format!("its pruner: {e}")))?;
    }
    Ok((study, header))
}

pub(super) fn study_error(at: &StudyAt, message: &str) -> Error {
    Error::Config {
        file: at.shown(),
        line: None,
        field: match at {
            StudyAt::Dir(_) => "--study",
            StudyAt::Database { .. } => "--study-name",
        }
        .into(),
        message: message.into(),
    }
}

/// What `ask` may say about a new study besides its space; `None` where not given.
pub(super) struct StudyFlags {
    pub(super) sampler: Option<String>,
    pub(super) direction: Option<String>,
    pub(super) seed: Option<u64>,
    pub(super) pruner: Option<String>,
    pub(super) directions: Option<String>,
}

/// A command-line error on `field`.
fn arg_error(field: &str, message: String) -> Error {
    Error::Config {
        file: "command line".into(),
        line: None,
        field: field.into(),
        message,
    }
}

/// What `ask`'s flags say about the study, parsed; `None` (or empty) where not given.
struct Settings {
    sampler: Option<SamplerKind>,
    direction: Option<Direction>,
    directions: Vec<Direction>,
    seed: Option<u64>,
    pruner: Option<PrunerSpec>,
}

fn direction(flag: &str, name: &str) -> Result<Direction> {
    Direction::parse(name.trim())
        .ok_or_else(|| arg_error(flag, format!("`{name}` must be minimize or maximize")))
}

fn settings(flags: &StudyFlags) -> Result<Settings> {
    let sampler = match flags.sampler.as_deref() {
        None => None,
        Some(name) => Some(SamplerKind::parse(name).ok_or_else(|| {
            arg_error(
                "--sampler",
                format!("unknown sampler `{name}` (known: {})", SamplerKind::NAMES),
            )
        })?),
    };
    let directions: Vec<Direction> = match flags.directions.as_deref() {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|name| direction("--directions", name))
            .collect::<Result<_>>()?,
    };
    if directions.len() > 1 && sampler == Some(SamplerKind::Gp) {
        return Err(arg_error(
            "--sampler",
            "gp models one objective; use tpe or nsga2 for several".into(),
        ));
    }
    Ok(Settings {
        sampler,
        direction: match flags.direction.as_deref() {
            None => None,
            Some(name) => Some(direction("--direction", name)?),
        },
        directions,
        seed: flags.seed,
        pruner: match flags.pruner.as_deref() {
            None => None,
            Some(text) => Some(PrunerSpec::parse(text).map_err(|e| arg_error("--pruner", e))?),
        },
    })
}

/// The header of a new study over `space` (a file, or the text itself).
fn new_header(at: &StudyAt, space: &str, s: &Settings) -> Result<StudyHeader> {
    let path = Path::new(space);
    let (text, source) = if path.is_file() {
        let text =
            crate::limits::read_input_text(path, "--space", crate::limits::MAX_SWEEP_FILE_BYTES)?;
        (text, space.to_string())
    } else {
        (space.to_string(), "--space".to_string())
    };
    config::parse_space(&text, &source)?;
    Ok(StudyHeader {
        direction: s
            .directions
            .first()
            .copied()
            .or(s.direction)
            .unwrap_or(Direction::Minimize),
        directions: match s.directions.len() > 1 {
            true => s.directions.clone(),
            false => Vec::new(),
        },
        sampler: s.sampler.unwrap_or(SamplerKind::Tpe),
        seed: s.seed.unwrap_or(0),
        space: text,
        name: at.name(),
        pruner: s.pruner.clone(),
        sweep: String::new(),
    })
}

/// Only the first ask defines the study: says so when a later one asks for something
/// else, rather than let a script believe its --sampler took effect.
fn note_ignored(at: &StudyAt, s: &Settings, header: &StudyHeader) {
    let settings = |p: &PrunerSpec| serde_json::to_string(p).expect("settings serialize");
    let ignored = [
        (
            "--sampler",
            s.sampler.map(|k| k.name().to_string()),
            header.sampler.name().to_string(),
        ),
        (
            "--direction",
            s.direction.map(|d| d.name().to_string()),
            header.direction.name().to_string(),
        ),
        (
            "--seed",
            s.seed.map(|seed| seed.to_string()),
            header.seed.to_string(),
        ),
        (
            "--directions",
            (!s.directions.is_empty()).then(|| names(&s.directions)),
            match header.directions.is_empty() {
                true => header.direction.name().to_string(),
                false => names(&header.directions),
            },
        ),
        (
            "--pruner",
            s.pruner.as_ref().map(settings),
            header
                .pruner
                .as_ref()
                .map_or_else(|| "none".into(), settings),
        ),
    ];
    for (flag, given, kept) in ignored {
        if let Some(given) = given.filter(|g| *g != kept) {
            eprintln!(
                "note: {}: the study keeps `{kept}` from its first ask; {flag} `{given}` is not used",
                at.shown()
            );
        }
    }
}

pub(super) fn ask(at: &StudyAt, space: Option<&str>, flags: StudyFlags, n: usize) -> Result<()> {
    if n == 0 || n > crate::limits::MAX_ASK_BATCH {
        return Err(arg_error(
            "--n",
            format!(
                "{n} trials: one ask suggests 1 to {} (the study stays locked while it \
                 does); ask in smaller batches",
                crate::limits::MAX_ASK_BATCH
            ),
        ));
    }
    let settings = settings(&flags)?;
    let new = match space {
        Some(space) => Some(new_header(at, space, &settings)?),
        None => None,
    };
    let (mut study, header) = open_study(at, new.as_ref())?;
    note_ignored(at, &settings, &header);
    if new.is_some_and(|n| n.space != header.space) {
        // A directory's study is one script's; a database's name may be shared by
        // mistake by two projects, whose trials must not mix.
        if let StudyAt::Database { .. } = at {
            return Err(study_error(
                at,
                "a study of this name exists with another search space; choose another \
                 name, or ask without --space to join it",
            ));
        }
        eprintln!(
            "note: {}: the study keeps the space of its first ask; --space is not used",
            at.shown()
        );
    }
    let mut out = String::new();
    for t in study.ask_batch(n)? {
        let line = TrialLine {
            trial: t.number,
            value: None,
            values: None,
            params: &t.params,
        };
        out.push_str(&serde_json::to_string(&line).expect("trial lines serialize"));
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// Directions as `--directions` writes them.
fn names(directions: &[Direction]) -> String {
    let names: Vec<&str> = directions.iter().map(|d| d.name()).collect();
    names.join(",")
}

/// A trial as the study commands print it.
#[derive(serde::Serialize)]
pub(super) struct TrialLine<'a> {
    pub(super) trial: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) values: Option<&'a [f64]>,
    pub(super) params: &'a crate::space::Params,
}

/// What `tell` says of a finished trial.
pub(super) struct Told<'a> {
    pub(super) value: Option<f64>,
    pub(super) values: Option<&'a str>,
    pub(super) state: Option<&'a str>,
    pub(super) constraints: Option<&'a str>,
}

/// A comma-separated list of numbers (`--values`, `--constraints`).
fn numbers(flag: &str, list: &str) -> Result<Vec<f64>> {
    list.split(',')
        .map(|x| {
            x.trim().parse::<f64>().map_err(|_| {
                arg_error(
                    flag,
                    format!("`{x}` is not a number (a comma-separated list is expected)"),
                )
            })
        })
        .collect()
}

pub(super) fn tell(at: &StudyAt, trial: usize, told: Told<'_>) -> Result<()> {
    let constraints = match told.constraints {
        Some(list) => numbers("--constraints", list)?,
        None => Vec::new(),
    };
    let (mut study, _) = open_study(at, None)?;
    let result = match (told.value, told.values, told.state) {
        (_, Some(list), _) => {
            let values = numbers("--values", list)?;
            if values.iter().any(|v| !v.is_finite()) {
                eprintln!("note: trial {trial}: a value is not finite; recorded failed");
            }
            study.tell_values(trial, &values, &constraints)
        }
        (Some(v), _, _) => {
            if !v.is_finite() {
                // As Optuna does: the study keeps going, the trial is recorded failed.
                eprintln!("note: trial {trial}: the value {v} is not finite; recorded failed");
            }
            study.tell_constrained(trial, Outcome::Complete(v), &constraints)
        }
        (None, None, Some("pruned")) => {
            study.tell_constrained(trial, Outcome::Pruned, &constraints)
        }
        (None, None, Some("failed")) => {
            study.tell_constrained(trial, Outcome::Failed, &constraints)
        }
        (None, None, other) => {
            return Err(Error::Config {
                file: "command line".into(),
                line: None,
                field: "--state".into(),
                message: format!("`{}` must be pruned or failed", other.unwrap_or_default()),
            })
        }
    };
    result.map_err(|e| study_error(at, &e.to_string()))
}

/// `tell --step S --intermediate V`: records the value at the step (a step already
/// reported keeps its first value, as Optuna's `trial.report` does) and prints the
/// pruner's verdict, `{"prune": true|false}`.
pub(super) fn tell_intermediate(at: &StudyAt, trial: usize, step: u64, value: f64) -> Result<()> {
    let (mut study, _) = open_study(at, None)?;
    let decide = |study: &mut Study| -> Result<bool> {
        study.report_first(trial, step, value)?;
        study.should_prune(trial)
    };
    let prune = decide(&mut study).map_err(|e| study_error(at, &e.to_string()))?;
    println!("{}", serde_json::json!({ "prune": prune }));
    Ok(())
}

/// `enqueue`: the configuration, checked against the study's space, queued for the next
/// ask.
pub(super) fn enqueue(at: &StudyAt, params: &str) -> Result<()> {
    let params: crate::space::Params = serde_json::from_str(params)
        .map_err(|e| arg_error("--params", format!("not a JSON object of parameters: {e}")))?;
    let (mut study, _) = open_study(at, None)?;
    study
        .enqueue(params)
        .map_err(|e| arg_error("--params", e.to_string()))
}

/// `export --optuna-journal FILE --study DIR`: the study in Optuna's journal format; what
/// did not translate exactly is said on stderr.
pub(super) fn export(at: &StudyAt, file: &Path) -> Result<()> {
    if file.exists() {
        return Err(arg_error(
            "--optuna-journal",
            format!(
                "{} exists; choose a new file (Optuna appends to a journal, and this one \
                 may hold other studies)",
                file.display()
            ),
        ));
    }
    let export = match at {
        StudyAt::Dir(dir) => crate::report::optuna_journal::export(dir)?,
        StudyAt::Database { url, name } => crate::report::optuna_journal::export_storage(
            &mut PgStorage::open(url, name, false)?,
            name,
            &at.shown(),
        )?,
    };
    for note in &export.notes {
        eprintln!("note: {note}");
    }
    let mut text = export.lines.join("\n");
    text.push('\n');
    std::fs::write(file, text).map_err(|e| Error::io(file, e))?;
    println!(
        "wrote {} trials of {} to {} (Optuna's JournalStorage format)",
        export.trials,
        at.shown(),
        file.display()
    );
    Ok(())
}

/// The best trial, or for a study of several objectives its Pareto front (a line each).
pub(super) fn best(at: &StudyAt) -> Result<()> {
    let (mut study, header) = open_study(at, None)?;
    let trials = match header.directions.len() > 1 {
        true => study.best_trials()?,
        false => study.best()?.into_iter().collect(),
    };
    if trials.is_empty() {
        return Err(Error::Run(format!(
            "{}: no complete feasible trial yet",
            at.shown()
        )));
    }
    for t in &trials {
        let line = TrialLine {
            trial: t.number,
            value: t.value,
            values: (!t.values.is_empty()).then_some(&t.values[..]),
            params: &t.params,
        };
        println!(
            "{}",
            serde_json::to_string(&line).expect("trial lines serialize")
        );
    }
    Ok(())
}
