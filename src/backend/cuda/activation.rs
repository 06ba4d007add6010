//! Launches of `kernels/activation.cu` (as plan entries): activations in place on every
//! member's block at one layer index. CPU twin: `backend/cpu/activation.rs`.

use super::layout::{element_grid, ElementProblem};
use super::plan::{rows_arg, state_or_null, Arg, Buffer, Kernel, Launch};
use crate::model::hparams::Activation;

/// The kernel's code for `activation` (`ACT_*` in kernels/activation.cu).
pub fn kind(activation: Activation) -> i32 {
    match activation {
        Activation::Relu => 0,
        Activation::LeakyRelu => 1,
        Activation::Tanh => 2,
        Activation::Gelu => 3,
    }
}

/// Without `training` (evaluation) every member runs. An activation other than ReLU saves
/// its input (the saved buffer) for the backward pass.
pub fn forward(problems: &[ElementProblem], table: Buffer, rows: usize, training: bool) -> Launch {
    Launch {
        kernel: Kernel::ActivationForward,
        config: element_grid(problems, |p| rows * p.width as usize),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Saved),
            state_or_null(training),
        ],
    }
}

/// The gradient through each activation: ReLU's kept where the block is positive, the
/// others' times the derivative at the saved input.
pub fn backward(problems: &[ElementProblem], table: Buffer, rows: usize) -> Launch {
    Launch {
        kernel: Kernel::ActivationBackward,
        config: element_grid(problems, |p| rows * p.width as usize),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Saved),
            Arg::Buf(Buffer::Deltas),
            Arg::Buf(Buffer::State),
        ],
    }
}
