//! Tree-structured Parzen Estimator (Bergstra et al. 2011), with Optuna's documented
//! behaviour as the baseline: `n_startup_trials = 10` random trials first; split the
//! finished trials at `γ(n) = min(⌈0.1·n⌉, 25)` into good (`l`) and bad (`g`), complete
//! trials by value, then pruned trials by how far they got; fit a Parzen estimator to
//! each; draw `n_ei_candidates = 24` candidates from `l` and keep the one maximising
//! `log l(x) − log g(x)`.
//!
//! - Multivariate by default, as Optuna ≥ 4 for one objective: the always-active
//!   parameters are modelled jointly (one kernel per trial across all of them); the
//!   conditional ones are drawn on their own, each from the trials where it is active.
//!   `multivariate: false` models every parameter on its own.
//! - Constant liar (on by default, as Optuna 5): running and pending trials join the bad
//!   group, so a batch spreads out instead of suggesting one point P times.

use super::parzen::{ParzenEstimator, ParzenParams};
use super::{History, RandomSampler, Sampler};
use crate::space::transform::{from_transformed, to_transformed};
use crate::space::{Distribution, ParamDef, ParamValue, Params, Space};
use crate::tuner::trial::{FrozenTrial, TrialState};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TpeOptions {
    /// Random trials before the model is used (default 10).
    pub n_startup_trials: usize,
    /// Candidates drawn from `l` per suggestion (default 24).
    pub n_ei_candidates: usize,
    pub parzen: ParzenParams,
    /// Model always-active parameters jointly (default true).
    pub multivariate: bool,
    /// Count running trials as bad (default true).
    pub constant_liar: bool,
}

impl Default for TpeOptions {
    fn default() -> Self {
        TpeOptions {
            n_startup_trials: 10,
            n_ei_candidates: 24,
            parzen: ParzenParams::default(),
            multivariate: true,
            constant_liar: true,
        }
    }
}

/// Optuna's `default_gamma`: how many finished trials count as good.
pub fn gamma(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

pub struct TpeSampler {
    options: TpeOptions,
    rng: ChaCha8Rng,
    startup: RandomSampler,
    /// Finished trials' internal values per modelled parameter set (their parameters
    /// never change): a long history is looked up by name once, not at every ask.
    observations: HashMap<Vec<String>, ObservationCache>,
}

/// By trial number; `None` where the trial lacks one of the parameters.
type ObservationCache = HashMap<usize, Option<Vec<f64>>>;

impl TpeSampler {
    pub fn new(seed: u64, options: TpeOptions) -> Self {
        TpeSampler {
            options,
            rng: ChaCha8Rng::seed_from_u64(seed),
            startup: RandomSampler::new(seed ^ 0x7E7E),
            observations: HashMap::new(),
        }
    }

    fn in_startup(&self, history: &History<'_>) -> bool {
        let finished = history
            .all()
            .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
            .count();
        finished < self.options.n_startup_trials
    }

    /// The best candidate for the parameters `defs`, jointly.
    fn sample(&mut self, history: &History<'_>, defs: &[&ParamDef]) -> Vec<ParamValue> {
        let (below, above) = split(history, self.options.constant_liar);
        let dists: Vec<&Distribution> = defs.iter().map(|d| &d.dist).collect();
        let names: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
        let cache = self.observations.entry(names).or_default();
        let row = |t: &FrozenTrial| -> Option<Vec<f64>> {
            defs.iter()
                .map(|d| t.params.get(&d.name).map(|v| internal_value(&d.dist, v)))
                .collect()
        };
        // Running trials may still change (pending ones are new each time): not cached.
        let running: HashMap<usize, Option<Vec<f64>>> = below
            .iter()
            .chain(&above)
            .filter(|t| t.state == TrialState::Running)
            .map(|t| (t.number, row(t)))
            .collect();
        for t in below
            .iter()
            .chain(&above)
            .filter(|t| t.state != TrialState::Running)
        {
            cache.entry(t.number).or_insert_with(|| row(t));
        }
        let rows = |trials: &[&FrozenTrial]| -> Vec<&[f64]> {
            trials
                .iter()
                .filter_map(|t| {
                    running
                        .get(&t.number)
                        .unwrap_or_else(|| &cache[&t.number])
                        .as_deref()
                })
                .collect()
        };
        let (below_obs, above_obs) = (rows(&below), rows(&above));
        let l = ParzenEstimator::new(&dists, &below_obs, self.options.parzen);
        let g = ParzenEstimator::new(&dists, &above_obs, self.options.parzen);
        let candidates = l.sample(&mut self.rng, self.options.n_ei_candidates.max(1));
        let best = candidates
            .iter()
            .map(|x| l.log_pdf(x) - g.log_pdf(x))
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, s)| {
                if s > best.1 {
                    (i, s)
                } else {
                    best
                }
            })
            .0;
        dists
            .iter()
            .zip(&candidates[best])
            .map(|(dist, &x)| external_value(dist, x))
            .collect()
    }
}

/// Numbers stay numbers (the Parzen estimator transforms them); choices become indices,
/// a shaped prior's value its CDF.
fn internal_value(dist: &Distribution, v: &ParamValue) -> f64 {
    match dist {
        Distribution::Categorical { .. } | Distribution::Shaped { .. } => to_transformed(dist, v),
        _ => v.as_f64().unwrap_or(f64::NAN),
    }
}

fn external_value(dist: &Distribution, x: f64) -> ParamValue {
    match dist {
        Distribution::Float { .. } => ParamValue::Float(x),
        Distribution::Int { .. } => ParamValue::Int(x.round() as i64),
        Distribution::Categorical { choices, .. } => {
            choices[(x as usize).min(choices.len() - 1)].clone()
        }
        Distribution::Shaped { .. } => from_transformed(dist, x),
    }
}

/// Good and bad trials, each in trial order (the Parzen weights favour recent ones).
fn split<'a>(
    history: &History<'a>,
    constant_liar: bool,
) -> (Vec<&'a FrozenTrial>, Vec<&'a FrozenTrial>) {
    let sign = if history.maximize { -1.0 } else { 1.0 };
    let mut complete: Vec<(&FrozenTrial, f64)> = Vec::new();
    let mut pruned: Vec<(&FrozenTrial, (i64, f64))> = Vec::new();
    let mut running = Vec::new();
    for t in history.all() {
        match t.state {
            TrialState::Complete => {
                if let Some(v) = t.finite_value() {
                    complete.push((t, sign * v));
                }
            }
            // Pruned trials rank by the last step reached (later is better), then by
            // the value there (Optuna's `_get_pruned_trial_score`).
            TrialState::Pruned => {
                let key = match t.intermediate.iter().max_by_key(|(step, _)| *step) {
                    Some(&(step, v)) if v.is_nan() => (-(step as i64), f64::INFINITY),
                    Some(&(step, v)) => (-(step as i64), sign * v),
                    None => (1, 0.0),
                };
                pruned.push((t, key));
            }
            TrialState::Running if constant_liar => running.push(t),
            TrialState::Running | TrialState::Failed => {}
        }
    }
    let mut n_below = gamma(complete.len() + pruned.len());
    complete.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.number.cmp(&b.0.number)));
    pruned.sort_by(|a, b| a.1 .0.cmp(&b.1 .0).then(a.1 .1.total_cmp(&b.1 .1)));
    let (mut below, mut above) = (Vec::new(), running);
    // Complete trials fill the good group first, then the best pruned ones.
    let ranked = complete
        .into_iter()
        .map(|(t, _)| t)
        .chain(pruned.into_iter().map(|(t, _)| t));
    for t in ranked {
        if n_below > 0 {
            below.push(t);
            n_below -= 1;
        } else {
            above.push(t);
        }
    }
    below.sort_by_key(|t| t.number);
    above.sort_by_key(|t| t.number);
    (below, above)
}

impl Sampler for TpeSampler {
    fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self.startup.reseed(seed ^ 0x7E7E);
    }

    fn sample_relative(&mut self, history: &History<'_>, space: &Space) -> Params {
        if !self.options.multivariate || self.in_startup(history) {
            return Params::new();
        }
        let joint: Vec<&ParamDef> = space
            .params
            .iter()
            .filter(|d| d.condition.is_none() && d.dist.cardinality() != Some(1))
            .collect();
        if joint.is_empty() {
            return Params::new();
        }
        let values = self.sample(history, &joint);
        joint.iter().map(|d| d.name.clone()).zip(values).collect()
    }

    fn sample_independent(&mut self, history: &History<'_>, def: &ParamDef) -> ParamValue {
        if self.in_startup(history) || def.dist.cardinality() == Some(1) {
            return self.startup.sample_independent(history, def);
        }
        self.sample(history, &[def]).remove(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(number: usize, state: TrialState, value: Option<f64>) -> FrozenTrial {
        FrozenTrial {
            number,
            params: Params::new(),
            state,
            value,
            intermediate: Vec::new(),
        }
    }

    #[test]
    fn gamma_matches_optuna() {
        assert_eq!((gamma(1), gamma(10), gamma(11), gamma(1000)), (1, 1, 2, 25));
    }

    #[test]
    fn split_puts_best_complete_below_and_liars_above() {
        let mut trials: Vec<FrozenTrial> = (0..12)
            .map(|i| trial(i, TrialState::Complete, Some(i as f64)))
            .collect();
        trials.push(trial(12, TrialState::Running, None));
        trials.push(trial(13, TrialState::Failed, None));
        let h = History {
            trials: &trials,
            pending: &[],
            maximize: false,
        };
        let (below, above) = split(&h, true);
        // 12 finished ⇒ γ = 2 good trials: the two smallest values.
        assert_eq!(
            below.iter().map(|t| t.number).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(above.len(), 11);
        assert!(above.iter().any(|t| t.number == 12) && !above.iter().any(|t| t.number == 13));
        let h = History {
            maximize: true,
            ..h
        };
        let (below, _) = split(&h, false);
        assert_eq!(
            below.iter().map(|t| t.number).collect::<Vec<_>>(),
            vec![10, 11]
        );
    }
}
