//! Population equivalence: a member trained in a population equals the same member trained
//! alone, bit for bit; a diverging member is marked failed and changes nothing for others.

mod common;
use common::{digits_tuning, ragged_cnns, ragged_vits, spec, train_together};
use popsweep::data::TuningData;
use popsweep::model::hparams::Activation;
use popsweep::model::MemberSpec;
use popsweep::population::Population;

fn ragged_population() -> Vec<MemberSpec> {
    vec![
        spec(&[32], 0.05, 0.9, 0.0, 1),
        spec(&[64, 32], 0.01, 0.5, 0.1, 2),
        spec(&[16, 16, 16], 0.2, 0.0, 0.0, 3),
        spec(&[128], 0.003, 0.95, 0.3, 4),
        spec(&[7, 5], 0.1, 0.9, 0.2, 5),
        spec(&[], 0.05, 0.8, 0.0, 6),
        spec(&[256, 8], 0.02, 0.9, 0.05, 7),
        spec(&[33, 65, 17], 0.07, 0.7, 0.15, 8),
    ]
}

/// Trains `specs` together (two threads) and each alone (one thread) for `epochs`, and
/// asserts every member's weights, history and step count are the same bit for bit;
/// returns the population trained together.
fn each_equals_alone(specs: &[MemberSpec], data: &TuningData, epochs: usize) -> Population {
    let together = train_together(specs, data, epochs, 2);
    for (slot, s) in specs.iter().enumerate() {
        let alone = train_together(std::slice::from_ref(s), data, epochs, 1);
        let (a, b) = (together.params(slot), alone.params(0));
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "member {slot} differs"
        );
        assert_eq!(together.members()[slot].history, alone.members()[0].history);
        assert_eq!(together.members()[slot].steps, alone.members()[0].steps);
    }
    together
}

#[test]
fn population_of_eight_equals_each_member_alone_bit_for_bit() {
    let data = digits_tuning();
    let specs = ragged_population();
    let together = each_equals_alone(&specs, &data, 3);
    // The claim is not vacuous: training moved the weights and members differ.
    assert_ne!(
        together.params(0),
        &specs[0].arch.init_params(specs[0].seed)[..]
    );
    assert!(together.members()[0].history[2].val_accuracy > 0.8);
    // The per-epoch gradient measurements are there and plausible.
    let h = &together.members()[0].history;
    assert!(h
        .iter()
        .all(|e| e.grad_norm.is_some_and(|g| g > 0.0 && g.is_finite())));
    assert!(h.iter().all(|e| e.nonfinite_grads == Some(0)));
}

/// A lone member on two threads splits its large GEMMs over both cores (a member per core
/// otherwise): the split must not change a bit. The member is wide enough that its hidden
/// GEMMs (32×1024×1024) are split.
#[test]
fn a_lone_member_splitting_its_gemms_over_idle_cores_equals_it_in_a_population() {
    let data = digits_tuning();
    let specs = [
        spec(&[1024, 1024], 0.02, 0.9, 0.1, 11),
        spec(&[32], 0.05, 0.9, 0.0, 12),
    ];
    let together = train_together(&specs, &data, 2, 2);
    let split = train_together(&specs[..1], &data, 2, 2);
    let single = train_together(&specs[..1], &data, 2, 1);
    for (name, p) in [("split", &split), ("one thread", &single)] {
        assert!(
            together
                .params(0)
                .iter()
                .zip(p.params(0))
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs"
        );
        assert_eq!(together.members()[0].history, p.members()[0].history);
    }
    assert!(together.members()[0].history[1].val_accuracy > 0.8);
}

#[test]
fn diverging_member_fails_alone_and_leaves_others_unchanged() {
    let data = digits_tuning();
    let mut specs = ragged_population();
    let healthy = train_together(&specs, &data, 2, 2);
    specs.insert(3, spec(&[64], 1e6, 0.9, 0.0, 42));
    let poisoned = train_together(&specs, &data, 2, 2);
    let bad = &poisoned.members()[3];
    assert!(!bad.is_alive(), "lr = 1e6 must diverge");
    let failure = bad.failure.as_ref().unwrap();
    assert_eq!(failure.epoch, 1);
    assert!(bad.history.is_empty());
    for slot in 0..healthy.len() {
        let other = if slot < 3 { slot } else { slot + 1 };
        assert!(poisoned.members()[other].is_alive());
        assert_eq!(poisoned.params(other), healthy.params(slot));
        assert_eq!(
            poisoned.members()[other].history,
            healthy.members()[slot].history
        );
    }
}

#[test]
fn mixed_optimizers_schedules_activations_augmentation_and_batch_sizes_equal_each_member_alone() {
    use popsweep::model::hparams::{Decay, LrSchedule, OptimHparams};
    let data = digits_tuning();
    let mut specs = ragged_population();
    specs[1].hparams.optim = OptimHparams::adamw(0.003, 1e-2);
    specs[0].hparams.optim.nesterov = true; // momentum 0.9: Nesterov matters
    specs[3].hparams.optim.l1 = 1e-4;
    specs[2].arch = specs[2].arch.clone().with_activation(Activation::Gelu);
    specs[7].arch = specs[7].arch.clone().with_activation(Activation::Tanh);
    specs[3].hparams.batch_size = Some(17);
    specs[6].hparams.batch_size = Some(64);
    specs[5].hparams.augment = popsweep::model::hparams::Augment {
        noise: 0.1,
        shift: 1,
        flip: true,
    };
    specs[4].hparams.optim.schedule = LrSchedule {
        warmup_epochs: 0.5,
        decay: Decay::Cosine { total_epochs: 3.0 },
    };
    specs[6].hparams.optim = OptimHparams {
        schedule: LrSchedule {
            warmup_epochs: 0.0,
            decay: Decay::Step {
                every_epochs: 1.0,
                gamma: 0.5,
            },
        },
        ..OptimHparams::adamw(0.002, 0.0)
    };
    let together = train_together(&specs, &data, 3, 2);
    for (slot, s) in specs.iter().enumerate() {
        let alone = train_together(std::slice::from_ref(s), &data, 3, 1);
        assert!(
            together
                .params(slot)
                .iter()
                .zip(alone.params(0))
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "member {slot} differs"
        );
        assert_eq!(together.members()[slot].history, alone.members()[0].history);
        assert_eq!(together.members()[slot].steps, alone.members()[0].steps);
    }
    // Ragged batches: 17 rows per step takes more steps than the shared 32.
    assert!(together.members()[3].steps > together.members()[0].steps);
    assert!(together.members()[6].steps < together.members()[0].steps);
    // Each option changes the result (the test would pass vacuously otherwise).
    let plain = train_together(&ragged_population(), &data, 3, 2);
    for slot in [0, 1, 2, 3, 4, 5, 6, 7] {
        assert!(together.params(slot) != plain.params(slot), "member {slot}");
    }
}

/// The first 10 training steps on digits (64-32-10, SGD lr 0.05 momentum 0.9, batch 32,
/// the epoch-0 order), against losses recorded from this code when it was checked: a change
/// to any op's arithmetic shows up here as a number, not as a vague accuracy shift.
#[test]
fn golden_ten_step_loss_curve_on_digits() {
    use popsweep::backend::cpu::network::{forward_backward, NetworkWorkspace};
    use popsweep::backend::cpu::optim::optimizer_step;
    use popsweep::rng::{permutation, Stream};
    let data = digits_tuning();
    let s = spec(&[32], 0.05, 0.9, 0.0, 7);
    let mut params = s.arch.init_params(s.seed);
    let (mut m1, mut m2, mut grad) = (
        vec![0.0f32; params.len()],
        vec![0.0f32; params.len()],
        vec![0.0f32; params.len()],
    );
    let order = permutation(data.train.len(), 99, Stream::Shuffle, 0);
    let mut ws = NetworkWorkspace::new(&s.arch, 32);
    let mut losses = Vec::new();
    for step in 0..10 {
        let batch = data.train.subset(&order[step * 32..(step + 1) * 32]);
        let sums = forward_backward(
            &s.arch,
            &params,
            &batch.features,
            batch.targets(),
            None,
            &mut ws,
            &mut grad,
        );
        losses.push(sums.loss / 32.0);
        optimizer_step(
            &s.hparams.optim,
            step as u64 + 1,
            1.0,
            &mut params,
            &grad,
            &mut m1,
            &mut m2,
        );
    }
    let golden: [f64; 10] = [
        2.2385254986584187,
        2.3378500044345856,
        2.325205519795418,
        2.3080706112086773,
        2.287730112671852,
        2.2884739860892296,
        2.2799097523093224,
        2.2583721056580544,
        2.257859595119953,
        2.243539657443762,
    ];
    for (i, (got, want)) in losses.iter().zip(golden).enumerate() {
        assert!(
            (got - want).abs() < 1e-5 * want,
            "step {i}: {got} vs golden {want}\n{losses:?}"
        );
    }
    // After the momentum's first overshoot, the loss falls step by step.
    assert!(losses[9] < losses[1] - 0.09);
}

/// Cross-validation folds in one population: a member that sees a fold of the data equals
/// the same member trained alone on exactly that fold's rows (in the epoch's shared order,
/// the other rows skipped) and validated on that fold's validation rows; a member without
/// a fold in the same population is unaffected.
#[test]
fn a_fold_member_equals_the_member_trained_alone_on_its_rows() {
    use popsweep::backend::{cpu::CpuBackend, Backend, EpochPlan};
    use popsweep::model::Fold;
    use popsweep::population::Population;
    use popsweep::rng::{permutation, Stream};
    use std::sync::Arc;

    let data = digits_tuning();
    let n = data.train.len();
    let in_train: Vec<bool> = (0..n).map(|r| r % 3 != 0).collect();
    let val_rows: Vec<usize> = (0..data.val.len()).filter(|r| r % 2 == 0).collect();
    let fold = Arc::new(Fold {
        id: 1,
        in_train: in_train.clone(),
        val_rows: val_rows.clone(),
    });
    let specs = &ragged_population()[..3];
    let backend = CpuBackend::new(2);
    let order = |epoch: usize| permutation(n, 99, Stream::Shuffle, epoch as u32);
    let mut together = Population::new();
    for (trial, s) in specs.iter().enumerate() {
        let slot = together.insert(trial, s.clone());
        if trial != 1 {
            together.set_fold(slot, fold.clone());
        }
    }
    for epoch in 0..3 {
        let plan = EpochPlan {
            order: order(epoch),
            batch_size: 32,
        };
        backend
            .train_epoch(&mut together, &data.train, &data.val, &plan)
            .unwrap();
    }
    let val = data.val.subset(&val_rows);
    for (slot, s) in specs.iter().enumerate() {
        let alone = if slot == 1 {
            train_together(std::slice::from_ref(s), &data, 3, 1)
        } else {
            let mut pop = Population::new();
            pop.insert(0, s.clone());
            for epoch in 0..3 {
                let rows: Vec<usize> = order(epoch).into_iter().filter(|&r| in_train[r]).collect();
                let train = data.train.subset(&rows);
                let plan = EpochPlan {
                    order: (0..train.len()).collect(),
                    batch_size: 32,
                };
                backend.train_epoch(&mut pop, &train, &val, &plan).unwrap();
            }
            pop
        };
        let (a, b) = (together.params(slot), alone.params(0));
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "member {slot} differs"
        );
        assert_eq!(together.members()[slot].history, alone.members()[0].history);
    }
    // The fold mattered: a fold member took fewer steps than the member on all rows.
    assert!(
        together.members()[0].steps < train_together(&specs[..1], &data, 3, 1).members()[0].steps
    );
}

/// A member exported mid-training and imported into another population (a checkpoint, the
/// champion kept for the test) continues exactly as it would have where it was: weights,
/// both optimizer moments and its step count travel with it.
#[test]
fn an_exported_member_continues_elsewhere_bit_for_bit() {
    use popsweep::backend::cpu::CpuBackend;
    use popsweep::backend::{Backend, EpochPlan};
    use popsweep::rng::{permutation, Stream};
    let data = digits_tuning();
    let backend = CpuBackend::new(2);
    let plan = |epoch: u32| EpochPlan {
        order: permutation(data.train.len(), 99, Stream::Shuffle, epoch),
        batch_size: 32,
    };
    let specs = ragged_population();
    let mut home = backend.population(&data.train, &data.val);
    for (trial, spec) in specs.iter().enumerate() {
        home.insert(trial, spec.clone());
    }
    home.train(&plan(0)).unwrap();
    let moved = home.export(3).unwrap();
    assert_eq!(moved.member.trial, 3);
    assert!(
        moved.moment1.iter().any(|&m| m != 0.0),
        "optimizer state travels"
    );
    let mut away = backend.population(&data.train, &data.val);
    away.insert(100, specs[0].clone());
    let slot = away.import(moved).unwrap();
    assert_eq!(slot, 1);
    for epoch in 1..3 {
        home.train(&plan(epoch)).unwrap();
        away.train(&plan(epoch)).unwrap();
    }
    assert_eq!(away.members()[slot].history, home.members()[3].history);
    assert_eq!(
        away.export(slot).unwrap().params,
        home.export(3).unwrap().params
    );
    // Retaining the others leaves a member's state untouched.
    home.retain(&|m| m.trial == 3 || m.trial == 5);
    assert_eq!(home.members()[0].trial, 3);
    assert_eq!(
        home.export(0).unwrap().params,
        away.export(slot).unwrap().params
    );
}

#[test]
fn a_population_of_ragged_cnns_and_an_mlp_equals_each_member_alone_bit_for_bit() {
    let data = digits_tuning();
    let specs = ragged_cnns();
    let together = each_equals_alone(&specs, &data, 2);
    // Not vacuous: training moved the members, and the plain ones learned in two epochs
    // (chance is 0.1; the global-pooled and the 1×1-kernel ones learn slowly on raw pixels).
    let learned = together
        .members()
        .iter()
        .filter(|m| m.is_alive() && m.history[1].val_accuracy > 0.5)
        .count();
    let accs: Vec<f64> = together
        .members()
        .iter()
        .map(|m| m.history[1].val_accuracy)
        .collect();
    assert!(
        learned >= 4,
        "only {learned} of 6 members learned: {accs:?}"
    );
}

/// Batch norm's running statistics are member state behind the trainable parameters: they
/// follow the batches (not the optimizer), evaluation reads them, and an export or PBT's
/// copy carries them with the weights.
#[test]
fn batch_norm_running_statistics_travel_with_the_member() {
    use popsweep::backend::cpu::CpuBackend;
    use popsweep::backend::{Backend, EpochPlan};
    use popsweep::model::Layer;
    let data = digits_tuning();
    let bn = ragged_cnns().pop().unwrap();
    let arch = bn.arch.clone();
    assert!(arch.layers.iter().any(|l| matches!(l, Layer::BatchNorm(_))));
    let (t, n) = (arch.trainable_params(), arch.param_count());
    assert_eq!(
        n - t,
        2 * (6 + 12),
        "a mean and a variance per channel of both norms"
    );
    let backend = CpuBackend::new(2);
    let mut pop = backend.population(&data.train, &data.val);
    pop.insert(0, bn.clone());
    pop.insert(1, bn.clone());
    let plan = EpochPlan {
        order: (0..data.train.len()).collect(),
        batch_size: 32,
    };
    pop.train(&plan).unwrap();
    let trained = pop.export(0).unwrap();
    let init = arch.init_params(bn.seed);
    assert!(
        trained.params[t..]
            .iter()
            .zip(&init[t..])
            .all(|(a, b)| a != b),
        "every running statistic moved"
    );
    assert!(
        trained.moment1[t..].iter().all(|&m| m == 0.0),
        "the optimizer never touches them"
    );
    let scored = pop.evaluate(0, &data.val).unwrap();
    assert_eq!(scored.loss, pop.members()[0].history[0].val_loss);
    pop.copy(0, 1);
    assert_eq!(pop.export(1).unwrap().params, trained.params);
}

/// Slot 1's member with lr = 1e6 inserted at slot 2 of `specs` diverges in `epochs`, and
/// every other member ends with the weights and history it has without it.
fn diverging_copy_leaves_the_others(mut specs: Vec<MemberSpec>, epochs: usize) {
    let data = digits_tuning();
    let healthy = train_together(&specs, &data, epochs, 2);
    let mut bad = specs[1].clone();
    bad.hparams.optim.lr = 1e6;
    specs.insert(2, bad);
    let poisoned = train_together(&specs, &data, epochs, 2);
    assert!(!poisoned.members()[2].is_alive(), "lr = 1e6 must diverge");
    for slot in 0..healthy.len() {
        let other = if slot < 2 { slot } else { slot + 1 };
        assert!(poisoned.members()[other].is_alive());
        assert_eq!(poisoned.params(other), healthy.params(slot));
        assert_eq!(
            poisoned.members()[other].history,
            healthy.members()[slot].history
        );
    }
}

#[test]
fn a_diverging_cnn_fails_alone_and_leaves_the_others_unchanged() {
    diverging_copy_leaves_the_others(ragged_cnns(), 2);
}

#[test]
fn a_population_of_ragged_vits_and_an_mlp_equals_each_member_alone_bit_for_bit() {
    let data = digits_tuning();
    let specs = ragged_vits();
    let together = each_equals_alone(&specs, &data, 2);
    let accs: Vec<f64> = together
        .members()
        .iter()
        .map(|m| m.history[1].val_accuracy)
        .collect();
    // Not vacuous: two short epochs take every member well past chance (0.1); the class
    // token's member is the slowest to start.
    assert!(
        accs.iter().all(|&a| a > 0.25),
        "a member learned nothing in two epochs: {accs:?}"
    );
}

#[test]
fn a_diverging_vit_fails_alone_and_leaves_the_others_unchanged() {
    diverging_copy_leaves_the_others(ragged_vits(), 1);
}
