//! Bounds decided before anything large is read, allocated or trained.
//!
//! A tuning tool runs unattended on shared machines, so a request that cannot fit (a
//! billion trials, a model of 549 GB, a 4 GB gzip bomb, a character device given as a
//! file) must be refused at once with the numbers and how to fit — never found out by the
//! allocator (an abort) or by the OOM killer (a lost night).
//!
//! - Input files are regular files of bounded size ([`read_input`]); every problem with
//!   one is bad input (exit 2) that names the file.
//! - Memory is measured, not assumed: [`available_memory`] reads the kernel's estimate of
//!   what can be allocated without swapping.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// A sweep file or search space is a page of YAML; 4 MiB leaves room for generated grids.
pub const MAX_SWEEP_FILE_BYTES: u64 = 4 << 20;

/// Trials of one study. Every trial's record and history stay in memory (the samplers and
/// the report read them all), and a million is beyond any sweep a person can judge.
pub const MAX_TRIALS: u64 = 1_000_000;

/// An Optuna journal read for a warm start (a million trials' operations fit).
pub const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// Trials suggested by one `ask`: the study's lock is held for the whole batch, so a larger
/// one would starve every other `tell` and `best` of the study.
pub const MAX_ASK_BATCH: usize = 100_000;

/// What one trial of a study holds in memory at most while the sweep runs: its
/// parameters, record and sampler history (measured on the digits sweep: ~1 KB).
pub const BYTES_PER_TRIAL: u64 = 4 << 10;

/// Deflate cannot compress by more than 1032:1; real data sets compress by 2–20:1 (MNIST
/// by 5:1). A gzip file whose header declares more than this ratio is a bomb or damaged.
pub const MAX_GZIP_RATIO: u64 = 200;

/// The kernel's estimate of memory available to a new allocation without swapping
/// (`MemAvailable`), in bytes; `u64::MAX` when it cannot be read (not Linux).
pub fn available_memory() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return u64::MAX;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(u64::MAX, |kb| kb.saturating_mul(1024))
}

/// Bytes a data set may take once decoded: half of the available memory, so the training
/// buffers and the population fit beside it.
pub fn data_budget() -> u64 {
    available_memory() / 2
}

/// A size for messages: `549.8 GB`, `12.0 MB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)];
    for (unit, size) in UNITS {
        if bytes as f64 >= size {
            return format!("{:.1} {unit}", bytes as f64 / size);
        }
    }
    format!("{bytes} B")
}

fn refused(path: &Path, what: &str, message: String) -> Error {
    Error::Config {
        file: path.display().to_string(),
        line: None,
        field: what.into(),
        message,
    }
}

/// Checks that `path` is a readable regular file of at most `max_bytes` and returns its
/// size. Devices, FIFOs and directories are refused before anything is read from them: a
/// character device would be read forever.
pub fn input_size(path: &Path, what: &str, max_bytes: u64) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| input_error(path, what, e))?;
    let kind = meta.file_type();
    let not_regular = if kind.is_dir() {
        Some("a directory")
    } else if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        Some(if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_fifo() {
            "a named pipe"
        } else {
            "a socket"
        })
    } else {
        None
    };
    if let Some(kind) = not_regular {
        return Err(refused(
            path,
            what,
            format!("is {kind}, not a regular file"),
        ));
    }
    if meta.len() > max_bytes {
        return Err(refused(
            path,
            what,
            format!(
                "is {} ({} bytes); at most {} is read",
                human_bytes(meta.len()),
                meta.len(),
                human_bytes(max_bytes)
            ),
        ));
    }
    Ok(meta.len())
}

/// Reads an input file (a sweep file, a data file, a search space) after
/// [`input_size`]'s checks, and never more than `max_bytes` even if it grows meanwhile.
pub fn read_input(path: &Path, what: &str, max_bytes: u64) -> Result<Vec<u8>> {
    let size = input_size(path, what, max_bytes)?;
    let file = std::fs::File::open(path).map_err(|e| input_error(path, what, e))?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| input_error(path, what, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(refused(
            path,
            what,
            format!("grew past {} while being read", human_bytes(max_bytes)),
        ));
    }
    Ok(bytes)
}

/// [`read_input`] of a text file: invalid UTF-8 is refused with the line it is on.
pub fn read_input_text(path: &Path, what: &str, max_bytes: u64) -> Result<String> {
    String::from_utf8(read_input(path, what, max_bytes)?).map_err(|e| {
        let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        Error::Config {
            file: path.display().to_string(),
            line: Some(before.iter().filter(|&&b| b == b'\n').count() + 1),
            field: what.into(),
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        }
    })
}

/// An input file that cannot be opened or read is bad input (exit 2), whatever the reason.
fn input_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    let message = match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "cannot be read: permission denied".to_string(),
        _ => format!("cannot be read: {e}"),
    };
    refused(path, what, message)
}

/// Refuses `bytes` of memory for `what` when they exceed `budget`, with the numbers and
/// how to fit.
pub fn check_fits(file: &str, what: &str, bytes: u64, budget: u64, how_to_fit: &str) -> Result<()> {
    if bytes <= budget {
        return Ok(());
    }
    Err(Error::Config {
        file: file.into(),
        line: None,
        field: what.into(),
        message: format!(
            "needs {} of memory but {} is available; {how_to_fit}",
            human_bytes(bytes),
            human_bytes(budget)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_oversize_files_are_refused() {
        let dir = std::env::temp_dir();
        let e = read_input(&dir, "sweep", 10).unwrap_err().to_string();
        assert!(e.contains("is a directory, not a regular file"), "{e}");
        let e = read_input(Path::new("/dev/zero"), "sweep", 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a character device"), "{e}");
        let path = dir.join(format!("popsweep-limits-{}", std::process::id()));
        std::fs::write(&path, b"0123456789ab").unwrap();
        let e = read_input(&path, "sweep", 10).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("is 12 B (12 bytes); at most 10 B"),
            "{e}"
        );
        assert_eq!(read_input(&path, "sweep", 12).unwrap().len(), 12);
        std::fs::remove_file(&path).unwrap();
        let e = read_input(&path, "sweep", 12).unwrap_err();
        assert!(
            e.to_string().ends_with("sweep: No such file or directory"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn memory_is_measured_and_sizes_read_as_people_write_them() {
        let available = available_memory();
        assert!(available > 1 << 20 && available < u64::MAX, "{available}");
        assert_eq!(human_bytes(549_755_813_888), "549.8 GB");
        assert_eq!(human_bytes(512), "512 B");
        assert!(check_fits("s", "model", 2_000, 1_000, "use fewer")
            .unwrap_err()
            .to_string()
            .contains("needs 2.0 KB of memory but 1.0 KB is available; use fewer"));
        assert!(check_fits("s", "model", 1_000, 1_000, "").is_ok());
    }
}
