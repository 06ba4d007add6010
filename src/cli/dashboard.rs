//! `popsweep dashboard`: where its data comes from — a run directory (re-read when its
//! files change), a study of `run --storage` workers in PostgreSQL, or an ask/tell study
//! directory — and the server that shows it (`report::dashboard`).

use crate::error::Result;
use crate::report::dashboard::Dashboard;
use crate::report::page_data::{page_data, Findings};
use crate::report::run::RunData;
use crate::storage::Storage;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `popsweep dashboard`'s arguments.
#[derive(clap::Args)]
pub(super) struct DashboardArgs {
    /// A run directory (of a sweep running now, or finished).
    #[arg(conflicts_with_all = ["study", "storage"], required_unless_present_any = ["study", "storage"])]
    run_dir: Option<PathBuf>,
    /// An ask/tell study directory (holds journal.jsonl).
    #[arg(long, conflicts_with = "storage")]
    study: Option<PathBuf>,
    /// The PostgreSQL database of `run --storage` workers' study.
    #[arg(long, requires = "study_name")]
    storage: Option<String>,
    #[arg(long, requires = "storage")]
    study_name: Option<String>,
    /// The address to listen on. Only this machine can connect unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port (0: any free one; the URL printed says which).
    #[arg(long, default_value_t = 8765)]
    port: u16,
}

/// The page data of the study as it stands now.
type Source = dyn FnMut() -> Result<Value>;

pub(super) fn dashboard(a: DashboardArgs) -> Result<()> {
    let mut snapshot: Box<Source> = match (a.run_dir, a.study, a.storage) {
        (Some(dir), _, _) => run_dir_source(dir)?,
        (_, Some(dir), _) => study_source(dir)?,
        (_, _, Some(url)) => storage_source(&url, &a.study_name.expect("clap requires it"))?,
        _ => unreachable!("clap requires a source"),
    };
    let server = Dashboard::bind(&a.host, a.port)?;
    println!("dashboard: {} (read-only; Ctrl-C stops it)", server.url());
    server.serve(&mut snapshot)
}

/// A run directory, read again only when one of its files changed (size or time), each
/// warning about it (a torn line while a trial is being written) printed once.
fn run_dir_source(dir: PathBuf) -> Result<Box<Source>> {
    RunData::load(&dir)?;
    let mut last: Option<(Stamp, Value)> = None;
    let mut warned = std::collections::BTreeSet::new();
    Ok(Box::new(move || {
        let stamp = stamp(&dir);
        if let Some((s, data)) = &last {
            if *s == stamp {
                return Ok(data.clone());
            }
        }
        let (run, warnings) = RunData::read(&dir)?;
        for w in warnings {
            if warned.insert(w.clone()) {
                eprintln!("warning: {w}");
            }
        }
        let data = page_data(&run, &Findings::of(&run), true);
        last = Some((stamp, data.clone()));
        Ok(data)
    }))
}

/// Each file's size and time of change (none: absent).
type Stamp = Vec<Option<(u64, std::time::SystemTime)>>;

fn stamp(dir: &Path) -> Stamp {
    [
        "trials.jsonl",
        "summary.json",
        "sweep.yaml",
        "lr_find.json",
        crate::report::run_files::PROGRESS,
    ]
    .iter()
    .map(|f| {
        let m = std::fs::metadata(dir.join(f)).ok()?;
        Some((m.len(), m.modified().ok()?))
    })
    .collect()
}

/// A study of `run --storage` workers: its sweep file from the database, its records as
/// the workers finish them.
fn storage_source(url: &str, name: &str) -> Result<Box<Source>> {
    let (mut storage, text) = super::workers::workers_study(url, name)?;
    let sweep = crate::config::parse(&text, &format!("{} (study {name})", storage.shown_url()))?;
    Ok(Box::new(move || {
        let mut trials = storage.records()?;
        trials.sort_by_key(|t| t.number);
        // No directory: the study lives in the database (`RunData::file`).
        let run = RunData {
            dir: PathBuf::new(),
            sweep: sweep.clone(),
            summary: None,
            trials,
        };
        Ok(page_data(&run, &Findings::of(&run), true))
    }))
}

/// An ask/tell study directory, drawn as the run of an external program whose metric is
/// the study's objective (`crate::report::study_view`).
fn study_source(dir: PathBuf) -> Result<Box<Source>> {
    crate::report::study_view::load(&dir)?;
    Ok(Box::new(move || {
        let run = crate::report::study_view::load(&dir)?;
        Ok(page_data(&run, &Findings::of(&run), true))
    }))
}
