//! Which pruner a define-by-run or ask/tell study uses, and its settings: Optuna 5's
//! pruners with Optuna's names and defaults. A leaf module, so that the storage can keep
//! the settings in a study's header without importing the tuner that carries them out
//! (`tuner::pruner`).

use serde::{Deserialize, Serialize};

/// A pruner and its settings, as `--pruner` and the study header write it: a name
/// (`median`) or a JSON object (`{"kind": "percentile", "percentile": 25}`); fields not
/// given take Optuna's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PrunerSpec {
    /// Never prunes (Optuna's `NopPruner`).
    Nop,
    /// `MedianPruner`: the percentile rule at 50.
    Median {
        #[serde(default = "five")]
        n_startup_trials: usize,
        #[serde(default)]
        n_warmup_steps: u64,
        #[serde(default = "one")]
        interval_steps: u64,
        #[serde(default = "one_usize")]
        n_min_trials: usize,
    },
    /// `PercentilePruner`: prune when the best value so far is in the worse
    /// `percentile` of the completed trials' values at the same step.
    Percentile {
        percentile: f64,
        #[serde(default = "five")]
        n_startup_trials: usize,
        #[serde(default)]
        n_warmup_steps: u64,
        #[serde(default = "one")]
        interval_steps: u64,
        #[serde(default = "one_usize")]
        n_min_trials: usize,
    },
    /// `SuccessiveHalvingPruner` (asynchronous: ASHA). `min_resource` absent is Optuna's
    /// "auto": the longest completed trial's last step / 100.
    SuccessiveHalving {
        #[serde(default)]
        min_resource: Option<u64>,
        #[serde(default = "four")]
        reduction_factor: u64,
        #[serde(default)]
        min_early_stopping_rate: u32,
        #[serde(default)]
        bootstrap_count: usize,
    },
    /// `HyperbandPruner`: trials split into successive-halving brackets by a hash of the
    /// study name and trial number. `max_resource` absent is "auto": the longest completed
    /// trial's last step + 1.
    Hyperband {
        #[serde(default = "one")]
        min_resource: u64,
        #[serde(default)]
        max_resource: Option<u64>,
        #[serde(default = "three")]
        reduction_factor: u64,
        #[serde(default)]
        bootstrap_count: usize,
    },
    /// `ThresholdPruner`: prune once the latest value leaves `[lower, upper]` (or is NaN).
    Threshold {
        #[serde(default)]
        lower: Option<f64>,
        #[serde(default)]
        upper: Option<f64>,
        #[serde(default)]
        n_warmup_steps: u64,
        #[serde(default = "one")]
        interval_steps: u64,
    },
    /// `PatientPruner`: no improvement of more than `min_delta` for `patience` steps, then
    /// the wrapped pruner decides (or prune, without one).
    Patient {
        #[serde(default)]
        wrapped: Option<Box<PrunerSpec>>,
        patience: usize,
        #[serde(default)]
        min_delta: f64,
    },
    /// `WilcoxonPruner`: a signed-rank test of this trial's values against the best
    /// trial's at the same steps (problem instances, folds).
    Wilcoxon {
        #[serde(default = "p_threshold")]
        p_threshold: f64,
        #[serde(default = "two_usize")]
        n_startup_steps: usize,
    },
}

fn one() -> u64 {
    1
}
fn three() -> u64 {
    3
}
fn four() -> u64 {
    4
}
fn one_usize() -> usize {
    1
}
fn two_usize() -> usize {
    2
}
fn five() -> usize {
    5
}
fn p_threshold() -> f64 {
    0.1
}

impl PrunerSpec {
    pub const NAMES: &'static str =
        "nop, median, percentile, successive_halving, hyperband, threshold, patient, wilcoxon";

    /// `--pruner`: a name with every setting at Optuna's default, or a JSON object.
    /// Settings are checked as Optuna checks them.
    pub fn parse(text: &str) -> Result<PrunerSpec, String> {
        let text = text.trim();
        let spec: PrunerSpec = if text.starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("{e}"))?
        } else {
            serde_json::from_value(serde_json::json!({ "kind": text })).map_err(|e| {
                let e = e.to_string();
                match e.contains("unknown variant") {
                    true => format!("unknown pruner `{text}` (known: {})", PrunerSpec::NAMES),
                    false => format!("pruner `{text}` needs settings as JSON: {e}"),
                }
            })?
        };
        spec.check()?;
        Ok(spec)
    }

    /// The settings Optuna refuses, refused with Optuna's reason.
    pub fn check(&self) -> Result<(), String> {
        let at_least = |name: &str, value: u64, min: u64| match value >= min {
            true => Ok(()),
            false => Err(format!("{name} must be at least {min}, got {value}")),
        };
        match self {
            PrunerSpec::Nop => Ok(()),
            PrunerSpec::Median {
                interval_steps,
                n_min_trials,
                ..
            } => {
                at_least("interval_steps", *interval_steps, 1)?;
                at_least("n_min_trials", *n_min_trials as u64, 1)
            }
            PrunerSpec::Percentile {
                percentile,
                interval_steps,
                n_min_trials,
                ..
            } => {
                if !(0.0..=100.0).contains(percentile) {
                    return Err(format!(
                        "percentile must be between 0 and 100, got {percentile}"
                    ));
                }
                at_least("interval_steps", *interval_steps, 1)?;
                at_least("n_min_trials", *n_min_trials as u64, 1)
            }
            PrunerSpec::SuccessiveHalving {
                min_resource,
                reduction_factor,
                bootstrap_count,
                ..
            } => {
                at_least("min_resource", min_resource.unwrap_or(1), 1)?;
                at_least("reduction_factor", *reduction_factor, 2)?;
                if *bootstrap_count > 0 && min_resource.is_none() {
                    return Err("bootstrap_count > 0 needs a min_resource (not auto)".into());
                }
                Ok(())
            }
            PrunerSpec::Hyperband {
                min_resource,
                max_resource,
                reduction_factor,
                bootstrap_count,
            } => {
                at_least("min_resource", *min_resource, 1)?;
                at_least("reduction_factor", *reduction_factor, 2)?;
                if *bootstrap_count > 0 && max_resource.is_none() {
                    return Err("bootstrap_count > 0 needs a max_resource (not auto)".into());
                }
                Ok(())
            }
            PrunerSpec::Threshold {
                lower,
                upper,
                interval_steps,
                ..
            } => {
                let (low, high) = (
                    lower.unwrap_or(f64::NEG_INFINITY),
                    upper.unwrap_or(f64::INFINITY),
                );
                if lower.is_none() && upper.is_none() {
                    return Err("a threshold pruner needs lower or upper".into());
                }
                if low.is_nan() || high.is_nan() || low > high {
                    return Err(format!("lower ({low}) must not be above upper ({high})"));
                }
                at_least("interval_steps", *interval_steps, 1)
            }
            PrunerSpec::Patient {
                wrapped, min_delta, ..
            } => {
                if min_delta.is_nan() || *min_delta < 0.0 {
                    return Err(format!("min_delta must not be negative, got {min_delta}"));
                }
                wrapped.as_ref().map_or(Ok(()), |w| w.check())
            }
            PrunerSpec::Wilcoxon { p_threshold, .. } => match (0.0..=1.0).contains(p_threshold) {
                true => Ok(()),
                false => Err(format!(
                    "p_threshold must be between 0 and 1, got {p_threshold}"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_optunas_defaults() {
        assert_eq!(
            PrunerSpec::parse("median").unwrap(),
            PrunerSpec::Median {
                n_startup_trials: 5,
                n_warmup_steps: 0,
                interval_steps: 1,
                n_min_trials: 1
            }
        );
        assert_eq!(
            PrunerSpec::parse("hyperband").unwrap(),
            PrunerSpec::Hyperband {
                min_resource: 1,
                max_resource: None,
                reduction_factor: 3,
                bootstrap_count: 0
            }
        );
        let p = PrunerSpec::parse(
            r#"{"kind": "patient", "patience": 3, "wrapped": {"kind": "median"}}"#,
        )
        .unwrap();
        assert!(matches!(
            p,
            PrunerSpec::Patient {
                patience: 3,
                wrapped: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        for (text, want) in [
            ("medain", "unknown pruner `medain`"),
            ("percentile", "needs settings"),
            (
                r#"{"kind": "percentile", "percentile": 120}"#,
                "between 0 and 100",
            ),
            (
                r#"{"kind": "successive_halving", "reduction_factor": 1}"#,
                "reduction_factor must be at least 2",
            ),
            (r#"{"kind": "threshold"}"#, "needs lower or upper"),
            (
                r#"{"kind": "threshold", "lower": 2, "upper": 1}"#,
                "must not be above",
            ),
            (
                r#"{"kind": "wilcoxon", "p_threshold": 2}"#,
                "between 0 and 1",
            ),
            (r#"{"kind": "median", "n_warmup": 2}"#, "unknown field"),
            (
                r#"{"kind": "hyperband", "bootstrap_count": 2}"#,
                "needs a max_resource",
            ),
        ] {
            let e = PrunerSpec::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
