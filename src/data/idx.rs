//! IDX files (the MNIST family): big-endian header, then raw `u8` values. Plain or gzip
//! (detected by its magic bytes, not by the file name). Errors name the file and the
//! byte offset.
//!
//! Images: magic `0x00000803`, count, rows, cols (16 header bytes), then row-major pixels.
//! Labels: magic `0x00000801`, count (8 header bytes), then one byte per label.

use super::Dataset;
use crate::error::{Error, Result};
use std::path::Path;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// Pixels are 0–255; dividing by 255 puts them in [0, 1].
const PIXEL_MAX: f32 = 255.0;

fn bad(path: &Path, offset: usize, message: String) -> Error {
    Error::Data {
        file: path.display().to_string(),
        location: format!("byte {offset}"),
        message,
    }
}

fn header(path: &Path, bytes: &[u8], words: usize, magic: u32) -> Result<Vec<usize>> {
    let word = |i: usize| {
        u32::from_be_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    };
    if bytes.len() >= 4 && word(0) != magic {
        return Err(bad(
            path,
            0,
            format!("magic {:#010x}, expected {magic:#010x}", word(0)),
        ));
    }
    if bytes.len() < 4 * words {
        return Err(bad(
            path,
            bytes.len(),
            format!("file ends inside the {}-byte header", 4 * words),
        ));
    }
    Ok((1..words).map(|i| word(i) as usize).collect())
}

/// `(count, (rows, cols), pixels)` of an image file.
pub fn read_images(path: &Path) -> Result<(usize, (usize, usize), Vec<u8>)> {
    let bytes = super::read_file(path)?;
    let dims = header(path, &bytes, 4, IMAGES_MAGIC)?;
    let (count, pixels) = (dims[0], dims[1] * dims[2]);
    // Counts from a damaged header can multiply past usize: a size no file has.
    let want = count.checked_mul(pixels).and_then(|n| n.checked_add(16));
    if want != Some(bytes.len()) {
        let need = want.map_or("more bytes than any file has".into(), |w| {
            format!("{w} bytes")
        });
        return Err(bad(
            path,
            want.map_or(16, |w| bytes.len().min(w)),
            format!(
                "{count} images of {}×{} need {need}, the file has {}",
                dims[1],
                dims[2],
                bytes.len()
            ),
        ));
    }
    Ok((count, (dims[1], dims[2]), bytes[16..].to_vec()))
}

/// The labels of a label file.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = super::read_file(path)?;
    let count = header(path, &bytes, 2, LABELS_MAGIC)?[0];
    if bytes.len() != 8 + count {
        return Err(bad(
            path,
            bytes.len().min(8 + count),
            format!(
                "{count} labels need {} bytes, the file has {}",
                8 + count,
                bytes.len()
            ),
        ));
    }
    Ok(bytes[8..].to_vec())
}

/// An image file and its label file as a data set (pixels scaled to [0, 1]; classes =
/// largest label + 1).
pub fn load_pair(images: &Path, labels: &Path) -> Result<Dataset> {
    let (count, (rows, cols), data) = read_images(images)?;
    let pixels = rows * cols;
    super::check_decoded(images, data.len(), std::mem::size_of::<f32>())?;
    let labels_raw = read_labels(labels)?;
    if labels_raw.len() != count {
        return Err(bad(
            labels,
            4,
            format!(
                "{} labels for {count} images in {}",
                labels_raw.len(),
                images.display()
            ),
        ));
    }
    let n_classes = labels_raw
        .iter()
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    Ok(Dataset {
        features: data.iter().map(|&p| f32::from(p) / PIXEL_MAX).collect(),
        labels: labels_raw.iter().map(|&l| u32::from(l)).collect(),
        n_features: pixels,
        n_classes,
        image: Some(super::ImageShape {
            channels: 1,
            height: rows,
            width: cols,
        }),
        ..Dataset::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str, bytes: &[u8], gzip: bool) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("popsweep-idx-{}-{name}", std::process::id()));
        let data = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        } else {
            bytes.to_vec()
        };
        std::fs::write(&path, data).unwrap();
        path
    }

    fn images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut b: Vec<u8> = [IMAGES_MAGIC, count, rows, cols]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        b.extend_from_slice(pixels);
        b
    }

    #[test]
    fn reads_plain_and_gzip_pairs() {
        let img = images(2, 1, 3, &[0, 255, 51, 10, 20, 30]);
        let mut lbl: Vec<u8> = [LABELS_MAGIC, 2]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        lbl.extend_from_slice(&[3, 1]);
        for gzip in [false, true] {
            let (i, l) = (
                temp(&format!("i{gzip}"), &img, gzip),
                temp(&format!("l{gzip}"), &lbl, gzip),
            );
            let d = load_pair(&i, &l).unwrap();
            assert_eq!((d.len(), d.n_features, d.n_classes), (2, 3, 4));
            assert_eq!(d.features[1], 1.0);
            assert!((d.features[2] - 0.2).abs() < 1e-7);
            assert_eq!(d.labels, vec![3, 1]);
        }
    }

    #[test]
    fn errors_name_file_and_offset() {
        let truncated = temp("trunc", &images(3, 2, 2, &[0; 5]), false);
        let e = read_images(&truncated).unwrap_err().to_string();
        assert!(
            e.contains("popsweep-idx") && e.contains("byte 21") && e.contains("need 28 bytes"),
            "{e}"
        );
        let wrong = temp("magic", &[0, 0, 8, 1, 0, 0, 0, 0], false);
        let e = read_images(&wrong).unwrap_err().to_string();
        assert!(
            e.contains("byte 0: magic 0x00000801, expected 0x00000803"),
            "{e}"
        );
    }
}
