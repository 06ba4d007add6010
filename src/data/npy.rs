//! NumPy `.npy` files (format versions 1–3): a features array `(N, ...)` — every axis after
//! the first flattened into features, so `(N, 28, 28)` images become 784 features — and a
//! labels array `(N,)` of non-negative integers. C order, little-endian (or byte-sized)
//! dtypes: features `f4`, `f8`, `u1`, `i1`, `i2`, `i4`, `i8`; labels any of the integer ones.
//! Errors name the file and the byte offset.

use super::{Dataset, Task};
use crate::error::{Error, Result};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

fn bad(path: &Path, offset: usize, message: String) -> Error {
    Error::Data {
        file: path.display().to_string(),
        location: format!("byte {offset}"),
        message,
    }
}

/// Header text quoted in an error: control characters escaped and long runs cut, so that a
/// damaged header (its padding, its newline) still makes a one-line message.
fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(32)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 32 {
        out.push('…');
    }
    out
}

/// A parsed array: dtype code (e.g. `f4`), shape, and the data bytes.
struct Array {
    dtype: String,
    shape: Vec<usize>,
    data_offset: usize,
}

/// Parses the header: `\x93NUMPY`, version, header length, then a Python dict literal like
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (100, 64), }`.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<Array> {
    if !bytes.starts_with(MAGIC) {
        return Err(bad(path, 0, "not a .npy file (no \\x93NUMPY magic)".into()));
    }
    let major = *bytes
        .get(6)
        .ok_or_else(|| bad(path, 6, "file ends in the magic".into()))?;
    let (len, start) = match major {
        1 if bytes.len() >= 10 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        1..=3 => {
            return Err(bad(
                path,
                bytes.len(),
                "file ends in the header length".into(),
            ))
        }
        v => {
            return Err(bad(
                path,
                6,
                format!("format version {v} is not supported (1-3)"),
            ))
        }
    };
    let header = bytes.get(start..start + len).ok_or_else(|| {
        bad(
            path,
            bytes.len(),
            format!("file ends inside the {len}-byte header"),
        )
    })?;
    let header =
        std::str::from_utf8(header).map_err(|_| bad(path, start, "header is not text".into()))?;
    let value = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = value("descr")
        .and_then(|v| v.strip_prefix('\'')?.split('\'').next())
        .ok_or_else(|| bad(path, start, "header has no 'descr'".into()))?;
    if value("fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad(
            path,
            start,
            "Fortran-order arrays are not supported (save with C order)".into(),
        ));
    }
    let shape_text = value("shape")
        .and_then(|v| v.strip_prefix('(')?.split(')').next())
        .ok_or_else(|| bad(path, start, "header has no 'shape'".into()))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>().map_err(|_| {
                bad(
                    path,
                    start,
                    format!("shape entry `{}` is not a size", shown(s)),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // A damaged shape is refused before anything is sized by it: once the element count
    // (zeros read as ones) times the largest item fits, so does every product of entries.
    let fits = shape
        .iter()
        .try_fold(8usize, |n, &d| n.checked_mul(d.max(1)))
        .is_some();
    if !fits {
        return Err(bad(
            path,
            start,
            format!("shape {shape:?} has more elements than any file can hold"),
        ));
    }
    let dtype = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') => descr[1..].to_string(),
        Some(b'>') => {
            return Err(bad(
                path,
                start,
                format!("big-endian dtype `{}` is not supported", shown(descr)),
            ))
        }
        _ => descr.to_string(),
    };
    Ok(Array {
        dtype,
        shape,
        data_offset: start + len,
    })
}

fn item_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "f4" | "i4" | "u4" => 4,
        "f8" | "i8" | "u8" => 8,
        "i2" | "u2" => 2,
        "u1" | "i1" | "b1" => 1,
        _ => return None,
    })
}

/// Every element as f64, in file order.
fn values(path: &Path, bytes: &[u8], a: &Array) -> Result<Vec<f64>> {
    let size = item_size(&a.dtype).ok_or_else(|| {
        bad(
            path,
            a.data_offset,
            format!(
                "dtype `{}` is not supported (f4, f8, u1, i1, i2, u2, i4, u4, i8, u8)",
                shown(&a.dtype)
            ),
        )
    })?;
    let count: usize = a.shape.iter().product();
    let data = &bytes[a.data_offset.min(bytes.len())..];
    if data.len() < count * size {
        return Err(bad(
            path,
            bytes.len(),
            format!(
                "shape {:?} needs {} data bytes, the file has {}",
                a.shape,
                count * size,
                data.len()
            ),
        ));
    }
    super::check_decoded(path, count, std::mem::size_of::<f64>())?;
    Ok(data[..count * size]
        .chunks_exact(size)
        .map(|c| match a.dtype.as_str() {
            "f4" => f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))),
            "f8" => f64::from_le_bytes(c.try_into().expect("8 bytes")),
            "i4" => f64::from(i32::from_le_bytes(c.try_into().expect("4 bytes"))),
            "u4" => f64::from(u32::from_le_bytes(c.try_into().expect("4 bytes"))),
            "i8" => i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64,
            "u8" => u64::from_le_bytes(c.try_into().expect("8 bytes")) as f64,
            "i2" => f64::from(i16::from_le_bytes(c.try_into().expect("2 bytes"))),
            "u2" => f64::from(u16::from_le_bytes(c.try_into().expect("2 bytes"))),
            "i1" => f64::from(c[0] as i8),
            _ => f64::from(c[0]),
        })
        .collect())
}

/// Every element of the array as f32; a non-finite one is an error naming its byte offset.
fn finite_values(path: &Path, bytes: &[u8], a: &Array, what: &str) -> Result<Vec<f32>> {
    let item = item_size(&a.dtype).unwrap_or(1);
    values(path, bytes, a)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_finite() {
                Ok(v as f32)
            } else {
                Err(bad(
                    path,
                    a.data_offset + i * item,
                    format!("non-finite {what} {v} at element {i}"),
                ))
            }
        })
        .collect()
}

/// Features from `features` and labels from `labels`: class indices, or for regression
/// real values (`(rows,)` or `(rows, columns)`).
pub fn load_pair(features: &Path, labels: &Path, task: Task) -> Result<Dataset> {
    let fb = super::read_file(features)?;
    let lb = super::read_file(labels)?;
    let (fa, la) = (parse_header(features, &fb)?, parse_header(labels, &lb)?);
    if fa.shape.len() < 2 {
        return Err(bad(
            features,
            0,
            format!(
                "features need shape (rows, features...), got {:?}",
                fa.shape
            ),
        ));
    }
    let label_shape_ok = match task {
        Task::Classification => la.shape.len() == 1,
        Task::Regression => la.shape.len() == 1 || la.shape.len() == 2 && la.shape[1] > 0,
    };
    if !label_shape_ok {
        let want = match task {
            Task::Classification => "(rows,)",
            Task::Regression => "(rows,) or (rows, columns)",
        };
        return Err(bad(
            labels,
            0,
            format!("labels need shape {want}, got {:?}", la.shape),
        ));
    }
    if fa.shape[0] != la.shape[0] {
        return Err(bad(
            labels,
            0,
            format!(
                "{} labels for {} feature rows in {}",
                la.shape[0],
                fa.shape[0],
                features.display()
            ),
        ));
    }
    if la.dtype.starts_with('f') && task == Task::Classification {
        return Err(bad(
            labels,
            la.data_offset,
            format!("labels must be integers, got dtype `{}`", shown(&la.dtype)),
        ));
    }
    let n_features: usize = fa.shape[1..].iter().product();
    // `(N, H, W)` and `(N, C, H, W)` arrays are images of that shape.
    let image = match fa.shape[1..] {
        [height, width] => Some(super::ImageShape {
            channels: 1,
            height,
            width,
        }),
        [channels, height, width] => Some(super::ImageShape {
            channels,
            height,
            width,
        }),
        _ => None,
    };
    let feature_values = finite_values(features, &fb, &fa, "value")?;
    if task == Task::Regression {
        return Ok(Dataset {
            features: feature_values,
            values: finite_values(labels, &lb, &la, "target")?,
            n_features,
            n_classes: la.shape.get(1).copied().unwrap_or(1),
            task,
            image,
            ..Dataset::default()
        });
    }
    let mut label_values = Vec::with_capacity(la.shape[0]);
    for (i, v) in values(labels, &lb, &la)?.into_iter().enumerate() {
        if v < 0.0 || v >= f64::from(super::MAX_CLASSES) {
            let item = item_size(&la.dtype).unwrap_or(1);
            return Err(bad(
                labels,
                la.data_offset + i * item,
                format!(
                    "label {v} at row {i} is not a class index (0 to {})",
                    super::MAX_CLASSES - 1
                ),
            ));
        }
        label_values.push(v as u32);
    }
    let n_classes = label_values.iter().max().map_or(0, |&m| m as usize + 1);
    Ok(Dataset {
        features: feature_values,
        labels: label_values,
        n_features,
        n_classes,
        image,
        ..Dataset::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 .npy file as numpy writes it (header padded to a multiple of 64).
    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("popsweep-npy-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_float_images_and_integer_labels() {
        let feats: Vec<u8> = [0.5f32, 1.0, -2.0, 3.5, 0.0, 1.5, 2.5, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f = write("f.npy", &npy("<f4", "(2, 2, 2)", &feats));
        let labels: Vec<u8> = [2i64, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let l = write("l.npy", &npy("<i8", "(2,)", &labels));
        let d = load_pair(&f, &l, Task::Classification).unwrap();
        assert_eq!((d.len(), d.n_features, d.n_classes), (2, 4, 3));
        assert_eq!(d.features[..4], [0.5, 1.0, -2.0, 3.5]);
        assert_eq!(d.labels, vec![2, 0]);
    }

    #[test]
    fn errors_name_the_file_and_offset() {
        let f = write("bad-f.npy", &npy("<f4", "(2, 3)", &[0u8; 8]));
        let l = write("bad-l.npy", &npy("|u1", "(2,)", &[0, 1]));
        let err = load_pair(&f, &l, Task::Classification)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad-f.npy") && err.contains("needs 24 data bytes"),
            "{err}"
        );
        // The padded header ends at byte 128: the first element is the bad one.
        let f = write(
            "nan.npy",
            &npy(
                "<f8",
                "(1, 2)",
                &[f64::NAN.to_le_bytes(), 1f64.to_le_bytes()].concat(),
            ),
        );
        let l1 = write("one.npy", &npy("|u1", "(1,)", &[0]));
        let err = load_pair(&f, &l1, Task::Classification)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("byte 128") && err.contains("non-finite"),
            "{err}"
        );
        // A shape whose product passes usize is refused, not wrapped or panicked on.
        let huge = write(
            "huge.npy",
            &npy("<f4", "(1, 4294967296, 4294967296)", &[0u8; 8]),
        );
        let err = load_pair(&huge, &l1, Task::Classification)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("more elements than any file can hold"),
            "{err}"
        );
        let err = load_pair(&write("x.npy", b"PK\x03\x04"), &l1, Task::Classification)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a .npy file"), "{err}");
        let f2 = write("ok.npy", &npy("<f4", "(2, 1)", &[0u8; 8]));
        let err = load_pair(&f2, &l1, Task::Classification)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 labels for 2 feature rows"), "{err}");
        let lf = write("lf.npy", &npy("<f4", "(2,)", &[0u8; 8]));
        assert!(load_pair(&f2, &lf, Task::Classification)
            .unwrap_err()
            .to_string()
            .contains("must be integers"));
    }

    #[test]
    fn regression_reads_real_targets_in_one_or_more_columns() {
        let f = write("rf.npy", &npy("<f4", "(2, 1)", &[0u8; 8]));
        let y: Vec<u8> = [0.5f64, -1.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let d = load_pair(
            &f,
            &write("ry.npy", &npy("<f8", "(2,)", &y)),
            Task::Regression,
        )
        .unwrap();
        assert_eq!(
            (d.values.clone(), d.n_classes, d.len()),
            (vec![0.5, -1.5], 1, 2)
        );
        let d = load_pair(
            &f,
            &write("ry2.npy", &npy("<f8", "(2, 1)", &y)),
            Task::Regression,
        )
        .unwrap();
        assert_eq!((d.n_classes, d.len(), d.task), (1, 2, Task::Regression));
        let inf: Vec<u8> = [0.5f64, f64::INFINITY]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let err = load_pair(
            &f,
            &write("ry3.npy", &npy("<f8", "(2,)", &inf)),
            Task::Regression,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ry3.npy") && err.contains("non-finite target"),
            "{err}"
        );
    }
}
