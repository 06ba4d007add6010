//! `metric` as one metric or a list of them: the first is the metric the schedules rank
//! by (a trainer metric, or any name for an external program); the others are extra
//! objectives of a multi-objective sweep — trainer metrics at the last epoch, the
//! model's `param_count` or `flops_per_sample`, or its measured `epoch_seconds`.

use super::raw::{RawConstraint, RawMetric, RawSweep};
use super::{Constraint, Ctx, Metric, Objective, ObjectiveName};
use crate::error::Result;
use crate::tuner::sampler::SamplerKind;

impl Ctx<'_> {
    /// The metric with its constraints, and the objectives after it. Several objectives
    /// and constraints are the built-in model's so far.
    pub(super) fn goals(
        &self,
        raw: &mut RawSweep,
        external: bool,
    ) -> Result<(Metric, Vec<Objective>)> {
        let (mut metric, objectives) = self.metrics(raw.metric.take(), external)?;
        metric.constraints = self.constraints(raw.constraints.take(), external)?;
        if external && !objectives.is_empty() {
            return Err(self.err(
                &["metric"],
                "several objectives work with the built-in model so far; an external \
                 program reports one metric"
                    .into(),
            ));
        }
        Ok((metric, objectives))
    }

    /// GP-EI models one objective: `method: auto` takes TPE for several, `gp` is refused.
    pub(super) fn sampler_for(
        &self,
        sampler: SamplerKind,
        objectives: &[Objective],
        auto: bool,
    ) -> Result<SamplerKind> {
        match (sampler, objectives.is_empty(), auto) {
            (SamplerKind::Gp, false, true) => Ok(SamplerKind::Tpe),
            (SamplerKind::Gp, false, false) => Err(self.err(
                &["method"],
                "gp models one objective; use tpe or nsga2 for several".into(),
            )),
            (s, _, _) => Ok(s),
        }
    }

    /// The sweep metric and the objectives after it.
    pub(super) fn metrics(
        &self,
        raw: Option<serde_yaml_ng::Value>,
        any_name: bool,
    ) -> Result<(Metric, Vec<Objective>)> {
        let raw = raw.ok_or_else(|| {
            self.err(
                &[],
                "missing key `metric` (e.g. `metric: {name: val_accuracy, goal: maximize}`)".into(),
            )
        })?;
        let entries: Vec<RawMetric> = match raw {
            serde_yaml_ng::Value::Sequence(list) => list
                .into_iter()
                .map(serde_yaml_ng::from_value)
                .collect::<std::result::Result<_, _>>(),
            one => serde_yaml_ng::from_value(one).map(|m| vec![m]),
        }
        .map_err(|e| self.err(&["metric"], e.to_string()))?;
        let mut entries = entries.into_iter();
        let first = entries
            .next()
            .ok_or_else(|| self.err(&["metric"], "an empty list names no metric".into()))?;
        if matches!(
            first.name.as_str(),
            "param_count" | "flops_per_sample" | "epoch_seconds"
        ) {
            return Err(self.err(
                &["metric"],
                format!(
                    "`{}` cannot come first: the first metric is the one trials are trained \
                     and stopped by; list it after a trainer metric",
                    first.name
                ),
            ));
        }
        let metric = self.metric(first, any_name)?;
        let mut objectives = Vec::new();
        let mut seen = vec![metric.name.as_str().to_string()];
        for raw in entries {
            if raw.target.is_some() {
                return Err(self.err(
                    &["metric"],
                    format!("`{}`: only the first metric takes a target", raw.name),
                ));
            }
            if seen.contains(&raw.name) {
                return Err(self.err(&["metric"], format!("`{}` is listed twice", raw.name)));
            }
            seen.push(raw.name.clone());
            let name = match raw.name.as_str() {
                "param_count" => ObjectiveName::ParamCount,
                "flops_per_sample" => ObjectiveName::FlopsPerSample,
                "epoch_seconds" => ObjectiveName::EpochSeconds,
                _ => ObjectiveName::Metric(self.metric(raw.clone_name(), false)?.name),
            };
            let maximize = self.goal(raw.goal.as_deref())?;
            objectives.push(Objective { name, maximize });
        }
        Ok((metric, objectives))
    }
}

impl Ctx<'_> {
    /// `constraints`: each a named quantity of a complete trial (as an extra objective
    /// names it) with `max` and/or `min`.
    pub(super) fn constraints(
        &self,
        raw: Option<Vec<RawConstraint>>,
        external: bool,
    ) -> Result<Vec<Constraint>> {
        let raw = raw.unwrap_or_default();
        if external && !raw.is_empty() {
            return Err(self.err(
                &["constraints"],
                "work with the built-in model so far; an external program reports one metric"
                    .into(),
            ));
        }
        raw.into_iter()
            .map(|c| {
                let bound_ok = |b: Option<f64>| b.is_none_or(f64::is_finite);
                if (c.max.is_none() && c.min.is_none()) || !bound_ok(c.max) || !bound_ok(c.min) {
                    return Err(self.err(
                        &["constraints"],
                        format!("`{}` needs a finite `max` or `min`", c.name),
                    ));
                }
                let name = match c.name.as_str() {
                    "param_count" => ObjectiveName::ParamCount,
                    "flops_per_sample" => ObjectiveName::FlopsPerSample,
                    "epoch_seconds" => ObjectiveName::EpochSeconds,
                    other => ObjectiveName::Metric(
                        self.metric(
                            RawMetric {
                                name: other.into(),
                                goal: None,
                                target: None,
                            },
                            false,
                        )?
                        .name,
                    ),
                };
                Ok(Constraint {
                    name,
                    max: c.max,
                    min: c.min,
                })
            })
            .collect()
    }
}

impl RawMetric {
    /// The entry with only its name, to check the name as a sweep metric.
    fn clone_name(&self) -> RawMetric {
        RawMetric {
            name: self.name.clone(),
            goal: None,
            target: None,
        }
    }
}
