//! Launches of `kernels/activation.cu` (as plan entries): ReLU in place on every member's
//! block at one layer index. CPU twin: `backend/cpu/activation.rs`.

use super::layout::{element_grid, ElementProblem};
use super::plan::{rows_arg, state_or_null, Arg, Buffer, Kernel, Launch};

/// Without `training` (evaluation) every member runs.
pub fn relu_forward(
    problems: &[ElementProblem],
    table: Buffer,
    rows: usize,
    training: bool,
) -> Launch {
    Launch {
        kernel: Kernel::ReluForward,
        config: element_grid(problems, |p| rows * p.width as usize),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            state_or_null(training),
        ],
    }
}

/// The gradient kept where the block is positive.
pub fn relu_backward(problems: &[ElementProblem], table: Buffer, rows: usize) -> Launch {
    Launch {
        kernel: Kernel::ReluBackward,
        config: element_grid(problems, |p| rows * p.width as usize),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Deltas),
            Arg::Buf(Buffer::State),
        ],
    }
}
