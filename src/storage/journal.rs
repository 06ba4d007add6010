//! The append-only JSONL journal: one [`Op`] per line.
//!
//! - Replayed on open, and incrementally before every transaction, so several processes
//!   can share a study.
//! - Every transaction holds an exclusive advisory lock on the file (`flock`) while it
//!   reads what others appended, decides, and appends: trial numbers are never duplicated.
//! - Appends are `fsync`ed before the lock is released: a told trial survives a crash.
//! - Every line carries its checksum (`sealed.rs`). A damaged line is reported and
//!   skipped; it loses only what it recorded, because the replay does not depend on it
//!   (see [`StudyState::apply`]: a lost ask leaves a gap, not a shifted study).
//! - A torn last line (a writer killed mid-write) is reported and skipped, never fatal;
//!   the next append first overwrites it in place with `{}` and spaces (a line every
//!   reader skips), so the file stays valid JSON lines and keeps every byte offset that
//!   other processes have replayed up to.

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
    /// Where a torn last line starts (a writer killed mid-write), until it is blotted.
    torn_from: Option<u64>,
    /// Problems met while replaying (torn or invalid lines), for the caller to report.
    pub warnings: Vec<String>,
}

impl Journal {
    /// Opens (creating if absent) the journal at `path` and replays it. A journal that
    /// cannot be written (a read-only directory or file system) opens for reading: `best`
    /// and `report` work, and a transaction says why it cannot be recorded.
    pub fn open(path: &Path) -> Result<Journal> {
        let writable = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path);
        let file = match writable {
            Err(e) if is_read_only(&e) && path.is_file() => File::open(path),
            other => other,
        }
        .map_err(|e| Error::io(path, e))?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
            state: StudyState::default(),
            offset: 0,
            lines: 0,
            torn_from: None,
            warnings: Vec::new(),
        };
        journal.locked(|j| j.replay_new())?;
        Ok(journal)
    }

    /// Whether the journal was opened for appending.
    fn writable(&self) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL on a file descriptor this journal owns.
        let flags = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_GETFL) };
        flags >= 0 && flags & libc::O_APPEND != 0
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
            // `{}` is a blotted torn line (see `blot_torn_tail`).
            if !text.is_empty() && text != "{}" {
                let applied = super::sealed::unseal(text).and_then(|json| {
                    let op = serde_json::from_str::<Op>(&json).map_err(|e| e.to_string())?;
                    self.state.apply(&op)
                });
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
            self.torn_from = match complete {
                true => None,
                false => Some(self.offset + consumed as u64),
            };
            consumed += chunk.len();
        }
        self.offset += consumed as u64;
        Ok(())
    }

    /// Overwrites a torn last line in place with `{}` and spaces (or one space), ended by
    /// the newline the next append starts with. Positional writes ignore the offset on a
    /// file opened for appending (Linux), hence a second handle.
    fn blot_torn_tail(&mut self, from: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let io = |e| Error::io(&self.path, e);
        let len = (self.offset - from) as usize;
        let mut blot = vec![b' '; len];
        if len >= 2 {
            blot[..2].copy_from_slice(b"{}");
        }
        let writer = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(io)?;
        writer.write_all_at(&blot, from).map_err(io)?;
        self.torn_from = None;
        Ok(())
    }

    fn append(&mut self, ops: &[Op]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        if !self.writable() {
            return Err(Error::io(
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::ReadOnlyFilesystem,
                    "the journal is read-only here; nothing was recorded",
                ),
            ));
        }
        let mut text = String::new();
        let torn_from = self.torn_from;
        if let Some(from) = torn_from {
            self.blot_torn_tail(from)?;
            text.push('\n'); // end the blotted line so ours starts fresh
        }
        for op in ops {
            text.push_str(&super::sealed::seal(
                &serde_json::to_string(op).expect("ops serialize"),
            ));
            text.push('\n');
        }
        let io = |e| Error::io(&self.path, e);
        let written = self
            .file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // A partial append (a full disk) is cut back while the lock is still held, so
            // no reader ever sees it and a later append does not glue onto it.
            let _ = self.file.set_len(self.offset);
            self.torn_from = torn_from; // the blotted line still lacks its newline
            return Err(io(e));
        }
        self.offset += text.len() as u64;
        self.lines += ops.len();
        Ok(())
    }
}

/// An open refused because the place is not writable (as opposed to missing or broken).
pub(crate) fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
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
                values: Vec::new(),
                constraints: Vec::new(),
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
        assert!(
            reopened.warnings.is_empty(),
            "blotted: {:?}",
            reopened.warnings
        );
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("valid JSON lines");
        }
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
            values: Vec::new(),
            constraints: Vec::new(),
        };
        let r = j.transact_ops(&mut |_| Ok(vec![bad.clone()])).unwrap();
        assert_eq!(r, Err("trial 7 does not exist".to_string()));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        std::fs::remove_file(&path).unwrap();
    }
}
