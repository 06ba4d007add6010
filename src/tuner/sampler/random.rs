//! Independent uniform sampling (log-uniform where the distribution says so).

use super::{History, Sampler};
use crate::space::transform::from_unit;
use crate::space::{ParamDef, ParamValue};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Draws every parameter independently and uniformly in its transformed space. ChaCha8 is
/// used rather than `StdRng` because its stream is fixed by its specification, so a seed
/// gives the same suggestions across versions of `rand`.
pub struct RandomSampler {
    rng: ChaCha8Rng,
}

impl RandomSampler {
    pub fn new(seed: u64) -> Self {
        RandomSampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl Sampler for RandomSampler {
    fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    fn sample_independent(&mut self, _history: &History<'_>, def: &ParamDef) -> ParamValue {
        from_unit(&def.dist, self.rng.random::<f64>())
    }
}
