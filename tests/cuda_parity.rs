//! Every CUDA kernel against its CPU twin, on fresh random inputs and awkward shapes (1,
//! odd sizes, sizes that are not multiples of the 64×64 tile), then whole-population
//! training: CPU-vs-GPU agreement, population equivalence and NaN isolation on the GPU.
//!
//! Without a usable GPU each test prints `SKIP: no CUDA device: <reason>` and passes; the
//! GPU check (scripts/gpu-check.sh) fails if anything printed SKIP.
//!
//! Tolerances (relative, ‖gpu − cpu‖ / ‖cpu‖), and why:
//! - GEMM-based ops, f32: 2e-6 · √K. Both sides accumulate in f32, in different orders
//!   (matrixmultiply's kernel vs. a 64×64 tile walk, with FMA on the GPU); the rounding error
//!   of a K-term sum grows like √K·ε (ε = 6e-8), and 2e-6·√K leaves ~30× headroom.
//! - GEMM-based ops in the opt-in TF32 mode: 5e-3. Each input is rounded to 10 mantissa
//!   bits (relative error ≤ 2⁻¹¹ ≈ 4.9e-4), so each product is off by up to ~1e-3 and the
//!   errors of a sum of random-sign terms stay near that relative size whatever K is.
//! - One epoch of training with TF32: 3e-2 on the weights, validation loss within 3%.
//! - Softmax cross-entropy: 1e-5 (expf/logf on the GPU are within 2 ulp, not correctly rounded).
//! - Optimizer: 1e-6 (the same formula; the GPU may contract a·b + c into one FMA).
//! - Dropout masks: exact. The same Philox words decide which elements are dropped.
//! - Three epochs through the population's verbs: 1e-2 on the weights and validation
//!   losses, for the same reason as one epoch's, over three times the steps.
//! - One epoch of training: 1e-3 on the weights. Per-step differences of ~1e-6 are
//!   amplified by the training dynamics (and the odd ReLU that flips); a wrong kernel
//!   misses by orders of magnitude more.
#![cfg(feature = "cuda")]

mod common;

use common::{assert_epoch_alike, digits_tuning, rel_error, spec, train_on, train_together};
use cudarc::driver::CudaSlice;
use popsweep::backend::cpu::dropout::{dropout_forward, DropoutKey};
use popsweep::backend::cpu::linear::{linear_backward, linear_forward, LinearShape};
use popsweep::backend::cpu::loss::softmax_cross_entropy_backward;
use popsweep::backend::cpu::optim::optimizer_step;
use popsweep::backend::cuda::device::GemmMode;
use popsweep::backend::cuda::gather::{gather_rows, BatchStart, DeviceData};
use popsweep::backend::cuda::layout::{LossProblem, MemberHparams, MemberState};
use popsweep::backend::cuda::linear::{self, GemmLaunch, MemberLayout, Members, Pass};
use popsweep::backend::cuda::{loss, optim, CudaBackend, Device};
use popsweep::data::Dataset;
use popsweep::model::hparams::OptimHparams;
use popsweep::model::{Arch, Hparams, MemberSpec};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// The device, or `None` after printing why the test is skipped.
fn device() -> Option<Arc<Device>> {
    match Device::open() {
        Ok(d) => Some(d),
        Err(why) => {
            println!("SKIP: {why}");
            None
        }
    }
}

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Fresh inputs per run: a new seed each time, printed so a failure can be replayed.
fn rng() -> ChaCha8Rng {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    println!("rng seed {seed}");
    ChaCha8Rng::seed_from_u64(seed)
}

/// Every 128-tile GEMM mode; the 64 tile is fp32 in all of them.
const MODES: [GemmMode; 3] = [GemmMode::Blocked, GemmMode::Split, GemmMode::Tf32];

fn gemm_tolerance(k: usize, mode: GemmMode) -> f64 {
    if mode == GemmMode::Tf32 {
        return 5e-3;
    }
    2e-6 * (k as f64).sqrt()
}

fn hparams(dropout: f32, seed: u64, optim: OptimHparams) -> MemberHparams {
    MemberHparams::of(&MemberSpec {
        arch: Arch::mlp(1, &[], 1),
        hparams: Hparams {
            optim,
            dropout,
            attn_dropout: 0.0,
            augment: Default::default(),
            batch_size: None,
        },
        seed,
        fold: None,
    })
}

fn upload<T: cudarc::driver::DeviceRepr + Clone>(dev: &Device, v: &[T]) -> CudaSlice<T> {
    dev.stream.clone_htod(v).unwrap()
}

fn poisoned(dev: &Device, n: usize) -> CudaSlice<f32> {
    upload(dev, &vec![f32::NAN; n.max(1)])
}

/// Several members of ragged widths in one launch: layer 0 (hidden: ReLU + dropout) of
/// members `[inputs, width, 3]` on one shared minibatch.
#[test]
fn forward_with_relu_and_dropout_matches_cpu() {
    let Some(dev) = device() else { return };
    let mut rng = rng();
    let mut tiles_seen = std::collections::BTreeSet::new();
    let cases = [
        (1, 1, vec![1]),
        (7, 65, vec![33, 1, 70]),
        (130, 129, vec![67, 64, 128]),
        (128, 784, vec![256]),
    ];
    for (mode, (rows, inputs, widths)) in MODES
        .into_iter()
        .flat_map(|p| cases.iter().cloned().map(move |c| (p, c)))
    {
        dev.set_gemm_mode(mode);
        let x = random(&mut rng, rows * inputs);
        let mut layouts = Vec::new();
        let (mut params, mut act_total) = (Vec::new(), 0);
        for (member, &w) in widths.iter().enumerate() {
            layouts.push(MemberLayout {
                dims: vec![inputs, w, 3],
                param_off: params.len(),
                act_off: vec![act_total, act_total + rows * w],
                member,
            });
            params.extend(random(&mut rng, (inputs + 1) * w + (w + 1) * 3));
            act_total += rows * (w + 3);
        }
        let hp: Vec<MemberHparams> = (0..widths.len())
            .map(|m| {
                hparams(
                    [0.0, 0.3, 0.5][m % 3],
                    17 + m as u64,
                    OptimHparams::sgd(0.1, 0.0, 0.0),
                )
            })
            .collect();
        let state: Vec<MemberState> = (0..widths.len())
            .map(|m| MemberState {
                steps: 5 + m as u64,
                alive: 1,
                ..Default::default()
            })
            .collect();
        let problems: Vec<_> = layouts
            .iter()
            .map(|m| linear::problem(Pass::Forward, m, 0, rows))
            .collect();
        let launch = GemmLaunch::new(&dev, &problems).unwrap();
        tiles_seen.insert(launch.tile() as usize);
        let acts = poisoned(&dev, act_total);
        let (d_x, d_params) = (upload(&dev, &x), upload(&dev, &params));
        let (d_hp, d_state) = (upload(&dev, &hp), upload(&dev, &state));
        let members = Members {
            hparams: &d_hp,
            state: Some(&d_state),
        };
        linear::forward(&dev, &launch, &d_x, &d_params, &acts, &members).unwrap();
        let got = dev.stream.clone_dtoh(&acts).unwrap();
        for (m, layout) in layouts.iter().enumerate() {
            let w = widths[m];
            let s = LinearShape {
                batch: rows,
                n_in: inputs,
                n_out: w,
            };
            let p = &params[layout.param_off..];
            let mut y = vec![0.0f32; rows * w];
            linear_forward(
                s,
                &x,
                &p[..inputs * w],
                &p[inputs * w..(inputs + 1) * w],
                &mut y,
            );
            // TF32 may move a pre-activation within ~1e-3 of zero across it, so there the
            // zeros (ReLU or dropout) are compared only where the sign is clear.
            let pre = y.clone();
            let rms = (pre.iter().map(|v| v * v).sum::<f32>() / pre.len() as f32).sqrt();
            let margin = if mode == GemmMode::Tf32 {
                1e-2 * rms
            } else {
                0.0
            };
            y.iter_mut().for_each(|v| *v = v.max(0.0));
            let mut mask = vec![0.0f32; rows * w];
            let key = DropoutKey {
                seed: 17 + m as u64,
                step: 5 + m as u64,
                layer: 0,
            };
            dropout_forward(&mut y, &mut mask, hp[m].dropout, key);
            let g = &got[layout.act_off[0]..layout.act_off[0] + rows * w];
            let err = rel_error(g, &y);
            assert!(
                err < gemm_tolerance(inputs + 1, mode),
                "rows {rows} in {inputs} out {w}: {err}"
            );
            let clear = |i: &usize| margin == 0.0 || pre[*i].abs() > margin;
            let dropped_gpu: Vec<bool> = (0..g.len()).filter(clear).map(|i| g[i] == 0.0).collect();
            let dropped_cpu: Vec<bool> = (0..y.len()).filter(clear).map(|i| y[i] == 0.0).collect();
            assert_eq!(
                dropped_gpu, dropped_cpu,
                "dropout mask differs (member {m})"
            );
        }
    }
    assert_eq!(tiles_seen.len(), 2, "both tile shapes were exercised");
}

/// Layer 1 of members `[2, inputs, outputs]`: the input gradient through the previous
/// layer's ReLU and dropout, and the weight gradient applied by plain SGD (lr 1), whose
/// weight change is minus the gradient.
#[test]
fn backward_passes_match_cpu() {
    let Some(dev) = device() else { return };
    let mut rng = rng();
    let mut tiles_seen = std::collections::BTreeSet::new();
    let cases = [
        (1, 1, 1, 0.0),
        (9, 33, 10, 0.25),
        (130, 65, 67, 0.0),
        (128, 256, 10, 0.5),
        (128, 200, 130, 0.1),
    ];
    for (mode, (rows, n_in, n_out, dropout)) in MODES
        .into_iter()
        .flat_map(|p| cases.iter().copied().map(move |c| (p, c)))
    {
        dev.set_gemm_mode(mode);
        let layout = MemberLayout {
            dims: vec![2, n_in, n_out],
            param_off: 0,
            act_off: vec![0, rows * n_in],
            member: 0,
        };
        let n_params = 3 * n_in + (n_in + 1) * n_out;
        let params = random(&mut rng, n_params);
        let keep = 1.0 / (1.0 - dropout);
        // Previous layer's output as ReLU + dropout leave it: zeros and scaled positives.
        let a_prev: Vec<f32> = random(&mut rng, rows * n_in)
            .into_iter()
            .map(|v| if v < 0.0 { 0.0 } else { v * keep })
            .collect();
        let dy = random(&mut rng, rows * n_out);
        let mut acts = a_prev.clone();
        acts.extend(vec![0.0; rows * n_out]);
        let mut deltas = vec![f32::NAN; rows * n_in];
        deltas.extend(&dy);
        let hp = [hparams(dropout, 1, OptimHparams::sgd(1.0, 0.0, 0.0))];
        // The update reads the step's learning rate from the state (the loss kernel sets
        // it in training): 1, so the fused update is w − g.
        let state = [MemberState {
            alive: 1,
            steps: 1,
            lr: 1.0,
            ..Default::default()
        }];
        let (d_acts, d_deltas, d_params) = (
            upload(&dev, &acts),
            upload(&dev, &deltas),
            upload(&dev, &params),
        );
        let (d_m1, d_m2) = (
            upload(&dev, &vec![0.0f32; n_params]),
            upload(&dev, &vec![0.0f32; n_params]),
        );
        let (d_hp, d_state) = (upload(&dev, &hp), upload(&dev, &state));
        let members = Members {
            hparams: &d_hp,
            state: Some(&d_state),
        };
        let bx =
            GemmLaunch::new(&dev, &[linear::problem(Pass::BackwardX, &layout, 1, rows)]).unwrap();
        let bw =
            GemmLaunch::new(&dev, &[linear::problem(Pass::BackwardW, &layout, 1, rows)]).unwrap();
        tiles_seen.extend([bx.tile() as usize, bw.tile() as usize]);
        linear::backward_x(&dev, &bx, &d_deltas, &d_params, &d_acts, &members, &d_state).unwrap();
        linear::backward_w(
            &dev,
            &bw,
            &d_acts,
            &d_deltas,
            &d_params,
            (&d_m1, &d_m2),
            &d_hp,
            &d_state,
        )
        .unwrap();
        let got_dx = dev.stream.clone_dtoh(&d_deltas).unwrap();
        let got_params = dev.stream.clone_dtoh(&d_params).unwrap();

        let s = LinearShape {
            batch: rows,
            n_in,
            n_out,
        };
        let w_off = 3 * n_in;
        let (mut dx, mut dw, mut db) = (
            vec![0.0f32; rows * n_in],
            vec![0.0f32; n_in * n_out],
            vec![0.0f32; n_out],
        );
        let w = &params[w_off..w_off + n_in * n_out];
        linear_backward(s, &a_prev, w, &dy, Some(&mut dx), &mut dw, &mut db);
        for (d, a) in dx.iter_mut().zip(&a_prev) {
            *d = if *a > 0.0 { *d * keep } else { 0.0 };
        }
        let err = rel_error(&got_dx[..rows * n_in], &dx);
        assert!(
            err < gemm_tolerance(n_out, mode),
            "dx rows {rows} {n_in}->{n_out}: {err}"
        );
        let grad_gpu: Vec<f32> = params[w_off..]
            .iter()
            .zip(&got_params[w_off..])
            .map(|(old, new)| old - new)
            .collect();
        let grad_cpu: Vec<f32> = dw.iter().chain(&db).copied().collect();
        // w − (w − g) recovers g up to the rounding of w (|w| ≤ 1): an absolute 1e-7 more.
        let err = rel_error(&grad_gpu, &grad_cpu);
        assert!(
            err < gemm_tolerance(rows, mode) + 1e-6,
            "dW rows {rows} {n_in}->{n_out}: {err}"
        );
        assert_eq!(
            &got_params[..w_off],
            &params[..w_off],
            "layer 0 must be untouched"
        );
    }
    assert_eq!(tiles_seen.len(), 2, "both tile shapes were exercised");
}

#[test]
fn softmax_cross_entropy_matches_cpu_and_checks_health() {
    let Some(dev) = device() else { return };
    let mut rng = rng();
    for (rows, classes) in [(1, 1), (1, 10), (37, 3), (128, 10), (300, 129)] {
        let logits: Vec<f32> = random(&mut rng, 2 * rows * classes)
            .iter()
            .map(|v| 4.0 * v)
            .collect();
        let labels: Vec<u32> = (0..rows)
            .map(|_| rng.random_range(0..classes as u32))
            .collect();
        let problems = [
            LossProblem {
                logits_off: 0,
                classes: classes as i32,
                member: 0,
            },
            LossProblem {
                logits_off: (rows * classes) as i64,
                classes: classes as i32,
                member: 1,
            },
        ];
        let layouts: Vec<MemberLayout> = problems
            .iter()
            .map(|p| MemberLayout {
                dims: vec![1, classes],
                param_off: 0,
                act_off: vec![p.logits_off as usize],
                member: p.member as usize,
            })
            .collect();
        let launch = loss::LossLaunch::new(&dev, &layouts).unwrap();
        let hp = [hparams(0.0, 1, OptimHparams::adamw(0.01, 0.0)); 2];
        let state = [MemberState {
            alive: 1,
            ..Default::default()
        }; 2];
        let (d_logits, d_labels) = (upload(&dev, &logits), upload(&dev, &labels));
        let d_grad = poisoned(&dev, logits.len());
        let (d_hp, d_state) = (upload(&dev, &hp), upload(&dev, &state));
        loss::softmax_cross_entropy(
            &dev,
            &launch,
            &d_logits,
            &d_labels,
            (rows, 1),
            Some(&d_grad),
            &d_hp,
            &d_state,
        )
        .unwrap();
        let grad = dev.stream.clone_dtoh(&d_grad).unwrap();
        let st = dev.stream.clone_dtoh(&d_state).unwrap();
        for (m, st) in st.iter().enumerate() {
            let range = m * rows * classes..(m + 1) * rows * classes;
            let mut want = vec![0.0f32; rows * classes];
            let sums =
                softmax_cross_entropy_backward(&logits[range.clone()], &labels, classes, &mut want);
            let err = rel_error(&grad[range], &want);
            assert!(
                err < 1e-5 || want.iter().all(|v| *v == 0.0),
                "grad {rows}x{classes}: {err}"
            );
            assert!((st.train_loss - sums.loss).abs() <= 1e-5 * sums.loss.abs().max(1.0));
            assert_eq!(st.train_correct as usize, sums.correct);
            assert_eq!((st.steps, st.alive), (1, 1));
            // The AdamW scalars for step 1: lr / (1 − β1) and √(1 − β2).
            assert!(
                (st.step_size - 0.1).abs() < 1e-6 && (st.sqrt_bias2 - 0.001f32.sqrt()).abs() < 1e-6
            );
        }
    }
    // A member whose loss is NaN is marked dead with the step; its neighbour trains on.
    let layouts: Vec<MemberLayout> = (0..2)
        .map(|m| MemberLayout {
            dims: vec![1, 2],
            param_off: 0,
            act_off: vec![2 * m],
            member: m,
        })
        .collect();
    let launch = loss::LossLaunch::new(&dev, &layouts).unwrap();
    let hp = [hparams(0.0, 1, OptimHparams::sgd(0.1, 0.0, 0.0)); 2];
    let state = [MemberState {
        alive: 1,
        steps: 7,
        ..Default::default()
    }; 2];
    let (d_logits, d_labels) = (
        upload(&dev, &[f32::NAN, 0.0, 1.0, 0.0]),
        upload(&dev, &[0u32]),
    );
    let (d_grad, d_hp, d_state) = (poisoned(&dev, 4), upload(&dev, &hp), upload(&dev, &state));
    loss::softmax_cross_entropy(
        &dev,
        &launch,
        &d_logits,
        &d_labels,
        (1, 1),
        Some(&d_grad),
        &d_hp,
        &d_state,
    )
    .unwrap();
    let st = dev.stream.clone_dtoh(&d_state).unwrap();
    assert_eq!((st[0].alive, st[0].fail_step, st[0].steps), (0, 7, 7));
    assert_eq!((st[1].alive, st[1].steps), (1, 8));
}

#[test]
fn optimizer_kernel_matches_cpu_per_member() {
    let Some(dev) = device() else { return };
    let mut rng = rng();
    let sizes = [1usize, 257, 4099, 70_001];
    let hps = [
        OptimHparams::sgd(0.1, 0.9, 1e-4),
        OptimHparams::adamw(3e-3, 1e-2),
        OptimHparams::sgd(0.5, 0.0, 0.0),
        OptimHparams {
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            ..OptimHparams::adamw(0.02, 0.1)
        },
    ];
    let mut offsets = vec![0i64];
    for n in sizes {
        offsets.push(offsets.last().unwrap() + n as i64);
    }
    let total = *offsets.last().unwrap() as usize;
    let (mut w, grad, mut m1) = (
        random(&mut rng, total),
        random(&mut rng, total),
        random(&mut rng, total),
    );
    let mut m2: Vec<f32> = random(&mut rng, total).iter().map(|v| v.abs()).collect();
    let steps = [0u64, 4, 9, 99];
    let hp: Vec<MemberHparams> = hps.iter().map(|h| hparams(0.0, 1, *h)).collect();
    let state: Vec<MemberState> = steps
        .iter()
        .map(|&s| MemberState {
            steps: s,
            alive: 1,
            ..Default::default()
        })
        .collect();
    let (d_w, d_g, d_m1, d_m2) = (
        upload(&dev, &w),
        upload(&dev, &grad),
        upload(&dev, &m1),
        upload(&dev, &m2),
    );
    // Each member's whole slice is trainable here: ranges (start, end) per member.
    let ranges: Vec<i64> = offsets.windows(2).flat_map(|r| [r[0], r[1]]).collect();
    let (d_ranges, d_hp, d_state) = (
        upload(&dev, &ranges),
        upload(&dev, &hp),
        upload(&dev, &state),
    );
    optim::prepare_step(&dev, &d_hp, &d_state, (4, 1)).unwrap();
    optim::optimizer_step(
        &dev,
        &d_g,
        &d_w,
        (&d_m1, &d_m2),
        &d_ranges,
        &d_hp,
        &d_state,
        4,
    )
    .unwrap();
    let (gw, gm1, gm2) = (
        dev.stream.clone_dtoh(&d_w).unwrap(),
        dev.stream.clone_dtoh(&d_m1).unwrap(),
        dev.stream.clone_dtoh(&d_m2).unwrap(),
    );
    for p in 0..4 {
        let r = offsets[p] as usize..offsets[p + 1] as usize;
        let (mut a, mut b) = (m1[r.clone()].to_vec(), m2[r.clone()].to_vec());
        optimizer_step(
            &hps[p],
            steps[p] + 1,
            1.0,
            &mut w[r.clone()],
            &grad[r.clone()],
            &mut a,
            &mut b,
        );
        m1[r.clone()].copy_from_slice(&a);
        m2[r.clone()].copy_from_slice(&b);
        for (name, g, c) in [("w", &gw, &w), ("m", &gm1, &m1), ("v", &gm2, &m2)] {
            let err = rel_error(&g[r.clone()], &c[r.clone()]);
            assert!(err < 1e-6, "member {p} {name}: {err}");
        }
    }
}

#[test]
fn gather_copies_the_epoch_order() {
    let Some(dev) = device() else { return };
    let mut rng = rng();
    let data = Dataset {
        features: random(&mut rng, 101 * 13),
        labels: (0..101).map(|i| i % 7).collect(),
        n_features: 13,
        n_classes: 7,
        ..Dataset::default()
    };
    let order: Vec<usize> = (0..101).rev().collect();
    let d = DeviceData::upload(&dev, &data).unwrap();
    let d_order = upload(&dev, &order.iter().map(|&i| i as u32).collect::<Vec<_>>());
    let (x, y) = (poisoned(&dev, 33 * 13), upload(&dev, &[u32::MAX; 33]));
    gather_rows(&dev, &d, &d_order, BatchStart::Row(50), 33, &x, &y).unwrap();
    let want = data.subset(&order[50..83]);
    assert_eq!(dev.stream.clone_dtoh(&x).unwrap(), want.features);
    assert_eq!(dev.stream.clone_dtoh(&y).unwrap(), want.labels);
}

fn ragged_population(optimizer: fn(f32) -> OptimHparams) -> Vec<MemberSpec> {
    let with = |mut s: MemberSpec, lr: f32| {
        s.hparams.optim = optimizer(lr);
        s
    };
    vec![
        with(spec(&[32], 0.05, 0.9, 0.0, 1), 0.05),
        with(spec(&[64, 32], 0.01, 0.5, 0.1, 2), 0.01),
        with(spec(&[16, 16, 16], 0.2, 0.0, 0.0, 3), 0.02),
        with(spec(&[], 0.05, 0.8, 0.0, 6), 0.05),
        with(spec(&[33, 65, 17], 0.07, 0.7, 0.15, 8), 0.007),
    ]
}

fn gpu() -> Option<CudaBackend> {
    match CudaBackend::open() {
        Ok(g) => Some(g),
        Err(why) => {
            println!("SKIP: {why}");
            None
        }
    }
}

#[test]
fn one_epoch_on_the_gpu_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    for optimizer in [
        |lr| OptimHparams::sgd(lr, 0.9, 1e-4),
        |lr| OptimHparams::adamw(lr / 10.0, 1e-2),
    ] {
        let specs = ragged_population(optimizer);
        let on_gpu = train_on(&gpu, &specs, &data, 1);
        let on_cpu = train_together(&specs, &data, 1, 2);
        assert_epoch_alike(&on_gpu, &on_cpu, data.val.len(), 1e-3);
    }
}

/// TF32 tensor cores train to the same place as the fp32 CPU twin, within TF32's rounding
/// (a member wide enough for the 128 tiles that the TF32 path replaces).
#[test]
fn one_epoch_with_tf32_tensor_cores_stays_close_to_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    let mut specs = ragged_population(|lr| OptimHparams::sgd(lr, 0.9, 1e-4));
    specs.push(spec(&[160, 140], 0.01, 0.9, 0.0, 9));
    gpu.device().set_gemm_mode(GemmMode::Tf32);
    let on_gpu = train_on(&gpu, &specs, &data, 1);
    gpu.device().set_gemm_mode(GemmMode::Split);
    let on_cpu = train_together(&specs, &data, 1, 2);
    for slot in 0..specs.len() {
        let err = rel_error(on_gpu.params(slot), on_cpu.params(slot));
        assert!(err < 3e-2, "member {slot}: weights differ by {err}");
        let (hg, hc) = (
            &on_gpu.members()[slot].history[0],
            &on_cpu.members()[slot].history[0],
        );
        assert!(
            (hg.val_loss - hc.val_loss).abs() < 3e-2 * hc.val_loss,
            "member {slot}: val loss {} vs {}",
            hg.val_loss,
            hc.val_loss
        );
    }
}

#[test]
fn population_equals_each_member_alone_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    let specs = ragged_population(|lr| OptimHparams::adamw(lr / 10.0, 1e-2));
    let together = train_on(&gpu, &specs, &data, 2);
    for (slot, s) in specs.iter().enumerate() {
        let alone = train_on(&gpu, std::slice::from_ref(s), &data, 2);
        assert!(
            together
                .params(slot)
                .iter()
                .zip(alone.params(0))
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "member {slot} differs"
        );
        assert_eq!(together.members()[slot].history, alone.members()[0].history);
    }
}

#[test]
fn a_diverging_member_leaves_the_others_untouched_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    let mut specs = ragged_population(|lr| OptimHparams::sgd(lr, 0.9, 1e-4));
    let healthy = train_on(&gpu, &specs, &data, 2);
    specs.insert(2, spec(&[64], 1e6, 0.9, 0.0, 42));
    let poisoned = train_on(&gpu, &specs, &data, 2);
    let bad = &poisoned.members()[2];
    assert!(!bad.is_alive() && bad.failure.as_ref().unwrap().epoch == 1);
    for slot in 0..healthy.len() {
        let other = if slot < 2 { slot } else { slot + 1 };
        assert_eq!(poisoned.params(other), healthy.params(slot));
        assert_eq!(
            poisoned.members()[other].history,
            healthy.members()[slot].history
        );
    }
}

/// Both output layouts accumulate each output in the same order, and a replayed graph runs
/// the same launches: all four ways of training give the same bits.
#[test]
fn output_layouts_and_graph_replay_train_identically() {
    let Some(gpu) = gpu() else { return };
    let data = digits_tuning();
    let mut specs = ragged_population(|lr| OptimHparams::adamw(lr / 10.0, 1e-2));
    // Wide enough for 128-wide tiles: layer 2's weight gradient is 161 × 140.
    specs.push(spec(&[160, 140], 0.01, 0.9, 0.1, 9));
    let mut runs = Vec::new();
    for (mode, graphs) in [
        (GemmMode::Blocked, false),
        (GemmMode::Split, false),
        (GemmMode::Blocked, true),
        (GemmMode::Split, true),
    ] {
        gpu.device().set_gemm_mode(mode);
        gpu.device().set_graphs(graphs);
        runs.push(train_on(&gpu, &specs, &data, 2));
    }
    for run in &runs[1..] {
        for slot in 0..specs.len() {
            let same = run
                .params(slot)
                .iter()
                .zip(runs[0].params(slot))
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "member {slot} differs");
            assert_eq!(run.members()[slot].history, runs[0].members()[slot].history);
        }
    }
}

/// What the kernels do not implement is refused with a message, never trained wrongly.
#[test]
fn options_beyond_the_kernels_are_refused_clearly() {
    let Some(gpu) = gpu() else { return };
    use popsweep::backend::{Backend, EpochPlan};
    let data = digits_tuning();
    let mut s = spec(&[16], 0.05, 0.9, 0.0, 1);
    s.hparams.optim.l1 = 1e-4;
    let mut pop = popsweep::population::Population::new();
    pop.insert(0, s);
    let plan = EpochPlan {
        order: (0..data.train.len()).collect(),
        batch_size: 32,
    };
    let err = gpu
        .train_epoch(&mut pop, &data.train, &data.val, &plan)
        .unwrap_err()
        .to_string();
    assert!(err.contains("L1") && err.contains("--backend cpu"), "{err}");
    assert_eq!(pop.members()[0].epochs, 0, "nothing trained");

    // Regression: the kernels have no mean squared error.
    let mut pop = popsweep::population::Population::new();
    pop.insert(0, spec(&[16], 0.05, 0.9, 0.0, 1));
    let as_regression = |d: &Dataset| Dataset {
        values: d.labels.iter().map(|&l| l as f32).collect(),
        labels: Vec::new(),
        n_classes: 1,
        task: popsweep::data::Task::Regression,
        ..d.clone()
    };
    let (train, val) = (as_regression(&data.train), as_regression(&data.val));
    let err = gpu
        .train_epoch(&mut pop, &train, &val, &plan)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("regression") && err.contains("--backend cpu"),
        "{err}"
    );
    assert_eq!(pop.members()[0].epochs, 0, "nothing trained");
}

/// The scheduler's verbs over a 3-epoch, 2-rung schedule, on any backend's population: five
/// members train one epoch (rung 1), the even trials go on for two more (rung 2), PBT-style
/// slot 1 takes slot 0's weights before the last epoch, and the leader is exported.
fn two_rungs(pop: &mut dyn popsweep::backend::TrainingPopulation, specs: &[MemberSpec]) {
    use popsweep::backend::EpochPlan;
    use popsweep::rng::{permutation, Stream};
    let plan = |epoch: u32, rows: usize| EpochPlan {
        order: permutation(rows, 99, Stream::Shuffle, epoch),
        batch_size: 32,
    };
    let rows = digits_tuning().train.len();
    for (trial, s) in specs.iter().enumerate() {
        pop.insert(trial, s.clone());
    }
    pop.train(&plan(0, rows)).unwrap();
    pop.retain(&|m| m.trial % 2 == 0);
    pop.train(&plan(1, rows)).unwrap();
    pop.copy(0, 1);
    pop.train(&plan(2, rows)).unwrap();
}

/// Issue 18: a sweep's population lives on the device. After setup (the data, the first
/// layout, the members' initial weights), no weight crosses the bus but the exported
/// member's; each epoch reads back exactly one `MemberState` per member and writes its row
/// order; the re-layouts after `retain` and `copy` write launch tables only. And the
/// device population trains what the CPU population trains.
#[test]
fn the_population_stays_on_the_device_between_epochs() {
    let Some(gpu) = gpu() else { return };
    use popsweep::backend::cuda::{CudaPopulation, Transfer};
    use popsweep::backend::{Backend, TrainingPopulation};
    let data = digits_tuning();
    let specs = ragged_population(|lr| OptimHparams::sgd(lr, 0.9, 1e-4));
    let dev = gpu.device().clone();
    let counts = || Transfer::ALL.map(|t| dev.transferred(t));

    let mut on_gpu = CudaPopulation::new(&gpu, &data.train, &data.val);
    let before = counts();
    two_rungs(&mut on_gpu, &specs);
    let exported = on_gpu.export(0).unwrap();
    let after = counts();
    let moved = |t: Transfer| after[t as usize] - before[t as usize];
    let weights_in: usize = specs.iter().map(|s| s.arch.param_count()).sum();
    let (f32s, state) = (4, std::mem::size_of::<MemberState>());
    // New members' moments are zero, as the device buffers start: only weights go up.
    assert_eq!(
        moved(Transfer::Weights) as usize,
        f32s * (weights_in + 3 * exported.params.len()),
        "weights crossed the bus beyond the initial upload and the one export"
    );
    assert_eq!(moved(Transfer::Metrics) as usize, state * (5 + 3 + 3));
    assert_eq!(moved(Transfer::Order) as usize, 4 * 3 * data.train.len());
    let data_bytes = 4 * (data.train.features.len() + 2 * data.train.len())
        + 4 * (data.val.features.len() + 2 * data.val.len());
    assert_eq!(
        moved(Transfer::Data) as usize,
        data_bytes,
        "the data went up once"
    );
    println!(
        "transfers after setup: layout {} B over 3 layouts, metrics {} B, order {} B, export {} B",
        moved(Transfer::Layout),
        moved(Transfer::Metrics),
        moved(Transfer::Order),
        f32s * 3 * exported.params.len()
    );

    let cpu = popsweep::backend::cpu::CpuBackend::new(2);
    let mut on_cpu = cpu.population(&data.train, &data.val);
    two_rungs(on_cpu.as_mut(), &specs);
    assert_eq!(on_gpu.len(), 3);
    for slot in 0..on_gpu.len() {
        let (g, c) = (on_gpu.export(slot).unwrap(), on_cpu.export(slot).unwrap());
        assert_eq!(g.member.trial, c.member.trial);
        assert_eq!(g.member.steps, c.member.steps);
        // Three epochs amplify the per-step rounding differences further than one (1e-3).
        let err = rel_error(&g.params, &c.params);
        assert!(err < 1e-2, "slot {slot}: weights differ by {err}");
        let (hg, hc) = (&g.member.history, &c.member.history);
        assert_eq!(hg.len(), hc.len());
        for (a, b) in hg.iter().zip(hc) {
            assert!(
                (a.val_loss - b.val_loss).abs() < 1e-2 * b.val_loss,
                "slot {slot}"
            );
        }
    }
}
