//! The append-only JSONL journal: one [`Op`] per line.
//!
//! - Replayed on open, and incrementally before every transaction, so several processes
//!   can share a study.
//! - Every transaction holds an exclusive advisory lock on the file (`flock`) while it
//!   reads what others appended, decides, and appends: trial numbers are never duplicated.
//! - Appends are `fsync`ed before the lock is released: a told trial survives a crash.
//! - A torn last line (a writer killed mid-write) is reported and skipped, never fatal;
//!   the next append starts on a fresh line.

use super::{Decide, Op, StudyState};
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct Journal {
    path: PathBuf,
    file: File,
    state: StudyState,
    /// Bytes replayed so far (always at a line boundary or at a torn tail).
    offset: u64,
    /// Lines consumed so far, for messages.
    lines: usize,
    /// Whether the file's last byte is a newline (false after a torn write).
    ends_clean: bool,
    /// Problems met while replaying (torn or invalid lines), for the caller to report.
    pub warnings: Vec<String>,
}

impl Journal {
    /// Opens (creating if absent) the journal at `path` and replays it.
    pub fn open(path: &Path) -> Result<Journal> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
            state: StudyState::default(),
            offset: 0,
            lines: 0,
            ends_clean: true,
            warnings: Vec::new(),
        };
        journal.locked(|j| j.replay_new())?;
        Ok(journal)
    }

    /// Re-reads what other processes appended and returns the state.
    pub fn refresh(&mut self) -> Result<&StudyState> {
        self.locked(|j| j.replay_new())?;
        Ok(&self.state)
    }

    /// See [`super::Storage::transact_ops`]: read what others appended, decide and append, all
    /// under the file lock.
    pub fn transact_ops(
        &mut self,
        decide: &mut Decide<'_>,
    ) -> Result<std::result::Result<(), String>> {
        self.locked(|j| {
            j.replay_new()?;
            let ops = match decide(&j.state) {
                Ok(ops) => ops,
                Err(e) => return Ok(Err(e)),
            };
            let mut next = j.state.clone();
            for op in &ops {
                if let Err(e) = next.apply(op) {
                    return Ok(Err(e));
                }
            }
            j.append(&ops)?;
            j.state = next;
            Ok(Ok(()))
        })
    }

    fn locked<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        self.file.lock().map_err(|e| Error::io(&self.path, e))?;
        let result = f(self);
        let unlocked = self.file.unlock().map_err(|e| Error::io(&self.path, e));
        let r = result?;
        unlocked?;
        Ok(r)
    }

    fn replay_new(&mut self) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        let mut bytes = Vec::new();
        self.file.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        self.file.read_to_end(&mut bytes).map_err(io)?;
        if bytes.is_empty() {
            return Ok(());
        }
        let mut consumed = 0;
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            self.lines += 1;
            let complete = chunk.ends_with(b"\n");
            let text = String::from_utf8_lossy(chunk);
            let text = text.trim();
            if !text.is_empty() {
                let parsed = serde_json::from_str::<Op>(text).map_err(|e| e.to_string());
                let applied = parsed.and_then(|op| self.state.apply(&op));
                if let Err(why) = applied {
                    let what = if complete {
                        "invalid line"
                    } else {
                        "torn last line"
                    };
                    self.warnings.push(format!(
                        "{}:{}: {what} skipped: {why}",
                        self.path.display(),
                        self.lines
                    ));
                }
            }
            consumed += chunk.len();
            self.ends_clean = complete;
        }
        self.offset += consumed as u64;
        Ok(())
    }

    fn append(&mut self, ops: &[Op]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        if !self.ends_clean {
            text.push('\n'); // end the torn line so ours starts fresh
        }
        for op in ops {
            text.push_str(&serde_json::to_string(op).expect("ops serialize"));
            text.push('\n');
        }
        let io = |e| Error::io(&self.path, e);
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.offset += text.len() as u64;
        self.lines += ops.len() + usize::from(!self.ends_clean);
        self.ends_clean = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{ParamValue, Params};
    use crate::storage::TrialState;

    fn temp(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("popsweep-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    fn ask(trial: usize) -> Op {
        let mut params = Params::new();
        params.insert("x".into(), ParamValue::Float(trial as f64));
        Op::Ask {
            trial,
            params,
            enqueued: false,
        }
    }

    #[test]
    fn replays_and_skips_a_torn_last_line() {
        let path = temp("torn");
        {
            let mut j = Journal::open(&path).unwrap();
            j.transact_ops(&mut |_| Ok(vec![ask(0), ask(1)]))
                .unwrap()
                .unwrap();
            let tell = Op::Tell {
                trial: 0,
                state: TrialState::Complete,
                value: Some(-3.5),
            };
            j.transact_ops(&mut |_| Ok(vec![tell.clone()]))
                .unwrap()
                .unwrap();
        }
        // A writer killed mid-line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"op":"tell","trial":1,"sta"#).unwrap();
        drop(f);
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.warnings.len(), 1, "{:?}", j.warnings);
        assert!(
            j.warnings[0].contains(":4: torn last line skipped"),
            "{:?}",
            j.warnings
        );
        let state = j.refresh().unwrap().clone();
        assert_eq!(state.trials.len(), 2);
        assert_eq!(state.trials[0].value, Some(-3.5));
        assert_eq!(state.trials[1].state, TrialState::Running);
        // Appending after the torn tail starts a fresh line, and the journal stays readable.
        j.transact_ops(&mut |_| Ok(vec![ask(2)])).unwrap().unwrap();
        let reopened = Journal::open(&path).unwrap();
        assert_eq!(reopened.state.trials.len(), 3);
        assert_eq!(reopened.warnings.len(), 1);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn contradictory_ops_are_refused_without_writing() {
        let path = temp("refuse");
        let mut j = Journal::open(&path).unwrap();
        let bad = Op::Tell {
            trial: 7,
            state: TrialState::Complete,
            value: Some(1.0),
        };
        let r = j.transact_ops(&mut |_| Ok(vec![bad.clone()])).unwrap();
        assert_eq!(r, Err("trial 7 does not exist".to_string()));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        std::fs::remove_file(&path).unwrap();
    }
}
