//! Scrambled Sobol sequence (quasi-random, low discrepancy): trial `n` takes point `n` of a
//! `D`-dimensional sequence, one dimension per parameter of the space, in Gray-code order
//! (as SciPy's `qmc.Sobol`). Scrambling is SciPy's default: a random linear matrix scramble
//! of the direction numbers plus a random digital shift, both from the seed, so the
//! points stay a (t, s)-sequence while losing the origin and the grid artefacts.

use super::sobol_directions::DIRECTIONS;
use super::{History, RandomSampler, Sampler};
use crate::space::transform::from_unit;
use crate::space::{ParamDef, ParamValue, Params, Space};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BITS: usize = 32;

/// The most parameters a Sobol sampler covers jointly; further ones are drawn at random.
pub const MAX_DIMS: usize = DIRECTIONS.len();

pub struct SobolSampler {
    seed: u64,
    scramble: bool,
    fallback: RandomSampler,
}

impl SobolSampler {
    pub fn new(seed: u64, scramble: bool) -> Self {
        SobolSampler {
            seed,
            scramble,
            fallback: RandomSampler::new(seed ^ 0x5_0B01),
        }
    }

    /// Point `index` of the `dims`-dimensional sequence, each coordinate in [0, 1).
    pub fn point(&self, dims: usize, index: u64) -> Vec<f64> {
        self.points(dims, index, 1).remove(0)
    }

    /// Points `start .. start + count`, sharing one scramble (built once per call).
    pub fn points(&self, dims: usize, start: u64, count: usize) -> Vec<Vec<f64>> {
        let tables = self.scrambled_directions(dims.min(MAX_DIMS));
        (start..start + count as u64)
            .map(|index| {
                let gray = index ^ (index >> 1);
                tables
                    .iter()
                    .map(|(v, shift)| {
                        let x = (0..64)
                            .filter(|bit| gray >> bit & 1 == 1)
                            .fold(0u32, |acc, bit| acc ^ v[bit.min(BITS - 1)]);
                        f64::from(x ^ shift) / 4_294_967_296.0
                    })
                    .collect()
            })
            .collect()
    }

    /// Per dimension: the (scrambled) direction numbers and the digital shift.
    fn scrambled_directions(&self, dims: usize) -> Vec<([u32; BITS], u32)> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        (0..dims)
            .map(|d| {
                let mut v = direction_numbers(d);
                if !self.scramble {
                    return (v, 0);
                }
                // Row k of a lower-triangular matrix with unit diagonal, digits counted from
                // the most significant bit: output digit k mixes input digits ≤ k.
                let rows: Vec<u32> = (0..BITS)
                    .map(|k| {
                        let diag = 1u32 << (BITS - 1 - k);
                        let above = !((diag << 1).wrapping_sub(1)) & !diag;
                        diag | (rng.random::<u32>() & above)
                    })
                    .collect();
                for x in v.iter_mut() {
                    *x = rows.iter().enumerate().fold(0, |acc, (k, row)| {
                        acc | (((row & *x).count_ones() & 1) << (BITS - 1 - k))
                    });
                }
                (v, rng.random())
            })
            .collect()
    }
}

/// The 32 direction numbers `v_1..v_32` of dimension `d` (as 32-bit binary fractions).
fn direction_numbers(d: usize) -> [u32; BITS] {
    let mut v = [0u32; BITS];
    let (poly, m) = DIRECTIONS[d];
    if d == 0 {
        for (i, x) in v.iter_mut().enumerate() {
            *x = 1 << (BITS - 1 - i);
        }
        return v;
    }
    let s = (32 - poly.leading_zeros() - 1) as usize;
    for i in 0..s.min(BITS) {
        v[i] = m[i] << (BITS - 1 - i);
    }
    for i in s..BITS {
        let mut x = v[i - s] ^ (v[i - s] >> s);
        for k in 1..s {
            if (poly >> (s - k)) & 1 == 1 {
                x ^= v[i - k];
            }
        }
        v[i] = x;
    }
    v
}

impl Sampler for SobolSampler {
    /// Only the fallback restarts: the scramble belongs to the whole sequence.
    fn reseed(&mut self, seed: u64) {
        self.fallback.reseed(seed ^ 0x5_0B01);
    }

    fn sample_relative(&mut self, history: &History<'_>, space: &Space) -> Params {
        let u = self.point(space.params.len(), history.len() as u64);
        space
            .params
            .iter()
            .zip(u)
            .map(|(def, u)| (def.name.clone(), from_unit(&def.dist, u)))
            .collect()
    }

    fn sample_independent(&mut self, history: &History<'_>, def: &ParamDef) -> ParamValue {
        self.fallback.sample_independent(history, def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows 1, 2, 3, 7 and 31 of `scipy.stats.qmc.Sobol(d=12, scramble=False).random(32)`,
    /// times 2^32.
    #[test]
    fn sobol_matches_scipy_unscrambled() {
        let want: [(u64, [u64; 12]); 5] = [
            (1, [2147483648; 12]),
            (
                2,
                [
                    3221225472, 1073741824, 1073741824, 1073741824, 3221225472, 3221225472,
                    1073741824, 3221225472, 3221225472, 3221225472, 3221225472, 3221225472,
                ],
            ),
            (
                3,
                [
                    1073741824, 3221225472, 3221225472, 3221225472, 1073741824, 1073741824,
                    3221225472, 1073741824, 1073741824, 1073741824, 1073741824, 1073741824,
                ],
            ),
            (
                7,
                [
                    536870912, 2684354560, 1610612736, 536870912, 536870912, 1610612736,
                    2684354560, 2684354560, 2684354560, 3758096384, 2684354560, 536870912,
                ],
            ),
            (
                31,
                [
                    134217728, 2281701376, 3892314112, 4160749568, 4160749568, 3355443200,
                    1476395008, 2281701376, 671088640, 2550136832, 134217728, 1476395008,
                ],
            ),
        ];
        let sobol = SobolSampler::new(0, false);
        for (index, row) in want {
            let got: Vec<u64> = sobol
                .point(12, index)
                .iter()
                .map(|u| (u * 4_294_967_296.0) as u64)
                .collect();
            assert_eq!(got, row.to_vec(), "point {index}");
        }
    }

    #[test]
    fn scrambled_points_are_balanced_and_seeded() {
        let sobol = SobolSampler::new(3, true);
        let n = 256;
        for d in [0usize, 5, 40, 127] {
            // A (0, m)-net property of each one-dimensional projection: every interval
            // [k/256, (k+1)/256) holds exactly one of the first 256 points.
            let mut seen = vec![false; n];
            for i in 0..n as u64 {
                let u = sobol.point(d + 1, i)[d];
                let cell = (u * n as f64) as usize;
                assert!(!seen[cell], "dim {d}: two points in cell {cell}");
                seen[cell] = true;
            }
        }
        assert_ne!(sobol.point(4, 1), SobolSampler::new(4, true).point(4, 1));
        assert_ne!(sobol.point(4, 0), vec![0.0; 4]);
    }
}
