//! Layered networks (CNNs beside an MLP) trained by the CUDA backend's network kernels,
//! against the CPU backend: one epoch's weights and metrics, population equivalence, NaN
//! isolation, graph replay, and a step's launch count against P. The kernels one by one are
//! checked under emulation on every machine (tests/kernel_emulation.rs); these need a GPU.
//!
//! Without a usable GPU each test prints `SKIP: no CUDA device: <reason>` and passes; the
//! GPU check (scripts/gpu-check.sh) fails if anything printed SKIP.
#![cfg(feature = "cuda")]

mod common;

use common::{
    assert_epoch_alike, digits_tuning, ragged_cnns, ragged_cnns_for_parity, ragged_vits_for_parity,
    train_on, train_together,
};
use popsweep::backend::cuda::network_population::NetworkPopulation;
use popsweep::backend::cuda::slots::SlotWeights;
use popsweep::backend::cuda::CudaBackend;
use popsweep::model::hparams::OptimHparams;
use popsweep::model::MemberSpec;
use popsweep::population::Member;

fn gpu() -> Option<CudaBackend> {
    match CudaBackend::open() {
        Ok(g) => Some(g),
        Err(why) => {
            println!("SKIP: {why}");
            None
        }
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The ragged CNNs and their MLP, with SGD instead of their AdamW.
fn with_sgd(specs: Vec<MemberSpec>) -> Vec<MemberSpec> {
    specs
        .into_iter()
        .map(|mut s| {
            s.hparams.optim = OptimHparams::sgd(s.hparams.optim.lr * 10.0, 0.9, 1e-4);
            s
        })
        .collect()
}

/// Tolerance: the GPU sums the convolutions' products in another order than the CPU's
/// GEMM, and batch norm reduces in double; fp32 rounding of ~1e-7 per sum compounds over an
/// epoch of ~40 steps of a few layers, which stays well below 1e-3 of the weights' norm.
#[test]
fn one_epoch_of_ragged_cnns_on_the_gpu_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    for specs in [ragged_cnns_for_parity(), with_sgd(ragged_cnns())] {
        let on_gpu = train_on(&gpu, &specs, &data, 1);
        let on_cpu = train_together(&specs, &data, 1, 2);
        assert_epoch_alike(&on_gpu, &on_cpu, data.val.len(), 1e-3);
    }
}

#[test]
fn ragged_cnns_on_the_gpu_equal_each_member_alone_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    let specs = ragged_cnns();
    let together = train_on(&gpu, &specs, &data, 2);
    for (slot, s) in specs.iter().enumerate() {
        // Alone beside a CNN, so the MLP too runs on the network kernels.
        let partner = if slot == 0 { 1 } else { 0 };
        let pair = [s.clone(), specs[partner].clone()];
        let alone = train_on(&gpu, &pair, &data, 2);
        assert!(
            same_bits(together.params(slot), alone.params(0)),
            "member {slot} differs"
        );
        assert_eq!(together.members()[slot].history, alone.members()[0].history);
    }
}

#[test]
fn a_diverging_cnn_leaves_the_others_untouched_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    let mut specs = ragged_cnns();
    let healthy = train_on(&gpu, &specs, &data, 2);
    let mut bad = specs[1].clone();
    bad.hparams.optim = OptimHparams::sgd(1e6, 0.9, 0.0);
    specs.insert(2, bad);
    let poisoned = train_on(&gpu, &specs, &data, 2);
    let failed = &poisoned.members()[2];
    assert!(!failed.is_alive() && failed.failure.as_ref().unwrap().epoch == 1);
    for slot in 0..healthy.len() {
        let other = if slot < 2 { slot } else { slot + 1 };
        assert!(same_bits(poisoned.params(other), healthy.params(slot)));
        assert_eq!(
            poisoned.members()[other].history,
            healthy.members()[slot].history
        );
    }
}

#[test]
fn graph_replay_trains_ragged_cnns_identically() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    let specs = ragged_cnns();
    gpu.device().set_graphs(false);
    let launched = train_on(&gpu, &specs, &data, 2);
    gpu.device().set_graphs(true);
    let replayed = train_on(&gpu, &specs, &data, 2);
    for slot in 0..specs.len() {
        assert!(same_bits(launched.params(slot), replayed.params(slot)));
        assert_eq!(
            launched.members()[slot].history,
            replayed.members()[slot].history
        );
    }
}

/// P copies of the ragged set: the same layer kinds at every index, so the same launches.
#[test]
fn a_steps_launches_do_not_depend_on_the_population_size() {
    let Some(gpu) = gpu() else { return };
    let dev = gpu.device();
    let launches = |copies: usize| {
        let specs: Vec<MemberSpec> = (0..copies).flat_map(|_| ragged_cnns()).collect();
        let members: Vec<Member> = (specs.iter().enumerate())
            .map(|(trial, s)| Member::new(trial, s.clone()))
            .collect();
        let weights: Vec<Vec<f32>> = specs.iter().map(|s| s.arch.init_params(s.seed)).collect();
        let zeros: Vec<Vec<f32>> = weights.iter().map(|w| vec![0.0; w.len()]).collect();
        let sources: Vec<SlotWeights<'_>> = (weights.iter().zip(&zeros))
            .map(|(w, z)| SlotWeights::Host([w, z, z]))
            .collect();
        let pop = NetworkPopulation::build(dev, &members, 32, &sources).unwrap();
        pop.launches_per_step()
    };
    let one = launches(1);
    assert_eq!(one, launches(8));
    assert_eq!(one, launches(40));
}

/// Ragged vision transformers (heads 1–4, widths 32 and 64, depths 1 and 2, a class token,
/// attention dropout) beside an MLP: one epoch against the CPU backend, and each member
/// alone beside one other, bit for bit.
#[test]
fn ragged_vision_transformers_on_the_gpu_match_the_cpu_and_themselves_alone() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    let specs = ragged_vits_for_parity();
    let on_gpu = train_on(&gpu, &specs, &data, 1);
    let on_cpu = train_together(&specs, &data, 1, 2);
    assert_epoch_alike(&on_gpu, &on_cpu, data.val.len(), 1e-3);
    for (slot, s) in specs.iter().enumerate() {
        let partner = if slot == 0 { 1 } else { 0 };
        let alone = train_on(&gpu, &[s.clone(), specs[partner].clone()], &data, 1);
        assert!(
            same_bits(on_gpu.params(slot), alone.params(0)),
            "member {slot} differs"
        );
    }
}

/// Attention keeps a sample's scores in shared memory: a sequence longer than the kernel
/// holds is refused with a message that names it and the way out, before anything trains.
#[test]
fn attention_over_too_many_tokens_is_refused_clearly() {
    let Some(gpu) = gpu() else { return };
    use popsweep::backend::{Backend, EpochPlan};
    use popsweep::data::ImageShape;
    use popsweep::model::vit::{VitPool, VitSpec};
    use popsweep::model::Arch;
    let data = digits_tuning();
    // 1×1 patches of the 8×8 digits: 64 tokens and a class token, 65, the most it holds.
    let spec = |pool| VitSpec {
        patch: 1,
        d_model: 16,
        heads: 2,
        layers: 1,
        mlp_ratio: 2,
        pool,
    };
    let digits = ImageShape::square(64).unwrap();
    assert!(Arch::vit(digits, &spec(VitPool::Class), 10).is_ok());
    let mut long = ragged_cnns().remove(0);
    // The digits widened to 8×9 (a column of zeros): 72 tokens.
    let wide = ImageShape {
        channels: 1,
        height: 8,
        width: 9,
    };
    long.arch = Arch::vit(wide, &spec(VitPool::Mean), 10).unwrap();
    let rows: Vec<f32> = data
        .train
        .features
        .chunks_exact(64)
        .flat_map(|r| {
            let mut r = r.to_vec();
            r.extend_from_slice(&[0.0; 8]);
            r
        })
        .collect();
    let train = popsweep::data::Dataset {
        features: rows,
        n_features: 72,
        image: Some(wide),
        ..data.train.clone()
    };
    let mut pop = popsweep::population::Population::new();
    pop.insert(0, long);
    let plan = EpochPlan {
        order: (0..train.len()).collect(),
        batch_size: 32,
    };
    let err = gpu
        .train_epoch(&mut pop, &train, &train, &plan)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("more than 65 tokens") && err.contains("--backend cpu"),
        "{err}"
    );
    assert_eq!(pop.members()[0].epochs, 0, "nothing trained");
}
