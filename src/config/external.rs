//! External-program sweeps in the config: W&B's `program`/`command` and its macros, and
//! the checks of a sweep that runs them.

use super::raw::{RawEarlyTerminate, RawSweep};
use super::{Ctx, Metric, Schedule, Sweep};
use crate::data::normalize::Normalize;
use crate::data::{DataSource, SplitFractions};
use crate::error::Result;
use crate::model::knobs::KnobDefaults;
use crate::space::parse_parameters;
use crate::tuner::sampler::SamplerKind;
use crate::tuner::scheduler::BandStopping;

/// The macros of W&B's `command`, which a sweep file's `command` is checked against.
pub const MACROS: [&str; 7] = [
    "${env}",
    "${interpreter}",
    "${program}",
    "${args}",
    "${args_no_hyphens}",
    "${args_json}",
    "${args_json_file}",
];

/// The first `${...}` in `arg` that is not a known macro.
pub fn unknown_macro(arg: &str) -> Option<String> {
    let mut rest = arg;
    while let Some(start) = rest.find("${") {
        let tail = &rest[start..];
        let end = tail.find('}').map_or(tail.len(), |e| e + 1);
        let name = &tail[..end];
        if !MACROS.contains(&name) {
            return Some(name.to_string());
        }
        rest = &tail[end..];
    }
    None
}

/// How an external-program sweep runs its trials (see the `external` module).
#[derive(Clone, Debug, PartialEq)]
pub struct External {
    /// W&B's `program`: the script the `${program}` macro names.
    pub program: Option<String>,
    /// W&B's `command`, macros unexpanded; default
    /// `[${env}, ${interpreter}, ${program}, ${args}]`.
    pub command: Vec<String>,
    /// popsweep's `population`: trials running at once (default 2).
    pub parallel: usize,
    /// popsweep's `max_retries`: reruns of a trial whose program exits non-zero (default 0).
    pub max_retries: usize,
    /// popsweep's `trial_timeout`: seconds before a trial is killed and failed.
    pub trial_timeout: Option<f64>,
    /// `early_terminate: {type: hyperband}` as W&B's agent applies it to running programs.
    pub stopping: Option<BandStopping>,
    /// `pruner`: one of Optuna's pruners, consulted at every reported value instead.
    pub pruner: Option<crate::pruning::PrunerSpec>,
}

impl Ctx<'_> {
    /// How running programs are stopped: W&B's band rule (`early_terminate`) or one of
    /// Optuna's pruners (`pruner`: a name with Optuna's defaults, or a mapping of its
    /// settings such as `{kind: median, n_warmup_steps: 5}`, checked as `--pruner` is).
    fn stopping_rule(
        &self,
        early_terminate: Option<RawEarlyTerminate>,
        pruner: Option<serde_yaml_ng::Value>,
    ) -> Result<(Option<BandStopping>, Option<crate::pruning::PrunerSpec>)> {
        match (early_terminate, pruner) {
            (Some(_), Some(_)) => Err(self.err(
                &["pruner"],
                "stops trials as `early_terminate` does; give one of them".into(),
            )),
            (Some(et), None) => Ok((Some(self.band_stopping(et)?), None)),
            (None, Some(value)) => {
                let text = match &value {
                    serde_yaml_ng::Value::String(name) => name.clone(),
                    other => serde_json::to_string(other)
                        .map_err(|e| self.err(&["pruner"], e.to_string()))?,
                };
                let spec = crate::pruning::PrunerSpec::parse(&text)
                    .map_err(|e| self.err(&["pruner"], e))?;
                Ok((None, Some(spec)))
            }
            (None, None) => Ok((None, None)),
        }
    }

    /// `command` (default: `${env} ${interpreter} ${program} ${args}`), its macros checked.
    fn command(&self, command: Option<Vec<String>>, has_program: bool) -> Result<Vec<String>> {
        let command = match command {
            Some(c) if c.is_empty() => {
                return Err(self.err(&["command"], "is empty".into()));
            }
            Some(c) => c,
            None => ["${env}", "${interpreter}", "${program}", "${args}"]
                .map(String::from)
                .to_vec(),
        };
        if !has_program && command.iter().any(|a| a.contains("${program}")) {
            return Err(self.err(
                &["command"],
                "uses ${program} but the sweep has no `program`".into(),
            ));
        }
        if let Some(bad) = command.iter().find_map(|a| unknown_macro(a)) {
            return Err(self.err(
                &["command"],
                format!("unknown macro `{bad}` (supported: {})", MACROS.join(", ")),
            ));
        }
        Ok(command)
    }

    /// A sweep that runs `program`/`command` per trial: any parameter and metric names,
    /// none of the built-in model's keys.
    pub(super) fn external_sweep(
        &self,
        raw: RawSweep,
        sampler: SamplerKind,
        metric: Metric,
        auto: bool,
    ) -> Result<Sweep> {
        for (given, key) in [
            (raw.data.is_some(), "data"),
            (raw.model.is_some(), "model"),
            (raw.train.is_some(), "train"),
            (raw.scheduler.is_some(), "scheduler"),
            (raw.lr_finder.is_some(), "lr_finder"),
            (raw.cv.is_some(), "cv"),
            (raw.final_stage.is_some(), "final"),
            (raw.backend.is_some(), "backend"),
            (raw.budget.is_some(), "budget"),
        ] {
            if given {
                return Err(self.err(
                    &[key],
                    format!(
                        "`{key}` configures the built-in model; a sweep with `program` or \
                         `command` runs that program instead"
                    ),
                ));
            }
        }
        let command = self.command(raw.command, raw.program.is_some())?;
        let (stopping, pruner) = self.stopping_rule(raw.early_terminate, raw.pruner)?;
        let space = parse_parameters(raw.parameters.unwrap_or_default())
            .map_err(|e| self.space_error(e))?;
        if space.params.is_empty() {
            return Err(self.err(
                &["parameters"],
                "a sweep needs at least one parameter".into(),
            ));
        }
        let choice = auto.then(|| {
            let cap = self.positive(raw.run_cap, 27, &["run_cap"]).unwrap_or(27);
            crate::tuner::auto::choose(&space, cap, None)
        });
        let sampler = choice.as_ref().map_or(sampler, |c| c.sampler);
        let run_cap = self.run_cap(sampler, &space, raw.run_cap)?;
        if let Some(t) = raw.trial_timeout.filter(|t| !(*t > 0.0 && t.is_finite())) {
            return Err(self.err(
                &["trial_timeout"],
                format!("{t} must be a positive number of seconds"),
            ));
        }
        let parallel = self.positive(raw.population, 2, &["population"])?;
        let (enqueue, warm_start) = self.warm(raw.enqueue, raw.warm_start, &space, sampler)?;
        if raw.storage.is_some() {
            return Err(self.err(
                &["storage"],
                "an external program's study lives in its run directory's journal; storage \
                 shares the study of a built-in sweep"
                    .into(),
            ));
        }
        Ok(Sweep {
            name: raw.name.unwrap_or_else(|| "sweep".into()),
            metric,
            space,
            sampler,
            run_cap,
            schedule: Schedule::Full,
            data: DataSource::Digits,
            split: SplitFractions::default(),
            val_fraction: 0.1,
            normalize: Normalize::None,
            defaults: KnobDefaults::default(),
            epochs: 1,
            batch_size: 1,
            epoch_fraction: 1.0,
            seed: raw.seed.unwrap_or(0),
            population_given: false,
            lr_finder: false,
            max_params: None,
            max_flops: None,
            cv: None,
            final_stage: None,
            auto_reason: choice.map(|c| c.reason),
            wall_seconds: None,
            enqueue,
            warm_start,
            objectives: Vec::new(),
            storage: None,
            backend: None,
            external: Some(External {
                program: raw.program,
                command,
                parallel,
                max_retries: raw.max_retries.unwrap_or(0) as usize,
                trial_timeout: raw.trial_timeout,
                stopping,
                pruner,
            }),
        })
    }
}
