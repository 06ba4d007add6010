//! The digits data set (1,797 8×8 images, 10 classes), embedded in the binary so that the
//! default sweep needs nothing outside it. Origin, licence and checksum: `data/digits/README.md`.

use super::csv::LabelColumn;
use super::Dataset;
use crate::error::{Error, Result};
use std::io::Read;

/// The file exactly as scikit-learn 1.9.1 ships it (sha256 in `data/digits/README.md`).
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits/digits.csv.gz");

const SOURCE: &str = "<embedded digits.csv.gz>";
const PIXELS: usize = 64;
const CLASSES: usize = 10;
/// Pixel values are block counts 0–16; dividing by 16 puts them in [0, 1].
const PIXEL_MAX: f32 = 16.0;

/// Decodes the embedded data set.
pub fn load() -> Result<Dataset> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| Error::Data {
            file: SOURCE.into(),
            location: "gzip stream".into(),
            message: e.to_string(),
        })?;
    parse_csv(&text, SOURCE)
}

/// Parses rows of 64 pixel counts followed by the label (the generic CSV reader, with the
/// shape checked and the counts scaled to [0, 1]).
pub fn parse_csv(text: &str, file: &str) -> Result<Dataset> {
    let mut data = super::csv::parse(text, file, &LabelColumn::Last, super::Task::Classification)?;
    if data.n_features != PIXELS || data.n_classes > CLASSES {
        return Err(Error::Data {
            file: file.into(),
            location: "line 1".into(),
            message: format!(
                "expected {PIXELS} pixels and labels 0..=9, found {} columns and {} classes",
                data.n_features + 1,
                data.n_classes
            ),
        });
    }
    data.n_classes = CLASSES;
    data.features.iter_mut().for_each(|v| *v /= PIXEL_MAX);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn embedded_digits_match_published_checksum() {
        let digest = Sha256::digest(DIGITS_CSV_GZ);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
        );
        let data = load().unwrap();
        assert_eq!(data.len(), 1797);
        assert_eq!(data.features.len(), 1797 * 64);
        // scikit-learn documents about 180 samples per class.
        assert!(data
            .class_counts()
            .iter()
            .all(|&c| (170..=190).contains(&c)));
        assert!(data.features.iter().all(|&x| (0.0..=1.0).contains(&x)));
    }

    #[test]
    fn malformed_row_names_line_and_column() {
        let mut row = vec!["0"; 64];
        row[3] = "x";
        let text = format!("{},1\n", vec!["0"; 64].join(",")) + &row.join(",") + ",2\n";
        let err = parse_csv(&text, "d.csv").unwrap_err().to_string();
        assert_eq!(err, "d.csv: line 2: column 4: `x` is not a finite number");
    }
}
