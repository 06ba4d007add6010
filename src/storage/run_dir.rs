//! A study kept in a directory: its operations in memory or in `journal.jsonl`, and one
//! line of `trials.jsonl` per finished trial ([`TrialRecord`], written as each trial
//! finishes and synced once per rung, so a crash loses no finished rung).
//!
//! - One writer: `create` and `resume` hold the directory's [`RunLock`].
//! - Damage stays contained: each line carries its checksum, an unreadable line loses only
//!   its own trial (which runs again), and `resume` rewrites `trials.jsonl` without such
//!   lines (kept aside in `trials.damaged.jsonl`), so the file is always valid JSON lines.
//! - Readers (`report`, `best`) open nothing for writing: read-only directories work.

use super::lock::RunLock;
use super::{Decide, Journal, MemoryStorage, Storage, StudyState, TrialRecord};
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a run directory keeps its study's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpsIn {
    /// In memory: a built-in sweep's asks follow from its seed, and `resume` re-derives
    /// them (checking each against the trial's record).
    Memory,
    /// In `journal.jsonl`, shared by every process working on the study.
    Journal,
}

enum Ops {
    /// Only its operations are used: the records go to `trials.jsonl`.
    Memory(MemoryStorage),
    Journal(Journal),
}

pub struct RunStorage {
    dir: PathBuf,
    ops: Ops,
    /// `trials.jsonl`, opened on the first record when the study had none.
    trials: Option<File>,
    warnings: Vec<String>,
    /// Held by a writer (`run`, `resume`) for as long as it works on the directory.
    _lock: Option<RunLock>,
}

impl RunStorage {
    /// A new run in `dir` (created with its parents). Refuses a directory that already
    /// holds a run, so an old run's results are never overwritten.
    pub fn create(dir: &Path, ops: OpsIn) -> Result<RunStorage> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = RunLock::acquire(dir)?;
        let path = dir.join("trials.jsonl");
        let trials = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Config {
                    file: dir.display().to_string(),
                    line: None,
                    field: "--out".into(),
                    message: "this directory already holds a run; choose another".into(),
                },
                _ => Error::io(&path, e),
            })?;
        let mut run = RunStorage::with(dir, ops, Some(trials))?;
        run._lock = Some(lock);
        Ok(run)
    }

    /// An existing run, to go on with (`popsweep resume`). Lines that cannot be read (a
    /// last line torn by a crash or a full disk, a damaged middle) are taken out of
    /// `trials.jsonl` first, so the next record starts on a line of its own and the file
    /// stays valid JSON lines; their trials run again.
    pub fn resume(dir: &Path, ops: OpsIn) -> Result<RunStorage> {
        let path = dir.join("trials.jsonl");
        if !path.is_file() {
            return Err(Error::Config {
                file: dir.display().to_string(),
                line: None,
                field: "resume".into(),
                message: "not a run directory (it has no trials.jsonl)".into(),
            });
        }
        let lock = RunLock::acquire(dir)?;
        let set_aside = repair_records(&path)?;
        let trials = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut run = RunStorage::with(dir, ops, Some(trials))?;
        run.warnings.extend(set_aside);
        run._lock = Some(lock);
        Ok(run)
    }

    /// A finished or stopped run, to read its records (`popsweep report`); nothing is
    /// written.
    pub fn read(dir: &Path) -> Result<RunStorage> {
        RunStorage::with(dir, OpsIn::Memory, None)
    }

    /// The ask/tell study in `dir`: a journal, and records only once something records one.
    pub fn study(dir: &Path) -> Result<RunStorage> {
        RunStorage::with(dir, OpsIn::Journal, None)
    }

    fn with(dir: &Path, ops: OpsIn, trials: Option<File>) -> Result<RunStorage> {
        let mut warnings = Vec::new();
        let ops = match ops {
            OpsIn::Memory => Ops::Memory(MemoryStorage::default()),
            OpsIn::Journal => {
                let mut journal = Journal::open(&dir.join("journal.jsonl"))?;
                warnings.append(&mut journal.warnings);
                Ops::Journal(journal)
            }
        };
        Ok(RunStorage {
            dir: dir.to_path_buf(),
            ops,
            trials,
            warnings,
            _lock: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn trials_path(&self) -> PathBuf {
        self.dir.join("trials.jsonl")
    }
}

impl Storage for RunStorage {
    fn transact_ops(&mut self, decide: &mut Decide<'_>) -> Result<std::result::Result<(), String>> {
        match &mut self.ops {
            Ops::Memory(memory) => memory.transact_ops(decide),
            Ops::Journal(journal) => journal.transact_ops(decide),
        }
    }

    fn state(&mut self) -> Result<&StudyState> {
        match &mut self.ops {
            Ops::Memory(memory) => memory.state(),
            Ops::Journal(journal) => journal.refresh(),
        }
    }

    fn record(&mut self, record: &TrialRecord) -> Result<()> {
        let path = self.trials_path();
        if self.trials.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            self.trials = Some(file);
        }
        let mut line =
            super::sealed::seal(&serde_json::to_string(record).expect("trial records serialize"));
        line.push('\n');
        let file = self.trials.as_mut().expect("opened above");
        file.write_all(line.as_bytes())
            .map_err(|e| Error::io(&path, e))
    }

    fn sync(&mut self) -> Result<()> {
        let path = self.trials_path();
        match &self.trials {
            Some(file) => file.sync_data().map_err(|e| Error::io(&path, e)),
            None => Ok(()),
        }
    }

    /// Reads `trials.jsonl` back. A line torn by a crash (or otherwise unreadable) is
    /// skipped with a warning: that trial counts as unfinished.
    fn records(&mut self) -> Result<Vec<TrialRecord>> {
        let path = self.trials_path();
        // Damaged bytes need not be UTF-8: they spoil their own line, not the file.
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.trials.is_none() => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match parse_record(line) {
                Ok(r) => records.push(r),
                Err(e) => self.warnings.push(format!(
                    "{}:{}: skipped an unreadable trial line ({e})",
                    path.display(),
                    i + 1
                )),
            }
        }
        Ok(records)
    }

    fn take_warnings(&mut self) -> Vec<String> {
        let mut warnings = std::mem::take(&mut self.warnings);
        if let Ops::Journal(journal) = &mut self.ops {
            warnings.append(&mut journal.warnings);
        }
        warnings
    }
}

fn parse_record(line: &str) -> std::result::Result<TrialRecord, String> {
    let json = super::sealed::unseal(line)?;
    serde_json::from_str(&json).map_err(|e| e.to_string())
}

/// Rewrites `trials.jsonl` without its unreadable lines, which go to
/// `trials.damaged.jsonl` (kept for a person to look at, never read back). The new file
/// replaces the old one by a rename, so a crash during the repair leaves one or the other
/// whole. Returns a warning per line set aside; nothing is written when all lines read.
fn repair_records(path: &Path) -> Result<Vec<String>> {
    let io = |e| Error::io(path, e);
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8_lossy(&bytes);
    let (mut kept, mut damaged, mut warnings) = (String::new(), String::new(), Vec::new());
    let last = text.lines().count();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_record(line) {
            Ok(_) => {
                kept.push_str(line);
                kept.push('\n');
            }
            Err(e) => {
                let torn = i + 1 == last && !text.ends_with('\n');
                let what = if torn {
                    "a torn last line"
                } else {
                    "an unreadable line"
                };
                warnings.push(format!(
                    "{}:{}: {what} set aside in trials.damaged.jsonl ({e})",
                    path.display(),
                    i + 1
                ));
                damaged.push_str(line);
                damaged.push('\n');
            }
        }
    }
    if warnings.is_empty() && (bytes.is_empty() || bytes.ends_with(b"\n")) {
        return Ok(warnings);
    }
    let aside = path.with_file_name("trials.damaged.jsonl");
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&aside)
        .map_err(|e| Error::io(&aside, e))?;
    f.write_all(damaged.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io(&aside, e))?;
    let fresh = path.with_file_name("trials.jsonl.repair");
    std::fs::write(&fresh, kept.as_bytes())
        .and_then(|()| File::open(&fresh)?.sync_all())
        .map_err(|e| Error::io(&fresh, e))?;
    std::fs::rename(&fresh, path).map_err(io)?;
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Op, TrialState};

    fn temp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("popsweep-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    fn record(number: usize, value: f64) -> TrialRecord {
        TrialRecord {
            number,
            state: TrialState::Complete,
            value: Some(value),
            ..TrialRecord::default()
        }
    }

    #[test]
    fn records_survive_a_torn_line_and_a_resume() {
        let dir = temp("torn");
        let mut run = RunStorage::create(&dir, OpsIn::Memory).unwrap();
        run.record(&record(0, 0.5)).unwrap();
        run.record(&record(1, 0.25)).unwrap();
        run.sync().unwrap();
        drop(run);
        assert!(
            RunStorage::create(&dir, OpsIn::Memory).is_err(),
            "a second run"
        );
        // A writer killed mid-line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("trials.jsonl"))
            .unwrap();
        f.write_all(br#"{"number":2,"sta"#).unwrap();
        drop(f);
        let mut run = RunStorage::resume(&dir, OpsIn::Memory).unwrap();
        let warnings = run.take_warnings();
        assert!(
            warnings[0].contains("trials.jsonl:3: a torn last line set aside"),
            "{warnings:?}"
        );
        let numbers =
            |records: Vec<TrialRecord>| records.iter().map(|r| r.number).collect::<Vec<_>>();
        assert_eq!(numbers(run.records().unwrap()), [0, 1]);
        let text = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(
            (first["number"].as_u64(), first["value"].as_f64()),
            (Some(0), Some(0.5))
        );
        run.record(&record(2, 0.125)).unwrap();
        run.record(&record(1, 0.75)).unwrap();
        let records = run.records().unwrap();
        assert_eq!(
            numbers(records.clone()),
            [0, 1, 2, 1],
            "in the order recorded"
        );
        assert_eq!(records[3].value, Some(0.75));
        assert!(run.take_warnings().is_empty(), "the torn line is gone");
        let text = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("valid JSON lines");
        }
        let aside = std::fs::read_to_string(dir.join("trials.damaged.jsonl")).unwrap();
        assert_eq!(aside, "{\"number\":2,\"sta\n");
        drop(run);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_directory() {
        let dir = temp("lock");
        let run = RunStorage::create(&dir, OpsIn::Memory).unwrap();
        let e = RunStorage::resume(&dir, OpsIn::Memory)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("in use by popsweep process"), "{e}");
        assert!(RunStorage::read(&dir).is_ok(), "readers are not writers");
        drop(run);
        assert!(RunStorage::resume(&dir, OpsIn::Memory).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_study_directory_shares_its_journal_between_handles() {
        let dir = temp("journal");
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = RunStorage::study(&dir).unwrap();
        let mut b = RunStorage::study(&dir).unwrap();
        let ask = Op::Ask {
            trial: 0,
            params: Default::default(),
            enqueued: false,
        };
        let s: &mut dyn Storage = &mut a;
        s.transact_ops(&mut |_| Ok(vec![ask.clone()]))
            .unwrap()
            .unwrap();
        assert_eq!(b.state().unwrap().trials.len(), 1);
        let refused = b.transact_ops(&mut |_| Ok(vec![ask.clone()])).unwrap();
        assert!(refused.unwrap_err().contains("trial 0 was already asked"));
        assert!(b.records().unwrap().is_empty());
        assert!(!dir.join("trials.jsonl").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
