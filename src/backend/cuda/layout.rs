//! `#[repr(C)]` mirrors of the structs in `kernels/*.cu(h)`, field for field, so arrays of
//! them can be copied to the device as they are.

use crate::model::hparams::{Decay, OptimizerKind};
use crate::model::MemberSpec;
use cudarc::driver::{DeviceRepr, LaunchConfig, ValidAsZeroBits};

/// `MemberHparams` in kernels/population.cuh.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemberHparams {
    pub kind: i32,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub dropout: f32,
    pub attn_dropout: f32,
    /// The learning-rate schedule: 0 constant, 1 step, 2 cosine (kernels/population.cuh).
    pub schedule: i32,
    pub warmup_epochs: f32,
    pub decay_epochs: f32,
    pub gamma: f32,
    pub pad: i32,
    pub seed: u64,
}

impl MemberHparams {
    pub fn of(spec: &MemberSpec) -> Self {
        let o = &spec.hparams.optim;
        let (schedule, decay_epochs, gamma) = match o.schedule.decay {
            Decay::Constant => (0, 0.0, 1.0),
            Decay::Step {
                every_epochs,
                gamma,
            } => (1, every_epochs, gamma),
            Decay::Cosine { total_epochs } => (2, total_epochs, 1.0),
        };
        MemberHparams {
            kind: match o.kind {
                OptimizerKind::Sgd => 0,
                OptimizerKind::AdamW => 1,
            },
            lr: o.lr,
            momentum: o.momentum,
            weight_decay: o.weight_decay,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            dropout: spec.hparams.dropout,
            attn_dropout: spec.hparams.attn_dropout,
            schedule,
            warmup_epochs: o.schedule.warmup_epochs,
            decay_epochs,
            gamma,
            pad: 0,
            seed: spec.seed,
        }
    }
}

/// `MemberState` in kernels/population.cuh.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemberState {
    pub steps: u64,
    pub train_loss: f64,
    pub train_correct: u64,
    pub eval_loss: f64,
    pub eval_correct: u64,
    pub fail_step: u64,
    pub fail_loss: f32,
    pub alive: i32,
    pub step_size: f32,
    pub sqrt_bias2: f32,
    pub nonfinite_params: u32,
    /// This step's learning rate: the base rate times the schedule's factor.
    pub lr: f32,
}

/// `GemmProblem` in kernels/linear.cu: `C = A·B` for one member's layer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GemmProblem {
    pub a_off: i64,
    pub b_off: i64,
    pub c_off: i64,
    pub aux_off: i64,
    pub m: i32,
    pub n: i32,
    pub k: i32,
    pub a_rs: i32,
    pub a_cs: i32,
    pub b_rs: i32,
    pub b_cs: i32,
    pub ldc: i32,
    pub member: i32,
    pub layer: i32,
    pub flags: i32,
    pub pad: i32,
}

/// `GemmProblem::flags` bits, as in kernels/linear.cu.
pub const ONES_K: i32 = 1;
pub const ONES_M: i32 = 2;
pub const RELU: i32 = 4;
/// The GEMM kernel's output tile shapes (`ENTRY_POINTS` in kernels/linear.cu), both run
/// by 256 threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmTile {
    /// 64×64, 4×4 outputs per thread: narrow layers waste less of a tile.
    Small = 0,
    /// 128×128, 8×8 per thread: twice the multiply-adds per shared-memory load.
    Large = 1,
}

impl GemmTile {
    pub fn edge(self) -> u32 {
        match self {
            GemmTile::Small => 64,
            GemmTile::Large => 128,
        }
    }
}

pub const GEMM_THREADS: u32 = 256;

/// `LossProblem` in kernels/loss.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LossProblem {
    pub logits_off: i64,
    pub classes: i32,
    pub member: i32,
}

pub const LOSS_THREADS: u32 = 128;

/// `ConvProblem` in kernels/conv.cu: one member's convolution (or dense layer, as a 1×1
/// convolution of a 1×1 image) as the three implicit GEMMs of its passes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvProblem {
    pub x_off: i64,
    pub y_off: i64,
    pub w_off: i64,
    pub b_off: i64,
    pub c: i32,
    pub h: i32,
    pub w: i32,
    pub o: i32,
    pub oh: i32,
    pub ow: i32,
    pub k: i32,
    pub stride: i32,
    pub pad: i32,
    pub w_ks: i32,
    pub w_os: i32,
    pub member: i32,
    /// Rows per sample: a token-wise dense layer's tokens, else 1.
    pub tokens: i32,
}

/// The convolution kernels' output tile edge and block size (kernels/conv.cu).
pub const CONV_TILE: u32 = 64;
pub const CONV_THREADS: u32 = 256;

/// `PoolProblem` in kernels/pool.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolProblem {
    pub x_off: i64,
    pub y_off: i64,
    pub picks_off: i64,
    pub channels: i32,
    pub size: i32,
    pub height: i32,
    pub width: i32,
    pub kind: i32,
    pub member: i32,
}

/// `PoolProblem::kind` values, as in kernels/pool.cu.
pub const POOL_MAX: i32 = 0;
pub const POOL_AVG: i32 = 1;
pub const POOL_GLOBAL: i32 = 2;

/// `NormProblem` in kernels/norm.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NormProblem {
    pub x_off: i64,
    pub y_off: i64,
    pub gamma_off: i64,
    pub state_off: i64,
    pub stats_off: i64,
    pub channels: i32,
    pub spatial: i32,
    pub member: i32,
    pub has_dx: i32,
}

pub const NORM_THREADS: u32 = 256;

/// `ElementProblem` in kernels/element.cuh: an in-place layer (activation, dropout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ElementProblem {
    pub off: i64,
    pub aux_off: i64,
    pub width: i32,
    pub channels: i32,
    pub member: i32,
    pub layer: i32,
    pub kind: i32,
    pub pad: i32,
}

/// `TokenProblem` in kernels/tokens.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenProblem {
    pub x_off: i64,
    pub y_off: i64,
    pub aux_off: i64,
    pub param_off: i64,
    pub a: i32,
    pub b: i32,
    pub kind: i32,
    pub member: i32,
    pub has_dx: i32,
    pub pad: i32,
}

/// `TokenProblem::kind` values, as in kernels/tokens.cu.
pub const TOKEN_TRANSPOSE: i32 = 0;
pub const TOKEN_POSITION: i32 = 1;
pub const TOKEN_CLASS: i32 = 2;
pub const TOKEN_MEAN: i32 = 3;
pub const TOKEN_FIRST: i32 = 4;
pub const TOKEN_RESIDUAL: i32 = 5;
pub const TOKEN_FORK: i32 = 6;

/// `LayerNormProblem` in kernels/norm.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerNormProblem {
    pub x_off: i64,
    pub y_off: i64,
    pub gamma_off: i64,
    pub stats_off: i64,
    pub tokens: i32,
    pub dim: i32,
    pub member: i32,
    pub has_dx: i32,
}

/// `AttentionProblem` in kernels/attention.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionProblem {
    pub x_off: i64,
    pub y_off: i64,
    pub p_off: i64,
    pub tokens: i32,
    pub dim: i32,
    pub heads: i32,
    pub member: i32,
    pub layer: i32,
    pub pad: i32,
}

/// The attention kernels' block size and the longest sequence their shared memory holds.
pub const ATTENTION_THREADS: u32 = 256;
pub const ATTENTION_MAX_TOKENS: usize = 65;

/// The grid of an elementwise kernel that strides over `work(problem)` elements of each
/// problem: `(chunks, problems)` blocks of 256 threads, chunks enough for the largest
/// (capped: each thread then loops).
pub fn element_grid<T>(problems: &[T], work: impl Fn(&T) -> usize) -> LaunchConfig {
    let most = problems.iter().map(work).max().unwrap_or(1).max(1);
    LaunchConfig {
        grid_dim: (
            (most.div_ceil(256)).min(4096) as u32,
            problems.len() as u32,
            1,
        ),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

// SAFETY: plain-old-data with C layout and no padding-dependent invariants; all-zero bits
// are a valid value of each.
unsafe impl DeviceRepr for MemberHparams {}
unsafe impl DeviceRepr for MemberState {}
unsafe impl DeviceRepr for GemmProblem {}
unsafe impl DeviceRepr for LossProblem {}
unsafe impl DeviceRepr for ConvProblem {}
unsafe impl DeviceRepr for PoolProblem {}
unsafe impl DeviceRepr for NormProblem {}
unsafe impl DeviceRepr for ElementProblem {}
unsafe impl DeviceRepr for TokenProblem {}
unsafe impl DeviceRepr for LayerNormProblem {}
unsafe impl DeviceRepr for AttentionProblem {}
unsafe impl ValidAsZeroBits for MemberHparams {}
unsafe impl ValidAsZeroBits for MemberState {}
unsafe impl ValidAsZeroBits for GemmProblem {}
unsafe impl ValidAsZeroBits for LossProblem {}
unsafe impl ValidAsZeroBits for ConvProblem {}
unsafe impl ValidAsZeroBits for PoolProblem {}
unsafe impl ValidAsZeroBits for NormProblem {}
unsafe impl ValidAsZeroBits for ElementProblem {}
unsafe impl ValidAsZeroBits for TokenProblem {}
unsafe impl ValidAsZeroBits for LayerNormProblem {}
unsafe impl ValidAsZeroBits for AttentionProblem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_cuda_structs() {
        // Field sizes summed with C alignment, as nvcc lays them out.
        assert_eq!(std::mem::size_of::<MemberHparams>(), 64);
        assert_eq!(std::mem::size_of::<MemberState>(), 72);
        assert_eq!(std::mem::size_of::<GemmProblem>(), 80);
        assert_eq!(std::mem::size_of::<LossProblem>(), 16);
        assert_eq!(std::mem::size_of::<ConvProblem>(), 88);
        assert_eq!(std::mem::size_of::<PoolProblem>(), 48);
        assert_eq!(std::mem::size_of::<NormProblem>(), 56);
        assert_eq!(std::mem::size_of::<ElementProblem>(), 40);
        assert_eq!(std::mem::size_of::<TokenProblem>(), 56);
        assert_eq!(std::mem::size_of::<LayerNormProblem>(), 48);
        assert_eq!(std::mem::size_of::<AttentionProblem>(), 48);
    }
}
