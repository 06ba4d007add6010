//! The run directory: `trials.jsonl` (one line per finished trial, appended and synced as
//! each trial finishes, so a crash loses no finished trial) and `summary.json` (written
//! once at the end, atomically).

use crate::error::{Error, Result};
use crate::storage::TrialRecord;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RunLog {
    dir: PathBuf,
    trials: File,
}

impl RunLog {
    /// Creates `dir` (and its parents). Refuses a directory that already holds a run, so
    /// an old run's results are never overwritten.
    pub fn create(dir: &Path) -> Result<RunLog> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
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
        Ok(RunLog {
            dir: dir.to_path_buf(),
            trials,
        })
    }

    /// Reopens an existing run directory to append (`popsweep resume`). A last line torn
    /// by a crash is ended first, so the next record starts on a line of its own.
    pub fn open_append(dir: &Path) -> Result<RunLog> {
        let path = dir.join("trials.jsonl");
        let mut trials = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if text.last().is_some_and(|&b| b != b'\n') {
            trials.write_all(b"\n").map_err(|e| Error::io(&path, e))?;
        }
        Ok(RunLog {
            dir: dir.to_path_buf(),
            trials,
        })
    }

    /// The trial numbers `trials.jsonl` already records.
    pub fn logged_numbers(&self) -> Result<std::collections::BTreeSet<usize>> {
        let path = self.dir.join("trials.jsonl");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["number"].as_u64().map(|n| n as usize))
            .collect())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one trial as a JSON line.
    pub fn append_trial(&mut self, record: &TrialRecord) -> Result<()> {
        let path = self.dir.join("trials.jsonl");
        let mut line = serde_json::to_string(record).expect("trial records serialize");
        line.push('\n');
        self.trials
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(&path, e))
    }

    /// Makes every appended line durable; called once per rung.
    pub fn sync(&mut self) -> Result<()> {
        self.trials
            .sync_data()
            .map_err(|e| Error::io(self.dir.join("trials.jsonl"), e))
    }

    /// Writes `trials.csv` (one row per trial, for pandas and spreadsheets) through a
    /// temporary file and a rename.
    pub fn write_csv(&self, name: &str, header: &[String], rows: &[Vec<String>]) -> Result<()> {
        let mut text = header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(",");
        text.push('\n');
        for row in rows {
            text.push_str(
                &row.iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            text.push('\n');
        }
        let tmp = self.dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        let path = self.dir.join(name);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Writes `summary.json` through a temporary file and a rename, so a reader never
    /// sees half a summary.
    /// Writes a text file into the run directory (e.g. the sweep file the run used).
    pub fn write_text(&self, name: &str, text: &str) -> Result<()> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    }

    pub fn write_summary(&self, summary: &impl Serialize) -> Result<()> {
        let tmp = self.dir.join("summary.json.tmp");
        let text = serde_json::to_string_pretty(summary).expect("summaries serialize") + "\n";
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        let path = self.dir.join("summary.json");
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `runs/<name>-<UTC yyyymmdd-hhmmss>`.
pub fn default_run_dir(name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("runs").join(format!("{name}-{}", utc_stamp(secs)))
}

/// `yyyymmdd-hhmmss` for Unix time `secs` (civil-from-days, H. Hinnant's algorithm).
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_795_752_245), "20261127-040405");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("0.5"), "0.5");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn a_directory_holding_a_run_is_refused() {
        let dir = std::env::temp_dir().join(format!("popsweep-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut log = RunLog::create(&dir).unwrap();
        let record = TrialRecord {
            state: crate::storage::TrialState::Complete,
            ..TrialRecord::default()
        };
        log.append_trial(&record).unwrap();
        log.sync().unwrap();
        assert!(RunLog::create(&dir).is_err());
        let text = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
        assert_eq!(
            text,
            "{\"number\":0,\"params\":{},\"state\":\"complete\",\"epochs\":0,\"rungs\":[],\"history\":[]}\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
