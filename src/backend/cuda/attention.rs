//! Launches of `kernels/attention.cu` (as plan entries): multi-head self-attention of
//! every member at one layer index, one block per sample and head. CPU twin:
//! `backend/cpu/attention.rs`.

use super::layout::{AttentionProblem, ATTENTION_THREADS};
use super::plan::{rows_arg, state_or_null, Arg, Buffer, Kernel, Launch};
use cudarc::driver::LaunchConfig;

fn grid(problems: &[AttentionProblem], rows: usize) -> LaunchConfig {
    let heads = problems.iter().map(|p| p.heads as usize).max().unwrap_or(1);
    LaunchConfig {
        grid_dim: ((rows * heads).max(1) as u32, problems.len() as u32, 1),
        block_dim: (ATTENTION_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Without `training` (evaluation) every member runs, without attention dropout.
pub fn forward(
    problems: &[AttentionProblem],
    table: Buffer,
    rows: usize,
    training: bool,
) -> Launch {
    Launch {
        kernel: Kernel::AttentionForward,
        config: grid(problems, rows),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Weights),
            Arg::Buf(Buffer::Hparams),
            state_or_null(training),
        ],
    }
}

pub fn backward(problems: &[AttentionProblem], table: Buffer, rows: usize) -> Launch {
    Launch {
        kernel: Kernel::AttentionBackward,
        config: grid(problems, rows),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(Buffer::Acts),
            Arg::Buf(Buffer::Weights),
            Arg::Buf(Buffer::Deltas),
            Arg::Buf(Buffer::Hparams),
            Arg::Buf(Buffer::State),
        ],
    }
}
