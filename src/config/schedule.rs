//! The budget schedule of a sweep: `early_terminate` (W&B's) and `scheduler` (popsweep's),
//! checked into a [`Schedule`](super::Schedule).

use super::raw::{RawEarlyTerminate, RawScheduler};
use super::{Ctx, Drain, Schedule};
use crate::error::Result;
use crate::tuner::scheduler::{BandStopping, Pbt, SuccessiveHalving};

impl Ctx<'_> {
    /// `early_terminate`'s type (hyperband is the one W&B defines) and its η (default 3).
    pub(super) fn hyperband_eta(&self, raw: &RawEarlyTerminate) -> Result<usize> {
        if raw.kind != "hyperband" {
            return Err(self.err(
                &["early_terminate", "type"],
                format!(
                    "early_terminate type `{}` is not supported (supported: hyperband)",
                    raw.kind
                ),
            ));
        }
        let eta = raw.eta.unwrap_or(3) as usize;
        if eta < 2 {
            return Err(self.err(
                &["early_terminate", "eta"],
                format!("eta {eta} must be at least 2"),
            ));
        }
        Ok(eta)
    }

    /// W&B's hyperband early termination for an external program: bands in iterations.
    pub(super) fn band_stopping(&self, raw: RawEarlyTerminate) -> Result<BandStopping> {
        let at = |key: &'static str| ["early_terminate", key];
        let eta = self.hyperband_eta(&raw)?;
        let strict = raw.strict.unwrap_or(false);
        let rule = match (raw.min_iter, raw.max_iter, raw.s) {
            (Some(0), _, _) => return Err(self.err(&at("min_iter"), "must be at least 1".into())),
            (Some(m), _, _) => BandStopping::from_min_iter(m as usize, eta, 1 << 20, strict),
            (None, Some(m), Some(s)) => BandStopping::from_max_iter(m as usize, s, eta, strict),
            _ => {
                return Err(self.err(
                    &["early_terminate"],
                    "give min_iter, or max_iter together with s".into(),
                ))
            }
        };
        if rule.bands.is_empty() {
            return Err(self.err(
                &["early_terminate"],
                "no band of at least one iteration: increase max_iter or decrease s or eta".into(),
            ));
        }
        Ok(rule)
    }

    /// popsweep's `scheduler`: `sh` (one bracket), `hyperband` or `bohb` (all brackets) and
    /// `asha` with the minimum budget (default 1 epoch) and η (default 3), the maximum being
    /// `train.epochs`; `median` and `pbt` with their own keys. `asha` and `median` train
    /// `population` trials at once (default a third of `run_cap`); `pbt` trains all of them.
    pub(super) fn scheduler(
        &self,
        raw: RawScheduler,
        epochs: usize,
        run_cap: Option<usize>,
    ) -> Result<Schedule> {
        let at = |key: &'static str| ["scheduler", key];
        self.refuse_foreign_scheduler_keys(&raw)?;
        let eta = raw.eta.unwrap_or(3) as usize;
        if eta < 2 {
            return Err(self.err(&at("eta"), format!("eta {eta} must be at least 2")));
        }
        let positive = |key, v, default| self.scheduler_count(key, v, default);
        let fraction = |key, v, default, max| self.scheduler_fraction(key, v, default, max);
        let slots = || {
            positive(
                "population",
                raw.population,
                run_cap.unwrap_or(27).div_ceil(3),
            )
        };
        let min_budget = raw.min_budget.unwrap_or(1) as usize;
        if min_budget == 0 || min_budget > epochs {
            return Err(self.err(
                &at("min_budget"),
                format!("min_budget {min_budget} must be in 1..={epochs} (train.epochs)"),
            ));
        }
        match raw.kind.as_str() {
            "sh" => Ok(Schedule::Halving(SuccessiveHalving {
                min_budget,
                max_budget: epochs,
                eta,
            })),
            "hyperband" => Ok(Schedule::Hyperband {
                min_budget,
                max_budget: epochs,
                eta,
            }),
            "bohb" => Ok(Schedule::Bohb {
                min_budget,
                max_budget: epochs,
                eta,
                random_fraction: fraction("random_fraction", raw.random_fraction, 1.0 / 3.0, 1.0)?,
            }),
            "asha" => Ok(Schedule::Asha {
                halving: SuccessiveHalving {
                    min_budget,
                    max_budget: epochs,
                    eta,
                },
                slots: slots()?,
                drain: self.drain(raw.drain.as_deref())?,
            }),
            "median" => Ok(Schedule::Median {
                n_startup_trials: raw.n_startup_trials.unwrap_or(5) as usize,
                n_warmup_steps: raw.n_warmup_steps.unwrap_or(0) as usize,
                interval_steps: positive("interval_steps", raw.interval_steps, 1)?,
                slots: slots()?,
            }),
            "pbt" => Ok(Schedule::Pbt(Pbt {
                interval: positive("interval", raw.interval, 3)?,
                quantile: fraction("quantile", raw.quantile, 0.25, 0.5)?,
                resample_probability: fraction(
                    "resample_probability",
                    raw.resample_probability,
                    0.25,
                    1.0,
                )?,
            })),
            other => Err(self.err(
                &at("type"),
                format!(
                    "scheduler `{other}` is not supported (supported: sh, hyperband, asha, median, pbt, bohb)"
                ),
            )),
        }
    }

    /// A key of another scheduler type would be ignored: say so instead.
    fn refuse_foreign_scheduler_keys(&self, raw: &RawScheduler) -> Result<()> {
        let given = [
            ("min_budget", raw.min_budget.is_some()),
            ("eta", raw.eta.is_some()),
            ("population", raw.population.is_some()),
            ("drain", raw.drain.is_some()),
            ("n_startup_trials", raw.n_startup_trials.is_some()),
            ("n_warmup_steps", raw.n_warmup_steps.is_some()),
            ("interval_steps", raw.interval_steps.is_some()),
            ("interval", raw.interval.is_some()),
            ("quantile", raw.quantile.is_some()),
            ("resample_probability", raw.resample_probability.is_some()),
            ("random_fraction", raw.random_fraction.is_some()),
        ];
        let keys: &[&str] = match raw.kind.as_str() {
            "sh" | "hyperband" => &["min_budget", "eta"],
            "bohb" => &["min_budget", "eta", "random_fraction"],
            "asha" => &["min_budget", "eta", "population", "drain"],
            "median" => &[
                "n_startup_trials",
                "n_warmup_steps",
                "interval_steps",
                "population",
            ],
            "pbt" => &["interval", "quantile", "resample_probability"],
            _ => &[],
        };
        match given
            .iter()
            .find(|&&(key, on)| on && !keys.is_empty() && !keys.contains(&key))
        {
            Some((key, _)) => Err(self.err(
                &["scheduler", key],
                format!(
                    "`{key}` does not apply to scheduler `{}` (its keys: {})",
                    raw.kind,
                    keys.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A count under `scheduler` that must be at least 1 (`default` when not given).
    fn scheduler_count(&self, key: &'static str, v: Option<u64>, default: usize) -> Result<usize> {
        match v {
            Some(0) => Err(self.err(&["scheduler", key], format!("{key} must be at least 1"))),
            Some(v) => Ok(v as usize),
            None => Ok(default),
        }
    }

    /// A fraction under `scheduler` in `[0, max]` (`default` when not given).
    fn scheduler_fraction(
        &self,
        key: &'static str,
        v: Option<f64>,
        default: f64,
        max: f64,
    ) -> Result<f64> {
        match v {
            Some(x) if !(0.0..=max).contains(&x) => {
                Err(self.err(&["scheduler", key], format!("{x} is outside [0, {max}]")))
            }
            Some(x) => Ok(x),
            None => Ok(default),
        }
    }

    /// ASHA's `drain`: auto (the default), idle or train.
    fn drain(&self, given: Option<&str>) -> Result<Drain> {
        match given {
            None | Some("auto") => Ok(Drain::Auto),
            Some("idle") => Ok(Drain::Idle),
            Some("train") => Ok(Drain::Train),
            Some(other) => Err(self.err(
                &["scheduler", "drain"],
                format!("drain `{other}` is not one of auto, idle, train"),
            )),
        }
    }

    /// W&B's hyperband: rungs at `min_iter·η^k` epochs up to the maximum; `min_iter` may
    /// instead be given as `max_iter` with `s` brackets (`min = max / η^s`).
    pub(super) fn halving(
        &self,
        raw: RawEarlyTerminate,
        epochs: usize,
        epochs_given: bool,
    ) -> Result<SuccessiveHalving> {
        let at = |key: &'static str| ["early_terminate", key];
        let eta = self.hyperband_eta(&raw)?;
        let max_budget = match raw.max_iter {
            Some(0) => return Err(self.err(&at("max_iter"), "must be at least 1".into())),
            Some(m) if epochs_given && m as usize != epochs => {
                return Err(self.err(
                    &at("max_iter"),
                    format!("max_iter {m} disagrees with train.epochs {epochs}; give one of them"),
                ))
            }
            Some(m) => m as usize,
            None => epochs,
        };
        let min_budget = match (raw.min_iter, raw.s) {
            (Some(0), _) => return Err(self.err(&at("min_iter"), "must be at least 1".into())),
            (Some(m), _) => m as usize,
            (None, Some(s)) if raw.max_iter.is_some() => {
                (max_budget / eta.saturating_pow(s)).max(1)
            }
            _ => {
                return Err(self.err(
                    &["early_terminate"],
                    "give min_iter, or max_iter together with s".into(),
                ))
            }
        };
        if min_budget > max_budget {
            return Err(self.err(
                &at("min_iter"),
                format!("min_iter {min_budget} exceeds the maximum budget of {max_budget} epochs"),
            ));
        }
        Ok(SuccessiveHalving {
            min_budget,
            max_budget,
            eta,
        })
    }
}
