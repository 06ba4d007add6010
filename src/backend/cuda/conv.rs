//! Launches of `kernels/conv.cu` (as plan entries, `plan.rs`): every member's convolution
//! (or dense layer) at one layer index as one implicit-GEMM launch per pass. CPU twins:
//! `backend/cpu/conv.rs` and `linear.rs`.

use super::layout::{ConvProblem, CONV_THREADS, CONV_TILE};
use super::plan::{rows_arg, state_or_null, Arg, Buffer, Kernel, Launch};
use crate::model::layers::Conv2d;
use cudarc::driver::LaunchConfig;

/// Where a layer's input and output blocks and its parameters are: offsets into the
/// activations (and deltas) buffer and the parameters (and gradient) buffer.
#[derive(Clone, Copy, Debug)]
pub struct LayerPlace {
    pub x_off: usize,
    pub y_off: usize,
    pub w_off: usize,
    pub b_off: usize,
    pub member: usize,
}

fn int(v: usize) -> i32 {
    i32::try_from(v).expect("layer sizes fit in i32")
}

/// A convolution's problem: `W` stored `(O, C·k·k)` row-major.
pub fn conv_problem(c: &Conv2d, at: LayerPlace) -> ConvProblem {
    ConvProblem {
        x_off: at.x_off as i64,
        y_off: at.y_off as i64,
        w_off: at.w_off as i64,
        b_off: at.b_off as i64,
        c: int(c.in_channels),
        h: int(c.height),
        w: int(c.width),
        o: int(c.out_channels),
        oh: int(c.out_height()),
        ow: int(c.out_width()),
        k: int(c.kernel),
        stride: int(c.stride),
        pad: int(c.pad),
        w_ks: 1,
        w_os: int(c.fan_in()),
        member: int(at.member),
        tokens: 1,
    }
}

/// A dense layer's problem: a 1×1 convolution of a 1×1 image with `inputs` channels, its
/// `W` stored `(inputs, outputs)` row-major.
pub fn dense_problem(inputs: usize, outputs: usize, at: LayerPlace) -> ConvProblem {
    ConvProblem {
        x_off: at.x_off as i64,
        y_off: at.y_off as i64,
        w_off: at.w_off as i64,
        b_off: at.b_off as i64,
        c: int(inputs),
        h: 1,
        w: 1,
        o: int(outputs),
        oh: 1,
        ow: 1,
        k: 1,
        stride: 1,
        pad: 0,
        w_ks: int(outputs),
        w_os: 1,
        member: int(at.member),
        tokens: 1,
    }
}

/// A token-wise dense layer's problem: the dense layer over `tokens` rows per sample.
pub fn token_dense_problem(
    tokens: usize,
    inputs: usize,
    outputs: usize,
    at: LayerPlace,
) -> ConvProblem {
    ConvProblem {
        tokens: int(tokens),
        ..dense_problem(inputs, outputs, at)
    }
}

/// Which GEMM of a convolution (see kernels/conv.cu).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPass {
    Forward,
    BackwardX,
    BackwardW,
}

impl ConvPass {
    /// `(M, N)` of the pass's GEMM for a batch of `rows`.
    fn extent(self, p: &ConvProblem, samples: usize) -> (usize, usize) {
        let u = |v: i32| v as usize;
        let rows = samples * u(p.tokens);
        match self {
            ConvPass::Forward => (rows * u(p.oh) * u(p.ow), u(p.o)),
            ConvPass::BackwardX => (rows * u(p.h) * u(p.w), u(p.c)),
            ConvPass::BackwardW => (u(p.o), u(p.c) * u(p.k) * u(p.k) + 1),
        }
    }
}

/// The grid covering the largest problem's output tiles.
pub fn config(problems: &[ConvProblem], pass: ConvPass, rows: usize) -> LaunchConfig {
    let (mut m, mut n) = (1, 1);
    for p in problems {
        let (pm, pn) = pass.extent(p, rows);
        m = m.max(pm);
        n = n.max(pn);
    }
    let tiles = |v: usize| (v.div_ceil(CONV_TILE as usize)) as u32;
    LaunchConfig {
        grid_dim: (tiles(m), tiles(n), problems.len() as u32),
        block_dim: (CONV_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The launch of one pass over the problem table `table` (layer index's `Linear` or
/// `LinearDx` group). Forward: activations and parameters in, activations out. Input
/// gradient: deltas and parameters in, deltas out. Weight gradient: deltas and activations
/// in, the gradient buffer out. Without `training` (evaluation) every member runs.
pub fn launch(
    problems: &[ConvProblem],
    table: Buffer,
    (pass, rows): (ConvPass, usize),
    training: bool,
) -> Launch {
    let (kernel, a, b, out) = match pass {
        ConvPass::Forward => (
            Kernel::ConvForward,
            Buffer::Acts,
            Buffer::Params,
            Buffer::Acts,
        ),
        ConvPass::BackwardX => (
            Kernel::ConvBackwardX,
            Buffer::Deltas,
            Buffer::Params,
            Buffer::Deltas,
        ),
        ConvPass::BackwardW => (
            Kernel::ConvBackwardW,
            Buffer::Deltas,
            Buffer::Acts,
            Buffer::Grad,
        ),
    };
    Launch {
        kernel,
        config: config(problems, pass, rows),
        args: vec![
            Arg::Buf(table),
            rows_arg(rows),
            Arg::Buf(a),
            Arg::Buf(b),
            Arg::Buf(out),
            state_or_null(training),
        ],
    }
}
