//! Launches of `kernels/dropout.cu` (as plan entries): dropout and spatial dropout in place
//! on every member's block at one layer index, training steps only. CPU twin:
//! `backend/cpu/dropout.rs`.

use super::layout::{element_grid, ElementProblem};
use super::plan::{rows_arg, Arg, Buffer, Kernel, Launch};

/// Which pass: the forward pass masks the activations with the step's mask; the backward
/// pass masks the gradient with the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropoutPass {
    Forward,
    Backward,
}

pub fn launch(
    problems: &[ElementProblem],
    table: Buffer,
    (pass, rows): (DropoutPass, usize),
) -> Launch {
    let (kernel, values) = match pass {
        DropoutPass::Forward => (Kernel::DropoutForward, Buffer::Acts),
        DropoutPass::Backward => (Kernel::DropoutBackward, Buffer::Deltas),
    };
    Launch {
        kernel,
        config: element_grid(problems, |p| rows * p.width as usize),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(values),
            Arg::Buf(Buffer::Hparams),
            Arg::Buf(Buffer::State),
        ],
    }
}
