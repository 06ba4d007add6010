//! The CPU backend's per-op kernels (the CPU twins of kernels/*.cu) at the sizes of
//! workload M's first layer (batch 128, 784 → 256, 10 classes): activations, dropout,
//! softmax cross-entropy, the optimizer step and augmentation, throughput in elements;
//! and the f32 GEMM at a digits member's shapes (batch 32, 256 units) against
//! matrixmultiply, throughput in multiply-adds. Run by hand: `cargo bench --bench ops`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use popsweep::backend::cpu::activation::{activation_backward, activation_forward};
use popsweep::backend::cpu::augment::augment_batch;
use popsweep::backend::cpu::dropout::{dropout_forward, DropoutKey};
use popsweep::backend::cpu::loss::softmax_cross_entropy_backward;
use popsweep::backend::cpu::optim::optimizer_step;
use popsweep::backend::cpu::Real;
use popsweep::model::hparams::{Activation, Augment, OptimHparams};
use std::hint::black_box;

const BATCH: usize = 128;
const WIDTH: usize = 256;
const CLASSES: usize = 10;
/// Parameters of 784-256-10.
const PARAMS: usize = 784 * 256 + 256 + 256 * 10 + 10;

fn ramp(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect()
}

fn activations(c: &mut Criterion) {
    let z = ramp(BATCH * WIDTH);
    let mut y = vec![0.0f32; z.len()];
    let mut dy = vec![1.0f32; z.len()];
    let mut group = c.benchmark_group("activation_128x256");
    group.throughput(Throughput::Elements(z.len() as u64));
    for act in [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Tanh,
        Activation::Gelu,
    ] {
        group.bench_function(format!("{}_forward", act.name()), |b| {
            b.iter(|| activation_forward(act, black_box(&z), &mut y))
        });
        group.bench_function(format!("{}_backward", act.name()), |b| {
            b.iter(|| activation_backward(act, black_box(&z), &mut dy))
        });
    }
    group.finish();
}

fn dropout(c: &mut Criterion) {
    let mut y = ramp(BATCH * WIDTH);
    let mut mask = vec![0.0f32; y.len()];
    let mut group = c.benchmark_group("dropout_128x256");
    group.throughput(Throughput::Elements(y.len() as u64));
    let mut step = 0;
    group.bench_function("forward_rate_0.2", |b| {
        b.iter(|| {
            step += 1;
            let key = DropoutKey {
                seed: 7,
                step,
                layer: 0,
            };
            dropout_forward(black_box(&mut y), &mut mask, 0.2, key)
        })
    });
    group.finish();
}

fn softmax_cross_entropy(c: &mut Criterion) {
    let logits = ramp(BATCH * CLASSES);
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % CLASSES as u32).collect();
    let mut dlogits = vec![0.0f32; logits.len()];
    let mut group = c.benchmark_group("softmax_cross_entropy_128x10");
    group.throughput(Throughput::Elements(logits.len() as u64));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            softmax_cross_entropy_backward(black_box(&logits), &labels, CLASSES, &mut dlogits)
        })
    });
    group.finish();
}

fn optimizer(c: &mut Criterion) {
    let grad = ramp(PARAMS);
    let mut group = c.benchmark_group("optimizer_784-256-10");
    group.throughput(Throughput::Elements(PARAMS as u64));
    for (name, hp) in [
        ("sgd_momentum", OptimHparams::sgd(0.01, 0.9, 1e-4)),
        ("adamw", OptimHparams::adamw(1e-3, 1e-2)),
    ] {
        let (mut w, mut m, mut v) = (ramp(PARAMS), vec![0.0f32; PARAMS], vec![0.0f32; PARAMS]);
        let mut step = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                step += 1;
                optimizer_step(&hp, step, 1.0, black_box(&mut w), &grad, &mut m, &mut v)
            })
        });
    }
    group.finish();
}

fn augmentation(c: &mut Criterion) {
    let xs = ramp(BATCH * 784);
    let mut out = vec![0.0f32; xs.len()];
    let mut group = c.benchmark_group("augment_128x784");
    group.throughput(Throughput::Elements(xs.len() as u64));
    let aug = Augment {
        noise: 0.1,
        shift: 2,
        flip: false,
    };
    let mut step = 0;
    group.bench_function("noise_and_shift", |b| {
        b.iter(|| {
            step += 1;
            let image = popsweep::data::ImageShape::square(784).unwrap();
            augment_batch(aug, (3, step), black_box(&xs), image, &mut out)
        })
    });
    group.finish();
}

/// The three GEMMs of a 256→256 dense layer at batch 32 (`x·W`, `dy·Wᵀ`, `xᵀ·dy`): the
/// backend's f32 GEMM (its unpacked kernel where that pays, `sgemm.rs`) next to
/// matrixmultiply on the same operands.
fn small_gemm(c: &mut Criterion) {
    let (rows, n) = (32, 256);
    let (x, w) = (ramp(rows * n), ramp(n * n));
    let mut out = vec![0.0f32; n * n];
    let mut group = c.benchmark_group("gemm_32x256x256");
    group.throughput(Throughput::Elements((rows * n * n) as u64));
    // (name, m, k, n, A (row, column stride), B (row, column stride)).
    let cases = [
        ("x_w", rows, n, n, (n, 1), (n, 1)),
        ("dy_wt", rows, n, n, (n, 1), (1, n)),
        ("xt_dy", n, rows, n, (1, n), (n, 1)),
    ];
    for (name, m, k, cols, sa, sb) in cases {
        let (a, b) = if name == "xt_dy" { (&x, &x) } else { (&x, &w) };
        group.bench_function(format!("{name}_popsweep"), |bench| {
            bench.iter(|| {
                f32::gemm(
                    m,
                    k,
                    cols,
                    1.0,
                    (black_box(a), sa.0, sa.1),
                    (b, sb.0, sb.1),
                    0.0,
                    (&mut out, cols, 1),
                )
            })
        });
        group.bench_function(format!("{name}_matrixmultiply"), |bench| {
            // SAFETY: the operands hold m·k, k·n and m·n elements at these strides.
            bench.iter(|| unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    cols,
                    1.0,
                    black_box(a).as_ptr(),
                    sa.0 as isize,
                    sa.1 as isize,
                    b.as_ptr(),
                    sb.0 as isize,
                    sb.1 as isize,
                    0.0,
                    out.as_mut_ptr(),
                    cols as isize,
                    1,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    small_gemm,
    activations,
    dropout,
    softmax_cross_entropy,
    optimizer,
    augmentation
);
criterion_main!(benches);
