//! Degenerate data refused before training, with the numbers.
//!
//! A 10-row CSV once trained on 10 rows, validated on none and reported a test loss of 0;
//! a one-class CSV scored accuracy 1.0; labels {0..9, 1000} made 1,001 classes. Each is a
//! meaningless result with exit 0, so each is refused (or, for sparse labels, remapped
//! with a warning that says how) before any trial trains.

use super::split::{class_split, SplitFractions};
use super::{Dataset, Task};
use crate::error::{Error, Result};

/// Fewest rows a training split may have.
pub const MIN_TRAIN_ROWS: usize = 10;
/// Fewest rows a validation or test split may have: below it, one row's luck decides a
/// score.
pub const MIN_SCORED_ROWS: usize = 5;

fn refuse(file: &str, message: String) -> Error {
    Error::Data {
        file: file.into(),
        location: "data".into(),
        message,
    }
}

/// Labels as dense class indices, and regression targets that vary. Classification with
/// fewer than 2 classes is refused; labels that leave class indices unused (`{1, 2, 3}`,
/// `{0..9, 1000}`) are remapped to `0..K` in increasing order, in `data` and in a shipped
/// `test` set alike, and the returned warning says how.
pub fn usable(
    data: &mut Dataset,
    test: Option<&mut Dataset>,
    file: &str,
) -> Result<Option<String>> {
    if data.task == Task::Regression {
        return varying_targets(data, file).map(|()| None);
    }
    let mut seen = vec![false; data.n_classes];
    for d in std::iter::once(&*data).chain(test.as_deref()) {
        for &l in &d.labels {
            seen[l as usize] = true;
        }
    }
    let present: Vec<u32> = (0..seen.len() as u32)
        .filter(|&c| seen[c as usize])
        .collect();
    if present.len() < 2 {
        return Err(refuse(
            file,
            format!(
                "{} rows of {}: a classifier needs at least 2 classes",
                data.len(),
                match present.first() {
                    Some(c) => format!("one class (label {c})"),
                    None => "no class".into(),
                }
            ),
        ));
    }
    if present.len() == seen.len() {
        return Ok(None);
    }
    let mut index = vec![0u32; seen.len()];
    for (k, &c) in present.iter().enumerate() {
        index[c as usize] = k as u32;
    }
    for d in std::iter::once(data).chain(test) {
        for l in &mut d.labels {
            *l = index[*l as usize];
        }
        d.n_classes = present.len();
    }
    let shown: Vec<String> = present
        .iter()
        .enumerate()
        .filter(|&(k, &c)| k as u32 != c)
        .take(8)
        .map(|(k, c)| format!("{c} → {k}"))
        .collect();
    Ok(Some(format!(
        "{file}: labels are {} classes spread over 0..{}; remapped to 0..{} in increasing \
         order ({}{})",
        present.len(),
        seen.len() - 1,
        present.len() - 1,
        shown.join(", "),
        if shown.len() == 8 { ", …" } else { "" }
    )))
}

/// Refuses a regression target column that never changes: there is nothing to learn, and
/// every model would score a perfect 0 loss after standardisation.
fn varying_targets(data: &Dataset, file: &str) -> Result<()> {
    let columns = data.n_classes.max(1);
    for c in 0..columns {
        let mut column = data.values.iter().skip(c).step_by(columns);
        let Some(&first) = column.next() else {
            break;
        };
        if column.all(|&v| v == first) {
            return Err(refuse(
                file,
                format!(
                    "target column {c} is {first} in all {} rows: nothing to learn",
                    data.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a split of `data` by `fractions` (as [`super::split_stratified`] makes it) that
/// leaves a split too small, or a class absent from the training or validation split (or
/// from the test split when it has rows).
pub fn split_sizes(data: &Dataset, fractions: SplitFractions, file: &str) -> Result<()> {
    let strata = data.strata();
    let groups = strata.iter().max().map_or(0, |&m| m as usize + 1);
    let mut per_class = vec![0usize; groups];
    for &s in &strata {
        per_class[s as usize] += 1;
    }
    let mut totals = [0usize; 3];
    for (class, &n) in per_class.iter().enumerate() {
        let parts = class_split(n, fractions);
        for (total, part) in totals.iter_mut().zip(parts) {
            *total += part;
        }
        let missing: Vec<&str> = ["train", "validation", "test"]
            .iter()
            .zip(parts)
            .zip([fractions.train, fractions.val, fractions.test])
            .filter(|&((_, part), fraction)| part == 0 && fraction > 0.0)
            .map(|((name, _), _)| *name)
            .collect();
        if data.task == Task::Classification && n > 0 && !missing.is_empty() {
            return Err(refuse(
                file,
                format!(
                    "class {class} has {n} rows, none of them in the {} split; every class \
                     needs rows in every split (add rows of it, or drop it)",
                    missing.join(" and ")
                ),
            ));
        }
    }
    let minimums = [MIN_TRAIN_ROWS, MIN_SCORED_ROWS, MIN_SCORED_ROWS];
    for ((name, total), (min, fraction)) in
        ["train", "validation", "test"]
            .iter()
            .zip(totals)
            .zip(
                minimums
                    .iter()
                    .zip([fractions.train, fractions.val, fractions.test]),
            )
    {
        if fraction > 0.0 && total < *min {
            return Err(refuse(
                file,
                format!(
                    "{} rows split {}/{}/{} (train/validation/test): the {name} split needs \
                     at least {min} rows",
                    data.len(),
                    totals[0],
                    totals[1],
                    totals[2]
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a shipped test set too small to score, or holding classes the training set
/// lacks (no model can learn them).
pub fn shipped_test(train: &Dataset, test: &Dataset, file: &str) -> Result<()> {
    if test.len() < MIN_SCORED_ROWS {
        return Err(refuse(
            file,
            format!(
                "the test set has {} rows; it needs at least {MIN_SCORED_ROWS}",
                test.len()
            ),
        ));
    }
    let trained = train.class_counts();
    if let Some(&l) = test
        .labels
        .iter()
        .find(|&&l| trained.get(l as usize).is_none_or(|&n| n == 0))
    {
        return Err(refuse(
            file,
            format!("the test set has class {l}, which the training set lacks"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(labels: &[u32]) -> Dataset {
        Dataset {
            features: vec![0.0; labels.len()],
            labels: labels.to_vec(),
            n_features: 1,
            n_classes: labels.iter().max().map_or(0, |&m| m as usize + 1),
            ..Dataset::default()
        }
    }

    #[test]
    fn one_class_is_refused_and_sparse_labels_are_remapped() {
        let e = usable(&mut labelled(&[3; 40]), None, "d.csv").unwrap_err();
        assert!(
            e.to_string().contains("40 rows of one class (label 3)"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        let mut labels: Vec<u32> = (0..10).cycle().take(100).collect();
        labels.push(1000);
        let mut data = labelled(&labels);
        let warning = usable(&mut data, None, "d.csv").unwrap().unwrap();
        assert!(
            warning.contains("11 classes spread over 0..1000"),
            "{warning}"
        );
        assert!(warning.contains("1000 → 10"), "{warning}");
        assert_eq!((data.n_classes, data.labels[100]), (11, 10));
        assert_eq!(usable(&mut labelled(&[0, 1, 0]), None, "d").unwrap(), None);
    }

    #[test]
    fn small_splits_and_classes_missing_from_a_split_are_refused() {
        let tenths = SplitFractions::default();
        let e = split_sizes(&labelled(&[0, 1, 0, 1, 0, 1, 0, 1, 0, 1]), tenths, "d")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("class 0 has 5 rows, none of them in the test split"),
            "{e}"
        );
        let labels: Vec<u32> = (0..2).cycle().take(30).collect();
        let e = split_sizes(&labelled(&labels), tenths, "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("30 rows split 22/4/4"), "{e}");
        let labels: Vec<u32> = (0..2).cycle().take(100).collect();
        assert!(split_sizes(&labelled(&labels), tenths, "d").is_ok());
    }

    #[test]
    fn constant_regression_targets_are_refused() {
        let data = Dataset {
            features: vec![0.0; 20],
            values: (0..20).map(|i| [1.5, i as f32][i % 2]).collect(),
            n_features: 1,
            n_classes: 2,
            task: Task::Regression,
            ..Dataset::default()
        };
        let e = usable(&mut data.clone(), None, "r.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("target column 0 is 1.5 in all 10 rows"), "{e}");
    }
}
