//! The MLP's backward pass against central finite differences, in f64, on tiny ragged
//! shapes, for every parameter of every layer (with and without dropout: a dropout mask is
//! a function of its key, so it is fixed while the loss is perturbed), under both losses.

use popsweep::backend::cpu::network::{forward_backward, NetworkWorkspace, StepDropout};
use popsweep::data::Targets;
use popsweep::model::Arch;

fn mean_loss(
    arch: &Arch,
    params: &[f64],
    x: &[f64],
    y: Targets<'_>,
    (dropout, running_stats): (Option<StepDropout>, bool),
) -> f64 {
    let rows = y.rows(arch.outputs());
    let mut ws = NetworkWorkspace::new(arch, rows);
    ws.use_running_stats(running_stats);
    let mut grad = vec![0.0; params.len()];
    forward_backward(arch, params, x, y, dropout, &mut ws, &mut grad).loss / rows as f64
}

/// Which loss the check differentiates.
#[derive(Clone, Copy, PartialEq)]
enum Loss {
    CrossEntropy,
    MeanSquaredError,
}

fn check(arch: Arch, batch: usize, dropout: Option<StepDropout>) {
    check_loss(arch, batch, dropout, Loss::CrossEntropy);
}

fn check_loss(arch: Arch, batch: usize, dropout: Option<StepDropout>, loss: Loss) {
    check_mode(arch, batch, (dropout, false), loss);
}

/// `running_stats`: batch norm normalises with its running statistics (evaluation mode),
/// which are state, not trained: only the trainable parameters are checked then.
fn check_mode(arch: Arch, batch: usize, mode: (Option<StepDropout>, bool), loss: Loss) {
    let (dropout, running_stats) = mode;
    let has_norm = arch.param_count() > arch.trainable_params();
    // Batch norm starts as the identity with unit running variance: move it off that point.
    let jitter = |i: usize| {
        if has_norm {
            0.1 * (i as f64 * 0.37).sin()
        } else {
            0.0
        }
    };
    let params: Vec<f64> = (arch.init_params(5).iter().enumerate())
        .map(|(i, &v)| f64::from(v) * 2.0 + jitter(i))
        .collect();
    let x: Vec<f64> = (0..batch * arch.inputs)
        .map(|i| ((i * 7 % 13) as f64 * 0.31).sin())
        .collect();
    let labels: Vec<u32> = (0..batch).map(|i| (i % arch.outputs()) as u32).collect();
    let values: Vec<f32> = (0..batch * arch.outputs())
        .map(|i| ((i * 5 % 11) as f32 * 0.7).cos() * 2.0)
        .collect();
    let y = match loss {
        Loss::CrossEntropy => Targets::Classes(&labels),
        Loss::MeanSquaredError => Targets::Values(&values),
    };
    let mut ws = NetworkWorkspace::new(&arch, batch);
    ws.use_running_stats(running_stats);
    let mut grad = vec![0.0; params.len()];
    forward_backward(&arch, &params, &x, y, dropout, &mut ws, &mut grad);
    let eps = 1e-6;
    let mut worst: f64 = 0.0;
    let checked = match running_stats {
        true => arch.trainable_params(),
        false => params.len(),
    };
    for i in 0..checked {
        let (mut up, mut down) = (params.clone(), params.clone());
        up[i] += eps;
        down[i] -= eps;
        let numeric = (mean_loss(&arch, &up, &x, y, mode) - mean_loss(&arch, &down, &x, y, mode))
            / (2.0 * eps);
        // 1e-5 relative, plus 1e-9 absolute: the difference quotient carries rounding
        // noise of ~1e-16/ε = 1e-10 whatever the gradient's size, which is all there is of
        // a gradient that is exactly zero (a convolution's bias before batch norm) and
        // most of one under 1e-5 (deep in a transformer). The worst relative error is
        // reported over gradients above 1e-6, where it means something.
        let (diff, scale) = ((numeric - grad[i]).abs(), numeric.abs().max(grad[i].abs()));
        if scale > 1e-6 {
            worst = worst.max(diff / scale);
        }
        assert!(
            diff <= 1e-9 + 1e-5 * scale,
            "param {i} of {:?}: numeric {numeric} vs analytic {}",
            arch.dense_widths(),
            grad[i]
        );
    }
    assert!(grad.iter().any(|&g| g != 0.0));
    eprintln!(
        "{:?} dropout={}: worst relative error {worst:.2e}",
        arch.dense_widths(),
        dropout.is_some()
    );
}

#[test]
fn mlp_backward_matches_finite_differences_every_layer() {
    check(Arch::mlp(3, &[], 2), 4, None);
    check(Arch::mlp(5, &[4], 3), 3, None);
    check(Arch::mlp(4, &[7, 1, 3], 2), 5, None);
    check(Arch::mlp(6, &[5, 3], 4), 1, None);
}

#[test]
fn mean_squared_error_backward_matches_finite_differences_every_layer() {
    let dropout = StepDropout {
        rate: 0.3,
        attn_rate: 0.0,
        seed: 8,
        step: 2,
    };
    check_loss(Arch::mlp(3, &[], 1), 4, None, Loss::MeanSquaredError);
    check_loss(Arch::mlp(5, &[4, 3], 2), 3, None, Loss::MeanSquaredError);
    check_loss(
        Arch::mlp(4, &[6], 1),
        5,
        Some(dropout),
        Loss::MeanSquaredError,
    );
}

#[test]
fn mlp_backward_matches_finite_differences_under_fixed_dropout_mask() {
    let dropout = StepDropout {
        rate: 0.4,
        attn_rate: 0.0,
        seed: 3,
        step: 17,
    };
    check(Arch::mlp(5, &[6, 4], 3), 4, Some(dropout));
}

#[test]
fn every_activation_backward_matches_finite_differences() {
    use popsweep::model::hparams::Activation;
    for act in [Activation::LeakyRelu, Activation::Tanh, Activation::Gelu] {
        check(Arch::mlp(5, &[6, 4], 3).with_activation(act), 4, None);
        let dropout = StepDropout {
            rate: 0.3,
            attn_rate: 0.0,
            seed: 9,
            step: 2,
        };
        check(Arch::mlp(4, &[7], 2).with_activation(act), 3, Some(dropout));
    }
}

/// Layer lists no MLP builder makes: a different activation after each dense layer, two
/// dense layers back to back with nothing between them, dropout without an activation
/// before it. The CPU step walks any list, so its gradients must hold for these too.
#[test]
fn any_layer_list_backward_matches_finite_differences() {
    use popsweep::model::hparams::Activation;
    use popsweep::model::Layer;
    let dense = |inputs, outputs| Layer::Dense { inputs, outputs };
    let lists = [
        vec![
            dense(5, 6),
            Layer::Activation(Activation::Tanh),
            dense(6, 4),
            Layer::Activation(Activation::Gelu),
            Layer::Dropout,
            dense(4, 3),
        ],
        vec![
            dense(4, 7),
            dense(7, 3),
            Layer::Activation(Activation::Relu),
            dense(3, 2),
        ],
        vec![
            dense(3, 5),
            Layer::Dropout,
            dense(5, 5),
            Layer::Activation(Activation::LeakyRelu),
            dense(5, 4),
        ],
    ];
    let dropout = StepDropout {
        rate: 0.25,
        attn_rate: 0.0,
        seed: 9,
        step: 2,
    };
    for layers in lists {
        let inputs = match layers[0] {
            Layer::Dense { inputs, .. } => inputs,
            _ => unreachable!("every list starts with a dense layer"),
        };
        let arch = Arch { inputs, layers };
        assert!(arch.is_consistent());
        check(arch.clone(), 4, None);
        check(arch.clone(), 3, Some(dropout));
        check_loss(arch, 3, None, Loss::MeanSquaredError);
    }
}

/// Convolution and pooling layers in awkward shapes: 1×1, 3×3 and 5×5 kernels, `same` and
/// `valid` padding, stride 2, odd image sizes, one input channel or several, max, average
/// and global-average pooling, dropout on a convolution's output, a batch of one. The
/// inputs are distinct, so no max-pooling window holds a tie the perturbation could flip.
#[test]
fn convolution_and_pooling_backward_matches_finite_differences() {
    use popsweep::model::hparams::Activation;
    use popsweep::model::{Conv2d, Layer, Pool};
    let conv = |(in_channels, out_channels), kernel, stride, pad, (height, width)| {
        Layer::Conv2d(Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            pad,
            height,
            width,
        })
    };
    let pool = |channels, size, (height, width)| Pool {
        channels,
        size,
        height,
        width,
    };
    let lists: Vec<(usize, Vec<Layer>)> = vec![
        (
            // 1×7×5 → same 3×3 → 3×7×5 → max 2 → 3×3×2 → valid 1×1 stride 2 → 2×2×1 → dense
            35,
            vec![
                conv((1, 3), 3, 1, 1, (7, 5)),
                Layer::Activation(Activation::Relu),
                Layer::MaxPool(pool(3, 2, (7, 5))),
                conv((3, 2), 1, 2, 0, (3, 2)),
                Layer::Activation(Activation::Tanh),
                Layer::Dense {
                    inputs: 4,
                    outputs: 3,
                },
            ],
        ),
        (
            // 2×6×6 → valid 5×5 → 2×2×2 → dropout → global average → dense
            72,
            vec![
                conv((2, 2), 5, 1, 0, (6, 6)),
                Layer::Activation(Activation::Gelu),
                Layer::Dropout,
                Layer::GlobalAvgPool(pool(2, 1, (2, 2))),
                Layer::Dense {
                    inputs: 2,
                    outputs: 3,
                },
            ],
        ),
        (
            // 1×9×9 → average 3 → 1×3×3 → 5×5 stride 2 pad 2 → 2×2×2 → dense → dense
            81,
            vec![
                Layer::AvgPool(pool(1, 3, (9, 9))),
                conv((1, 2), 5, 2, 2, (3, 3)),
                Layer::Activation(Activation::LeakyRelu),
                Layer::Dense {
                    inputs: 8,
                    outputs: 4,
                },
                Layer::Dense {
                    inputs: 4,
                    outputs: 2,
                },
            ],
        ),
    ];
    let dropout = StepDropout {
        rate: 0.25,
        attn_rate: 0.0,
        seed: 3,
        step: 1,
    };
    for (inputs, layers) in lists {
        let arch = Arch { inputs, layers };
        assert!(arch.is_consistent(), "{:?}", arch.layers);
        check(arch.clone(), 3, None);
        check(arch.clone(), 1, None);
        check(arch.clone(), 2, Some(dropout));
        check_loss(arch, 2, None, Loss::MeanSquaredError);
    }
}

/// Batch norm in both modes: training (the batch's statistics, so every input's gradient
/// runs through the mean and variance too) and evaluation (the running statistics), after
/// a convolution (`same`, odd sizes; a batch of 1 still normalises over its positions),
/// after a strided `valid` 1×1 convolution, and after a dense layer (spatial 1).
#[test]
fn batch_norm_backward_matches_finite_differences_in_both_modes() {
    use popsweep::model::hparams::Activation;
    use popsweep::model::{Conv2d, Layer, Norm, Pool};
    let conv = |(in_channels, out_channels), kernel, stride, pad, (height, width)| {
        Layer::Conv2d(Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            pad,
            height,
            width,
        })
    };
    let norm = |channels, spatial| Layer::BatchNorm(Norm { channels, spatial });
    let dense = |inputs, outputs| Layer::Dense { inputs, outputs };
    let lists: Vec<(usize, Vec<Layer>)> = vec![
        (
            // 1×5×3 → same 3×3 → 3×5×3 → norm → ReLU → max 2 → 3×2×1 → dense
            15,
            vec![
                conv((1, 3), 3, 1, 1, (5, 3)),
                norm(3, 15),
                Layer::Activation(Activation::Relu),
                Layer::MaxPool(Pool {
                    channels: 3,
                    size: 2,
                    height: 5,
                    width: 3,
                }),
                dense(6, 3),
            ],
        ),
        (
            // 2×5×5 → valid 1×1 stride 2 → 2×3×3 → norm → tanh → dense
            50,
            vec![
                conv((2, 2), 1, 2, 0, (5, 5)),
                norm(2, 9),
                Layer::Activation(Activation::Tanh),
                dense(18, 3),
            ],
        ),
        (
            // dense → norm (spatial 1) → GELU → dense
            6,
            vec![
                dense(6, 4),
                norm(4, 1),
                Layer::Activation(Activation::Gelu),
                dense(4, 3),
            ],
        ),
    ];
    for (inputs, layers) in lists {
        let arch = Arch { inputs, layers };
        assert!(arch.is_consistent(), "{:?}", arch.layers);
        for running_stats in [false, true] {
            check_mode(arch.clone(), 4, (None, running_stats), Loss::CrossEntropy);
            check_mode(arch.clone(), 1, (None, running_stats), Loss::CrossEntropy);
        }
    }
}

/// Vision transformers: patch embedding (a stride-p convolution, transposed to tokens),
/// position embeddings, pre-norm blocks of LayerNorm, multi-head attention (one head and
/// several; one token and odd counts) and a GELU MLP, both residual, then LayerNorm, the
/// mean over tokens (or a class token) and the classifier. With fixed dropout masks on both
/// branches and on the attention weights.
#[test]
fn vision_transformer_backward_matches_finite_differences() {
    use popsweep::data::ImageShape;
    use popsweep::model::vit::{VitPool, VitSpec};
    let image = |channels, height, width| ImageShape {
        channels,
        height,
        width,
    };
    let cases = [
        // 16 pixels in 2×2 patches: 4 tokens of width 4 in 2 heads, one block.
        (image(1, 4, 4), (2, 4, 2, 1, 2), VitPool::Mean),
        // One token: a 2×2 image in one patch (width 4: LayerNorm over 2 features maps
        // every token to ±1 and leaves gradients at the difference quotient's noise).
        (image(1, 2, 2), (2, 4, 1, 1, 1), VitPool::Mean),
        // Three tokens (odd), 3 heads of 2, two blocks, two channels.
        (image(2, 3, 1), (1, 6, 3, 2, 2), VitPool::Mean),
        // A class token before 4 patches: 5 tokens, read back at the end.
        (image(1, 4, 4), (2, 4, 2, 1, 2), VitPool::Class),
    ];
    let dropout = StepDropout {
        rate: 0.2,
        attn_rate: 0.3,
        seed: 9,
        step: 4,
    };
    for (img, (patch, d_model, heads, layers, mlp_ratio), pool) in cases {
        let spec = VitSpec {
            patch,
            d_model,
            heads,
            layers,
            mlp_ratio,
            pool,
        };
        let arch = Arch::vit(img, &spec, 3).unwrap();
        check(arch.clone(), 3, None);
        check(arch.clone(), 1, None);
        check(arch, 2, Some(dropout));
    }
}

/// Spatial dropout drops whole channels: with a fixed mask the step stays differentiable,
/// and the gradient through it is the forward's scale per channel.
#[test]
fn spatial_dropout_backward_matches_finite_differences_under_a_fixed_mask() {
    use popsweep::model::hparams::Activation;
    use popsweep::model::{Conv2d, Layer, Pool};
    let conv = Conv2d {
        in_channels: 2,
        out_channels: 4,
        kernel: 3,
        stride: 1,
        pad: 1,
        height: 5,
        width: 4,
    };
    let arch = Arch {
        inputs: 40,
        layers: vec![
            Layer::Conv2d(conv),
            Layer::Activation(Activation::Tanh),
            Layer::SpatialDropout { channels: 4 },
            Layer::MaxPool(Pool {
                channels: 4,
                size: 2,
                height: 5,
                width: 4,
            }),
            Layer::Dense {
                inputs: 16,
                outputs: 3,
            },
        ],
    };
    assert!(arch.is_consistent());
    for step in [1, 2, 3] {
        let dropout = StepDropout {
            rate: 0.4,
            attn_rate: 0.0,
            seed: 11,
            step,
        };
        check(arch.clone(), 3, Some(dropout));
    }
}
