//! NSGA-II (Deb et al. 2002) in Optuna's form: generations of `population_size` trials;
//! the first is drawn at random; each later trial is a child of the elite of the
//! generations before (non-dominated fronts, the last one cut by crowding distance): with
//! probability 0.9 by uniform crossover of two different parents picked by binary
//! tournament (each parameter from either), else a copy of one parent; then mutation
//! (each parameter redrawn at random with probability 1/n). Constrained studies compare
//! trials by constrained dominance.
//!
//! Generations follow trial numbers (trial n is in generation n / population_size), so
//! a study's suggestions depend on its history alone, whatever process asks.

use super::{History, RandomSampler, Sampler};
use crate::space::{ParamDef, ParamValue, Params, Space};
use crate::storage::{Direction, FrozenTrial};
use crate::tuner::pareto;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug)]
pub struct Nsga2Options {
    pub population_size: usize,
    pub crossover_prob: f64,
    pub swapping_prob: f64,
    /// Per-parameter mutation probability; `None` is 1 / (number of parameters).
    pub mutation_prob: Option<f64>,
}

impl Default for Nsga2Options {
    /// Optuna's defaults.
    fn default() -> Self {
        Nsga2Options {
            population_size: 50,
            crossover_prob: 0.9,
            swapping_prob: 0.5,
            mutation_prob: None,
        }
    }
}

pub struct Nsga2Sampler {
    options: Nsga2Options,
    seed: u64,
    rng: ChaCha8Rng,
    random: RandomSampler,
    /// Each generation's parents (trial numbers) and how many complete trials of the
    /// generation before they were selected from: reused while that count holds.
    parents: Vec<(usize, Vec<usize>)>,
}

impl Nsga2Sampler {
    pub fn new(seed: u64, options: Nsga2Options) -> Self {
        Nsga2Sampler {
            options,
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            random: RandomSampler::new(seed ^ 0x45A2),
            parents: Vec::new(),
        }
    }

    /// The parents of generation `generation` (≥ 1): the elite of the parents before and
    /// the complete trials of the generation before, recomputed from the first generation
    /// whose inputs changed.
    fn parents_of(
        &mut self,
        trials: &[Option<&FrozenTrial>],
        directions: &[Direction],
        generation: usize,
    ) -> Vec<usize> {
        let size = self.options.population_size;
        // Each earlier generation's complete trials, in one pass.
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); generation];
        for t in trials.iter().flatten() {
            if t.number / size < generation && t.objectives().is_some() {
                members[t.number / size].push(t.number);
            }
        }
        let mut previous: Vec<usize> = Vec::new();
        for g in 1..=generation {
            let members = &members[g - 1];
            match self.parents.get(g - 1) {
                Some((count, parents)) if *count == members.len() => {
                    previous.clone_from(parents);
                    continue;
                }
                _ => self.parents.truncate(g - 1),
            }
            let mut pool = previous.clone();
            pool.extend(members.iter().copied().filter(|m| !previous.contains(m)));
            let pool: Vec<&FrozenTrial> = pool.into_iter().filter_map(|n| trials[n]).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(crate::rng::derive_seed(self.seed, g as u64));
            previous = elite(&pool, directions, size, &mut rng);
            self.parents.push((members.len(), previous.clone()));
        }
        previous
    }

    /// Optuna's binary tournament: of two parents drawn at random, the first if it
    /// dominates the second, else the second.
    fn tournament<'t>(
        &mut self,
        parents: &[&'t FrozenTrial],
        directions: &[Direction],
    ) -> &'t FrozenTrial {
        let a = parents[self.rng.random_range(0..parents.len())];
        let b = parents[self.rng.random_range(0..parents.len())];
        let (la, lb) = (loss(a, directions), loss(b, directions));
        match pareto::constrained_dominates((&la, a.violation()), (&lb, b.violation())) {
            true => a,
            false => b,
        }
    }
}

/// The directions of a history (one objective: its `maximize`).
fn directions(history: &History<'_>) -> Vec<Direction> {
    match history.directions {
        [] => vec![match history.maximize {
            true => Direction::Maximize,
            false => Direction::Minimize,
        }],
        d => d.to_vec(),
    }
}

fn loss(t: &FrozenTrial, directions: &[Direction]) -> Vec<f64> {
    crate::tuner::study::losses(t.objectives().unwrap_or(&[]), directions)
}

/// NSGA-II's elitist selection of `size` trials from `pool`: whole fronts while they fit,
/// then the most isolated of the next front by crowding distance (ties in random order).
fn elite(
    pool: &[&FrozenTrial],
    directions: &[Direction],
    size: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let losses: Vec<Vec<f64>> = pool.iter().map(|t| loss(t, directions)).collect();
    let violations: Vec<f64> = pool.iter().map(|t| t.violation()).collect();
    let mut chosen = Vec::with_capacity(size);
    for mut front in pareto::fronts(&losses, &violations) {
        if chosen.len() + front.len() <= size {
            chosen.extend(front.iter().map(|&i| pool[i].number));
            continue;
        }
        // Shuffled first, so equal distances are broken at random, as Optuna does.
        for i in (1..front.len()).rev() {
            front.swap(i, rng.random_range(0..=i));
        }
        let points: Vec<&[f64]> = front.iter().map(|&i| &losses[i][..]).collect();
        let distance = pareto::crowding_distances(&points);
        let mut order: Vec<usize> = (0..front.len()).collect();
        order.sort_by(|&a, &b| distance[b].total_cmp(&distance[a]));
        let room = size - chosen.len();
        chosen.extend(order[..room].iter().map(|&k| pool[front[k]].number));
        break;
    }
    chosen
}

impl Sampler for Nsga2Sampler {
    fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self.random.reseed(seed ^ 0x45A2);
    }

    fn sample_relative(&mut self, history: &History<'_>, space: &Space) -> Params {
        let generation = history.len() / self.options.population_size.max(1);
        if generation == 0 {
            return Params::new();
        }
        // Trials by number (a study numbers them densely).
        let mut by_number: Vec<Option<&FrozenTrial>> = vec![None; history.len()];
        for t in history.all() {
            if let Some(slot) = by_number.get_mut(t.number) {
                *slot = Some(t);
            }
        }
        let directions = directions(history);
        let parents = self.parents_of(&by_number, &directions, generation);
        let trials: Vec<&FrozenTrial> = parents.iter().filter_map(|&n| by_number[n]).collect();
        if trials.is_empty() {
            return Params::new();
        }
        let crossover = self.rng.random::<f64>() < self.options.crossover_prob;
        // Crossover: two different parents by tournament, each parameter from either.
        // Otherwise a copy of a parent drawn at random.
        let (first, second) = match crossover {
            true => {
                let first = self.tournament(&trials, &directions);
                let others: Vec<&FrozenTrial> = trials
                    .iter()
                    .copied()
                    .filter(|t| t.number != first.number)
                    .collect();
                match others.is_empty() {
                    true => (first, first),
                    false => (first, self.tournament(&others, &directions)),
                }
            }
            false => {
                let only = trials[self.rng.random_range(0..trials.len())];
                (only, only)
            }
        };
        let mutation = self
            .options
            .mutation_prob
            .unwrap_or(1.0 / space.params.len().max(1) as f64);
        let mut child = Params::new();
        for def in &space.params {
            let from_second = crossover && self.rng.random::<f64>() < self.options.swapping_prob;
            let parent = if from_second { second } else { first };
            // A mutated parameter is left out: the independent draw (uniform) fills it.
            if self.rng.random::<f64>() < mutation {
                continue;
            }
            if let Some(v) = parent.params.get(&def.name) {
                child.insert(def.name.clone(), v.clone());
            }
        }
        child
    }

    fn sample_independent(&mut self, history: &History<'_>, def: &ParamDef) -> ParamValue {
        self.random.sample_independent(history, def)
    }
}
