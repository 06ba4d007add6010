//! The layered networks' kernels (kernels/conv.cu, pool.cu, norm.cu, activation.cu and
//! dropout.cu; the transformers' are checked through whole steps, tests/plan_emulation.rs)
//! run on the CPU under a thin emulation of CUDA's device language
//! (tests/emulate/cuda_shim.h: real threads per block, barriers for `__syncthreads`, block
//! statics for shared memory), against their CPU twins, on every machine. Each case builds
//! its problems with the same host code the CUDA backend uses (`conv_problem`,
//! `pool_problem`, ...) and launches with the same grids, so the kernels' index maps, the
//! problem layouts, tie and NaN rules and RNG keys are checked here, GPU or not. What
//! emulation cannot show (the GPU's own arithmetic and memory model, speed) is left to
//! tests/cuda_parity.rs on a GPU.
//!
//! Without a C++20 compiler each test prints `SKIP: no C++ compiler: <reason>`.
#![cfg(feature = "cuda")]

mod common;

use common::emulate::{alive, assert_close, bytes, harness, random, rng, run, values};

use popsweep::backend::cpu::activation::{relu_backward, relu_forward};
use popsweep::backend::cpu::conv::{col_len, conv_backward, conv_forward};
use popsweep::backend::cpu::dropout::{dropout_mask, DropoutKey};
use popsweep::backend::cpu::linear::{linear_backward, linear_forward, LinearShape};
use popsweep::backend::cpu::norm::{
    batch_stats, inverse_std, norm_backward, norm_forward, update_running,
};
use popsweep::backend::cpu::pool::{
    avg_pool_backward, avg_pool_forward, global_avg_pool_backward, global_avg_pool_forward,
    max_pool_backward, max_pool_forward,
};
use popsweep::backend::cuda::conv::{self, conv_problem, dense_problem, ConvPass, LayerPlace};
use popsweep::backend::cuda::dropout::{self, DropoutPass};
use popsweep::backend::cuda::layout::{ElementProblem, MemberHparams, NormProblem};
use popsweep::backend::cuda::plan::{Buffer, Group};
use popsweep::backend::cuda::pool::{self, outputs, pool_problem, PoolKind};
use popsweep::backend::cuda::{activation, norm};
use popsweep::model::layers::{Conv2d, Norm, Pool};
use popsweep::rng::Stream;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A convolution (or dense layer) case: its shape and where its blocks sit.
struct ConvCase {
    conv: Conv2d,
    dense: bool,
}

impl ConvCase {
    fn new(
        c: usize,
        (h, w): (usize, usize),
        o: usize,
        (k, stride, pad): (usize, usize, usize),
    ) -> Self {
        ConvCase {
            conv: Conv2d {
                in_channels: c,
                out_channels: o,
                kernel: k,
                stride,
                pad,
                height: h,
                width: w,
            },
            dense: false,
        }
    }

    fn dense(inputs: usize, outputs: usize) -> Self {
        ConvCase {
            dense: true,
            ..Self::new(inputs, (1, 1), outputs, (1, 1, 0))
        }
    }
}

/// Layer index 0's problem table of `group`: where single-kernel cases put theirs.
fn table(group: Group) -> Buffer {
    Buffer::Problems(0, group)
}

#[test]
fn convolutions_and_dense_layers_match_the_cpu_twin_in_one_ragged_launch() {
    let Some(exe) = harness() else { return };
    let mut rng = rng(19);
    let rows = 3;
    // 1×1, 5×5 `same`, stride 2 `valid`, stride 2 padded, one channel, a dense layer.
    let cases = [
        ConvCase::new(2, (5, 5), 3, (1, 1, 0)),
        ConvCase::new(2, (7, 6), 4, (5, 1, 2)),
        ConvCase::new(3, (9, 8), 5, (3, 2, 0)),
        ConvCase::new(1, (6, 7), 3, (3, 2, 1)),
        ConvCase::dense(12, 7),
    ];
    // The blocks of every member side by side, as in a network's activations buffer.
    let (mut acts_len, mut params_len) = (0, 0);
    let mut problems = Vec::new();
    for (member, case) in cases.iter().enumerate() {
        let c = &case.conv;
        let x_off = acts_len;
        let y_off = x_off + rows * c.in_size();
        acts_len = y_off + rows * c.out_size();
        let w_off = params_len;
        let b_off = w_off + c.out_channels * c.fan_in();
        params_len = b_off + c.out_channels;
        let at = LayerPlace {
            x_off,
            y_off,
            w_off,
            b_off,
            member,
        };
        problems.push(if case.dense {
            dense_problem(c.in_channels, c.out_channels, at)
        } else {
            conv_problem(c, at)
        });
    }
    let acts = random(&mut rng, acts_len);
    let params = random(&mut rng, params_len);
    let dy_all = random(&mut rng, acts_len);
    let linear = table(Group::Linear);
    let mut buffers = BTreeMap::from([
        (linear, bytes(&problems)),
        (Buffer::Acts, bytes(&acts)),
        (Buffer::Params, bytes(&params)),
        (Buffer::State, bytes(&alive(cases.len()))),
        (Buffer::Deltas, bytes(&dy_all)),
        (Buffer::Grad, bytes(&vec![f32::NAN; params_len])),
    ]);
    let pass = |p| conv::launch(&problems, linear, (p, rows), true);
    // The forward pass writes only output blocks, which the backward passes do not read
    // from the activations; the weight gradient reads dy before the input gradient
    // overwrites the input blocks of the deltas.
    let launches = [ConvPass::Forward, ConvPass::BackwardW, ConvPass::BackwardX].map(pass);
    run(exe, &launches, &mut buffers);
    let forward: Vec<f32> = values(&buffers[&Buffer::Acts]);
    let grad: Vec<f32> = values(&buffers[&Buffer::Grad]);
    let dx_all: Vec<f32> = values(&buffers[&Buffer::Deltas]);

    for (case, prob) in cases.iter().zip(&problems) {
        let c = &case.conv;
        let (x, y) = (prob.x_off as usize, prob.y_off as usize);
        let (w, b) = (prob.w_off as usize, prob.b_off as usize);
        let input = &acts[x..x + rows * c.in_size()];
        let (weights, bias) = (&params[w..b], &params[b..b + c.out_channels]);
        let dy = &dy_all[y..y + rows * c.out_size()];
        let mut want_y = vec![0.0; rows * c.out_size()];
        let mut want_dx = vec![0.0; rows * c.in_size()];
        let mut want_dw = vec![0.0; weights.len()];
        let mut want_db = vec![0.0; c.out_channels];
        if case.dense {
            let shape = LinearShape {
                batch: rows,
                n_in: c.in_channels,
                n_out: c.out_channels,
            };
            linear_forward(shape, input, weights, bias, &mut want_y);
            let dx = Some(&mut want_dx[..]);
            linear_backward(shape, input, weights, dy, dx, &mut want_dw, &mut want_db);
        } else {
            let mut col = vec![0.0; col_len(c)];
            let mut dcol = col.clone();
            conv_forward(c, rows, input, weights, bias, &mut want_y, &mut col);
            let dx = Some(&mut want_dx[..]);
            let scratch = (&mut col[..], &mut dcol[..]);
            conv_backward(
                c,
                rows,
                input,
                weights,
                dy,
                dx,
                &mut want_dw,
                &mut want_db,
                scratch,
            );
        }
        let what = format!("{c:?}");
        assert_close(
            &format!("forward {what}"),
            &forward[y..y + want_y.len()],
            &want_y,
            1e-5,
        );
        assert_close(&format!("dW {what}"), &grad[w..b], &want_dw, 1e-5);
        assert_close(
            &format!("db {what}"),
            &grad[b..b + c.out_channels],
            &want_db,
            1e-5,
        );
        assert_close(
            &format!("dx {what}"),
            &dx_all[x..x + want_dx.len()],
            &want_dx,
            1e-5,
        );
    }
}

#[test]
fn a_diverged_member_is_skipped_by_training_launches_and_run_by_evaluation() {
    let Some(exe) = harness() else { return };
    let case = ConvCase::new(2, (4, 4), 3, (3, 1, 1));
    let c = &case.conv;
    let at = |member, y_off| LayerPlace {
        x_off: 0,
        y_off,
        w_off: 0,
        b_off: c.out_channels * c.fan_in(),
        member,
    };
    let out = c.out_size();
    let problems = [
        conv_problem(c, at(0, c.in_size())),
        conv_problem(c, at(1, c.in_size() + out)),
    ];
    let mut rng = rng(7);
    let mut acts = random(&mut rng, c.in_size());
    acts.extend(vec![f32::NAN; 2 * out]);
    let mut state = alive(2);
    state[1].alive = 0;
    let params = random(&mut rng, c.out_channels * (c.fan_in() + 1));
    let linear = table(Group::Linear);
    let mut buffers = BTreeMap::from([
        (linear, bytes(&problems)),
        (Buffer::Acts, bytes(&acts)),
        (Buffer::Params, bytes(&params)),
        (Buffer::State, bytes(&state)),
    ]);
    let forward = |training| conv::launch(&problems, linear, (ConvPass::Forward, 1), training);
    run(exe, &[forward(true)], &mut buffers);
    let trained: Vec<f32> = values(&buffers[&Buffer::Acts]);
    let (first, second) = trained[c.in_size()..].split_at(out);
    assert!(first.iter().all(|v| v.is_finite()), "the alive member ran");
    assert!(
        second.iter().all(|v| v.is_nan()),
        "the diverged member was skipped"
    );
    run(exe, &[forward(false)], &mut buffers);
    let evaluated: Vec<f32> = values(&buffers[&Buffer::Acts]);
    let (first, second) = evaluated[c.in_size()..].split_at(out);
    assert_eq!(
        first, second,
        "evaluation runs every member, the same weights alike"
    );
}

/// Values from a small set, so that pooling windows hold ties.
fn tied(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.random_range(0..4) as f32 * 0.5)
        .collect()
}

fn pool(channels: usize, size: usize, (height, width): (usize, usize)) -> Pool {
    Pool {
        channels,
        size,
        height,
        width,
    }
}

#[test]
fn pooling_matches_the_cpu_twin_ties_and_ragged_edges_included() {
    let Some(exe) = harness() else { return };
    let mut rng = rng(23);
    let rows = 2;
    let shapes = [
        (pool(3, 2, (7, 5)), PoolKind::Max),
        (pool(2, 3, (7, 9)), PoolKind::Max),
        (pool(3, 2, (5, 6)), PoolKind::Avg),
        (pool(4, 1, (3, 5)), PoolKind::Global),
    ];
    let (mut acts_len, mut picks_len) = (0, 0);
    let mut problems = Vec::new();
    for (member, (p, kind)) in shapes.iter().enumerate() {
        let x_off = acts_len;
        let y_off = x_off + rows * p.in_size();
        let n_out = if *kind == PoolKind::Global {
            p.channels
        } else {
            p.out_size()
        };
        acts_len = y_off + rows * n_out;
        let picks_off = picks_len;
        if *kind == PoolKind::Max {
            picks_len += rows * n_out;
        }
        problems.push(pool_problem(p, *kind, (x_off, y_off, picks_off), member));
    }
    let acts = tied(&mut rng, acts_len);
    let dy_all = random(&mut rng, acts_len);
    let group = table(Group::Pool);
    let mut buffers = BTreeMap::from([
        (group, bytes(&problems)),
        (Buffer::Acts, bytes(&acts)),
        (Buffer::Deltas, bytes(&dy_all)),
        (Buffer::Picks, bytes(&vec![u32::MAX; picks_len])),
        (Buffer::State, bytes(&alive(shapes.len()))),
    ]);
    let launches = [
        pool::forward(&problems, group, rows, true),
        pool::backward(&problems, group, rows),
    ];
    run(exe, &launches, &mut buffers);
    let forward: Vec<f32> = values(&buffers[&Buffer::Acts]);
    let picks: Vec<u32> = values(&buffers[&Buffer::Picks]);
    let dx_all: Vec<f32> = values(&buffers[&Buffer::Deltas]);

    for ((p, kind), prob) in shapes.iter().zip(&problems) {
        let (x, y) = (prob.x_off as usize, prob.y_off as usize);
        let n_out = outputs(prob);
        let input = &acts[x..x + rows * p.in_size()];
        let dy = &dy_all[y..y + rows * n_out];
        let mut want_y = vec![0.0; rows * n_out];
        let mut want_dx = vec![0.0; rows * p.in_size()];
        match kind {
            PoolKind::Max => {
                let mut want_picks = vec![0; rows * n_out];
                max_pool_forward(p, rows, input, &mut want_y, &mut want_picks);
                let at = prob.picks_off as usize;
                let got = &picks[at..at + want_picks.len()];
                assert_eq!(got, &want_picks[..], "{p:?}: picks");
                max_pool_backward(p, rows, dy, &want_picks, &mut want_dx);
            }
            PoolKind::Avg => {
                avg_pool_forward(p, rows, input, &mut want_y);
                avg_pool_backward(p, rows, dy, &mut want_dx);
            }
            PoolKind::Global => {
                global_avg_pool_forward(p, rows, input, &mut want_y);
                global_avg_pool_backward(p, rows, dy, &mut want_dx);
            }
        }
        let what = format!("{kind:?} {p:?}");
        assert_close(
            &format!("{what} forward"),
            &forward[y..y + want_y.len()],
            &want_y,
            1e-6,
        );
        assert_close(
            &format!("{what} dx"),
            &dx_all[x..x + want_dx.len()],
            &want_dx,
            1e-6,
        );
    }
}

/// Batch norm problems over a convolution's block (several positions per channel) and a
/// dense block (one), each member's γ, β, running mean and variance side by side.
fn norm_problems(norms: &[Norm], rows: usize) -> (Vec<NormProblem>, [usize; 3]) {
    let (mut acts_len, mut params_len, mut stats_len) = (0, 0, 0);
    let mut problems = Vec::new();
    for (member, n) in norms.iter().enumerate() {
        let x_off = acts_len;
        let y_off = x_off + rows * n.size();
        acts_len = y_off + rows * n.size();
        let gamma_off = params_len;
        params_len += 4 * n.channels;
        problems.push(NormProblem {
            x_off: x_off as i64,
            y_off: y_off as i64,
            gamma_off: gamma_off as i64,
            state_off: (gamma_off + 2 * n.channels) as i64,
            stats_off: stats_len as i64,
            channels: n.channels as i32,
            spatial: n.spatial as i32,
            member: member as i32,
            has_dx: 1,
        });
        stats_len += 3 * n.channels;
    }
    (problems, [acts_len, params_len, stats_len])
}

#[test]
fn batch_norm_matches_the_cpu_twin_in_both_modes() {
    let Some(exe) = harness() else { return };
    let mut rng = rng(29);
    let rows = 3;
    let norms = [
        Norm {
            channels: 3,
            spatial: 10,
        },
        Norm {
            channels: 5,
            spatial: 1,
        },
    ];
    let (problems, [acts_len, params_len, stats_len]) = norm_problems(&norms, rows);
    let acts: Vec<f32> = (random(&mut rng, acts_len).iter())
        .map(|v| 3.0 * v + 0.5)
        .collect();
    let mut params = random(&mut rng, params_len);
    for p in &problems {
        let var = (p.state_off + i64::from(p.channels)) as usize;
        for v in &mut params[var..var + p.channels as usize] {
            *v = v.abs() + 0.1; // a running variance is positive
        }
    }
    let dy_all = random(&mut rng, acts_len);
    let group = table(Group::Norm);
    for batch_mode in [true, false] {
        let mut buffers = BTreeMap::from([
            (group, bytes(&problems)),
            (Buffer::Norms, bytes(&problems)),
            (Buffer::Acts, bytes(&acts)),
            (Buffer::Params, bytes(&params)),
            (Buffer::Stats, bytes(&vec![0.0f32; stats_len])),
            (Buffer::State, bytes(&alive(norms.len()))),
            (Buffer::Deltas, bytes(&dy_all)),
            (Buffer::Grad, bytes(&vec![f32::NAN; params_len])),
        ]);
        // The batch's statistics in both modes (training computes them; the running
        // mode's forward pass then ignores them).
        let mut launches = norm::forward(&problems, group, rows, true);
        if !batch_mode {
            launches.pop();
            launches.extend(norm::forward(&problems, group, rows, false));
        }
        launches.push(norm::backward(&problems, group, rows, batch_mode));
        run(exe, &launches, &mut buffers);
        let forward: Vec<f32> = values(&buffers[&Buffer::Acts]);
        let stats: Vec<f32> = values(&buffers[&Buffer::Stats]);
        let grad: Vec<f32> = values(&buffers[&Buffer::Grad]);
        let dx_all: Vec<f32> = values(&buffers[&Buffer::Deltas]);
        run(exe, &[norm::update_running(&problems, rows)], &mut buffers);
        let updated: Vec<f32> = values(&buffers[&Buffer::Params]);

        for (n, prob) in norms.iter().zip(&problems) {
            let c = n.channels;
            let (x, y) = (prob.x_off as usize, prob.y_off as usize);
            let (g, st) = (prob.gamma_off as usize, prob.state_off as usize);
            let s = prob.stats_off as usize;
            let input = &acts[x..x + rows * n.size()];
            let (mut mean, mut var, mut invstd) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
            batch_stats(n, rows, input, &mut mean, &mut var);
            assert_close("batch mean", &stats[s..s + c], &mean, 1e-5);
            assert_close("batch variance", &stats[s + c..s + 2 * c], &var, 1e-5);
            let (b_mean, b_var) = (mean.clone(), var.clone());
            if batch_mode {
                inverse_std(&var, &mut invstd);
            } else {
                mean.copy_from_slice(&params[st..st + c]);
                inverse_std(&params[st + c..st + 2 * c], &mut invstd);
            }
            let affine = (&params[g..g + c], &params[g + c..g + 2 * c]);
            let mut want_y = vec![0.0; rows * n.size()];
            norm_forward(n, rows, input, affine, (&mean, &invstd), &mut want_y);
            let what = format!("{n:?} (batch statistics: {batch_mode})");
            assert_close(
                &format!("{what} forward"),
                &forward[y..y + want_y.len()],
                &want_y,
                1e-5,
            );
            let dy = &dy_all[y..y + rows * n.size()];
            let mut want_dx = vec![0.0; rows * n.size()];
            let (mut dgamma, mut dbeta) = (vec![0.0; c], vec![0.0; c]);
            let saved = (&mean[..], &invstd[..]);
            let dx = Some(&mut want_dx[..]);
            let dparams = (&mut dgamma[..], &mut dbeta[..]);
            norm_backward(n, rows, input, affine.0, saved, batch_mode, dy, dx, dparams);
            assert_close(&format!("{what} dγ"), &grad[g..g + c], &dgamma, 1e-5);
            assert_close(&format!("{what} dβ"), &grad[g + c..g + 2 * c], &dbeta, 1e-5);
            let got_dx = &dx_all[x..x + want_dx.len()];
            assert_close(&format!("{what} dx"), got_dx, &want_dx, 1e-4);
            let mut running = (
                params[st..st + c].to_vec(),
                params[st + c..st + 2 * c].to_vec(),
            );
            update_running(
                rows * n.spatial,
                (&b_mean, &b_var),
                (&mut running.0, &mut running.1),
            );
            assert_close("running mean", &updated[st..st + c], &running.0, 1e-5);
            assert_close(
                "running variance",
                &updated[st + c..st + 2 * c],
                &running.1,
                1e-5,
            );
        }
    }
}

#[test]
fn relu_and_dropout_masks_equal_the_cpu_twin_bit_for_bit() {
    let Some(exe) = harness() else { return };
    let mut rng = rng(31);
    let rows = 3;
    // Plain dropout on a dense block, spatial dropout on a 4-channel image block.
    // ReLU (kind 0) saves nothing; its backward pass reads the block.
    let element = |off: usize, width, channels, member, layer| ElementProblem {
        off: off as i64,
        width,
        channels,
        member,
        layer,
        ..Default::default()
    };
    let problems = [element(0, 37, 0, 0, 2), element(3 * 37, 4 * 6, 4, 1, 5)];
    let total = 3 * 37 + 3 * 24;
    let acts = random(&mut rng, total);
    let hp = [(0.3f32, 11u64), (0.5, 12)].map(|(dropout, seed)| MemberHparams {
        dropout,
        seed,
        ..Default::default()
    });
    let steps = 41u64;
    let mut state = alive(2);
    for s in &mut state {
        s.steps = steps;
    }
    let (relu, drop) = (table(Group::Activation), table(Group::Dropout));
    let mut buffers = BTreeMap::from([
        (relu, bytes(&problems)),
        (drop, bytes(&problems)),
        (Buffer::Acts, bytes(&acts)),
        (Buffer::Hparams, bytes(&hp)),
        (Buffer::State, bytes(&state)),
        (Buffer::Deltas, bytes(&vec![1.0f32; total])),
        (Buffer::Saved, bytes(&[0.0f32])),
    ]);
    let forward = [
        activation::forward(&problems, relu, rows, true),
        dropout::launch(&problems, drop, (DropoutPass::Forward, rows)),
    ];
    run(exe, &forward, &mut buffers);
    let dropped: Vec<f32> = values(&buffers[&Buffer::Acts]);
    // The backward pass runs after the loss kernel advanced the step.
    for s in &mut state {
        s.steps = steps + 1;
    }
    buffers.insert(Buffer::State, bytes(&state));
    let backward = [
        dropout::launch(&problems, drop, (DropoutPass::Backward, rows)),
        activation::backward(&problems, relu, rows),
    ];
    run(exe, &backward, &mut buffers);
    let grads: Vec<f32> = values(&buffers[&Buffer::Deltas]);

    let mut relu_out = acts.clone();
    relu_forward(&mut relu_out);
    for (p, h) in problems.iter().zip(&hp) {
        let (off, width) = (p.off as usize, p.width as usize);
        let key = DropoutKey {
            seed: h.seed,
            step: steps,
            layer: p.layer as u32,
        };
        let scales: Vec<f32> = if p.channels == 0 {
            let mut mask = vec![0.0f32; rows * width];
            dropout_mask(&mut mask, h.dropout, key, Stream::Dropout);
            mask
        } else {
            let c = p.channels as usize;
            let mut per_plane = vec![0.0f32; rows * c];
            dropout_mask(&mut per_plane, h.dropout, key, Stream::SpatialDropout);
            (0..rows * width)
                .map(|e| per_plane[e / (width / c)])
                .collect()
        };
        let block = &relu_out[off..off + rows * width];
        let want: Vec<f32> = block.iter().zip(&scales).map(|(v, s)| v * s).collect();
        let layer = p.layer;
        assert_eq!(
            &dropped[off..off + rows * width],
            &want[..],
            "forward, layer {layer}"
        );
        let mut want_grad = scales.clone();
        relu_backward(&want, &mut want_grad);
        let got = &grads[off..off + rows * width];
        assert_eq!(
            got,
            &want_grad[..],
            "dropout and ReLU backward, layer {layer}"
        );
    }
}

#[test]
fn activations_other_than_relu_match_the_cpu_twin() {
    use popsweep::backend::cpu::activation::{activation_backward, activation_forward};
    use popsweep::backend::cuda::activation::kind;
    use popsweep::model::hparams::Activation;
    let Some(exe) = harness() else { return };
    let mut rng = rng(37);
    let (rows, width) = (3, 29);
    let kinds = [Activation::LeakyRelu, Activation::Tanh, Activation::Gelu];
    let problems: Vec<ElementProblem> = (kinds.iter().enumerate())
        .map(|(m, &a)| ElementProblem {
            off: (m * rows * width) as i64,
            aux_off: (m * rows * width) as i64,
            width: width as i32,
            member: m as i32,
            layer: m as i32,
            kind: kind(a),
            ..Default::default()
        })
        .collect();
    let total = kinds.len() * rows * width;
    let z: Vec<f32> = random(&mut rng, total).iter().map(|v| 4.0 * v).collect();
    let dy = random(&mut rng, total);
    let group = table(Group::Activation);
    let mut buffers = BTreeMap::from([
        (group, bytes(&problems)),
        (Buffer::Acts, bytes(&z)),
        (Buffer::Saved, bytes(&vec![f32::NAN; total])),
        (Buffer::Deltas, bytes(&dy)),
        (Buffer::State, bytes(&alive(kinds.len()))),
    ]);
    let launches = [
        activation::forward(&problems, group, rows, true),
        activation::backward(&problems, group, rows),
    ];
    run(exe, &launches, &mut buffers);
    let (y, dz): (Vec<f32>, Vec<f32>) = (
        values(&buffers[&Buffer::Acts]),
        values(&buffers[&Buffer::Deltas]),
    );
    for (m, &a) in kinds.iter().enumerate() {
        let r = m * rows * width..(m + 1) * rows * width;
        let mut want = vec![0.0f32; rows * width];
        activation_forward(a, &z[r.clone()], &mut want);
        // The CPU's GELU takes Φ from a polynomial with absolute error ≤ 1.5e-7.
        assert_close(&format!("{a:?} forward"), &y[r.clone()], &want, 1e-6);
        let mut want = dy[r.clone()].to_vec();
        activation_backward(a, &z[r.clone()], &mut want);
        assert_close(&format!("{a:?} backward"), &dz[r], &want, 1e-6);
    }
}
