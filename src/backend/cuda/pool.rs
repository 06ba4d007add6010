//! Launches of `kernels/pool.cu` (as plan entries): every member's pooling layer at one
//! layer index in one launch per pass. CPU twin: `backend/cpu/pool.rs`.

use super::layout::{element_grid, PoolProblem, POOL_AVG, POOL_GLOBAL, POOL_MAX};
use super::plan::{rows_arg, state_or_null, Arg, Buffer, Kernel, Launch};
use crate::model::layers::Pool;

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
    Global,
}

/// The problem of one member's pooling layer: input block at `x_off`, output at `y_off`,
/// max pooling's picks at `picks_off` (one per output and row).
pub fn pool_problem(
    pool: &Pool,
    kind: PoolKind,
    (x_off, y_off, picks_off): (usize, usize, usize),
    member: usize,
) -> PoolProblem {
    let int = |v: usize| i32::try_from(v).expect("layer sizes fit in i32");
    PoolProblem {
        x_off: x_off as i64,
        y_off: y_off as i64,
        picks_off: picks_off as i64,
        channels: int(pool.channels),
        size: int(pool.size.max(1)),
        height: int(pool.height),
        width: int(pool.width),
        kind: match kind {
            PoolKind::Max => POOL_MAX,
            PoolKind::Avg => POOL_AVG,
            PoolKind::Global => POOL_GLOBAL,
        },
        member: int(member),
    }
}

/// Outputs per row of a problem.
pub fn outputs(p: &PoolProblem) -> usize {
    let c = p.channels as usize;
    if p.kind == POOL_GLOBAL {
        return c;
    }
    c * (p.height / p.size) as usize * (p.width / p.size) as usize
}

/// The forward launch over `table`: outputs (and max pooling's picks) into the
/// activations. Without `training` every member runs.
pub fn forward(problems: &[PoolProblem], table: Buffer, rows: usize, training: bool) -> Launch {
    Launch {
        kernel: Kernel::PoolForward,
        config: element_grid(problems, |p| rows * outputs(p)),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Picks),
            state_or_null(training),
        ],
    }
}

/// The input blocks' gradients from the output blocks', both in the deltas.
pub fn backward(problems: &[PoolProblem], table: Buffer, rows: usize) -> Launch {
    Launch {
        kernel: Kernel::PoolBackward,
        config: element_grid(problems, |p| {
            rows * (p.channels * p.height * p.width) as usize
        }),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Deltas),
            Arg::Buf(Buffer::Picks),
            Arg::Buf(Buffer::State),
        ],
    }
}
