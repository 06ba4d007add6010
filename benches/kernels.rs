//! The CUDA kernels one at a time, at workload M's sizes (64 members of 784-256-256-10,
//! minibatch 128; the optimizer over all their parameters; the loss over their logits;
//! a minibatch gathered from a 10,000-row data set). One criterion group per kernel, each
//! timed twice with two throughputs: `flop` (criterion's elements are FLOPs) and `bytes`
//! (the bytes the kernel must move at least). Run by hand with a GPU:
//!
//!     cargo bench --features cuda --bench kernels
//!
//! Without the cuda feature, or without a usable device, it prints why it skipped.
//! `cargo bench --bench ops` times the CPU twins.

#[cfg(not(feature = "cuda"))]
fn main() {
    println!("SKIP: built without --features cuda (cargo bench --features cuda --bench kernels)");
}

#[cfg(feature = "cuda")]
fn main() {
    match popsweep::backend::cuda::Device::open() {
        Ok(dev) => {
            let mut c = criterion::Criterion::default().configure_from_args();
            gpu::all(&mut c, &dev);
            c.final_summary();
        }
        Err(why) => println!("SKIP: {why}"),
    }
}

#[cfg(feature = "cuda")]
mod gpu {
    use criterion::{Criterion, Throughput};
    use cudarc::driver::{CudaSlice, DeviceRepr};
    use popsweep::backend::cuda::gather::{gather_rows, BatchStart, DeviceData};
    use popsweep::backend::cuda::layout::{MemberHparams, MemberState};
    use popsweep::backend::cuda::linear::{self, GemmLaunch, MemberLayout, Members, Pass};
    use popsweep::backend::cuda::{loss, optim, Device};
    use popsweep::data::Dataset;
    use popsweep::model::hparams::OptimHparams;
    use popsweep::model::{Arch, Hparams, MemberSpec};
    use std::time::{Duration, Instant};

    const MEMBERS: usize = 64;
    const ROWS: usize = 128;
    const DIMS: [usize; 4] = [784, 256, 256, 10];

    fn fill(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-4)
            .collect()
    }

    fn upload<T: DeviceRepr + Clone>(dev: &Device, v: &[T]) -> CudaSlice<T> {
        dev.stream
            .clone_htod(v)
            .expect("device memory for the benchmark")
    }

    /// Times `launch` as criterion asks: `iters` launches, then one synchronisation.
    fn bench(
        c: &mut Criterion,
        group: &str,
        (flops, bytes): (u64, u64),
        dev: &Device,
        launch: &dyn Fn(),
    ) {
        let mut g = c.benchmark_group(group);
        for (name, throughput) in [
            ("flop", Throughput::Elements(flops)),
            ("bytes", Throughput::Bytes(bytes)),
        ] {
            g.throughput(throughput);
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    launch();
                    dev.stream.synchronize().expect("the device");
                    let start = Instant::now();
                    for _ in 0..iters {
                        launch();
                    }
                    dev.stream.synchronize().expect("the device");
                    start.elapsed().max(Duration::from_nanos(1))
                })
            });
        }
        g.finish();
    }

    fn hparams() -> MemberHparams {
        MemberHparams::of(&MemberSpec {
            arch: Arch::mlp(1, &[], 1),
            hparams: Hparams {
                optim: OptimHparams::sgd(0.01, 0.9, 0.0),
                dropout: 0.0,
                attn_dropout: 0.0,
                augment: Default::default(),
                batch_size: None,
            },
            seed: 1,
            fold: None,
        })
    }

    /// Workload M's members laid out one after another, as the device population lays
    /// them out, with their parameter and activation totals.
    fn layouts() -> (Vec<MemberLayout>, usize, usize) {
        let per_member: usize = DIMS.windows(2).map(|d| (d[0] + 1) * d[1]).sum();
        let acts_per_member: usize = DIMS[1..].iter().map(|w| ROWS * w).sum();
        let layouts = (0..MEMBERS)
            .map(|m| {
                let base = m * acts_per_member;
                let mut act_off = vec![base];
                for w in &DIMS[1..DIMS.len() - 1] {
                    act_off.push(act_off.last().unwrap() + ROWS * w);
                }
                MemberLayout {
                    dims: DIMS.to_vec(),
                    param_off: m * per_member,
                    act_off,
                    member: m,
                }
            })
            .collect();
        (layouts, MEMBERS * per_member, MEMBERS * acts_per_member)
    }

    pub fn all(c: &mut Criterion, dev: &Device) {
        let (layouts, n_params, n_acts) = layouts();
        let hp = upload(dev, &vec![hparams(); MEMBERS]);
        // The learning rate the update kernels read (the loss kernel sets it in training).
        let alive = MemberState {
            alive: 1,
            steps: 1,
            lr: 1e-3,
            ..Default::default()
        };
        let state = upload(dev, &vec![alive; MEMBERS]);
        let params = upload(dev, &fill(n_params));
        let (m1, m2) = (
            upload(dev, &vec![0.0f32; n_params]),
            upload(dev, &vec![0.0f32; n_params]),
        );
        let acts = upload(dev, &fill(n_acts));
        let deltas = upload(dev, &fill(n_acts));
        let x = upload(dev, &fill(ROWS * DIMS[0]));
        let members = Members {
            hparams: &hp,
            state: Some(&state),
        };
        let flops = |k: usize, n: usize| (2 * ROWS * (k + 1) * n * MEMBERS) as u64;
        let gemm_bytes = |k: usize, n: usize| (4 * ((k + 1) * n + ROWS * (k + n)) * MEMBERS) as u64;

        // Layer 0 forward: (128 × 785) · (785 × 256) per member, the minibatch shared.
        let fwd: Vec<_> = layouts
            .iter()
            .map(|m| linear::problem(Pass::Forward, m, 0, ROWS))
            .collect();
        let fwd = GemmLaunch::new(dev, &fwd).expect("a launch");
        bench(
            c,
            "linear_forward_784x256",
            (flops(784, 256), gemm_bytes(784, 256)),
            dev,
            &|| linear::forward(dev, &fwd, &x, &params, &acts, &members).expect("a launch"),
        );
        // Layer 1's input gradient: (128 × 256) · (256 × 256)ᵀ per member.
        let bx: Vec<_> = layouts
            .iter()
            .map(|m| linear::problem(Pass::BackwardX, m, 1, ROWS))
            .collect();
        let bx = GemmLaunch::new(dev, &bx).expect("a launch");
        bench(
            c,
            "linear_backward_x_256x256",
            (flops(256, 256), gemm_bytes(256, 256)),
            dev,
            &|| {
                linear::backward_x(dev, &bx, &deltas, &params, &acts, &members, &state)
                    .expect("a launch")
            },
        );
        // Layer 1's weight gradient with the fused update: (256 × 128) · (128 × 256).
        let bw: Vec<_> = layouts
            .iter()
            .map(|m| linear::problem(Pass::BackwardW, m, 1, ROWS))
            .collect();
        let bw = GemmLaunch::new(dev, &bw).expect("a launch");
        bench(
            c,
            "linear_backward_w_256x256",
            (flops(256, 256), 3 * gemm_bytes(256, 256)),
            dev,
            &|| {
                linear::backward_w(dev, &bw, &acts, &deltas, &params, (&m1, &m2), &hp, &state)
                    .expect("a launch")
            },
        );

        // Softmax cross-entropy over every member's logits: read once, gradient written.
        let classes = DIMS[3];
        // The logits are the last layer's output.
        let last = |m: &MemberLayout| *m.act_off.last().unwrap();
        let loss_layouts: Vec<MemberLayout> = layouts
            .iter()
            .map(|m| MemberLayout {
                dims: vec![1, classes],
                param_off: 0,
                act_off: vec![last(m)],
                member: m.member,
            })
            .collect();
        let loss_launch = loss::LossLaunch::new(dev, &loss_layouts).expect("a launch");
        let labels = upload(
            dev,
            &(0..ROWS as u32)
                .map(|r| r % classes as u32)
                .collect::<Vec<_>>(),
        );
        let grad = upload(dev, &vec![0.0f32; n_acts]);
        let loss_bytes = (MEMBERS * ROWS * (2 * classes * 4 + 4)) as u64;
        let loss_flops = (MEMBERS * ROWS * classes * 5) as u64;
        bench(
            c,
            "softmax_cross_entropy_128x10",
            (loss_flops, loss_bytes),
            dev,
            &|| {
                loss::softmax_cross_entropy(
                    dev,
                    &loss_launch,
                    &acts,
                    &labels,
                    (ROWS, 1),
                    Some(&grad),
                    &hp,
                    &state,
                )
                .expect("a launch")
            },
        );

        // SGD with momentum over every parameter: w, g, m read; w, m written.
        let per_member = n_params / MEMBERS;
        // Each member's trainable range: (start, end).
        let ranges = upload(
            dev,
            &(0..MEMBERS)
                .flat_map(|m| [(m * per_member) as i64, ((m + 1) * per_member) as i64])
                .collect::<Vec<_>>(),
        );
        let g = upload(dev, &fill(n_params));
        bench(
            c,
            "optimizer_step_64x269k",
            ((4 * n_params) as u64, (5 * 4 * n_params) as u64),
            dev,
            &|| {
                optim::optimizer_step(dev, &g, &params, (&m1, &m2), &ranges, &hp, &state, MEMBERS)
                    .expect("a launch")
            },
        );

        // One minibatch gathered from a 10,000-row data set in a shuffled order.
        let n_rows = 10_000;
        let data = Dataset {
            features: fill(n_rows * DIMS[0]),
            labels: (0..n_rows as u32).map(|i| i % 10).collect(),
            n_features: DIMS[0],
            n_classes: 10,
            ..Dataset::default()
        };
        let device_data = DeviceData::upload(dev, &data).expect("device memory");
        let order = upload(dev, &(0..n_rows as u32).rev().collect::<Vec<_>>());
        let (bx_rows, by_rows) = (
            upload(dev, &vec![0.0f32; ROWS * DIMS[0]]),
            upload(dev, &vec![0u32; ROWS]),
        );
        let gather_bytes = (2 * ROWS * (DIMS[0] * 4 + 4) + ROWS * 4) as u64;
        bench(c, "gather_rows_128x784", (0, gather_bytes), dev, &|| {
            gather_rows(
                dev,
                &device_data,
                &order,
                BatchStart::Row(4_000),
                ROWS,
                &bx_rows,
                &by_rows,
            )
            .expect("a launch")
        });
    }
}
