//! GP-EI: Bayesian optimisation with a Gaussian process (Matérn-5/2 ARD on the unit cube,
//! log-aware through the space's transform) and log expected improvement — the protocol
//! side; the maths lives in `gp/`.
//!
//! - The first `n_startup_trials` (10) suggestions are random, as Optuna's GPSampler.
//! - Modelled jointly: the always-active parameters with more than one value; integer and
//!   stepped parameters sit on their bin centres and are snapped after the continuous
//!   search, categorical ones use a Hamming distance and are searched choice by choice.
//!   Conditional parameters whose parent is modelled are modelled too (Optuna's GPSampler
//!   draws them at random): where a trial's condition is unmet, the dimension holds the
//!   constant `INACTIVE`, and the acquisition sees a candidate the same way.
//! - Batches by kriging believer: running and pending trials join the training set with
//!   the posterior mean as their value, which leaves the mean unchanged and shrinks the
//!   variance around them, so the next suggestion looks elsewhere.
//! - Kernel hyperparameters are refitted from the previous fit (warm start) on a schedule:
//!   every suggestion below 30 trials, then whenever the history has grown by 10%.

use super::gp::acquisition::{maximize_log_ei, AcqSpace, Acquisition};
use super::gp::feasibility::Feasibility;
use super::gp::kernel::KernelParams;
use super::gp::{fit, GpModel, Inputs, Whitened, INACTIVE};
use super::{History, RandomSampler, Sampler, SobolSampler};
use crate::space::transform::{from_unit, to_unit};
use crate::space::{Distribution, ParamDef, ParamValue, Params, Space};
use crate::storage::TrialState;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Running trials the kriging believer takes into the model at most (the latest ones).
const MAX_BELIEVED: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpEiOptions {
    /// Random trials before the GP is used (default 10).
    pub n_startup_trials: usize,
    /// Quasi-random points scored before local refinement (default 512).
    pub n_candidates: usize,
    /// Best candidates refined by L-BFGS (default 5; Optuna refines 10).
    pub n_local_search: usize,
}

impl Default for GpEiOptions {
    fn default() -> Self {
        GpEiOptions {
            n_startup_trials: 10,
            n_candidates: 512,
            n_local_search: 5,
        }
    }
}

/// Whether hyperparameters fitted on `fitted_on` trials should be refitted for `n`: always
/// below 30 trials, then once the history has grown by 10%. The marginal likelihood
/// changes little with one more point, and the fit is most of a suggestion's cost;
/// between refits the previous kernel is reused with the new data (and each refit
/// warm-starts from it). Within a batch the complete trials do not change, so one fit
/// serves every suggestion of the batch.
fn needs_refit(fitted_on: usize, n: usize) -> bool {
    n != fitted_on && (n < 30 || n * 10 >= fitted_on * 11)
}

pub struct GpEiSampler {
    options: GpEiOptions,
    rng: ChaCha8Rng,
    startup: RandomSampler,
    /// The last fit and the number of complete trials it saw (see [`needs_refit`]).
    last_fit: Option<(usize, KernelParams)>,
    /// The last model of the complete trials: reused while they do not change, as within a
    /// batch.
    last_model: Option<BatchBase>,
}

/// The model of the complete trials and the quasi-random candidates every suggestion of a
/// batch scores, their covariances with the training points computed once: each
/// suggestion then pays only for the pending points ([`GpModel::posterior_whitened`]).
struct BatchBase {
    /// The standardised values the model was conditioned on.
    y: Vec<f64>,
    model: GpModel,
    /// `(m, d)`: Sobol points plus the best observed point.
    candidates: Vec<f64>,
    /// The candidates as the GP sees them (inactive dimensions imputed).
    seen: Vec<f64>,
    whitened: Whitened,
}

impl GpEiSampler {
    pub fn new(seed: u64, options: GpEiOptions) -> Self {
        // The GP's matrices are a few hundred rows: faer's thread pool costs more in
        // wake-ups than it saves, and the cores belong to training anyway.
        faer::set_global_parallelism(faer::Par::Seq);
        GpEiSampler {
            options,
            rng: ChaCha8Rng::seed_from_u64(seed),
            startup: RandomSampler::new(seed ^ 0x6B),
            last_fit: None,
            last_model: None,
        }
    }
}

/// A value's GP coordinate: its unit coordinate, or a categorical's choice index.
fn encode(dist: &Distribution, value: &ParamValue) -> f64 {
    match dist {
        Distribution::Categorical { choices, .. } => {
            choices.iter().position(|c| c == value).unwrap_or(0) as f64
        }
        _ => to_unit(dist, value),
    }
}

fn decode(dist: &Distribution, coord: f64) -> ParamValue {
    match dist {
        Distribution::Categorical { choices, .. } => {
            choices[(coord.round().max(0.0) as usize).min(choices.len() - 1)].clone()
        }
        _ => from_unit(dist, coord.clamp(0.0, 1.0)),
    }
}

/// The parameters the GP models: every always-active one with more than one value, and
/// every conditional one whose parent it models (in the space's order, parents first).
fn modelled(space: &Space) -> Vec<&ParamDef> {
    let mut defs: Vec<&ParamDef> = Vec::new();
    for p in &space.params {
        let parent_modelled = |c: &crate::space::Condition| defs.iter().any(|d| d.name == c.parent);
        if p.dist.cardinality() != Some(1) && p.condition.as_ref().is_none_or(parent_modelled) {
            defs.push(p);
        }
    }
    defs
}

/// For each modelled dimension, the index of its parent's dimension (`None`: unconditional).
fn parent_indices(defs: &[&ParamDef]) -> Vec<Option<usize>> {
    defs.iter()
        .map(|p| {
            let c = p.condition.as_ref()?;
            defs.iter().position(|d| d.name == c.parent)
        })
        .collect()
}

/// Which dimensions of `point` are active: a conditional one when its parent is active and
/// holds one of the condition's values (parents come first, so one pass suffices).
fn active_dims(defs: &[&ParamDef], parents: &[Option<usize>], point: &[f64]) -> Vec<bool> {
    let mut active = vec![true; defs.len()];
    for (j, parent) in parents.iter().enumerate() {
        if let (Some(i), Some(c)) = (parent, &defs[j].condition) {
            active[j] = active[*i] && c.values.contains(&decode(&defs[*i].dist, point[*i]));
        }
    }
    active
}

/// The complete trials as the GP fits them: their rows, their objective values
/// (maximisation form) and, in a constrained study, their constraint values and
/// feasibility.
struct Observed {
    x: Vec<f64>,
    y: Vec<f64>,
    constraints: Vec<Vec<f64>>,
    feasible: Vec<bool>,
}

fn observed(history: &History<'_>, row: &dyn Fn(&Params) -> Option<Vec<f64>>) -> Observed {
    let sign = if history.maximize { 1.0 } else { -1.0 };
    // Constraint values ride along with the objective's rows (a trial told without them
    // counts as keeping them).
    let n_constraints = match history.constrained {
        true => history
            .all()
            .map(|t| t.constraints.len())
            .max()
            .unwrap_or(0),
        false => 0,
    };
    let mut out = Observed {
        x: Vec::new(),
        y: Vec::new(),
        constraints: Vec::new(),
        feasible: Vec::new(),
    };
    for t in history.all() {
        if let (Some(v), Some(r)) = (t.finite_value(), row(&t.params)) {
            out.x.extend(r);
            out.y.push(sign * v);
            out.constraints.push(
                (0..n_constraints)
                    .map(|i| t.constraints.get(i).copied().unwrap_or(0.0))
                    .collect(),
            );
            out.feasible.push(t.violation() == 0.0);
        }
    }
    out
}

/// The incumbent expected improvement is measured over — the best feasible value, `None`
/// before any trial is feasible (the acquisition is then the probability of feasibility
/// alone) — and the constraint models of a constrained study.
fn incumbent(
    inputs: &Inputs,
    y: &[f64],
    constraints: &[Vec<f64>],
    feasible: &[bool],
) -> (Option<f64>, Option<Feasibility>) {
    let f0 = y
        .iter()
        .zip(feasible)
        .filter(|(_, &ok)| ok)
        .map(|(&v, _)| v)
        .reduce(f64::max);
    let constrained = constraints.first().is_some_and(|c| !c.is_empty());
    let feasibility = constrained
        .then(|| {
            Feasibility::new(inputs, constraints, |inputs, y| {
                fit(inputs, y, &KernelParams::initial(inputs.d))
            })
        })
        .flatten();
    (f0, feasibility)
}

/// Mean 0 and standard deviation 1 (the deviation floored, so constant data stays finite).
fn standardize(y: &mut [f64]) {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n)
        .sqrt()
        .max(1e-10);
    y.iter_mut().for_each(|v| *v = (*v - mean) / sd);
}

impl GpEiSampler {
    /// The kernel's hyperparameters for `y`: the previous fit while it still holds (see
    /// [`needs_refit`]), else a fit started from it.
    fn kernel_params(&mut self, inputs: &Inputs, y: &[f64]) -> KernelParams {
        let d = inputs.d;
        let previous = self
            .last_fit
            .take()
            .filter(|(_, p)| p.inv_sq_lengthscales.len() == d);
        let (fitted_on, params) = match previous {
            Some((m, p)) if !needs_refit(m, y.len()) => (m, p),
            previous => {
                let start = previous.map_or_else(|| KernelParams::initial(d), |(_, p)| p);
                (y.len(), fit(inputs, y, &start))
            }
        };
        self.last_fit = Some((fitted_on, params.clone()));
        params
    }

    /// The model of the complete trials and its candidates (a Sobol set and the best
    /// point), whitened once: the same for every suggestion of a batch. `None` when the
    /// kernel matrix cannot be factorised.
    fn batch_base(
        &mut self,
        inputs: &Inputs,
        y: &[f64],
        params: KernelParams,
        defs: &[&ParamDef],
        best_x: &[f64],
        acq_space: &AcqSpace<'_>,
    ) -> Option<BatchBase> {
        let d = inputs.d;
        let model = GpModel::new(inputs.clone(), y, params)?;
        let sobol = SobolSampler::new(self.rng.random(), true);
        let mut candidates: Vec<f64> = Vec::with_capacity((self.options.n_candidates + 1) * d);
        for u in sobol.points(d, 0, self.options.n_candidates) {
            candidates.extend(
                defs.iter()
                    .zip(u)
                    .map(|(p, u)| encode(&p.dist, &from_unit(&p.dist, u))),
            );
        }
        candidates.extend(best_x);
        let seen = acq_space.seen(&candidates);
        Some(BatchBase {
            y: y.to_vec(),
            whitened: model.whiten(&seen),
            model,
            candidates,
            seen,
        })
    }
}

impl Sampler for GpEiSampler {
    fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self.startup.reseed(seed ^ 0x6B);
    }

    fn sample_relative(&mut self, history: &History<'_>, space: &Space) -> Params {
        let defs = modelled(space);
        let parents = parent_indices(&defs);
        let row = |params: &Params| -> Option<Vec<f64>> {
            defs.iter()
                .map(|d| match params.get(&d.name) {
                    Some(v) => Some(encode(&d.dist, v)),
                    None if !Space::is_active(d, params) => Some(INACTIVE),
                    None => None,
                })
                .collect()
        };
        let Observed {
            x,
            mut y,
            constraints,
            feasible,
        } = observed(history, &row);
        if defs.is_empty() || y.len() < self.options.n_startup_trials {
            return Params::new();
        }
        standardize(&mut y);
        let d = defs.len();
        let categorical: Vec<bool> = defs
            .iter()
            .map(|p| matches!(p.dist, Distribution::Categorical { .. }))
            .collect();
        let inputs = Inputs { x, d, categorical };
        let params = self.kernel_params(&inputs, &y);
        let (mut f0, feasibility) = incumbent(&inputs, &y, &constraints, &feasible);
        let best_row = y
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        let best_x = inputs.row(best_row).to_vec();
        let snap = |point: &mut [f64]| {
            for (c, p) in point.iter_mut().zip(&defs) {
                *c = encode(&p.dist, &decode(&p.dist, *c));
            }
        };
        let active = |point: &[f64]| active_dims(&defs, &parents, point);
        let acq_space = AcqSpace {
            categorical: defs
                .iter()
                .map(|p| match &p.dist {
                    Distribution::Categorical { choices, .. } => Some(choices.len()),
                    _ => None,
                })
                .collect(),
            snap: &snap,
            active: (!parents.iter().all(Option::is_none)).then_some(&active),
        };
        // The model of the complete trials and its candidates, whitened once: the same for
        // every suggestion of a batch.
        let base = match self.last_model.take() {
            Some(b) if b.y == y && b.model.inputs.x == inputs.x && b.model.params == params => b,
            _ => match self.batch_base(&inputs, &y, params, &defs, &best_x, &acq_space) {
                Some(base) => base,
                None => return Params::new(),
            },
        };
        let base = self.last_model.insert(base);
        // Kriging believer for running and pending trials: the latest MAX_BELIEVED of them.
        // Each believed point costs a row of the extended Cholesky factor at every ask, so
        // a large batch would be cubic in its size; past a few hundred the believed points
        // already crowd the space, and the batch's duplicate check spreads the rest.
        let running: Vec<Vec<f64>> = history
            .all()
            .filter(|t| t.state == TrialState::Running)
            .filter_map(|t| row(&t.params))
            .collect();
        let pending: Vec<f64> = running[running.len().saturating_sub(MAX_BELIEVED)..].concat();
        let mut believer = None;
        if !pending.is_empty() {
            let believed: Vec<f64> = base
                .model
                .posterior(&pending)
                .iter()
                .map(|&(m, _)| m)
                .collect();
            // The believed values count as observed, incumbent included: otherwise a pending
            // point predicted above the incumbent keeps its EI and is suggested again.
            f0 = f0.map(|f0| believed.iter().copied().fold(f0, f64::max));
            let mut y_aug = y.clone();
            y_aug.extend(believed);
            believer = base.model.extended(&pending, &y_aug);
        }
        let model = believer.as_ref().unwrap_or(&base.model);
        let posteriors = model.posterior_whitened(&base.whitened, &base.seen);
        let acquisition = Acquisition {
            model,
            f0,
            feasibility: feasibility.as_ref(),
        };
        let (best, _) = maximize_log_ei(
            &acquisition,
            &base.candidates,
            &posteriors,
            &acq_space,
            self.options.n_local_search,
        );
        defs.iter()
            .zip(best)
            .map(|(p, c)| (p.name.clone(), decode(&p.dist, c)))
            .collect()
    }

    fn sample_independent(&mut self, history: &History<'_>, def: &ParamDef) -> ParamValue {
        self.startup.sample_independent(history, def)
    }
}
