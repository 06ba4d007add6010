//! A run directory's derived files: `summary.json` (written once at the end,
//! atomically), `trials.csv`, and the sweep file the run used. The trials themselves are
//! recorded through the study's storage ([`crate::storage::RunStorage`]).

use crate::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The sweep's latest progress line while it runs (removed when it ends).
pub const PROGRESS: &str = "progress.json";

pub struct RunFiles {
    dir: PathBuf,
}

impl RunFiles {
    /// The files of the run in `dir` (which the run's storage created).
    pub fn new(dir: &Path) -> RunFiles {
        RunFiles {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// Writes a text file into the run directory (e.g. the sweep file the run used).
    pub fn write_text(&self, name: &str, text: &str) -> Result<()> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    }

    /// Replaces `progress.json` — the sweep's latest progress line, which `popsweep
    /// dashboard` shows while the sweep runs — through a temporary file and a rename.
    pub fn write_progress(&self, line: &str) -> Result<()> {
        let tmp = self.dir.join("progress.json.tmp");
        let text = serde_json::json!({ "line": line }).to_string();
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        let path = self.dir.join(PROGRESS);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Writes `summary.json` through a temporary file and a rename, so a reader never
    /// sees half a summary.
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
}
