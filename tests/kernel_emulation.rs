//! The layered networks' kernels (kernels/conv.cu, pool.cu, norm.cu, activation.cu and
//! dropout.cu) run on the CPU under a thin emulation of CUDA's device language
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

use cudarc::driver::LaunchConfig;
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
use popsweep::backend::cuda::layout::{
    element_grid, ElementProblem, MemberHparams, MemberState, NormProblem, PoolProblem,
};
use popsweep::backend::cuda::norm::{per_channel, running_grid};
use popsweep::backend::cuda::pool::{outputs, pool_problem, PoolKind};
use popsweep::model::layers::{Conv2d, Norm, Pool};
use popsweep::rng::Stream;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The harness, compiled once per test run; `None` after printing why the test skips.
fn harness() -> Option<&'static Path> {
    static EXE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let exe = EXE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-harness");
        let compiler = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        let status = Command::new(&compiler)
            .args(["-std=c++20", "-O1", "-pthread", "-w"])
            .arg(root.join("tests/emulate/harness.cpp"))
            .arg("-o")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => Ok(out),
            Ok(s) => panic!("tests/emulate/harness.cpp does not compile with {compiler} ({s})"),
            Err(e) => Err(format!("{compiler}: {e}")),
        }
    });
    match exe {
        Ok(path) => Some(path),
        Err(why) => {
            println!("SKIP: no C++ compiler: {why}");
            None
        }
    }
}

/// A kernel argument: a named buffer, an int, or a null pointer.
enum Arg<'a> {
    Buf(&'a str),
    Int(i64),
    Null,
}

/// Bytes of a slice of plain C-layout values.
fn bytes<T: Copy>(v: &[T]) -> Vec<u8> {
    // SAFETY: `T` is a `#[repr(C)]` mirror or a primitive without padding (sizes asserted
    // in layout.rs); reading its bytes is reading initialised memory.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
        .to_vec()
}

fn values<T: Copy>(b: &[u8]) -> Vec<T> {
    let n = std::mem::size_of::<T>();
    b.chunks_exact(n)
        // SAFETY: each chunk holds the bytes of one `T` written by the harness.
        .map(|c| unsafe { std::ptr::read_unaligned(c.as_ptr().cast::<T>()) })
        .collect()
}

/// Runs `kernel` over `cfg` with `args` in the harness; every buffer comes back changed as
/// the kernel left it.
fn launch(
    exe: &Path,
    kernel: &str,
    cfg: LaunchConfig,
    args: &[Arg<'_>],
    buffers: &mut BTreeMap<&str, Vec<u8>>,
) {
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "emulate-{}-{}",
        std::process::id(),
        CASE.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (g, b) = (cfg.grid_dim, cfg.block_dim);
    let mut text = format!(
        "{kernel}\ngrid {} {} {} block {} {} {}\n",
        g.0, g.1, g.2, b.0, b.1, b.2
    );
    for arg in args {
        match arg {
            Arg::Buf(name) => {
                std::fs::write(dir.join(format!("{name}.bin")), &buffers[name]).unwrap();
                text += &format!("buf {name}\n");
            }
            Arg::Int(v) => text += &format!("int {v}\n"),
            Arg::Null => text += "null\n",
        }
    }
    std::fs::write(dir.join("launch.txt"), text).unwrap();
    let status = Command::new(exe).arg(&dir).status().unwrap();
    assert!(status.success(), "harness failed on {kernel}: {status}");
    for (name, data) in buffers.iter_mut() {
        if let Ok(out) = std::fs::read(dir.join(format!("{name}.out"))) {
            *data = out;
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Largest difference relative to the reference's largest magnitude.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}[{i}]: kernel {g}, CPU twin {w} (scale {scale})"
        );
    }
}

fn alive(members: usize) -> Vec<MemberState> {
    (0..members)
        .map(|_| MemberState {
            alive: 1,
            ..Default::default()
        })
        .collect()
}

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
    let mut buffers = BTreeMap::from([
        ("problems", bytes(&problems)),
        ("acts", bytes(&acts)),
        ("params", bytes(&params)),
        ("state", bytes(&alive(cases.len()))),
    ]);
    let run = |buffers: &mut BTreeMap<&str, Vec<u8>>, pass, kernel, args: &[Arg<'_>]| {
        launch(
            exe,
            kernel,
            conv::config(&problems, pass, rows),
            args,
            buffers,
        )
    };
    let (p, r) = (Arg::Buf("problems"), Arg::Int(rows as i64));
    run(
        &mut buffers,
        ConvPass::Forward,
        "conv_forward",
        &[
            p,
            r,
            Arg::Buf("acts"),
            Arg::Buf("params"),
            Arg::Buf("acts"),
            Arg::Buf("state"),
        ],
    );
    let forward: Vec<f32> = values(&buffers["acts"]);
    buffers.insert("deltas", bytes(&dy_all));
    buffers.insert("grad", bytes(&vec![f32::NAN; params_len]));
    let (p, r) = (Arg::Buf("problems"), Arg::Int(rows as i64));
    run(
        &mut buffers,
        ConvPass::BackwardW,
        "conv_backward_w",
        &[
            p,
            r,
            Arg::Buf("deltas"),
            Arg::Buf("acts"),
            Arg::Buf("grad"),
            Arg::Buf("state"),
        ],
    );
    let (p, r) = (Arg::Buf("problems"), Arg::Int(rows as i64));
    run(
        &mut buffers,
        ConvPass::BackwardX,
        "conv_backward_x",
        &[
            p,
            r,
            Arg::Buf("deltas"),
            Arg::Buf("params"),
            Arg::Buf("deltas"),
            Arg::Buf("state"),
        ],
    );
    let (grad, dx_all): (Vec<f32>, Vec<f32>) =
        (values(&buffers["grad"]), values(&buffers["deltas"]));

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
    let mut buffers = BTreeMap::from([
        ("problems", bytes(&problems)),
        ("acts", bytes(&acts)),
        ("params", bytes(&params)),
        ("state", bytes(&state)),
    ]);
    let cfg = || conv::config(&problems, ConvPass::Forward, 1);
    let args = |state: Arg<'static>| {
        [
            Arg::Buf("problems"),
            Arg::Int(1),
            Arg::Buf("acts"),
            Arg::Buf("params"),
            Arg::Buf("acts"),
            state,
        ]
    };
    launch(
        exe,
        "conv_forward",
        cfg(),
        &args(Arg::Buf("state")),
        &mut buffers,
    );
    let trained: Vec<f32> = values(&buffers["acts"]);
    let (first, second) = trained[c.in_size()..].split_at(out);
    assert!(first.iter().all(|v| v.is_finite()), "the alive member ran");
    assert!(
        second.iter().all(|v| v.is_nan()),
        "the diverged member was skipped"
    );
    launch(exe, "conv_forward", cfg(), &args(Arg::Null), &mut buffers);
    let evaluated: Vec<f32> = values(&buffers["acts"]);
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

#[test]
fn pooling_matches_the_cpu_twin_ties_and_ragged_edges_included() {
    let Some(exe) = harness() else { return };
    let mut rng = rng(23);
    let rows = 2;
    let shapes = [
        (
            Pool {
                channels: 3,
                size: 2,
                height: 7,
                width: 5,
            },
            PoolKind::Max,
        ),
        (
            Pool {
                channels: 2,
                size: 3,
                height: 7,
                width: 9,
            },
            PoolKind::Max,
        ),
        (
            Pool {
                channels: 3,
                size: 2,
                height: 5,
                width: 6,
            },
            PoolKind::Avg,
        ),
        (
            Pool {
                channels: 4,
                size: 1,
                height: 3,
                width: 5,
            },
            PoolKind::Global,
        ),
    ];
    let (mut acts_len, mut picks_len) = (0, 0);
    let mut problems = Vec::new();
    for (member, (pool, kind)) in shapes.iter().enumerate() {
        let x_off = acts_len;
        let y_off = x_off + rows * pool.in_size();
        let n_out = if *kind == PoolKind::Global {
            pool.channels
        } else {
            pool.out_size()
        };
        acts_len = y_off + rows * n_out;
        let picks_off = picks_len;
        if *kind == PoolKind::Max {
            picks_len += rows * n_out;
        }
        problems.push(pool_problem(pool, *kind, (x_off, y_off, picks_off), member));
    }
    let acts = tied(&mut rng, acts_len);
    let dy_all = random(&mut rng, acts_len);
    let mut buffers = BTreeMap::from([
        ("problems", bytes(&problems)),
        ("acts", bytes(&acts)),
        ("picks", bytes(&vec![u32::MAX; picks_len.max(1)])),
        ("state", bytes(&alive(shapes.len()))),
    ]);
    let grid = element_grid(&problems, |p: &PoolProblem| rows * outputs(p));
    let args = |values| {
        [
            Arg::Buf("problems"),
            Arg::Int(rows as i64),
            Arg::Buf(values),
            Arg::Buf("picks"),
            Arg::Buf("state"),
        ]
    };
    launch(exe, "pool_forward", grid, &args("acts"), &mut buffers);
    let forward: Vec<f32> = values(&buffers["acts"]);
    let picks: Vec<u32> = values(&buffers["picks"]);
    buffers.insert("deltas", bytes(&dy_all));
    let grid = element_grid(&problems, |p: &PoolProblem| {
        rows * (p.channels * p.height * p.width) as usize
    });
    launch(exe, "pool_backward", grid, &args("deltas"), &mut buffers);
    let dx_all: Vec<f32> = values(&buffers["deltas"]);

    for ((pool, kind), prob) in shapes.iter().zip(&problems) {
        let (x, y) = (prob.x_off as usize, prob.y_off as usize);
        let n_out = outputs(prob);
        let input = &acts[x..x + rows * pool.in_size()];
        let dy = &dy_all[y..y + rows * n_out];
        let mut want_y = vec![0.0; rows * n_out];
        let mut want_dx = vec![0.0; rows * pool.in_size()];
        match kind {
            PoolKind::Max => {
                let mut want_picks = vec![0; rows * n_out];
                max_pool_forward(pool, rows, input, &mut want_y, &mut want_picks);
                let at = prob.picks_off as usize;
                assert_eq!(
                    &picks[at..at + want_picks.len()],
                    &want_picks[..],
                    "{pool:?}: picks"
                );
                max_pool_backward(pool, rows, dy, &want_picks, &mut want_dx);
            }
            PoolKind::Avg => {
                avg_pool_forward(pool, rows, input, &mut want_y);
                avg_pool_backward(pool, rows, dy, &mut want_dx);
            }
            PoolKind::Global => {
                global_avg_pool_forward(pool, rows, input, &mut want_y);
                global_avg_pool_backward(pool, rows, dy, &mut want_dx);
            }
        }
        assert_close(
            &format!("{kind:?} {pool:?} forward"),
            &forward[y..y + want_y.len()],
            &want_y,
            1e-6,
        );
        assert_close(
            &format!("{kind:?} {pool:?} dx"),
            &dx_all[x..x + want_dx.len()],
            &want_dx,
            1e-6,
        );
    }
}

#[test]
fn batch_norm_matches_the_cpu_twin_in_both_modes() {
    let Some(exe) = harness() else { return };
    let mut rng = rng(29);
    let rows = 3;
    // A convolution's block (several positions per channel) and a dense block (one).
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
    let (mut acts_len, mut params_len, mut stats_len) = (0, 0, 0);
    let mut problems = Vec::new();
    for (member, n) in norms.iter().enumerate() {
        let x_off = acts_len;
        let y_off = x_off + rows * n.size();
        acts_len = y_off + rows * n.size();
        let gamma_off = params_len;
        params_len += 4 * n.channels; // γ, β, running mean, running variance
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
    let acts: Vec<f32> = random(&mut rng, acts_len)
        .iter()
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
    for batch_mode in [true, false] {
        let mut buffers = BTreeMap::from([
            ("problems", bytes(&problems)),
            ("acts", bytes(&acts)),
            ("params", bytes(&params)),
            ("stats", bytes(&vec![0.0f32; stats_len])),
            ("state", bytes(&alive(norms.len()))),
        ]);
        let (p, r) = (|| Arg::Buf("problems"), || Arg::Int(rows as i64));
        let mode = Arg::Int(i64::from(batch_mode));
        let state = || Arg::Buf("state");
        launch(
            exe,
            "batch_norm_stats",
            per_channel(&problems),
            &[p(), r(), Arg::Buf("acts"), Arg::Buf("stats"), state()],
            &mut buffers,
        );
        let grid = element_grid(&problems, |p: &NormProblem| {
            rows * (p.channels * p.spatial) as usize
        });
        let args = [
            p(),
            r(),
            Arg::Buf("acts"),
            Arg::Buf("params"),
            Arg::Buf("stats"),
            mode,
            state(),
        ];
        launch(exe, "batch_norm_forward", grid, &args, &mut buffers);
        let forward: Vec<f32> = values(&buffers["acts"]);
        let stats: Vec<f32> = values(&buffers["stats"]);
        buffers.insert("deltas", bytes(&dy_all));
        buffers.insert("grad", bytes(&vec![f32::NAN; params_len]));
        let args = [
            p(),
            r(),
            Arg::Buf("acts"),
            Arg::Buf("params"),
            Arg::Buf("stats"),
            Arg::Int(i64::from(batch_mode)),
            Arg::Buf("deltas"),
            Arg::Buf("grad"),
            state(),
        ];
        launch(
            exe,
            "batch_norm_backward",
            per_channel(&problems),
            &args,
            &mut buffers,
        );
        let (grad, dx_all): (Vec<f32>, Vec<f32>) =
            (values(&buffers["grad"]), values(&buffers["deltas"]));
        launch(
            exe,
            "batch_norm_running",
            running_grid(&problems),
            &[p(), r(), Arg::Buf("stats"), Arg::Buf("params"), state()],
            &mut buffers,
        );
        let updated: Vec<f32> = values(&buffers["params"]);

        for (n, prob) in norms.iter().zip(&problems) {
            let c = n.channels;
            let (x, y) = (prob.x_off as usize, prob.y_off as usize);
            let (g, st, s) = (
                prob.gamma_off as usize,
                prob.state_off as usize,
                prob.stats_off as usize,
            );
            let input = &acts[x..x + rows * n.size()];
            let (mut mean, mut var, mut invstd) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
            batch_stats(n, rows, input, &mut mean, &mut var);
            assert_close("batch mean", &stats[s..s + c], &mean, 1e-5);
            assert_close("batch variance", &stats[s + c..s + 2 * c], &var, 1e-5);
            if !batch_mode {
                mean.copy_from_slice(&params[st..st + c]);
                inverse_std(&params[st + c..st + 2 * c], &mut invstd);
            } else {
                inverse_std(&var, &mut invstd);
            }
            let affine = (&params[g..g + c], &params[g + c..g + 2 * c]);
            let mut want_y = vec![0.0; rows * n.size()];
            norm_forward(n, rows, input, affine, (&mean, &invstd), &mut want_y);
            assert_close(
                &format!("{n:?} forward ({batch_mode})"),
                &forward[y..y + want_y.len()],
                &want_y,
                1e-5,
            );
            let dy = &dy_all[y..y + rows * n.size()];
            let mut want_dx = vec![0.0; rows * n.size()];
            let (mut dgamma, mut dbeta) = (vec![0.0; c], vec![0.0; c]);
            let dx = Some(&mut want_dx[..]);
            norm_backward(
                n,
                rows,
                input,
                affine.0,
                (&mean, &invstd),
                batch_mode,
                dy,
                dx,
                (&mut dgamma, &mut dbeta),
            );
            assert_close("dγ", &grad[g..g + c], &dgamma, 1e-5);
            assert_close("dβ", &grad[g + c..g + 2 * c], &dbeta, 1e-5);
            assert_close(
                &format!("{n:?} dx ({batch_mode})"),
                &dx_all[x..x + want_dx.len()],
                &want_dx,
                1e-4,
            );
            let (mut run_mean, mut run_var) = (
                params[st..st + c].to_vec(),
                params[st + c..st + 2 * c].to_vec(),
            );
            let (mut b_mean, mut b_var) = (vec![0.0; c], vec![0.0; c]);
            batch_stats(n, rows, input, &mut b_mean, &mut b_var);
            update_running(
                rows * n.spatial,
                (&b_mean, &b_var),
                (&mut run_mean, &mut run_var),
            );
            assert_close("running mean", &updated[st..st + c], &run_mean, 1e-5);
            assert_close(
                "running variance",
                &updated[st + c..st + 2 * c],
                &run_var,
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
    let problems = [
        ElementProblem {
            off: 0,
            width: 37,
            channels: 0,
            member: 0,
            layer: 2,
        },
        ElementProblem {
            off: 3 * 37,
            width: 4 * 6,
            channels: 4,
            member: 1,
            layer: 5,
        },
    ];
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
    let mut buffers = BTreeMap::from([
        ("problems", bytes(&problems)),
        ("acts", bytes(&acts)),
        ("hp", bytes(&hp)),
        ("state", bytes(&state)),
    ]);
    let grid = element_grid(&problems, |p: &ElementProblem| rows * p.width as usize);
    let args = |values| {
        [
            Arg::Buf("problems"),
            Arg::Int(rows as i64),
            Arg::Buf(values),
            Arg::Buf("hp"),
            Arg::Buf("state"),
        ]
    };
    launch(
        exe,
        "relu_forward",
        grid,
        &[
            Arg::Buf("problems"),
            Arg::Int(rows as i64),
            Arg::Buf("acts"),
            Arg::Buf("state"),
        ],
        &mut buffers,
    );
    let relu: Vec<f32> = values(&buffers["acts"]);
    let mut want = acts.clone();
    relu_forward(&mut want);
    assert_eq!(relu, want, "ReLU forward");
    launch(exe, "dropout_forward", grid, &args("acts"), &mut buffers);
    let dropped: Vec<f32> = values(&buffers["acts"]);
    // The backward pass runs after the loss kernel advanced the step.
    for s in &mut state {
        s.steps = steps + 1;
    }
    buffers.insert("state", bytes(&state));
    buffers.insert("deltas", bytes(&vec![1.0f32; total]));
    launch(exe, "dropout_backward", grid, &args("deltas"), &mut buffers);
    launch(
        exe,
        "relu_backward",
        grid,
        &[
            Arg::Buf("problems"),
            Arg::Int(rows as i64),
            Arg::Buf("acts"),
            Arg::Buf("deltas"),
            Arg::Buf("state"),
        ],
        &mut buffers,
    );
    let grads: Vec<f32> = values(&buffers["deltas"]);

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
        let block = &want[off..off + rows * width];
        let want_dropped: Vec<f32> = block.iter().zip(&scales).map(|(v, s)| v * s).collect();
        assert_eq!(
            &dropped[off..off + rows * width],
            &want_dropped[..],
            "dropout forward, layer {}",
            p.layer
        );
        let mut want_grad = scales.clone();
        relu_backward(&want_dropped, &mut want_grad);
        assert_eq!(
            &grads[off..off + rows * width],
            &want_grad[..],
            "dropout and ReLU backward, layer {}",
            p.layer
        );
    }
}
