//! `popsweep bench`: throughput of population training on a synthetic workload, with the
//! machine's SGEMM ceiling measured in the same run. The interface matches
//! `../shared/bench/peer_bench.py`, so the two can be run back to back and compared as
//! ratios. FLOPs are counted as the peer counts them: `6·Σ(in·out)·batch` per
//! member-step (2 forward + 4 backward per multiply-add; the first layer's unneeded input
//! gradient is counted anyway, biases, activations and the optimizer are not). With a CNN
//! (`--model cnn`, the interface of `peer_cnn.py`) a convolution's multiply-adds are
//! `C_out·H_out·W_out·C_in·k·k`, counted the same way; a vision transformer (`--model
//! vit`) counts its token-wise dense layers' `T·in·out` and attention's `2·T²·D`.

use crate::backend::cpu::{CpuBackend, Real};
use crate::backend::{Backend, EpochPlan};
use crate::data::Dataset;
use crate::model::cnn::ImageShape;
use crate::model::hparams::{Activation, OptimHparams, OptimizerKind};
use crate::model::vit::VitSpec;
use crate::model::{Arch, Conv2d, Hparams, Layer, MemberSpec, Pool};
use crate::population::Population;
use crate::rng::{stream_word, unit_f32, Stream};
use serde::Serialize;
use std::time::Instant;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Layer widths, input first, classes last (every member, unless `ragged`).
    pub dims: Vec<usize>,
    pub batch: usize,
    pub pop: usize,
    pub steps: usize,
    pub warmup: usize,
    pub reps: usize,
    pub threads: usize,
    pub optimizer: OptimizerKind,
    /// `(widths to draw from, depth range)`: member `p` draws its hidden widths and depth.
    pub ragged: Option<(Vec<usize>, (usize, usize))>,
    /// Every member this image model (`dims` is then `[C·H·W, classes]`): workload C's
    /// CNN, or a vision transformer.
    pub image_model: Option<ImageModel>,
}

/// An image model every member of the bench's population is.
#[derive(Clone, Debug)]
pub enum ImageModel {
    Cnn(CnnBench),
    /// `--model vit`: `Arch::vit` of this shape over `input`.
    Vit {
        input: ImageShape,
        spec: VitSpec,
    },
}

impl ImageModel {
    pub fn input(&self) -> ImageShape {
        match self {
            ImageModel::Cnn(c) => c.input,
            ImageModel::Vit { input, .. } => *input,
        }
    }

    /// The layer list, or why the shapes do not fit the input.
    pub fn arch(&self, classes: usize) -> Result<Arch, String> {
        match self {
            ImageModel::Cnn(c) => c.arch(classes),
            ImageModel::Vit { input, spec } => Arch::vit(*input, spec, classes),
        }
    }
}

/// `peer_cnn.py`'s model: per entry of `conv`, a `kernel×kernel` convolution with padding
/// `kernel/2`, ReLU, and a `pool×pool` max-pool (none for 1); flatten; per entry of `fc`,
/// a dense layer and ReLU; the classifier.
#[derive(Clone, Debug)]
pub struct CnnBench {
    pub input: ImageShape,
    pub conv: Vec<usize>,
    pub kernel: usize,
    pub pool: usize,
    pub fc: Vec<usize>,
}

impl CnnBench {
    /// The layer list, or why the geometry does not fit the input.
    pub fn arch(&self, classes: usize) -> Result<Arch, String> {
        let mut layers = Vec::new();
        let ImageShape {
            mut channels,
            mut height,
            mut width,
        } = self.input;
        for (i, &filters) in self.conv.iter().enumerate() {
            let conv = Conv2d {
                in_channels: channels,
                out_channels: filters,
                kernel: self.kernel,
                stride: 1,
                pad: self.kernel / 2,
                height,
                width,
            };
            if conv.out_size() == 0 {
                return Err(format!(
                    "--kernel {} does not fit convolution {}'s {height}×{width} input",
                    self.kernel,
                    i + 1
                ));
            }
            layers.push(Layer::Conv2d(conv));
            layers.push(Layer::Activation(Activation::Relu));
            (channels, height, width) = (filters, conv.out_height(), conv.out_width());
            if self.pool > 1 {
                let pool = Pool {
                    channels,
                    size: self.pool,
                    height,
                    width,
                };
                if pool.out_size() == 0 {
                    return Err(format!(
                        "--pool {} empties convolution {}'s {height}×{width} output",
                        self.pool,
                        i + 1
                    ));
                }
                layers.push(Layer::MaxPool(pool));
                (height, width) = (pool.out_height(), pool.out_width());
            }
        }
        let mut inputs = channels * height * width;
        for &outputs in self.fc.iter().chain(std::iter::once(&classes)) {
            layers.push(Layer::Dense { inputs, outputs });
            layers.push(Layer::Activation(Activation::Relu));
            inputs = outputs;
        }
        layers.pop(); // no ReLU on the logits
        Ok(Arch {
            inputs: self.input.features(),
            layers,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub backend: &'static str,
    /// The CPU's or GPU's name.
    pub device: String,
    pub optimizer: OptimizerKind,
    pub dims: Vec<usize>,
    pub batch: usize,
    pub pop: usize,
    pub steps: usize,
    pub threads: usize,
    /// Seconds per repetition of `steps` steps.
    pub times_s: Vec<f64>,
    /// Of the median repetition.
    pub ms_per_step: f64,
    pub model_samples_per_s: f64,
    pub gflops: f64,
    pub sgemm_ceiling_gflops: f64,
    pub pct_of_ceiling: f64,
    /// Kernel launches per training step (GPU), the same for any population size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launches_per_step: Option<usize>,
    /// GPU: the GEMM main loop and whether steps were replayed from a CUDA graph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Mean training loss of the first and last member over the last repetition.
    pub loss_first: f64,
    pub loss_last: f64,
}

/// A learnable synthetic set: inputs N(0, 1), labels the arg-max of a fixed random
/// linear teacher (as the peer script's), from the counter-based RNG.
fn synthetic(rows: usize, inputs: usize, classes: usize) -> Dataset {
    let normal = |i: u64| {
        // Box–Muller from two uniforms of the same stream.
        let u1 = f64::from(unit_f32(stream_word(7, Stream::Init, 99, 0, 2 * i))).max(1e-12);
        let u2 = f64::from(unit_f32(stream_word(7, Stream::Init, 99, 0, 2 * i + 1)));
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    };
    let features: Vec<f32> = (0..(rows * inputs) as u64).map(normal).collect();
    let teacher: Vec<f32> = (0..(inputs * classes) as u64)
        .map(|i| normal((i + 1) << 40))
        .collect();
    let labels = features
        .chunks_exact(inputs)
        .map(|x| {
            (0..classes)
                .map(|c| {
                    (
                        c,
                        x.iter()
                            .enumerate()
                            .map(|(i, v)| v * teacher[i * classes + c])
                            .sum::<f32>(),
                    )
                })
                .fold((0, f32::NEG_INFINITY), |best, (c, s)| {
                    if s > best.1 {
                        (c, s)
                    } else {
                        best
                    }
                })
                .0 as u32
        })
        .collect();
    Dataset {
        features,
        labels,
        n_features: inputs,
        n_classes: classes,
        ..Dataset::default()
    }
}

/// The members, as the peer's workload: learning rates log-spaced over [1e-3, 1e-1]
/// (P = 1: 1e-2); SGD with momentum 0.9 and weight decay 1e-4, or AdamW with PyTorch's
/// betas and decoupled weight decay 1e-2.
fn members(config: &BenchConfig) -> Vec<MemberSpec> {
    let (inputs, classes) = (
        config.dims[0],
        *config.dims.last().expect("dims has a last entry"),
    );
    (0..config.pop)
        .map(|p| {
            let lr = if config.pop == 1 {
                1e-2
            } else {
                1e-3 * 100f64.powf(p as f64 / (config.pop - 1) as f64)
            };
            let hidden = match &config.ragged {
                None => config.dims[1..config.dims.len() - 1].to_vec(),
                Some((widths, (lo, hi))) => {
                    let word = |k: u32| stream_word(p as u64, Stream::Init, 77, k, 0) as usize;
                    let depth = lo + word(0) % (hi - lo + 1);
                    (0..depth)
                        .map(|k| widths[word(k as u32 + 1) % widths.len()])
                        .collect()
                }
            };
            let arch = match &config.image_model {
                Some(model) => model
                    .arch(classes)
                    .expect("checked when the command was read"),
                None => Arch::mlp(inputs, &hidden, classes),
            };
            MemberSpec {
                arch,
                hparams: Hparams {
                    optim: match config.optimizer {
                        OptimizerKind::Sgd => OptimHparams::sgd(lr as f32, 0.9, 1e-4),
                        OptimizerKind::AdamW => OptimHparams::adamw(lr as f32, 1e-2),
                    },
                    dropout: 0.0,
                    attn_dropout: 0.0,
                    augment: Default::default(),
                    batch_size: None,
                },
                seed: 1000 + p as u64,
                fold: None,
            }
        })
        .collect()
}

/// Best-of-3 SGEMM throughput with `threads` threads each multiplying its own 2048³
/// problem (matrixmultiply, the GEMM the CPU backend uses): the ceiling the population
/// step is compared with.
pub fn sgemm_ceiling_gflops(threads: usize) -> f64 {
    let n = 2048;
    let run = || {
        let a = vec![0.5f32; n * n];
        let b = vec![0.25f32; n * n];
        let mut c = vec![0.0f32; n * n];
        f32::gemm(n, n, n, 1.0, (&a, n, 1), (&b, n, 1), 0.0, (&mut c, n, 1));
        c[0]
    };
    (0..3)
        .map(|_| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(run);
                }
            });
            2.0 * (n * n * n * threads) as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

pub fn run(config: &BenchConfig) -> BenchResult {
    let specs = members(config);
    let inputs = config.dims[0];
    let classes = *config.dims.last().expect("dims has a last entry");
    let rows = config.batch * config.steps.max(config.warmup).max(1);
    let data = synthetic(rows, inputs, classes);
    let empty = Dataset {
        features: Vec::new(),
        labels: Vec::new(),
        n_features: inputs,
        n_classes: classes,
        ..Dataset::default()
    };
    let backend = CpuBackend::new(config.threads);
    let mut pop = population(&specs);
    let epoch_of = |steps: usize| {
        let n = steps * config.batch;
        (
            data.subset(&(0..n).collect::<Vec<_>>()),
            EpochPlan {
                order: (0..n).collect(),
                batch_size: config.batch,
            },
        )
    };
    // One "epoch" of `steps` minibatches per call, validation on no rows: pure training.
    let (warm, warm_plan) = epoch_of(config.warmup.max(1));
    backend
        .train_epoch(&mut pop, &warm, &empty, &warm_plan)
        .expect("the CPU backend cannot fail");
    let (timed, timed_plan) = epoch_of(config.steps);
    let times: Vec<f64> = (0..config.reps.max(1))
        .map(|_| {
            let start = Instant::now();
            backend
                .train_epoch(&mut pop, &timed, &empty, &timed_plan)
                .expect("the CPU backend cannot fail");
            start.elapsed().as_secs_f64()
        })
        .collect();
    let loss = |slot: usize| {
        pop.members()[slot]
            .history
            .last()
            .map_or(f64::NAN, |h| h.train_loss)
    };
    let losses = (loss(0), loss(config.pop - 1));
    let ceiling = sgemm_ceiling_gflops(config.threads);
    result(
        config,
        &specs,
        &times,
        ceiling,
        losses,
        ("cpu", cpu_name(), None),
    )
}

fn population(specs: &[MemberSpec]) -> Population {
    let mut pop = Population::new();
    for (trial, spec) in specs.iter().enumerate() {
        pop.insert(trial, spec.clone());
    }
    pop
}

/// The processor's model name (for the record: numbers are only compared within a run).
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|n| n.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The result row from the repetitions' times (the median counts, as the peer's does).
fn result(
    config: &BenchConfig,
    specs: &[MemberSpec],
    times: &[f64],
    ceiling: f64,
    (loss_first, loss_last): (f64, f64),
    (backend, device, launches_per_step): (&'static str, String, Option<usize>),
) -> BenchResult {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let ms_per_step = median * 1e3 / config.steps as f64;
    let flops_per_step: f64 = specs
        .iter()
        .map(|s| 6.0 * s.arch.macs_per_sample() as f64 * config.batch as f64)
        .sum();
    let gflops = flops_per_step / (ms_per_step * 1e-3) / 1e9;
    BenchResult {
        backend,
        device,
        optimizer: config.optimizer,
        dims: config.dims.clone(),
        batch: config.batch,
        pop: config.pop,
        steps: config.steps,
        threads: config.threads,
        times_s: times.to_vec(),
        ms_per_step,
        model_samples_per_s: (config.pop * config.batch) as f64 / (ms_per_step * 1e-3),
        gflops,
        sgemm_ceiling_gflops: ceiling,
        pct_of_ceiling: 100.0 * gflops / ceiling,
        launches_per_step,
        variant: None,
        loss_first,
        loss_last,
    }
}

/// The same workload on the GPU: the population stays on the device, each step is the
/// backend's fixed sequence of launches, the clock stops after a device synchronisation.
/// The ceiling is the GEMM kernel's own rate on a 4096³ product in the same run.
#[cfg(feature = "cuda")]
pub fn run_cuda(
    config: &BenchConfig,
    gpu: &crate::backend::cuda::CudaBackend,
) -> crate::error::Result<BenchResult> {
    use crate::backend::cuda::device_layout::DeviceLayout;
    use crate::backend::cuda::gather::DeviceData;
    use crate::backend::cuda::linear;
    use crate::backend::cuda::network::unsupported_layers;
    let dev = gpu.device();
    let specs = members(config);
    if let Some(why) = specs.iter().find_map(|s| unsupported_layers(&s.arch)) {
        return Err(crate::error::Error::Device(format!(
            "the CUDA backend has no kernel for this model ({why}); run it with --backend cpu"
        )));
    }
    let (inputs, classes) = (
        config.dims[0],
        *config.dims.last().expect("dims has a last entry"),
    );
    let batches = config.steps.max(config.warmup).max(1);
    let data = synthetic(config.batch * batches, inputs, classes);
    let fail = |e: cudarc::driver::DriverError| crate::error::Error::Device(e.to_string());
    let mut dp = DeviceLayout::upload(dev, &population(&specs), config.batch).map_err(fail)?;
    let data = DeviceData::upload(dev, &data).map_err(fail)?;
    dp.set_steps_per_epoch(batches);
    let steps = |n: usize, dp: &mut DeviceLayout| -> Result<f64, cudarc::driver::DriverError> {
        let start = Instant::now();
        // The data hold `batches` batches; longer runs wrap around. With graphs on, each
        // run is captured once and replayed (the capture is inside the timed region).
        let mut done = 0;
        while done < n {
            let run = (n - done).min(batches);
            dp.train_steps(&data, &data.identity, (0, run, config.batch))?;
            done += run;
        }
        dev.stream.synchronize()?;
        Ok(start.elapsed().as_secs_f64())
    };
    steps(config.warmup.max(1), &mut dp).map_err(fail)?;
    let mut times = Vec::new();
    let mut last = Vec::new();
    for _ in 0..config.reps.max(1) {
        last = dp.slots().read_state().map_err(fail)?;
        times.push(steps(config.steps, &mut dp).map_err(fail)?);
    }
    let after = dp.slots().read_state().map_err(fail)?;
    let rows = (config.steps * config.batch) as f64;
    let loss = |p: usize| (after[p].train_loss - last[p].train_loss) / rows;
    let losses = (loss(0), loss(config.pop - 1));
    let ceiling = linear::gemm_ceiling_gflops(dev, 4096).map_err(fail)?;
    let launches = Some(dp.launches_per_step());
    let variant = format!(
        "{} GEMM, {}",
        if dev.small_tiles() {
            "64-tile"
        } else {
            dev.gemm_mode().name()
        },
        if dev.graphs() { "graph" } else { "no graph" }
    );
    Ok(BenchResult {
        variant: Some(variant),
        ..result(
            config,
            &specs,
            &times,
            ceiling,
            losses,
            ("cuda", dev.name.clone(), launches),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_bench_reports_consistent_numbers() {
        let config = BenchConfig {
            dims: vec![8, 4, 3],
            batch: 4,
            pop: 3,
            steps: 5,
            warmup: 2,
            reps: 2,
            threads: 2,
            optimizer: OptimizerKind::AdamW,
            ragged: Some((vec![2, 4, 8], (1, 2))),
            image_model: None,
        };
        let specs = members(&config);
        assert!(specs
            .iter()
            .all(|s| (1..=2).contains(&s.arch.hidden_widths().len())));
        assert!(
            (specs[0].hparams.optim.lr - 1e-3).abs() < 1e-9
                && (specs[2].hparams.optim.lr - 0.1).abs() < 1e-7
        );
        let data = synthetic(50, 8, 3);
        assert!(data.class_counts().iter().filter(|&&c| c > 0).count() >= 2);
        let r = BenchConfig {
            ragged: None,
            ..config
        };
        let result = run(&r);
        let expected_samples = (3 * 4) as f64 / (result.ms_per_step * 1e-3);
        assert!((result.model_samples_per_s - expected_samples).abs() < 1e-6 * expected_samples);
        assert!(result.gflops > 0.0 && result.loss_first.is_finite());
    }

    #[test]
    fn the_cnn_workload_is_peer_cnns_model_and_counts_its_flops() {
        let cnn = CnnBench {
            input: ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            },
            conv: vec![32, 64],
            kernel: 3,
            pool: 2,
            fc: vec![128],
        };
        let arch = cnn.arch(10).unwrap();
        assert!(arch.is_consistent());
        // conv 1·9 → 32 over 28², conv 32·9 → 64 over 14², then 64·7·7 → 128 → 10.
        let macs = 32 * 784 * 9 + 64 * 196 * 288 + 3136 * 128 + 128 * 10;
        assert_eq!(arch.macs_per_sample(), macs);
        assert_eq!(
            arch.layers.last(),
            Some(&Layer::Dense {
                inputs: 128,
                outputs: 10
            })
        );
        let too_small = CnnBench {
            conv: vec![8; 6],
            ..cnn
        };
        assert!(too_small
            .arch(10)
            .unwrap_err()
            .contains("--pool 2 empties convolution 5's 1×1 output"));
        let config = BenchConfig {
            dims: vec![784, 10],
            batch: 2,
            pop: 2,
            steps: 1,
            warmup: 1,
            reps: 1,
            threads: 1,
            optimizer: OptimizerKind::Sgd,
            ragged: None,
            image_model: Some(ImageModel::Cnn(CnnBench {
                conv: vec![2],
                fc: vec![],
                ..too_small
            })),
        };
        let r = run(&config);
        assert!(r.gflops > 0.0 && r.loss_first.is_finite());
    }

    #[test]
    fn the_vit_workload_counts_its_token_dense_layers_and_attention() {
        let input = ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let model = ImageModel::Vit {
            input,
            spec: VitSpec::default(),
        };
        let arch = model.arch(10).unwrap();
        // 16 tokens of 64: patch embedding 16·64·49; per block qkv 16·64·192, attention
        // 2·16²·64, projection 16·64·64, MLP 2·16·64·128; the classifier 64·10.
        let block = 16 * 64 * 192 + 2 * 256 * 64 + 16 * 64 * 64 + 2 * 16 * 64 * 128;
        assert_eq!(arch.macs_per_sample(), 16 * 64 * 49 + 2 * block + 64 * 10);
        let config = BenchConfig {
            dims: vec![784, 10],
            batch: 2,
            pop: 2,
            steps: 1,
            warmup: 1,
            reps: 1,
            threads: 1,
            optimizer: OptimizerKind::AdamW,
            ragged: None,
            image_model: Some(model),
        };
        let r = run(&config);
        assert!(r.gflops > 0.0 && r.loss_first.is_finite());
    }
}
