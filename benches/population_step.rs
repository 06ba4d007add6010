//! One epoch of a digits-sized population on the CPU backend, and the linear op alone.
//! Throughput is reported in model-samples per second (criterion's `Elements`).
//! Run by hand: `cargo bench --bench population_step`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use popsweep::backend::cpu::linear::{linear_backward, linear_forward, LinearShape};
use popsweep::backend::cpu::CpuBackend;
use popsweep::backend::{Backend, EpochPlan};
use popsweep::data::{digits, split_stratified, SplitFractions};
use popsweep::model::hparams::OptimHparams;
use popsweep::model::{Arch, Hparams, MemberSpec};
use popsweep::population::Population;
use std::hint::black_box;

fn digits_population_epoch(c: &mut Criterion) {
    let (tuning, _) = split_stratified(&digits::load().unwrap(), SplitFractions::default(), 0);
    let backend = CpuBackend::with_all_cores();
    let mut group = c.benchmark_group("digits_epoch");
    for &pop_size in &[1usize, 32] {
        let mut pop = Population::new();
        for trial in 0..pop_size {
            let spec = MemberSpec {
                arch: Arch::mlp(64, &[64], 10),
                hparams: Hparams {
                    optim: OptimHparams::sgd(0.01, 0.9, 0.0),
                    dropout: 0.0,
                    attn_dropout: 0.0,
                    augment: Default::default(),
                    batch_size: None,
                },
                seed: trial as u64,
                fold: None,
            };
            pop.insert(trial, spec);
        }
        let plan = EpochPlan {
            order: (0..tuning.train.len()).collect(),
            batch_size: 32,
        };
        group.throughput(Throughput::Elements((pop_size * tuning.train.len()) as u64));
        group.bench_function(format!("64-64-10_pop{pop_size}"), |b| {
            b.iter(|| {
                backend
                    .train_epoch(&mut pop, &tuning.train, &tuning.val, &plan)
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn linear_op(c: &mut Criterion) {
    let s = LinearShape {
        batch: 128,
        n_in: 784,
        n_out: 256,
    };
    let x = vec![0.5f32; s.batch * s.n_in];
    let w = vec![0.01f32; s.n_in * s.n_out];
    let b = vec![0.0f32; s.n_out];
    let mut y = vec![0.0f32; s.batch * s.n_out];
    let (mut dw, mut db, mut dx) = (
        vec![0.0f32; w.len()],
        vec![0.0f32; s.n_out],
        vec![0.0f32; x.len()],
    );
    let mut group = c.benchmark_group("linear_128x784x256");
    let macs = (s.batch * s.n_in * s.n_out) as u64;
    group.throughput(Throughput::Elements(2 * macs));
    group.bench_function("forward", |bench| {
        bench.iter(|| linear_forward(s, black_box(&x), &w, &b, &mut y))
    });
    group.throughput(Throughput::Elements(4 * macs));
    group.bench_function("backward", |bench| {
        bench.iter(|| linear_backward(s, black_box(&x), &w, &y, Some(&mut dx), &mut dw, &mut db))
    });
    group.finish();
}

criterion_group!(benches, digits_population_epoch, linear_op);
criterion_main!(benches);
