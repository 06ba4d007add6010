//! Samplers, in Optuna's protocol: `sample_relative` draws the parameters a sampler models
//! jointly (given the whole space), `sample_independent` draws one parameter on its own.
//! [`ask_params`] combines the two over a space, honouring conditions; batches come from
//! asking repeatedly while the earlier suggestions sit in the history as running trials.

pub mod gp;
mod gp_ei;
mod grid;
mod nsga2;
mod observations;
pub mod parzen;
mod random;
mod sobol;
mod sobol_directions;
mod tpe;
mod tpe_multi;

pub use gp_ei::{GpEiOptions, GpEiSampler};
pub use grid::GridSampler;
pub use nsga2::{Nsga2Options, Nsga2Sampler};
pub use random::RandomSampler;
pub use sobol::SobolSampler;
pub use tpe::{TpeOptions, TpeSampler};

use crate::space::{ParamDef, ParamValue, Params, Space};
use crate::storage::{Direction, FrozenTrial, TrialState};

/// What a sampler may learn from: every stored trial (running ones included), the
/// suggestions of the current batch not yet stored (`pending`, treated as running), and
/// the direction of the objective.
#[derive(Clone, Copy, Debug)]
pub struct History<'a> {
    pub trials: &'a [FrozenTrial],
    pub pending: &'a [FrozenTrial],
    pub maximize: bool,
    /// Stored trials that finished (complete or pruned), counted once by [`History::new`]:
    /// a batch's asks all see the same stored trials, and counting them at every ask made
    /// a large batch quadratic.
    pub finished: usize,
    /// The objectives' directions of a multi-objective study (empty for one objective,
    /// whose direction is `maximize`).
    pub directions: &'a [Direction],
    /// Whether trials carry constraint values (a constrained study).
    pub constrained: bool,
}

impl<'a> History<'a> {
    pub fn new(trials: &'a [FrozenTrial], pending: &'a [FrozenTrial], maximize: bool) -> Self {
        let finished = trials
            .iter()
            .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
            .count();
        History {
            trials,
            pending,
            maximize,
            finished,
            directions: &[],
            constrained: trials.iter().any(|t| !t.constraints.is_empty()),
        }
    }

    /// The history of a study with several objectives.
    pub fn with_directions(self, directions: &'a [Direction]) -> Self {
        match directions.len() {
            0 | 1 => self,
            _ => History { directions, ..self },
        }
    }

    /// Whether the study has several objectives.
    pub fn is_multi_objective(&self) -> bool {
        self.directions.len() > 1
    }

    /// Every trial, stored then pending.
    pub fn all(&self) -> impl Iterator<Item = &'a FrozenTrial> + 'a {
        self.trials.iter().chain(self.pending.iter())
    }

    /// How many trials exist, pending included (the number of the next one).
    pub fn len(&self) -> usize {
        self.trials.len() + self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub use crate::kinds::SamplerKind;

/// Building a sampler is the tuner's part of a [`SamplerKind`]; its names live in
/// `kinds.rs`, which the study header in storage reads too.
impl SamplerKind {
    /// A new sampler of this kind for a study seeded `seed`.
    pub fn build(self, seed: u64) -> Box<dyn Sampler> {
        match self {
            SamplerKind::Random => Box::new(RandomSampler::new(seed)),
            SamplerKind::Sobol => Box::new(SobolSampler::new(seed, true)),
            SamplerKind::Grid => Box::new(GridSampler),
            SamplerKind::Tpe => Box::new(TpeSampler::new(seed, TpeOptions::popsweep())),
            SamplerKind::TpeUnivariate => Box::new(TpeSampler::new(
                seed,
                TpeOptions {
                    multivariate: false,
                    ..TpeOptions::default()
                },
            )),
            SamplerKind::TpeWatanabe => Box::new(TpeSampler::new(seed, TpeOptions::watanabe2023())),
            SamplerKind::Gp => Box::new(GpEiSampler::new(seed, GpEiOptions::default())),
            SamplerKind::Nsga2 => Box::new(Nsga2Sampler::new(seed, Nsga2Options::default())),
        }
    }
}

pub trait Sampler: Send {
    /// Restarts the sampler's random stream; a study calls it with `(seed, trial)` before
    /// each batch, so suggestions depend on the seed and the history, not on the process.
    fn reseed(&mut self, seed: u64);

    /// Values for the parameters this sampler draws jointly; the rest of the space is
    /// filled by [`Sampler::sample_independent`]. The default draws nothing jointly.
    fn sample_relative(&mut self, _history: &History<'_>, _space: &Space) -> Params {
        Params::new()
    }

    /// One parameter on its own (also the fallback for define-by-run suggestions).
    fn sample_independent(&mut self, history: &History<'_>, def: &ParamDef) -> ParamValue;
}

/// One full assignment of `space`: the joint draw first, then each active parameter in
/// order (parents before children), independently where the joint draw left it out.
pub fn ask_params(sampler: &mut dyn Sampler, history: &History<'_>, space: &Space) -> Params {
    let relative = sampler.sample_relative(history, space);
    let mut params = Params::new();
    for def in &space.params {
        if !Space::is_active(def, &params) {
            continue;
        }
        let value = match relative.get(&def.name) {
            Some(v) if def.dist.contains(v) => v.clone(),
            _ => sampler.sample_independent(history, def),
        };
        params.insert(def.name.clone(), value);
    }
    params
}
