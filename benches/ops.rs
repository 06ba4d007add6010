//! The CPU backend's per-op kernels (the CPU twins of kernels/*.cu) at the sizes of
//! workload M's first layer (batch 128, 784 → 256, 10 classes): activations, dropout,
//! softmax cross-entropy, the optimizer step and augmentation. Throughput in elements.
//! Run by hand: `cargo bench --bench ops`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use popsweep::backend::cpu::activation::{activation_backward, activation_forward};
use popsweep::backend::cpu::augment::augment_batch;
use popsweep::backend::cpu::dropout::{dropout_forward, DropoutKey};
use popsweep::backend::cpu::loss::softmax_cross_entropy_backward;
use popsweep::backend::cpu::optim::optimizer_step;
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

criterion_group!(
    benches,
    activations,
    dropout,
    softmax_cross_entropy,
    optimizer,
    augmentation
);
criterion_main!(benches);
