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
//! - The samplers: `tpe` is Optuna's setting with candidates drawn from `l` at a quarter
//!   of its kernels' widths, mostly around its best trials ([`TpeOptions::popsweep`]);
//!   `tpe-univariate` is Optuna's `multivariate=False` exactly; `tpe-watanabe` is the
//!   setting Watanabe (2023) recommends ([`TpeOptions::watanabe2023`]), fast to converge
//!   and quick to commit to the first basin it finds. Numbers for each against Optuna:
//!   docs/samplers.md.

use super::observations::Observations;
use super::parzen::{Bandwidth, ParzenEstimator, ParzenParams};
use super::{History, RandomSampler, Sampler};
use crate::space::transform::{from_transformed, to_transformed};
use crate::space::{Distribution, ParamDef, ParamValue, Params, Space};
use crate::storage::{FrozenTrial, TrialState};
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
    /// Rank a running trial that has reported values as if pruned at its last step
    /// (default false, as Optuna). A built-in ASHA sweep reports each rung arrival, so the
    /// trials it promotes — the best so far — are good trials to TPE while they train,
    /// instead of liars until they finish.
    pub running_with_values: bool,
    /// How many finished trials count as good.
    pub good: GoodCount,
    /// Candidates are drawn from `l` with every kernel this much narrower than the one
    /// that scores them (1 = Optuna).
    pub candidate_bandwidth: f64,
    /// `Some(τ)`: candidates come from the good trials' kernels picked with weights
    /// `e^{−r/(τ·n)}` for the trial ranked `r` (0 = best) of `n` good ones, the prior
    /// keeping its share; `None`: with `l`'s own weights (Optuna).
    pub candidate_rank_decay: Option<f64>,
}

/// The size of TPE's good group for `n` finished trials.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GoodCount {
    /// Optuna's `default_gamma`: `min(⌈0.1·n⌉, 25)`.
    Linear,
    /// `⌈β·√n⌉` (Watanabe 2023's recommended β = 0.25; hyperopt's rule).
    Sqrt { beta: f64 },
}

impl GoodCount {
    fn of(self, n: usize) -> usize {
        match self {
            GoodCount::Linear => gamma(n),
            GoodCount::Sqrt { beta } => (beta * (n as f64).sqrt()).ceil() as usize,
        }
    }
}

impl TpeOptions {
    /// The setting Watanabe (2023, "Tree-Structured Parzen Estimator: Understanding Its
    /// Algorithm Components ...") recommends from ablations on other benchmarks than ours:
    /// a good group of ⌈0.25·√n⌉, uniform weights, Scott's bandwidth with a floor of 1% of
    /// the range, and a categorical kernel that keeps 0.2 for the other choices.
    pub fn watanabe2023() -> Self {
        TpeOptions {
            parzen: ParzenParams {
                bandwidth: Bandwidth::Scott { min_factor: 0.01 },
                uniform_weights: true,
                categorical_spread: Some(0.2),
                ..ParzenParams::default()
            },
            good: GoodCount::Sqrt { beta: 0.25 },
            ..TpeOptions::default()
        }
    }
}

impl Default for TpeOptions {
    fn default() -> Self {
        TpeOptions {
            n_startup_trials: 10,
            n_ei_candidates: 24,
            parzen: ParzenParams::default(),
            multivariate: true,
            constant_liar: true,
            running_with_values: false,
            good: GoodCount::Linear,
            candidate_bandwidth: 1.0,
            candidate_rank_decay: None,
        }
    }
}

impl TpeOptions {
    /// popsweep's `tpe`: Optuna's setting, with candidates drawn from `l` at a quarter of
    /// its kernels' widths and mostly around its best trials. Optuna's widths and weights
    /// suit a density estimate of the good region but scatter its 24 candidates over
    /// most of it, around the 10th-best trial as often as around the best; these draws
    /// put them where `l/g` is worth refining, while `l` and `g` still score them as
    /// Optuna's do. Numbers against Optuna's TPESampler: docs/samplers.md.
    pub fn popsweep() -> Self {
        TpeOptions {
            candidate_bandwidth: 0.25,
            candidate_rank_decay: Some(0.3),
            running_with_values: true,
            ..TpeOptions::default()
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
    /// Finished trials' internal values and sorted orders per modelled parameter set
    /// (their parameters never change): kept across asks, not rebuilt at each.
    observations: HashMap<Vec<String>, Observations>,
}

impl TpeSampler {
    pub fn new(seed: u64, options: TpeOptions) -> Self {
        TpeSampler {
            options,
            rng: ChaCha8Rng::seed_from_u64(seed),
            startup: RandomSampler::new(seed ^ 0x7E7E),
            observations: HashMap::new(),
        }
    }

    /// The options for this history: several objectives are modelled one parameter at a
    /// time (Optuna's default for them).
    fn options_for(&self, history: &History<'_>) -> TpeOptions {
        match history.is_multi_objective() {
            true => TpeOptions {
                multivariate: false,
                ..self.options
            },
            false => self.options,
        }
    }

    fn in_startup(&self, history: &History<'_>) -> bool {
        history.finished < self.options.n_startup_trials
    }

    /// The best candidate for the parameters `defs`, jointly.
    fn sample(&mut self, history: &History<'_>, defs: &[&ParamDef]) -> Vec<ParamValue> {
        let options = self.options_for(history);
        let (below, above, best_first) = split(history, &options);
        let dists: Vec<&Distribution> = defs.iter().map(|d| &d.dist).collect();
        let names: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
        let stored = self
            .observations
            .entry(names)
            .or_insert_with(|| Observations::new(defs.len()));
        let row = |t: &FrozenTrial| -> Option<Vec<f64>> {
            defs.iter()
                .map(|d| t.params.get(&d.name).map(|v| internal_value(&d.dist, v)))
                .collect()
        };
        let is_running = |t: &&&FrozenTrial| t.state == TrialState::Running;
        stored.add_finished(
            below
                .iter()
                .chain(&above)
                .filter(|t| !is_running(t))
                .copied(),
            row,
        );
        // Running trials may still change (pending ones are new each time): not stored.
        let running: Vec<(usize, Option<Vec<f64>>)> = below
            .iter()
            .chain(&above)
            .filter(is_running)
            .map(|t| (t.number, row(t)))
            .collect();
        let orders = options.parzen.bandwidth == Bandwidth::Neighbours;
        let (l_group, g_group) = (
            stored.group(&below, &running, orders),
            stored.group(&above, &running, orders),
        );
        let mut l =
            ParzenEstimator::with_orders(&dists, &l_group.rows, options.parzen, &l_group.orders);
        if history.is_multi_objective() {
            // Optuna 5 weighs every good trial of several objectives the same.
            l = l.reweighted(&vec![1.0; l_group.numbers.len()]);
        }
        let g =
            ParzenEstimator::with_orders(&dists, &g_group.rows, options.parzen, &g_group.orders);
        let draw_weights = match options.candidate_rank_decay {
            Some(decay) => rank_weights(l.weights(), &l_group.numbers, &best_first, decay),
            None => l.weights().to_vec(),
        };
        let candidates = l.sample(
            &mut self.rng,
            options.n_ei_candidates.max(1),
            options.candidate_bandwidth,
            &draw_weights,
        );
        let (l_scores, g_scores) = (l.log_pdfs(&candidates), g.log_pdfs(&candidates));
        let best = l_scores
            .iter()
            .zip(&g_scores)
            .map(|(l, g)| l - g)
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

/// Weights for drawing from `l`'s components (`numbers`: the good trials of its rows, the
/// prior last): `e^{−r/(decay·n)}` for the row ranked `r` of `n` in `best_first`,
/// scaled to leave the prior its weight in `l_weights`.
fn rank_weights(
    l_weights: &[f64],
    numbers: &[usize],
    best_first: &[usize],
    decay: f64,
) -> Vec<f64> {
    let n = numbers.len();
    debug_assert_eq!(l_weights.len(), n + 1, "one weight per row and the prior's");
    if n == 0 {
        return l_weights.to_vec();
    }
    let row_of: HashMap<usize, usize> = numbers.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let mut weights = vec![0.0; n + 1];
    let ranked = best_first.iter().filter_map(|t| row_of.get(t));
    for (rank, &row) in ranked.enumerate() {
        weights[row] = (-(rank as f64) / (decay * n as f64)).exp();
    }
    let prior = l_weights[n];
    let total: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w *= (1.0 - prior) / total);
    weights[n] = prior;
    weights
}

/// Good and bad trials, each in trial order (the Parzen weights favour recent ones), and
/// the good ones' numbers best first.
fn split<'a>(
    history: &History<'a>,
    options: &TpeOptions,
) -> (Vec<&'a FrozenTrial>, Vec<&'a FrozenTrial>, Vec<usize>) {
    let valued = |t: &FrozenTrial| options.running_with_values && !t.intermediate.is_empty();
    let best_first = match history.is_multi_objective() {
        true => {
            let finished = history
                .all()
                .filter(|t| t.state == TrialState::Pruned || t.objectives().is_some())
                .count();
            // Optuna's `default_gamma_multiobjective`: ⌈0.1·n⌉, uncapped.
            super::tpe_multi::good_trials(history, finished.div_ceil(10))
        }
        false => good_single_objective(history, options.good, &valued),
    };
    let numbers = history.all().map(|t| t.number + 1).max().unwrap_or(0);
    let mut is_good = vec![false; numbers];
    for &number in &best_first {
        is_good[number] = true;
    }
    let mut below = Vec::with_capacity(best_first.len());
    let mut above = Vec::with_capacity(history.len());
    for t in history.all() {
        let bad = match t.state {
            TrialState::Complete => t.objectives().is_some(),
            TrialState::Pruned => true,
            TrialState::Running => options.constant_liar || valued(t),
            TrialState::Failed => false,
        };
        if is_good[t.number] {
            below.push(t);
        } else if bad {
            above.push(t);
        }
    }
    // The study numbers trials in order; a history from elsewhere may not be.
    if !history.all().is_sorted_by_key(|t| t.number) {
        below.sort_by_key(|t| t.number);
        above.sort_by_key(|t| t.number);
    }
    (below, above, best_first)
}

/// The good trials of a single-objective history, best first, as Optuna ranks them:
/// feasible complete trials by value, then pruned ones (by the last step reached, later
/// is better, then by the value there: Optuna's `_get_pruned_trial_score`), then
/// infeasible ones by their total violation.
fn good_single_objective(
    history: &History<'_>,
    good: GoodCount,
    valued: &dyn Fn(&FrozenTrial) -> bool,
) -> Vec<usize> {
    let sign = if history.maximize { -1.0 } else { 1.0 };
    let mut complete: Vec<(&FrozenTrial, f64)> = Vec::new();
    let mut pruned: Vec<(&FrozenTrial, (i64, f64))> = Vec::new();
    let mut infeasible: Vec<(&FrozenTrial, f64)> = Vec::new();
    for t in history.all() {
        match t.state {
            TrialState::Complete | TrialState::Pruned if t.violation() > 0.0 => {
                infeasible.push((t, t.violation()))
            }
            TrialState::Complete => {
                if let Some(v) = t.finite_value() {
                    complete.push((t, sign * v));
                }
            }
            // A running trial counts only with values (`running_with_values`).
            TrialState::Running if !valued(t) => {}
            TrialState::Pruned | TrialState::Running => {
                let key = match t.intermediate.iter().max_by_key(|(step, _)| *step) {
                    Some(&(step, v)) if v.is_nan() => (-(step as i64), f64::INFINITY),
                    Some(&(step, v)) => (-(step as i64), sign * v),
                    None => (1, 0.0),
                };
                pruned.push((t, key));
            }
            TrialState::Failed => {}
        }
    }
    // The best are selected, and only they are sorted (25 at most under Optuna's γ).
    let n_below = good.of(complete.len() + pruned.len() + infeasible.len());
    let from_complete = best(&mut complete, n_below, |a, b| {
        a.1.total_cmp(&b.1).then(a.0.number.cmp(&b.0.number))
    });
    let from_pruned = best(&mut pruned, n_below - from_complete.len(), |a, b| {
        a.1 .0.cmp(&b.1 .0).then(a.1 .1.total_cmp(&b.1 .1))
    });
    let left = n_below - from_complete.len() - from_pruned.len();
    let from_infeasible = best(&mut infeasible, left, |a, b| {
        a.1.total_cmp(&b.1).then(a.0.number.cmp(&b.0.number))
    });
    from_complete
        .iter()
        .chain(&from_pruned)
        .chain(&from_infeasible)
        .map(|t| t.number)
        .collect()
}

/// The `n` smallest of `ranked` under `order` (a total order), smallest first.
fn best<'a, K>(
    ranked: &mut [(&'a FrozenTrial, K)],
    n: usize,
    mut order: impl FnMut(&(&'a FrozenTrial, K), &(&'a FrozenTrial, K)) -> std::cmp::Ordering,
) -> Vec<&'a FrozenTrial> {
    let n = n.min(ranked.len());
    if n > 0 && n < ranked.len() {
        ranked.select_nth_unstable_by(n - 1, &mut order);
    }
    ranked[..n].sort_unstable_by(order);
    ranked[..n].iter().map(|(t, _)| *t).collect()
}

impl Sampler for TpeSampler {
    fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self.startup.reseed(seed ^ 0x7E7E);
    }

    fn sample_relative(&mut self, history: &History<'_>, space: &Space) -> Params {
        if !self.options_for(history).multivariate || self.in_startup(history) {
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

    fn options(constant_liar: bool, good: GoodCount) -> TpeOptions {
        TpeOptions {
            constant_liar,
            good,
            ..TpeOptions::default()
        }
    }

    fn trial(number: usize, state: TrialState, value: Option<f64>) -> FrozenTrial {
        FrozenTrial {
            number,
            params: Params::new(),
            state,
            value,
            intermediate: Vec::new(),
            completed_rungs: Vec::new(),
            values: Vec::new(),
            constraints: Vec::new(),
        }
    }

    #[test]
    fn gamma_matches_optuna() {
        assert_eq!((gamma(1), gamma(10), gamma(11), gamma(1000)), (1, 1, 2, 25));
    }

    #[test]
    fn sqrt_good_count() {
        let good = GoodCount::Sqrt { beta: 0.25 };
        assert_eq!(
            (good.of(10), good.of(16), good.of(17), good.of(100)),
            (1, 1, 2, 3)
        );
    }

    /// popsweep's `tpe` is Optuna's setting but for the candidates: from the same history
    /// and seed the two draw differently, and popsweep's suggestions lie closer to the
    /// good trials than Optuna's.
    #[test]
    fn narrow_candidates_stay_near_the_good_trials() {
        let space = crate::config::parse_space(
            r#"{"x": {"min": 0.0, "max": 1.0}, "y": {"min": -5.0, "max": 5.0}}"#,
            "space",
        )
        .unwrap();
        let objective = |x: f64, y: f64| (x - 0.3).powi(2) + y * y / 25.0;
        let trials: Vec<FrozenTrial> = (0..40)
            .map(|i| {
                let (x, y) = ((i as f64 * 0.37) % 1.0, (i as f64 * 1.3) % 10.0 - 5.0);
                FrozenTrial {
                    params: [
                        ("x".into(), ParamValue::Float(x)),
                        ("y".into(), ParamValue::Float(y)),
                    ]
                    .into_iter()
                    .collect(),
                    ..trial(i, TrialState::Complete, Some(objective(x, y)))
                }
            })
            .collect();
        let h = History::new(&trials, &[], false);
        let (good, _, _) = split(&h, &options(true, GoodCount::Linear));
        let xy = |p: &Params| (p["x"].as_f64().unwrap(), p["y"].as_f64().unwrap());
        // Distance, in units of each range, to the nearest good trial.
        let to_good = |p: &Params| {
            let (x, y) = xy(p);
            good.iter()
                .map(|t| {
                    let (gx, gy) = xy(&t.params);
                    ((x - gx).powi(2) + ((y - gy) / 10.0).powi(2)).sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        };
        let (mut ours, mut optuna, mut differ) = (0.0, 0.0, 0);
        for seed in 0..40 {
            let a = TpeSampler::new(seed, TpeOptions::popsweep()).sample_relative(&h, &space);
            let b = TpeSampler::new(seed, TpeOptions::default()).sample_relative(&h, &space);
            ours += to_good(&a);
            optuna += to_good(&b);
            differ += usize::from(a != b);
        }
        assert_eq!(differ, 40, "the two settings suggest the same point");
        assert!(
            ours < 0.5 * optuna,
            "mean distance {ours} vs Optuna's {optuna}"
        );
    }

    /// Under ASHA no trial has finished its budget early on; the promoted ones still
    /// train. With `running_with_values` the one that reached the furthest rung is good;
    /// without it (Optuna) it is a liar, and the good one is a pruned trial.
    #[test]
    fn a_running_trial_with_rung_values_ranks_as_if_pruned_there() {
        let at = |number: usize, state, steps: &[(u64, f64)]| FrozenTrial {
            intermediate: steps.to_vec(),
            ..trial(number, state, None)
        };
        let trials = vec![
            at(0, TrialState::Pruned, &[(1, 0.90)]),
            at(1, TrialState::Pruned, &[(1, 0.95)]),
            at(2, TrialState::Running, &[(1, 0.97), (3, 0.98)]),
            at(3, TrialState::Pruned, &[]),
            at(4, TrialState::Running, &[]),
        ];
        // Maximised: the pruned trial with the larger value at the same step is better.
        let h = History::new(&trials, &[], true);
        let numbers = |ts: &[&FrozenTrial]| ts.iter().map(|t| t.number).collect::<Vec<_>>();
        let valued = TpeOptions {
            running_with_values: true,
            ..options(true, GoodCount::Linear)
        };
        let (below, above, _) = split(&h, &valued);
        assert_eq!(numbers(&below), vec![2]);
        assert_eq!(numbers(&above), vec![0, 1, 3, 4]);
        let (below, above, _) = split(&h, &options(true, GoodCount::Linear));
        assert_eq!(numbers(&below), vec![1]);
        assert_eq!(numbers(&above), vec![0, 2, 3, 4]);
    }

    #[test]
    fn split_puts_best_complete_below_and_liars_above() {
        let mut trials: Vec<FrozenTrial> = (0..12)
            .map(|i| trial(i, TrialState::Complete, Some(i as f64)))
            .collect();
        trials.push(trial(12, TrialState::Running, None));
        trials.push(trial(13, TrialState::Failed, None));
        let h = History::new(&trials, &[], false);
        let (below, above, _) = split(&h, &options(true, GoodCount::Linear));
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
        let (below, _, _) = split(&h, &options(false, GoodCount::Linear));
        assert_eq!(
            below.iter().map(|t| t.number).collect::<Vec<_>>(),
            vec![10, 11]
        );
    }

    /// Selecting the good group equals ranking every finished trial (the way Optuna does,
    /// by a full sort) on random histories with tied values, NaN, pruned trials at
    /// different steps, running and failed ones, either direction, both group sizes.
    #[test]
    fn split_by_selection_equals_split_by_sorting() {
        use rand::{RngExt, SeedableRng};
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for case in 0..300 {
            let trials: Vec<FrozenTrial> = (0..rng.random_range(0..80))
                .map(|i| {
                    let value = match rng.random_range(0..10) {
                        0 => f64::NAN,
                        _ => rng.random_range(0..8) as f64,
                    };
                    let state = match rng.random_range(0..10) {
                        0 => TrialState::Running,
                        1 => TrialState::Failed,
                        2 | 3 => TrialState::Pruned,
                        _ => TrialState::Complete,
                    };
                    let mut t = trial(i, state, (state == TrialState::Complete).then_some(value));
                    if state == TrialState::Pruned {
                        t.intermediate = (0..rng.random_range(0..3)).map(|s| (s, value)).collect();
                    }
                    t
                })
                .collect();
            let h = History::new(&trials, &[], case % 2 == 1);
            let sign = if h.maximize { -1.0 } else { 1.0 };
            let good = [GoodCount::Linear, GoodCount::Sqrt { beta: 0.25 }][case % 3 % 2];
            let liar = case % 5 != 0;
            // The reference: rank complete trials by value, then pruned ones by the step
            // they reached and their value there, and take the first γ.
            let pruned_key = |t: &FrozenTrial| match t.intermediate.last() {
                Some(&(step, v)) if v.is_nan() => (-(step as i64), f64::INFINITY),
                Some(&(step, v)) => (-(step as i64), sign * v),
                None => (1, 0.0),
            };
            let mut complete: Vec<&FrozenTrial> = trials
                .iter()
                .filter(|t| t.finite_value().is_some())
                .collect();
            complete.sort_by(|a, b| {
                (sign * a.value.unwrap())
                    .total_cmp(&(sign * b.value.unwrap()))
                    .then(a.number.cmp(&b.number))
            });
            let mut pruned: Vec<&FrozenTrial> = trials
                .iter()
                .filter(|t| t.state == TrialState::Pruned)
                .collect();
            pruned.sort_by(|a, b| {
                let (ka, kb) = (pruned_key(a), pruned_key(b));
                ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
            });
            let ranked: Vec<&FrozenTrial> = complete.into_iter().chain(pruned).collect();
            let n_good = good.of(ranked.len()).min(ranked.len());
            let want_best_first: Vec<usize> = ranked[..n_good].iter().map(|t| t.number).collect();
            let mut want_below = want_best_first.clone();
            let mut want_above: Vec<usize> = ranked[n_good..]
                .iter()
                .map(|t| t.number)
                .chain(
                    trials
                        .iter()
                        .filter(|t| liar && t.state == TrialState::Running)
                        .map(|t| t.number),
                )
                .collect();
            want_below.sort();
            want_above.sort();
            let (below, above, best_first) = split(&h, &options(liar, good));
            let numbers = |g: &[&FrozenTrial]| g.iter().map(|t| t.number).collect::<Vec<_>>();
            assert_eq!(numbers(&below), want_below, "case {case}");
            assert_eq!(numbers(&above), want_above, "case {case}");
            assert_eq!(best_first, want_best_first, "case {case}");
        }
    }

    /// Rows in trial order get weights by rank (a row missing from the group is skipped,
    /// not ranked), the prior keeps its weight, and the whole sums to 1.
    #[test]
    fn rank_weights_decay_with_rank_and_keep_the_prior() {
        // Rows are trials 3, 5, 8, 9 (in that order); ranked best first 8, 4 (not a row),
        // 3, 9, 5; the prior weighs 0.2.
        let l_weights = [0.2, 0.2, 0.2, 0.2, 0.2];
        let decay = 0.5;
        let w = rank_weights(&l_weights, &[3, 5, 8, 9], &[8, 4, 3, 9, 5], decay);
        let by_rank = |r: f64| (-r / (decay * 4.0)).exp();
        let total = (0..4).map(|r| by_rank(r as f64)).sum::<f64>();
        let want = [1.0, 3.0, 0.0, 2.0].map(|r| 0.8 * by_rank(r) / total);
        for (row, want) in want.iter().enumerate() {
            assert!(
                (w[row] - want).abs() < 1e-12,
                "row {row}: {} vs {want}",
                w[row]
            );
        }
        assert_eq!(w[4], 0.2);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(w[2] > w[0] && w[0] > w[3] && w[3] > w[1]);
    }
}
