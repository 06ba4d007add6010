//! The seeded, stratified train / validation / test split.
//!
//! The held-out test split is reachable by construction only through
//! [`HeldOutTest::final_evaluation`], which consumes it: tuning code receives a
//! [`TuningData`] that holds no test rows, and the type system stops anyone from reading
//! the test rows twice or "just peeking" during the sweep.

use super::Dataset;
use crate::rng::{permutation, Stream};

/// Fractions of each class that go to train, validation and test (default 70/15/15).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitFractions {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        SplitFractions {
            train: 0.70,
            val: 0.15,
            test: 0.15,
        }
    }
}

/// What the tuner may see: training and validation rows only.
#[derive(Clone, Debug)]
pub struct TuningData {
    pub train: Dataset,
    pub val: Dataset,
}

/// The test rows, sealed until the one final evaluation.
#[derive(Debug)]
pub struct HeldOutTest {
    rows: Dataset,
}

impl HeldOutTest {
    /// How many rows are held out (the size is not a leak; the contents would be).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The same rows transformed by a normaliser fitted on the training split (the rows
    /// stay sealed: nothing about them comes back).
    pub fn normalized(mut self, normalizer: &super::normalize::Normalizer) -> Self {
        normalizer.apply(&mut self.rows);
        self
    }

    /// The one door to the test rows. Consuming `self` makes a second evaluation a
    /// compile error rather than a convention.
    pub fn final_evaluation<R>(self, evaluate: impl FnOnce(&Dataset) -> R) -> R {
        evaluate(&self.rows)
    }
}

/// Splits `data` per class, so every split keeps the class proportions. Within a class,
/// rows are permuted by `(seed, class)`; the first `round(n·train)` go to train, the next
/// `round(n·val)` to validation, the rest to test. Rows keep their original order inside
/// each split.
pub fn split_stratified(
    data: &Dataset,
    fractions: SplitFractions,
    seed: u64,
) -> (TuningData, HeldOutTest) {
    let strata = data.strata();
    let groups = strata.iter().max().map_or(0, |&m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (i, &label) in strata.iter().enumerate() {
        by_class[label as usize].push(i);
    }
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (class, rows) in by_class.iter().enumerate() {
        let order = permutation(rows.len(), seed, Stream::Split, class as u32);
        let [n_train, n_val, _] = class_split(rows.len(), fractions);
        for (rank, &k) in order.iter().enumerate() {
            let target = if rank < n_train {
                &mut train
            } else if rank < n_train + n_val {
                &mut val
            } else {
                &mut test
            };
            target.push(rows[k]);
        }
    }
    for part in [&mut train, &mut val, &mut test] {
        part.sort_unstable();
    }
    (
        TuningData {
            train: data.subset(&train),
            val: data.subset(&val),
        },
        HeldOutTest {
            rows: data.subset(&test),
        },
    )
}

/// How many of a class's `n` rows go to train, validation and test.
pub fn class_split(n: usize, fractions: SplitFractions) -> [usize; 3] {
    let n_train = ((n as f64 * fractions.train).round() as usize).min(n);
    let n_val = ((n as f64 * fractions.val).round() as usize).min(n - n_train);
    [n_train, n_val, n - n_train - n_val]
}

/// For data sets that ship their own test set (MNIST): `train` is split into train and
/// validation (stratified, `val_fraction` of each class to validation) and `test` is
/// sealed whole as the held-out split.
pub fn split_with_test(
    train: &Dataset,
    test: Dataset,
    val_fraction: f64,
    seed: u64,
) -> (TuningData, HeldOutTest) {
    let fractions = SplitFractions {
        train: 1.0 - val_fraction,
        val: val_fraction,
        test: 0.0,
    };
    let (tuning, _no_rows) = split_stratified(train, fractions, seed);
    (tuning, HeldOutTest { rows: test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize, classes: usize) -> Dataset {
        Dataset {
            features: (0..n).map(|i| i as f32).collect(),
            labels: (0..n).map(|i| (i % classes) as u32).collect(),
            n_features: 1,
            n_classes: classes,
            ..Dataset::default()
        }
    }

    #[test]
    fn split_is_a_partition_with_class_proportions() {
        let data = toy(1000, 4);
        let (tuning, test) = split_stratified(&data, SplitFractions::default(), 3);
        assert_eq!(tuning.train.len(), 700);
        assert_eq!(tuning.val.len(), 152);
        assert_eq!(test.len(), 148);
        assert_eq!(tuning.train.class_counts(), vec![175; 4]);
        let mut seen: Vec<f32> = tuning.train.features.clone();
        seen.extend(&tuning.val.features);
        test.final_evaluation(|rows| seen.extend(&rows.features));
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, data.features);
    }

    #[test]
    fn shipped_test_set_is_sealed_whole() {
        let (tuning, test) = split_with_test(&toy(200, 4), toy(30, 4), 0.1, 5);
        assert_eq!(
            (tuning.train.len(), tuning.val.len(), test.len()),
            (180, 20, 30)
        );
    }

    #[test]
    fn split_depends_on_seed_only() {
        let data = toy(300, 3);
        let a = split_stratified(&data, SplitFractions::default(), 1).0;
        let b = split_stratified(&data, SplitFractions::default(), 1).0;
        let c = split_stratified(&data, SplitFractions::default(), 2).0;
        assert_eq!(a.train, b.train);
        assert_ne!(a.train, c.train);
    }
}
