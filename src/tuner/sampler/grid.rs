//! Grid search with W&B's semantics: the product of every parameter's `values`, in a
//! fixed order (last parameter fastest); a parameter with a continuous range has no grid
//! and is an error. Trial `n` takes grid point `n`; past the last point the grid wraps.

use super::{History, Sampler};
use crate::space::{Distribution, ParamDef, ParamValue, Params, Space};

pub struct GridSampler;

impl GridSampler {
    /// Checks that `space` is a grid and returns its size.
    pub fn grid_size(space: &Space) -> Result<u64, String> {
        space.params.iter().try_fold(1u64, |n, p| match &p.dist {
            Distribution::Categorical { choices, .. } => Ok(n.saturating_mul(choices.len() as u64)),
            _ => Err(format!(
                "grid search needs `values` for every parameter; `{}` has a range",
                p.name
            )),
        })
    }

    /// Grid point `index` (mixed radix over the parameters' choices).
    pub fn point(space: &Space, index: u64) -> Params {
        let mut rest = index;
        let mut params = Params::new();
        for p in space.params.iter().rev() {
            if let Distribution::Categorical { choices, .. } = &p.dist {
                let k = choices.len() as u64;
                params.insert(p.name.clone(), choices[(rest % k) as usize].clone());
                rest /= k;
            }
        }
        params
    }
}

impl Sampler for GridSampler {
    /// The grid has no randomness.
    fn reseed(&mut self, _seed: u64) {}

    fn sample_relative(&mut self, history: &History<'_>, space: &Space) -> Params {
        let size = Self::grid_size(space).unwrap_or(1).max(1);
        Self::point(space, history.len() as u64 % size)
    }

    /// A parameter outside the declared grid (define-by-run) has no grid coordinate; it
    /// takes the middle of its range, so the grid's trials stay comparable.
    fn sample_independent(&mut self, _history: &History<'_>, def: &ParamDef) -> ParamValue {
        crate::space::transform::from_unit(&def.dist, 0.5)
    }
}
