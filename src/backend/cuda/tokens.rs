//! Launches of `kernels/tokens.cu` (as plan entries): the transformer's token layers —
//! transpose, position embeddings, class token, mean and first token, residual forks — of
//! every member at one layer index, every kind in one launch per pass. CPU twins:
//! `backend/cpu/tokens.rs` and the residual steps of `backend/cpu/network/transformer.rs`.

use super::layout::{
    element_grid, TokenProblem, TOKEN_CLASS, TOKEN_FIRST, TOKEN_MEAN, TOKEN_TRANSPOSE,
};
use super::plan::{rows_arg, state_or_null, Arg, Buffer, Kernel, Launch};

/// Elements one pass of a problem walks (per batch of `rows`): the larger of its output
/// block and its input block; a parameter's gradient, one per thread, is fewer.
fn work(p: &TokenProblem, rows: usize) -> usize {
    let (a, b) = (p.a as usize, p.b as usize);
    rows * match p.kind {
        TOKEN_TRANSPOSE => a * b,
        TOKEN_CLASS => (a + 1) * b,
        TOKEN_MEAN | TOKEN_FIRST => a * b,
        _ => a,
    }
}

/// Without `training` (evaluation) every member runs.
pub fn forward(problems: &[TokenProblem], table: Buffer, rows: usize, training: bool) -> Launch {
    Launch {
        kernel: Kernel::TokenForward,
        config: element_grid(problems, |p| work(p, rows)),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Params),
            state_or_null(training),
        ],
    }
}

pub fn backward(problems: &[TokenProblem], table: Buffer, rows: usize) -> Launch {
    Launch {
        kernel: Kernel::TokenBackward,
        config: element_grid(problems, |p| work(p, rows)),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Deltas),
            Arg::Buf(Buffer::Grad),
            Arg::Buf(Buffer::Skips),
            Arg::Buf(Buffer::State),
        ],
    }
}
