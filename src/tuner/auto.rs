//! `method: auto`: the search method chosen from the budget and the space, with the
//! reason said out loud. The rules, in order:
//!
//! 1. A fully discrete space with no more points than `run_cap`: grid — every point fits.
//! 2. Fewer than 10 trials: random — TPE and GP spend their first ~10 trials on random
//!    startup anyway (Optuna's `n_startup_trials`), so a model never gets to act.
//! 3. A built-in sweep with no early stopping of its own, a full budget of at least 9
//!    epochs (Hyperband gets rungs at 1, 3 and 9 epochs) and `run_cap` covering Hyperband's
//!    brackets: BOHB — a poor configuration usually shows itself within an epoch or three
//!    of SGD, so most of the budget goes to the promising ones.
//! 4. At most 10 parameters, none conditional or categorical with many choices, and at
//!    most 200 trials: GP-EI — the most sample-efficient at that size, and its cubic cost
//!    still small.
//! 5. Otherwise TPE — it scales to many dimensions, conditional spaces and long runs.

use crate::space::{Distribution, Space};
use crate::tuner::sampler::{GridSampler, SamplerKind};
use crate::tuner::scheduler::total_trials;

/// What `auto` chose.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoChoice {
    pub sampler: SamplerKind,
    /// BOHB's Hyperband brackets over `[1, epochs]` epochs with η = 3 (rule 3).
    pub bohb: bool,
    pub reason: String,
}

/// Chooses for `space` and `run_cap`; `epochs` is the built-in full budget when the sweep
/// trains the built-in model and sets no early stopping itself.
pub fn choose(space: &Space, run_cap: usize, epochs: Option<usize>) -> AutoChoice {
    let pick = |sampler, bohb, reason: String| AutoChoice {
        sampler,
        bohb,
        reason,
    };
    if let Ok(points) = GridSampler::grid_size(space) {
        if points <= run_cap as u64 {
            return pick(
                SamplerKind::Grid,
                false,
                format!(
                    "grid: the space has {points} points and run_cap {run_cap} covers them all"
                ),
            );
        }
    }
    if run_cap < 10 {
        return pick(
            SamplerKind::Random,
            false,
            format!(
                "random: {run_cap} trials are too few for a model (TPE and GP start with ~10 random ones)"
            ),
        );
    }
    if let Some(epochs) = epochs.filter(|&e| e >= 9) {
        let needed = total_trials(1, epochs, 3);
        if run_cap >= needed {
            return pick(
                SamplerKind::Random,
                true,
                format!(
                    "bohb: {epochs} epochs give Hyperband rungs at 1, 3, 9… epochs, so weak \
                     configurations stop early; its brackets take {needed} trials (run_cap {run_cap})"
                ),
            );
        }
    }
    let dims = space.params.len();
    let simple = space.params.iter().all(|p| {
        p.condition.is_none()
            && !matches!(&p.dist, Distribution::Categorical { choices, .. } if choices.len() > 8)
    });
    if dims <= 10 && simple && run_cap <= 200 {
        return pick(
            SamplerKind::Gp,
            false,
            format!("gp: {dims} parameters and {run_cap} trials, where GP-EI is the most sample-efficient"),
        );
    }
    pick(
        SamplerKind::Tpe,
        false,
        format!(
            "tpe: {dims} parameters{}, {run_cap} trials — TPE scales where a GP does not",
            if simple {
                ""
            } else {
                " (conditional or many-valued)"
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{ParamDef, ParamValue};

    fn float(name: &str) -> ParamDef {
        ParamDef {
            name: name.into(),
            dist: Distribution::Float {
                low: 1e-4,
                high: 1.0,
                log: true,
                step: None,
            },
            condition: None,
        }
    }

    #[test]
    fn each_rule_fires_where_it_should() {
        let small = Space::new(vec![ParamDef {
            name: "w".into(),
            dist: Distribution::Categorical {
                choices: vec![ParamValue::Int(32), ParamValue::Int(64)],
                weights: None,
            },
            condition: None,
        }])
        .unwrap();
        assert_eq!(choose(&small, 4, Some(27)).sampler, SamplerKind::Grid);
        let two = Space::new(vec![float("lr"), float("wd")]).unwrap();
        assert_eq!(choose(&two, 6, Some(27)).sampler, SamplerKind::Random);
        let c = choose(&two, 81, Some(27));
        assert!(c.bohb && c.reason.starts_with("bohb"), "{c:?}");
        // Too few trials for Hyperband's brackets, or too few epochs: a model-based sampler.
        assert_eq!(choose(&two, 30, Some(27)).sampler, SamplerKind::Gp);
        assert_eq!(choose(&two, 81, Some(3)).sampler, SamplerKind::Gp);
        assert_eq!(choose(&two, 81, None).sampler, SamplerKind::Gp);
        let wide = Space::new((0..12).map(|i| float(&format!("x{i}"))).collect()).unwrap();
        assert_eq!(choose(&wide, 50, None).sampler, SamplerKind::Tpe);
        assert_eq!(choose(&two, 500, None).sampler, SamplerKind::Tpe);
    }
}
