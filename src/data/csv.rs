//! Labelled CSV files: one row per sample, numeric feature columns and one label column
//! (chosen by header name or by 0-based index; the last column by default) — an integer
//! class, or a real value for regression. A first row with any non-numeric field is a
//! header. Errors name the file, line and column.

use super::{Dataset, Task};
use crate::error::{Error, Result};

/// Which column holds the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    Last,
    Index(usize),
    Name(String),
}

/// Parses `text` (from `file`, named in errors).
pub fn parse(text: &str, file: &str, label: &LabelColumn, task: Task) -> Result<Dataset> {
    let bad = |line: usize, message: String| Error::Data {
        file: file.into(),
        location: format!("line {line}"),
        message,
    };
    let mut rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split(',').map(str::trim).collect::<Vec<&str>>()));
    let Some((first_line, first)) = rows.next() else {
        return Err(bad(1, "the file has no rows".into()));
    };
    let is_header = first.iter().any(|f| f.parse::<f64>().is_err());
    let width = first.len();
    let label_at = match label {
        LabelColumn::Last => width - 1,
        LabelColumn::Index(i) if *i < width => *i,
        LabelColumn::Index(i) => {
            return Err(bad(
                first_line,
                format!("label column {i} does not exist ({width} columns)"),
            ))
        }
        LabelColumn::Name(name) if is_header => {
            first.iter().position(|h| h == name).ok_or_else(|| {
                bad(
                    first_line,
                    format!("no column named `{name}` in the header"),
                )
            })?
        }
        LabelColumn::Name(name) => {
            return Err(bad(
                first_line,
                format!("label column `{name}` given by name, but the file has no header row"),
            ))
        }
    };
    let (mut features, mut labels, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let data_rows = std::iter::once((first_line, first))
        .filter(|_| !is_header)
        .chain(rows);
    for (line, fields) in data_rows {
        if fields.len() != width {
            return Err(bad(
                line,
                format!(
                    "expected {width} comma-separated values, found {}",
                    fields.len()
                ),
            ));
        }
        // A feature or a regression target: a finite number, or an error naming it.
        let finite = |column: usize, field: &str, what: &str| -> Result<f32> {
            field
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| {
                    bad(
                        line,
                        format!(
                            "column {}: {what}`{field}` is not a finite number",
                            column + 1
                        ),
                    )
                })
        };
        for (column, field) in fields.iter().enumerate() {
            if column == label_at && task == Task::Regression {
                values.push(finite(column, field, "target ")?);
            } else if column == label_at {
                let l: u32 = field.parse().map_err(|_| {
                    bad(
                        line,
                        format!(
                            "column {}: label `{field}` is not a non-negative integer",
                            column + 1
                        ),
                    )
                })?;
                if l >= super::MAX_CLASSES {
                    return Err(bad(line, super::label_out_of_range(column + 1, l)));
                }
                labels.push(l);
            } else {
                features.push(finite(column, field, "")?);
            }
        }
    }
    if labels.is_empty() && values.is_empty() {
        return Err(bad(
            first_line,
            "the file has a header but no data rows".into(),
        ));
    }
    let n_classes = match task {
        Task::Classification => labels.iter().copied().max().map_or(0, |m| m as usize + 1),
        Task::Regression => 1,
    };
    Ok(Dataset {
        features,
        labels,
        values,
        n_features: width - 1,
        n_classes,
        task,
        image: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_by_name_index_or_last() {
        let text = "a,class,b\n1.5,2,3\n4,0,5\n";
        let d = parse(
            text,
            "f.csv",
            &LabelColumn::Name("class".into()),
            Task::Classification,
        )
        .unwrap();
        assert_eq!(
            (d.features.clone(), d.labels.clone(), d.n_classes),
            (vec![1.5, 3.0, 4.0, 5.0], vec![2, 0], 3)
        );
        let d = parse(
            "1,2,0\n3,4,1\n",
            "f.csv",
            &LabelColumn::Last,
            Task::Classification,
        )
        .unwrap();
        assert_eq!((d.n_features, d.labels.clone()), (2, vec![0, 1]));
        let d = parse(
            "7,1,2\n8,0,3\n",
            "f.csv",
            &LabelColumn::Index(1),
            Task::Classification,
        )
        .unwrap();
        assert_eq!(d.features, vec![7.0, 2.0, 8.0, 3.0]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse(
            "a,label\n1,0\n2,x\n",
            "f.csv",
            &LabelColumn::Name("label".into()),
            Task::Classification,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 3: column 2: label `x` is not a non-negative integer"
        );
        let e = parse(
            "a,label\n1,0\n2,4000000000\n",
            "f.csv",
            &LabelColumn::Index(1),
            Task::Classification,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("f.csv: line 3: column 2: label 4000000000 is out of range"),
            "{e}"
        );
        let e = parse(
            "1,0\n2,3,4\n",
            "f.csv",
            &LabelColumn::Last,
            Task::Classification,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 2: expected 2 comma-separated values, found 3"
        );
        let e = parse(
            "1,0\n",
            "f.csv",
            &LabelColumn::Name("y".into()),
            Task::Classification,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no header row"));
        let e = parse(
            "a,y\n1,0.5\n2,inf\n",
            "f.csv",
            &LabelColumn::Last,
            Task::Regression,
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "f.csv: line 3: column 2: target `inf` is not a finite number"
        );
    }

    #[test]
    fn regression_targets_are_real_values() {
        let d = parse(
            "a,y,b\n1,0.5,2\n3,-2.25,4\n",
            "f.csv",
            &LabelColumn::Name("y".into()),
            Task::Regression,
        )
        .unwrap();
        assert_eq!((d.len(), d.n_classes), (2, 1));
        assert_eq!(
            (d.features, d.values),
            (vec![1.0, 2.0, 3.0, 4.0], vec![0.5, -2.25])
        );
    }
}
