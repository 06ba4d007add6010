//! Whole steps of layered networks as the CUDA backend plans them (`backend::cuda::plan`)
//! — gather, every layer's launches by layer index, the loss, batch norm's running
//! statistics, the backward pass, the optimizer, and evaluation — run through the kernels
//! under emulation (tests/emulate/) against the CPU backend, on every machine.
//!
//! Without a C++20 compiler each test prints `SKIP: no C++ compiler: <reason>`.
#![cfg(feature = "cuda")]

mod common;

use common::emulate::{assert_close, bytes, harness, network_buffers, run, values};
use popsweep::backend::cuda::layout::MemberState;
use popsweep::backend::cuda::network::NetworkPlan;
use popsweep::backend::cuda::plan::{Buffer, Launch};
use std::path::Path;

/// `specs` laid out by a plan for batches of `batch` and trained on every batch of
/// `train` in order by the planned steps; the plan and the buffers as the kernels left them.
fn train_planned(
    exe: &Path,
    specs: &[popsweep::model::MemberSpec],
    train: &popsweep::data::Dataset,
    batch: usize,
) -> (NetworkPlan, std::collections::BTreeMap<Buffer, Vec<u8>>) {
    let archs: Vec<_> = specs.iter().map(|s| &s.arch).collect();
    let plan = NetworkPlan::new(&archs, batch);
    let mut buffers = network_buffers(&plan, specs, train);
    let steps = train.len() / batch;
    let launches: Vec<Launch> = (0..steps)
        .flat_map(|s| plan.train_step((s * batch, false), batch, steps))
        .collect();
    run(exe, &launches, &mut buffers);
    (plan, buffers)
}

/// `specs` trained `steps` steps of `batch` rows by the planned kernels and evaluated on
/// 40 validation rows, against the CPU backend on the same batches: weights within `tol`
/// of the largest, train and validation losses within `tol` relative, accuracy within a
/// row.
fn planned_steps_match_the_cpu(
    exe: &Path,
    specs: &[popsweep::model::MemberSpec],
    steps: usize,
    tol: f32,
) {
    use popsweep::backend::cpu::CpuBackend;
    use popsweep::backend::{Backend, EpochPlan};
    use popsweep::population::Population;
    let data = common::digits_tuning();
    let batch = 16;
    let train = data.train.subset(&(0..batch * steps).collect::<Vec<_>>());
    let val = data.val.subset(&(0..40).collect::<Vec<_>>());

    let mut cpu = Population::new();
    for (trial, spec) in specs.iter().enumerate() {
        cpu.insert(trial, spec.clone());
    }
    let epoch = EpochPlan {
        order: (0..train.len()).collect(),
        batch_size: batch,
    };
    CpuBackend::new(2)
        .train_epoch(&mut cpu, &train, &val, &epoch)
        .unwrap();

    let (plan, mut buffers) = train_planned(exe, specs, &train, batch);
    let params: Vec<f32> = values(&buffers[&Buffer::Params]);
    let state: Vec<MemberState> = values(&buffers[&Buffer::State]);

    // Evaluation on the validation rows, in batches of the plan's capacity.
    buffers.insert(Buffer::Features, bytes(&val.features));
    buffers.insert(Buffer::Labels, bytes(&val.labels));
    buffers.insert(
        Buffer::Order,
        bytes(&(0..val.len() as u32).collect::<Vec<_>>()),
    );
    let launches: Vec<Launch> = (0..val.len())
        .step_by(batch)
        .flat_map(|start| plan.evaluate(start, batch.min(val.len() - start)))
        .collect();
    run(exe, &launches, &mut buffers);
    let evaluated: Vec<MemberState> = values(&buffers[&Buffer::State]);

    let offsets = plan.offsets();
    let tol64 = f64::from(tol);
    for (slot, member) in cpu.members().iter().enumerate() {
        let ours = &params[offsets[slot]..offsets[slot + 1]];
        let what = format!("member {slot}");
        assert_close(&format!("{what} weights"), ours, cpu.params(slot), tol);
        assert_eq!(state[slot].steps, steps as u64, "{what}: steps");
        assert_eq!(state[slot].alive, 1, "{what} is alive");
        let h = &member.history[0];
        let train_loss = state[slot].train_loss / train.len() as f64;
        let close = |a: f64, b: f64| (a - b).abs() < tol64 * b;
        assert!(
            close(train_loss, h.train_loss),
            "{what}: train loss {train_loss} vs {}",
            h.train_loss
        );
        let val_loss = evaluated[slot].eval_loss / val.len() as f64;
        assert!(
            close(val_loss, h.val_loss),
            "{what}: val loss {val_loss} vs {}",
            h.val_loss
        );
        let correct = evaluated[slot].eval_correct as f64 / val.len() as f64;
        assert!(
            (correct - h.val_accuracy).abs() <= 1.0 / val.len() as f64,
            "{what}: accuracy"
        );
    }
}

/// The whole network step as the CUDA backend plans it — gather, every layer's launches
/// by layer index, the loss, batch norm's running statistics, the backward pass, the
/// optimizer — run through the emulated kernels for a ragged population (CNNs of
/// different filters, depths and kernels, with pooling, batch norm, spatial dropout and
/// dropout, beside an MLP; two with learning-rate schedules), against the CPU backend:
/// three steps (fp32 sums in another order, compounded over three steps of up to six
/// layers: within 1e-4).
#[test]
fn a_ragged_population_trained_by_the_planned_steps_matches_the_cpu_backend() {
    let Some(exe) = harness() else { return };
    use popsweep::model::hparams::{Decay, LrSchedule};
    let mut specs = common::ragged_cnns_for_parity();
    // Learning-rate schedules, on the device's clock of three batches an epoch: a warm-up
    // over one epoch into a cosine over one, and a step decay every half epoch.
    specs[0].hparams.optim.schedule = LrSchedule {
        warmup_epochs: 1.0,
        decay: Decay::Cosine { total_epochs: 1.0 },
    };
    specs[1].hparams.optim.schedule = LrSchedule {
        warmup_epochs: 0.0,
        decay: Decay::Step {
            every_epochs: 0.5,
            gamma: 0.3,
        },
    };
    planned_steps_match_the_cpu(exe, &specs, 3, 1e-4);
}

/// The same for ragged vision transformers (heads 1–4, widths 32 and 64, depths 1 and 2,
/// a class token, attention dropout) beside an MLP: patch embedding, position embeddings,
/// LayerNorm, attention, the GELU MLP, residual forks and token pooling, two steps (with
/// SGD: see `ragged_vits_for_parity`).
#[test]
fn ragged_vision_transformers_trained_by_the_planned_steps_match_the_cpu_backend() {
    let Some(exe) = harness() else { return };
    planned_steps_match_the_cpu(exe, &common::ragged_vits_for_parity(), 2, 1e-4);
}

/// A member whose learning rate makes it diverge is marked dead by the loss kernel at the
/// step its loss fails, before any update of that step; every other member's weights come
/// out bit for bit as in a population without it.
#[test]
fn a_diverging_member_leaves_the_others_bit_identical_under_the_planned_steps() {
    let Some(exe) = harness() else { return };
    let data = common::digits_tuning();
    let (batch, steps) = (16, 2);
    let train = data.train.subset(&(0..batch * steps).collect::<Vec<_>>());
    let healthy = common::ragged_cnns();
    let mut bad = healthy[1].clone();
    bad.hparams.optim = popsweep::model::hparams::OptimHparams::sgd(1e6, 0.9, 0.0);
    let mut poisoned = healthy.clone();
    poisoned.insert(2, bad);
    let trained = |specs: &[popsweep::model::MemberSpec]| {
        let (plan, buffers) = train_planned(exe, specs, &train, batch);
        let params: Vec<f32> = values(&buffers[&Buffer::Params]);
        let state: Vec<MemberState> = values(&buffers[&Buffer::State]);
        let offsets = plan.offsets();
        let slots: Vec<Vec<f32>> = (0..specs.len())
            .map(|s| params[offsets[s]..offsets[s + 1]].to_vec())
            .collect();
        (slots, state)
    };
    let (want, want_state) = trained(&healthy);
    let (got, state) = trained(&poisoned);
    assert_eq!(state[2].alive, 0, "the diverging member is dead");
    assert_eq!(state[2].fail_step, 1, "its loss failed at its second step");
    for slot in 0..healthy.len() {
        let other = if slot < 2 { slot } else { slot + 1 };
        let same = got[other]
            .iter()
            .zip(&want[slot])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "member {slot} changed");
        assert_eq!(state[other].train_loss, want_state[slot].train_loss);
    }
}
