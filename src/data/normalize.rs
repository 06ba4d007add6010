//! Per-feature normalisation, fitted on the training split alone and applied unchanged to
//! validation and the held-out test rows (fitting on all rows would leak their statistics
//! into tuning).

use super::Dataset;

/// `data.normalize` in a sweep file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Normalize {
    /// Use the features as they are (digits and IDX images are already scaled to [0, 1]).
    #[default]
    None,
    /// Zero mean, unit variance per feature (a constant feature is only centred).
    Standard,
    /// Each feature's training range mapped to [0, 1] (a constant feature becomes 0).
    MinMax,
}

impl Normalize {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Normalize::None),
            "standard" => Some(Normalize::Standard),
            "minmax" => Some(Normalize::MinMax),
            _ => None,
        }
    }
}

/// `x ← (x − shift) · scale`, per feature.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalizer {
    shift: Vec<f32>,
    scale: Vec<f32>,
}

impl Normalizer {
    /// Fits `kind` on `train`'s features; `None` for [`Normalize::None`].
    pub fn fit(kind: Normalize, train: &Dataset) -> Option<Normalizer> {
        let d = train.n_features;
        let n = train.len().max(1) as f64;
        let columns = |f: &dyn Fn(usize, f64, f64) -> (f32, f32)| -> Normalizer {
            let (mut sum, mut sq) = (vec![0.0f64; d], vec![0.0f64; d]);
            let (mut lo, mut hi) = (vec![f64::INFINITY; d], vec![f64::NEG_INFINITY; d]);
            for row in train.features.chunks_exact(d) {
                for (j, &x) in row.iter().enumerate() {
                    let x = f64::from(x);
                    sum[j] += x;
                    sq[j] += x * x;
                    lo[j] = lo[j].min(x);
                    hi[j] = hi[j].max(x);
                }
            }
            let (shift, scale) = (0..d)
                .map(|j| match kind {
                    Normalize::Standard => {
                        let mean = sum[j] / n;
                        f(j, mean, (sq[j] / n - mean * mean).max(0.0).sqrt())
                    }
                    _ => f(j, lo[j], hi[j] - lo[j]),
                })
                .unzip();
            Normalizer { shift, scale }
        };
        match kind {
            Normalize::None => None,
            Normalize::Standard | Normalize::MinMax => Some(columns(&|_, shift, spread| {
                let scale = if spread > 1e-12 { 1.0 / spread } else { 1.0 };
                (shift as f32, scale as f32)
            })),
        }
    }

    pub fn apply(&self, data: &mut Dataset) {
        for row in data.features.chunks_exact_mut(self.shift.len().max(1)) {
            for ((x, &s), &k) in row.iter_mut().zip(&self.shift).zip(&self.scale) {
                *x = (*x - s) * k;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rows: &[[f32; 2]]) -> Dataset {
        Dataset {
            features: rows.iter().flatten().copied().collect(),
            labels: vec![0; rows.len()],
            n_features: 2,
            n_classes: 1,
            ..Dataset::default()
        }
    }

    #[test]
    fn standard_and_minmax_fit_on_train_only() {
        let train = data(&[[1.0, 5.0], [3.0, 5.0]]);
        let n = Normalizer::fit(Normalize::Standard, &train).unwrap();
        let mut t = train.clone();
        n.apply(&mut t);
        assert_eq!(
            t.features,
            vec![-1.0, 0.0, 1.0, 0.0],
            "constant column only centred"
        );
        let mut other = data(&[[5.0, 6.0]]);
        n.apply(&mut other);
        assert_eq!(
            other.features,
            vec![3.0, 1.0],
            "the train statistics, not its own"
        );
        let m = Normalizer::fit(Normalize::MinMax, &train).unwrap();
        let mut t = train.clone();
        m.apply(&mut t);
        assert_eq!(t.features, vec![0.0, 0.0, 1.0, 0.0]);
        assert!(Normalizer::fit(Normalize::None, &train).is_none());
        assert_eq!(Normalize::parse("minmax"), Some(Normalize::MinMax));
        assert_eq!(Normalize::parse("zscore"), None);
    }
}
