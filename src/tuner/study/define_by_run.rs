//! Define-by-run: an objective that suggests its parameters as it goes, reports
//! intermediate values and asks whether to stop, as an Optuna user writes it
//! ([`Study::optimize`] and [`Trial`]); and the closure form of [`Study::ask_with`].

use super::{Outcome, Study};
use crate::error::{Error, Result};
use crate::space::{Distribution, ParamDef, ParamValue, Params, SpaceError};
use crate::storage::Op;
use crate::tuner::sampler::{History, Sampler};

impl Study {
    /// Runs `objective` on `n_trials` new trials, one after another, as Optuna's
    /// `study.optimize` does: the trial takes the next enqueued configuration if any, the
    /// objective suggests, reports and checks [`Trial::should_prune`], and what it returns
    /// is told. An objective that fails records the trial failed and stops the loop with
    /// its error; Ctrl-C stops it between trials.
    pub fn optimize(
        &mut self,
        n_trials: usize,
        mut objective: impl FnMut(&mut Trial<'_>) -> Result<Outcome>,
    ) -> Result<()> {
        for _ in 0..n_trials {
            if crate::interrupt::requested() {
                return Err(Error::Interrupted("interrupted between trials".into()));
            }
            let (number, params) = self.begin_trial()?;
            let mut trial = Trial {
                study: self,
                number,
                params,
            };
            match objective(&mut trial) {
                Ok(outcome) => self.tell(number, outcome)?,
                Err(e) => {
                    self.tell(number, Outcome::Failed)?;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// A new running trial: the next enqueued configuration, or no parameters yet.
    fn begin_trial(&mut self) -> Result<(usize, Params)> {
        self.storage
            .transact(|state| {
                let number = state.trials.len();
                if number as u64 >= crate::limits::MAX_TRIALS {
                    return Err(format!(
                        "a study holds at most {} trials",
                        crate::limits::MAX_TRIALS
                    ));
                }
                let queued = state.queue.front().cloned();
                let op = Op::Ask {
                    trial: number,
                    params: queued.clone().unwrap_or_default(),
                    enqueued: queued.is_some(),
                };
                Ok((vec![op], (number, queued.unwrap_or_default())))
            })?
            .map_err(Error::Run)
    }

    /// Runs `suggest` on running trial `number`'s parameters with the sampler, recording
    /// the parameters it adds. The sampler is reseeded from (seed, trial, how many
    /// parameters the trial has), so a trial's draws do not depend on other trials' timing.
    fn suggest_in<R>(
        &mut self,
        number: usize,
        suggest: impl FnOnce(&mut TrialBuilder<'_>) -> R,
    ) -> Result<R> {
        let (seed, maximize) = (self.seed, self.maximize());
        let directions = &self.directions;
        let sampler = &mut self.sampler;
        let mut suggest = Some(suggest);
        let outcome = self.storage.transact(|state| {
            let suggest = suggest.take().ok_or("a suggestion cannot be retried")?;
            let trial = state
                .trials
                .get(number)
                .filter(|t| t.state == crate::storage::TrialState::Running)
                .ok_or_else(|| format!("trial {number} is not running"))?;
            let k = trial.params.len() as u64;
            sampler.reseed(crate::rng::derive_seed(
                crate::rng::derive_seed(seed, number as u64),
                k,
            ));
            let mut builder = TrialBuilder {
                sampler: sampler.as_mut(),
                history: History::new(&state.trials, &[], maximize).with_directions(directions),
                params: trial.params.clone(),
                error: None,
            };
            let r = suggest(&mut builder);
            if let Some(e) = builder.error {
                return Err(e.to_string());
            }
            let ops = builder
                .params
                .into_iter()
                .filter(|(name, _)| !trial.params.contains_key(name))
                .map(|(name, value)| Op::Suggest {
                    trial: number,
                    name,
                    value,
                })
                .collect();
            Ok((ops, r))
        })?;
        outcome.map_err(Error::Run)
    }
}

/// A running trial inside [`Study::optimize`]: Optuna's `Trial`.
pub struct Trial<'s> {
    study: &'s mut Study,
    number: usize,
    params: Params,
}

impl Trial<'_> {
    /// The trial's number in the study.
    pub fn number(&self) -> usize {
        self.number
    }

    /// The parameters suggested (or enqueued) so far.
    pub fn params(&self) -> &Params {
        &self.params
    }

    fn suggest_with<R>(&mut self, suggest: impl FnOnce(&mut TrialBuilder<'_>) -> R) -> Result<R> {
        let mut params = Params::new();
        let r = self.study.suggest_in(self.number, |b| {
            let r = suggest(b);
            params = b.params.clone();
            r
        })?;
        self.params = params;
        Ok(r)
    }

    /// A float in `[low, high]`, log-uniform when `log`; the same name twice gives the
    /// same value.
    pub fn suggest_float(&mut self, name: &str, low: f64, high: f64, log: bool) -> Result<f64> {
        self.suggest_with(|b| b.suggest_float(name, low, high, log))
    }

    /// An integer in `low..=high`, log-uniform when `log`.
    pub fn suggest_int(&mut self, name: &str, low: i64, high: i64, log: bool) -> Result<i64> {
        self.suggest_with(|b| b.suggest_int(name, low, high, log))
    }

    /// One of `choices`.
    pub fn suggest_categorical(&mut self, name: &str, choices: &[&str]) -> Result<String> {
        self.suggest_with(|b| b.suggest_categorical(name, choices))
    }

    /// Records the value at `step` (an epoch, a fold). A step already reported is kept
    /// and the new value ignored, as Optuna does; returns whether it was recorded.
    pub fn report(&mut self, step: u64, value: f64) -> Result<bool> {
        self.study.report_first(self.number, step, value)
    }

    /// Whether the study's pruner says to stop this trial now (never, without a pruner).
    pub fn should_prune(&mut self) -> Result<bool> {
        self.study.should_prune(self.number)
    }
}

/// The trial handed to a define-by-run closure.
pub struct TrialBuilder<'a> {
    pub(super) sampler: &'a mut dyn Sampler,
    pub(super) history: History<'a>,
    pub(super) params: Params,
    pub(super) error: Option<SpaceError>,
}

impl TrialBuilder<'_> {
    /// A value from `dist` for `name`; asking for the same name again returns the same value.
    pub fn suggest(&mut self, name: &str, dist: Distribution) -> ParamValue {
        if let Some(v) = self.params.get(name) {
            return v.clone();
        }
        let def = ParamDef {
            name: name.into(),
            dist,
            condition: None,
        };
        let value = self.sampler.sample_independent(&self.history, &def);
        self.params.insert(name.into(), value.clone());
        value
    }

    fn invalid(&mut self, name: &str, message: &str) {
        self.error
            .get_or_insert_with(|| SpaceError::at(name, "", message));
    }

    /// A float in `[low, high]`, log-uniform when `log`.
    pub fn suggest_float(&mut self, name: &str, low: f64, high: f64, log: bool) -> f64 {
        if low.partial_cmp(&high).is_none_or(|o| o.is_gt()) || (log && low <= 0.0) {
            self.invalid(name, &format!("invalid range [{low}, {high}] (log: {log})"));
            return low;
        }
        let step = None;
        self.suggest(
            name,
            Distribution::Float {
                low,
                high,
                log,
                step,
            },
        )
        .as_f64()
        .unwrap_or(low)
    }

    /// An integer in `low..=high`, log-uniform when `log`.
    pub fn suggest_int(&mut self, name: &str, low: i64, high: i64, log: bool) -> i64 {
        if low > high || (log && low < 1) {
            self.invalid(name, &format!("invalid range [{low}, {high}] (log: {log})"));
            return low;
        }
        match self.suggest(
            name,
            Distribution::Int {
                low,
                high,
                log,
                step: 1,
            },
        ) {
            ParamValue::Int(i) => i,
            _ => low,
        }
    }

    /// One of `choices`.
    pub fn suggest_categorical(&mut self, name: &str, choices: &[&str]) -> String {
        if choices.is_empty() {
            self.invalid(name, "no choices");
            return String::new();
        }
        let choices = choices
            .iter()
            .map(|c| ParamValue::Str(c.to_string()))
            .collect();
        self.suggest(
            name,
            Distribution::Categorical {
                choices,
                weights: None,
            },
        )
        .to_string()
    }
}
