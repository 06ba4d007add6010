//! Pruners for define-by-run and ask/tell studies: after a trial reports an intermediate
//! value, should it stop? Optuna 5's rules, decision for decision (the corpus test in
//! `tests/pruners.rs` replays Optuna's own answers). The population engine's schedulers
//! (`tuner::scheduler`) decide for a whole population at a rung; a pruner decides for one
//! trial from the study's records, which is all a program outside popsweep can offer.

mod halving;
mod patient;
mod percentile;
mod threshold;
mod wilcoxon;

use crate::pruning::PrunerSpec;
use crate::storage::FrozenTrial;

pub use wilcoxon::signed_rank_p_value;

/// What a pruner sees: the study's trials (the asking trial among them, running), its
/// direction and its name (Hyperband assigns brackets by a hash of name and number).
pub struct StudyView<'a> {
    pub trials: &'a [FrozenTrial],
    pub maximize: bool,
    pub study_name: &'a str,
}

/// A pruner's answer: whether to prune, and the rung values to record on the trial
/// (successive halving remembers them in the study, as Optuna's system attributes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub prune: bool,
    pub passed_rungs: Vec<(usize, f64)>,
}

/// A pruner with the state Optuna keeps in its pruner object (an "auto" resource, once
/// estimated, stays fixed for the pruner's life).
pub struct Pruner {
    rule: Rule,
}

enum Rule {
    Nop,
    Percentile(percentile::Percentile),
    Halving(halving::SuccessiveHalving),
    Hyperband(halving::Hyperband),
    Threshold(threshold::Threshold),
    Patient(Box<patient::Patient>),
    Wilcoxon(wilcoxon::Wilcoxon),
}

impl Pruner {
    /// The pruner `spec` names (settings already checked by [`PrunerSpec::check`]).
    pub fn new(spec: &PrunerSpec) -> Pruner {
        Pruner {
            rule: Rule::new(spec),
        }
    }

    /// Whether `trial` (running, with its intermediate values) should stop now.
    pub fn prune(&mut self, study: &StudyView<'_>, trial: &FrozenTrial) -> Verdict {
        let mut verdict = Verdict::default();
        let ctx = Context {
            trials: Trials::All(study.trials),
            maximize: study.maximize,
            study_name: study.study_name,
        };
        verdict.prune = self.rule.prune(&ctx, trial, &mut verdict.passed_rungs);
        verdict
    }
}

/// The study as one rule sees it: Hyperband hands each bracket's successive halving only
/// the trials of that bracket.
#[derive(Clone, Copy)]
struct Context<'a> {
    trials: Trials<'a>,
    maximize: bool,
    study_name: &'a str,
}

/// Every trial of the study (no copy), or a selection of them.
#[derive(Clone, Copy)]
enum Trials<'a> {
    All(&'a [FrozenTrial]),
    Some(&'a [&'a FrozenTrial]),
}

impl<'a> Trials<'a> {
    fn iter(self) -> TrialsIter<'a> {
        match self {
            Trials::All(t) => TrialsIter::All(t.iter()),
            Trials::Some(t) => TrialsIter::Some(t.iter()),
        }
    }
}

enum TrialsIter<'a> {
    All(std::slice::Iter<'a, FrozenTrial>),
    Some(std::slice::Iter<'a, &'a FrozenTrial>),
}

impl<'a> Iterator for TrialsIter<'a> {
    type Item = &'a FrozenTrial;
    fn next(&mut self) -> Option<&'a FrozenTrial> {
        match self {
            TrialsIter::All(i) => i.next(),
            TrialsIter::Some(i) => i.next().copied(),
        }
    }
}

impl<'a> Context<'a> {
    fn completed(&self) -> impl Iterator<Item = &'a FrozenTrial> {
        self.trials
            .iter()
            .filter(|t| t.state == crate::storage::TrialState::Complete)
    }
}

impl Rule {
    fn new(spec: &PrunerSpec) -> Rule {
        match spec {
            PrunerSpec::Nop => Rule::Nop,
            PrunerSpec::Median {
                n_startup_trials,
                n_warmup_steps,
                interval_steps,
                n_min_trials,
            } => Rule::Percentile(percentile::Percentile {
                percentile: 50.0,
                n_startup_trials: *n_startup_trials,
                n_warmup_steps: *n_warmup_steps,
                interval_steps: *interval_steps,
                n_min_trials: *n_min_trials,
            }),
            PrunerSpec::Percentile {
                percentile,
                n_startup_trials,
                n_warmup_steps,
                interval_steps,
                n_min_trials,
            } => Rule::Percentile(percentile::Percentile {
                percentile: *percentile,
                n_startup_trials: *n_startup_trials,
                n_warmup_steps: *n_warmup_steps,
                interval_steps: *interval_steps,
                n_min_trials: *n_min_trials,
            }),
            PrunerSpec::SuccessiveHalving {
                min_resource,
                reduction_factor,
                min_early_stopping_rate,
                bootstrap_count,
            } => Rule::Halving(halving::SuccessiveHalving {
                min_resource: *min_resource,
                reduction_factor: *reduction_factor,
                min_early_stopping_rate: *min_early_stopping_rate,
                bootstrap_count: *bootstrap_count,
            }),
            PrunerSpec::Hyperband {
                min_resource,
                max_resource,
                reduction_factor,
                bootstrap_count,
            } => Rule::Hyperband(halving::Hyperband::new(
                *min_resource,
                *max_resource,
                *reduction_factor,
                *bootstrap_count,
            )),
            PrunerSpec::Threshold {
                lower,
                upper,
                n_warmup_steps,
                interval_steps,
            } => Rule::Threshold(threshold::Threshold {
                lower: lower.unwrap_or(f64::NEG_INFINITY),
                upper: upper.unwrap_or(f64::INFINITY),
                n_warmup_steps: *n_warmup_steps,
                interval_steps: *interval_steps,
            }),
            PrunerSpec::Patient {
                wrapped,
                patience,
                min_delta,
            } => Rule::Patient(Box::new(patient::Patient {
                wrapped: wrapped.as_deref().map(Rule::new),
                patience: *patience,
                min_delta: *min_delta,
            })),
            PrunerSpec::Wilcoxon {
                p_threshold,
                n_startup_steps,
            } => Rule::Wilcoxon(wilcoxon::Wilcoxon {
                p_threshold: *p_threshold,
                n_startup_steps: *n_startup_steps,
            }),
        }
    }

    fn prune(
        &mut self,
        ctx: &Context<'_>,
        trial: &FrozenTrial,
        passed: &mut Vec<(usize, f64)>,
    ) -> bool {
        match self {
            Rule::Nop => false,
            Rule::Percentile(p) => p.prune(ctx, trial),
            Rule::Halving(p) => p.prune(ctx, trial, passed),
            Rule::Hyperband(p) => p.prune(ctx, trial, passed),
            Rule::Threshold(p) => p.prune(trial),
            Rule::Patient(p) => p.prune(ctx, trial, passed),
            Rule::Wilcoxon(p) => p.prune(ctx, trial),
        }
    }
}

/// Optuna's `_is_first_in_interval_step`: whether `step` is the first reported step at or
/// after the latest pruning checkpoint (`n_warmup_steps + k · interval_steps`), so a check
/// missed for want of a report happens at the next report instead.
fn first_in_interval(trial: &FrozenTrial, step: u64, n_warmup_steps: u64, interval: u64) -> bool {
    let checkpoint = (step - n_warmup_steps) / interval * interval + n_warmup_steps;
    let second_last = trial
        .intermediate
        .iter()
        .map(|&(s, _)| s)
        .filter(|&s| s != step)
        .max();
    second_last.is_none_or(|s| s < checkpoint)
}

/// numpy's `nanmax` / `nanmin` (NaN when every value is NaN or there are none).
fn nan_best(values: impl Iterator<Item = f64>, maximize: bool) -> f64 {
    values.filter(|v| !v.is_nan()).fold(f64::NAN, |best, v| {
        if best.is_nan() || (maximize && v > best) || (!maximize && v < best) {
            v
        } else {
            best
        }
    })
}
