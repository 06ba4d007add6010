//! One writer per run directory: `run` and `resume` hold an exclusive lock on
//! `popsweep.lock` for as long as they work on the directory.
//!
//! Two processes resuming one directory would each re-run the unfinished trials and both
//! append their records (36 lines for 27 trials). The lock is `flock(2)`: the kernel
//! releases it when its holder dies, however it dies, so a crash never leaves a directory
//! locked. The holder writes its PID into the file, so the refusal can name it.
//! (`flock` is not reliable across NFS clients; a study shared by machines belongs in a
//! database, not a directory.)

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The lock's file name inside a run directory.
pub const LOCK_FILE: &str = "popsweep.lock";

/// Held while a process writes a run directory; dropped (or the process dead), it is free.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the directory's lock, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match try_lock_after_a_dead_holder(&mut file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder_pid(&mut file)
                    .map(|pid| format!("popsweep process {pid}"))
                    .unwrap_or_else(|| "another popsweep process".into());
                return Err(Error::Run(format!(
                    "{}: in use by {holder}; wait for it to finish (or stop it) before \
                     running or resuming this directory",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let io = |e| Error::io(&path, e);
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(RunLock { _file: file })
    }
}

/// Takes the lock; when the holder that wrote its PID is dead (killed a moment ago), waits
/// up to a second for the kernel to release what it held: a child it was forking when it
/// died can hold the lock's file description until that child execs or exits.
fn try_lock_after_a_dead_holder(file: &mut File) -> std::result::Result<(), TryLockError> {
    for _ in 0..50 {
        match file.try_lock() {
            Err(TryLockError::WouldBlock) if holder_pid(file).is_some_and(is_dead) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
    file.try_lock()
}

/// Whether no process has this PID any more.
fn is_dead(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// The PID the holder wrote; it may not have written it yet (a few microseconds after
/// taking the lock), so a short wait is allowed.
fn holder_pid(file: &mut File) -> Option<u32> {
    for _ in 0..20 {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_string(&mut text).is_ok() {
            if let Ok(pid) = text.trim().parse() {
                return Some(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("popsweep-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = RunLock::acquire(&dir).unwrap();
        let e = RunLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "in use by popsweep process {}",
                std::process::id()
            )),
            "{e}"
        );
        drop(first);
        let again = RunLock::acquire(&dir);
        assert!(again.is_ok(), "free once dropped: {again:?}");
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
