//! Whether a sweep's population fits where it trains, decided before any member is built.
//!
//! `width: {values: [65536]}, depth: {values: [8]}` asks for 34 G parameters per member;
//! without this check the allocator aborts the process minutes into data loading, or the
//! OOM killer ends it hours into a sweep. The estimate is an upper bound from the largest
//! member the space can ask for, so a refusal is never a surprise later.

use super::Sweep;
use crate::backend::Backend;
use crate::data::TuningData;
use crate::error::Result;
use crate::limits;
use crate::model::knobs::member_spec;
use crate::model::{Arch, MemberSpec};
use crate::space::{transform::from_unit, Distribution, Params};

/// f32 everywhere.
const FLOAT: u64 = 4;

/// What one member holds for the whole sweep: its parameters and, per parameter, a
/// gradient and two optimizer moments (Adam's; SGD's momentum uses one), plus untrained
/// state (batch norm's running statistics).
fn resident_bytes(arch: &Arch) -> u64 {
    let trainable = arch.trainable_params() as u64;
    let state = (arch.param_count() as u64).saturating_sub(trainable);
    (4 * trainable + state) * FLOAT
}

/// One training workspace: every layer's output for a minibatch, its gradient, and a mask
/// beside it (dropout), three floats per value.
fn workspace_bytes(arch: &Arch, batch: usize) -> u64 {
    let values: u64 = arch
        .layers
        .iter()
        .map(|l| l.widths().map_or(0, |(_, outputs)| outputs as u64))
        .sum::<u64>()
        + arch.inputs as u64;
    (3 * FLOAT * values).saturating_mul(batch as u64)
}

/// Configurations that bound the members a space can ask for: each parameter at the top
/// of its range (the largest numeric choice of a categorical), at the bottom, and at
/// quarter points between. The largest member is among them for the knobs that grow a
/// model (width, depth, filters, kernel, heads, d_model, layers, batch size).
fn probes(sweep: &Sweep) -> Vec<Params> {
    let at = |u: f64| -> Params {
        sweep
            .space
            .params
            .iter()
            .map(|def| {
                let value = match &def.dist {
                    Distribution::Categorical { choices, .. } => {
                        let numeric = choices.iter().filter(|c| c.as_f64().is_some());
                        let top = numeric.max_by(|a, b| {
                            let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                            a.total_cmp(&b)
                        });
                        match top {
                            Some(top) if u >= 1.0 => top.clone(),
                            _ => from_unit(&def.dist, u.min(0.999)),
                        }
                    }
                    // W&B's shaped priors are unbounded: their 99.9th percentile.
                    dist => from_unit(dist, u.clamp(0.0, 0.999)),
                };
                (def.name.clone(), value)
            })
            .collect()
    };
    vec![at(1.0), at(0.0), at(0.25), at(0.5), at(0.75)]
}

/// `(resident, workspace)` bytes of the largest member among [`probes`] that builds (the
/// defaults' member when none does).
fn largest_member(sweep: &Sweep, tuning: &TuningData) -> (u64, u64) {
    let build = |params: &Params| -> Option<MemberSpec> {
        let (inputs, classes) = (tuning.train.n_features, tuning.train.n_classes);
        member_spec(params, &sweep.defaults, inputs, classes.max(1), 0).ok()
    };
    let mut built: Vec<MemberSpec> = probes(sweep).iter().filter_map(build).collect();
    if built.is_empty() {
        built.extend(build(&Params::new()));
    }
    built
        .iter()
        .map(|spec| {
            // A batch larger than the training split trains as the whole split.
            let batch = spec.hparams.batch_size.unwrap_or(sweep.batch_size);
            let batch = batch.min(tuning.train.len());
            (
                resident_bytes(&spec.arch),
                workspace_bytes(&spec.arch, batch),
            )
        })
        .fold((0, 0), |(r, w), (r2, w2)| (r.max(r2), w.max(w2)))
}

/// Refuses a population of `members` whose largest members would not fit beside the data
/// where `backend` trains, with the numbers and how to fit.
pub(super) fn check_population_fits(
    sweep: &Sweep,
    tuning: &TuningData,
    backend: &dyn Backend,
    members: usize,
) -> Result<()> {
    let (resident, workspace) = largest_member(sweep, tuning);
    let (available, workspaces) = backend.memory_for(members);
    let needed = (members as u64)
        .saturating_mul(resident)
        .saturating_add((workspaces as u64).saturating_mul(workspace));
    let per_member = limits::human_bytes(resident + workspace);
    limits::check_fits(
        &sweep.name,
        "population",
        needed,
        available,
        &format!(
            "{members} members of up to {per_member} each (the largest configuration the \
             space allows) on the {} backend; lower run_cap, train fewer at once \
             (early_terminate: asha with a smaller population), or narrow the \
             architecture's ranges",
            backend.name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::Layer;

    #[test]
    fn a_wide_deep_member_is_counted_in_full() {
        let arch = Arch {
            inputs: 64,
            layers: vec![
                Layer::Dense {
                    inputs: 64,
                    outputs: 65_536,
                },
                Layer::Dense {
                    inputs: 65_536,
                    outputs: 65_536,
                },
                Layer::Dense {
                    inputs: 65_536,
                    outputs: 10,
                },
            ],
        };
        let params: u64 = 64 * 65_536 + 65_536 + 65_536 * 65_536 + 65_536 + 65_536 * 10 + 10;
        assert_eq!(resident_bytes(&arch), 16 * params);
        assert_eq!(
            workspace_bytes(&arch, 32),
            3 * 4 * 32 * (64 + 65_536 * 2 + 10)
        );
    }
}
