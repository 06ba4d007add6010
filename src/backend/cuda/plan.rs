//! A step of the layered networks as data: the ordered kernel launches, each with its grid
//! and its arguments by role — which of the population's buffers, or a scalar. The CUDA
//! backend runs a plan on the device (`network.rs`); the kernel-emulation test runs the
//! same plan on the CPU (tests/kernel_emulation.rs), so the order of a step and every
//! launch's arguments are checked on machines without a GPU too.

use cudarc::driver::LaunchConfig;

/// Every kernel a layered network's step launches (the `extern "C"` entry of that name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    GatherRows,
    ConvForward,
    ConvBackwardX,
    ConvBackwardW,
    PoolForward,
    PoolBackward,
    BatchNormStats,
    BatchNormForward,
    BatchNormBackward,
    BatchNormRunning,
    ActivationForward,
    ActivationBackward,
    DropoutForward,
    DropoutBackward,
    TokenForward,
    TokenBackward,
    LayerNormForward,
    LayerNormBackward,
    LayerNormParams,
    AttentionForward,
    AttentionBackward,
    SoftmaxCrossEntropy,
    OptimizerStep,
}

impl Kernel {
    pub fn name(self) -> &'static str {
        match self {
            Kernel::GatherRows => "gather_rows",
            Kernel::ConvForward => "conv_forward",
            Kernel::ConvBackwardX => "conv_backward_x",
            Kernel::ConvBackwardW => "conv_backward_w",
            Kernel::PoolForward => "pool_forward",
            Kernel::PoolBackward => "pool_backward",
            Kernel::BatchNormStats => "batch_norm_stats",
            Kernel::BatchNormForward => "batch_norm_forward",
            Kernel::BatchNormBackward => "batch_norm_backward",
            Kernel::BatchNormRunning => "batch_norm_running",
            Kernel::ActivationForward => "activation_forward",
            Kernel::ActivationBackward => "activation_backward",
            Kernel::DropoutForward => "dropout_forward",
            Kernel::DropoutBackward => "dropout_backward",
            Kernel::TokenForward => "token_forward",
            Kernel::TokenBackward => "token_backward",
            Kernel::LayerNormForward => "layer_norm_forward",
            Kernel::LayerNormBackward => "layer_norm_backward",
            Kernel::LayerNormParams => "layer_norm_params",
            Kernel::AttentionForward => "attention_forward",
            Kernel::AttentionBackward => "attention_backward",
            Kernel::SoftmaxCrossEntropy => "softmax_cross_entropy",
            Kernel::OptimizerStep => "optimizer_step",
        }
    }
}

/// The problem tables of one layer index, one per layer kind (and pass subset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Convolutions and dense layers, and those of them whose input gradient is needed.
    Linear,
    LinearDx,
    Pool,
    PoolDx,
    Norm,
    Activation,
    Dropout,
    /// The transformer's token layers (transpose, position, class token, token pooling,
    /// residuals), every kind in one table.
    Token,
    LayerNorm,
    Attention,
}

/// A buffer of the population (or of the data it reads), by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buffer {
    /// The data set on the device: features, labels, and the epoch's row order (or the
    /// identity, for evaluation).
    Features,
    Labels,
    Order,
    /// The replayed step's batch counter.
    Cursor,
    /// The minibatch and every member's blocks; their gradients.
    Acts,
    Deltas,
    /// The minibatch's labels.
    Targets,
    Picks,
    Stats,
    Grad,
    /// Residual gradients on their way back to the fork.
    Skips,
    /// Inputs of the activations other than ReLU.
    Saved,
    /// Attention's softmax weights.
    Weights,
    Params,
    Moment1,
    Moment2,
    Hparams,
    State,
    /// Each member's trainable range.
    Trainable,
    /// The problem table of layer index `.0`'s group `.1`.
    Problems(usize, Group),
    /// Every batch norm (the running statistics' update).
    Norms,
    /// Each member's logits.
    Loss,
}

impl Buffer {
    /// A name made of `[a-z0-9-]`: the emulation harness's file name for the buffer.
    pub fn file_name(self) -> String {
        match self {
            Buffer::Problems(layer, group) => {
                format!("problems-{layer}-{}", format!("{group:?}").to_lowercase())
            }
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

/// One kernel argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    Buf(Buffer),
    Int(i32),
    Float(f32),
    /// A null pointer (evaluation's member state: every member runs).
    Null,
}

/// The state argument of a training launch, or null for evaluation.
pub fn state_or_null(training: bool) -> Arg {
    if training {
        Arg::Buf(Buffer::State)
    } else {
        Arg::Null
    }
}

/// A row count as the kernels take it.
pub fn rows_arg(rows: usize) -> Arg {
    Arg::Int(i32::try_from(rows).expect("a batch fits in i32"))
}

/// One kernel launch of a plan.
#[derive(Clone, Debug)]
pub struct Launch {
    pub kernel: Kernel,
    pub config: LaunchConfig,
    pub args: Vec<Arg>,
}
