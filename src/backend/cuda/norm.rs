//! Launches of `kernels/norm.cu` (as plan entries): batch normalisation of every member's
//! layer at one layer index. CPU twin: `backend/cpu/norm.rs`.

use super::layout::{element_grid, LayerNormProblem, NormProblem, NORM_THREADS};
use super::plan::{rows_arg, state_or_null, Arg, Buffer, Kernel, Launch};
use cudarc::driver::LaunchConfig;

/// One block per member and channel of the widest (statistics and backward pass).
pub fn per_channel(problems: &[NormProblem]) -> LaunchConfig {
    let channels = problems.iter().map(|p| p.channels).max().unwrap_or(1);
    LaunchConfig {
        grid_dim: (channels.max(1) as u32, problems.len() as u32, 1),
        block_dim: (NORM_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A block per problem, its threads over the channels.
pub fn running_grid(problems: &[NormProblem]) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (problems.len() as u32, 1, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A training step's forward pass (`training`): the batch's statistics, then the
/// normalisation with them. Evaluation: the running statistics, every member.
pub fn forward(
    problems: &[NormProblem],
    table: Buffer,
    rows: usize,
    training: bool,
) -> Vec<Launch> {
    let mut launches = Vec::with_capacity(2);
    if training {
        launches.push(Launch {
            kernel: Kernel::BatchNormStats,
            config: per_channel(problems),
            args: vec![
                Arg::Buf(table),
                rows_arg(rows),
                Arg::Buf(Buffer::Acts),
                Arg::Buf(Buffer::Stats),
                Arg::Buf(Buffer::State),
            ],
        });
    }
    launches.push(Launch {
        kernel: Kernel::BatchNormForward,
        config: element_grid(problems, |p| rows * (p.channels * p.spatial) as usize),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Params),
            Arg::Buf(Buffer::Stats),
            Arg::Int(i32::from(training)),
            state_or_null(training),
        ],
    });
    launches
}

/// `dγ`, `dβ` into the gradient and (where the problem says so) the input's gradient into
/// the deltas: with `batch_stats` through the batch's statistics (training), else through
/// the running ones (the CPU's evaluation-mode gradient check).
pub fn backward(problems: &[NormProblem], table: Buffer, rows: usize, batch_stats: bool) -> Launch {
    Launch {
        kernel: Kernel::BatchNormBackward,
        config: per_channel(problems),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Params),
            Arg::Buf(Buffer::Stats),
            Arg::Int(i32::from(batch_stats)),
            Arg::Buf(Buffer::Deltas),
            Arg::Buf(Buffer::Grad),
            Arg::Buf(Buffer::State),
        ],
    }
}

/// Every alive member's running statistics towards this step's batch statistics, over
/// the table of every batch norm (`Buffer::Norms`).
pub fn update_running(problems: &[NormProblem], rows: usize) -> Launch {
    Launch {
        kernel: Kernel::BatchNormRunning,
        config: running_grid(problems),
        args: vec![
            Arg::Buf(Buffer::Norms),
            rows_arg(rows),
            Arg::Buf(Buffer::Stats),
            Arg::Buf(Buffer::Params),
            Arg::Buf(Buffer::State),
        ],
    }
}

/// LayerNorm's forward launch: each token row normalised, its statistics kept. Without
/// `training` every member runs.
pub fn layer_norm_forward(
    problems: &[LayerNormProblem],
    table: Buffer,
    rows: usize,
    training: bool,
) -> Launch {
    Launch {
        kernel: Kernel::LayerNormForward,
        config: element_grid(problems, |p| rows * p.tokens as usize),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Params),
            Arg::Buf(Buffer::Stats),
            state_or_null(training),
        ],
    }
}

/// LayerNorm's backward launches: the parameters' gradient (a thread per feature), then
/// the input's (a thread per token row, where the problem needs it).
pub fn layer_norm_backward(
    problems: &[LayerNormProblem],
    table: Buffer,
    rows: usize,
) -> [Launch; 2] {
    let common = |more: &[Buffer]| {
        let mut args = vec![Arg::Buf(table), rows_arg(rows)];
        args.extend(more.iter().map(|b| Arg::Buf(*b)));
        args
    };
    [
        Launch {
            kernel: Kernel::LayerNormParams,
            config: element_grid(problems, |p| p.dim as usize),
            args: common(&[
                Buffer::Acts,
                Buffer::Stats,
                Buffer::Deltas,
                Buffer::Grad,
                Buffer::State,
            ]),
        },
        Launch {
            kernel: Kernel::LayerNormBackward,
            config: element_grid(problems, |p| rows * p.tokens as usize),
            args: common(&[
                Buffer::Acts,
                Buffer::Params,
                Buffer::Stats,
                Buffer::Deltas,
                Buffer::State,
            ]),
        },
    ]
}
