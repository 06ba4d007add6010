//! Samplers: every sampler suggests a whole population at once (`ask_batch`).

mod random;

pub use random::RandomSampler;

use crate::space::{Params, Space};

pub trait Sampler {
    /// `n` new configurations from `space`.
    fn ask_batch(&mut self, space: &Space, n: usize) -> Vec<Params>;
}
