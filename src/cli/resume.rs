//! `resume`: a stopped sweep continued in its run directory (a built-in sweep replayed
//! from its records, an external one from its journal).

use super::run::{run, run_external, Loaded, Target};
use crate::config;
use crate::error::{Error, Result};
use crate::limits;
use crate::storage::{OpsIn, RunStorage, Storage};
use std::path::{Path, PathBuf};

/// The sweep a run directory keeps, read as `run` read it (data paths from its `workdir`).
pub(super) fn load_run_dir(run_dir: &Path) -> Result<Loaded> {
    let path = run_dir.join("sweep.yaml");
    let text = limits::read_input_text(&path, "resume", limits::MAX_SWEEP_FILE_BYTES)?;
    let workdir_file = run_dir.join("workdir");
    let workdir = match std::fs::read_to_string(&workdir_file) {
        Ok(w) => PathBuf::from(w.trim_end()),
        Err(e) => return Err(Error::io(&workdir_file, e)),
    };
    let sweep = config::parse_at(&text, &path.display().to_string(), &workdir)?;
    Ok(Loaded {
        sweep,
        source: path.display().to_string(),
        text,
        workdir,
    })
}

pub(super) fn resume(run_dir: &Path, quiet: bool, json: bool) -> Result<()> {
    let Loaded {
        sweep,
        source,
        text,
        workdir,
    } = load_run_dir(run_dir)?;
    if sweep.external.is_none() {
        let mut storage = RunStorage::resume(run_dir, OpsIn::Memory)?;
        let finished = storage.records()?;
        for w in storage.take_warnings() {
            eprintln!("warning: {w}; that trial runs again");
        }
        if !quiet {
            let numbers: std::collections::BTreeSet<usize> =
                finished.iter().map(|r| r.number).collect();
            println!(
                "resuming `{}` in {}: {} trial(s) finished before, kept as recorded",
                sweep.name,
                run_dir.display(),
                numbers.len()
            );
        }
        let loaded = Loaded {
            sweep,
            source,
            text,
            workdir,
        };
        let target = Target::Resume(run_dir.to_path_buf(), Box::new(storage));
        return run(loaded, target, (None, None), (quiet, json), false);
    }
    if !run_dir.join("journal.jsonl").is_file() {
        return Err(Error::Config {
            file: run_dir.display().to_string(),
            line: None,
            field: "journal.jsonl".into(),
            message: "no journal here: not a run directory of an external sweep".into(),
        });
    }
    if !quiet {
        println!("resuming `{}` in {}", sweep.name, run_dir.display());
    }
    run_external(&sweep, run_dir, None, (quiet, json))
}
