//! Launches of `kernels/linear.cu`: one grouped GEMM per layer index for the whole
//! population. CPU twin: `backend/cpu/linear.rs` (+ activation, dropout, optim).
//!
//! This file turns member layouts into `GemmProblem`s (the strides that make each pass's
//! transposes) and launches them.

use super::device::{Device, Transfer};
use super::layout::{
    GemmProblem, GemmTile, MemberHparams, MemberState, GEMM_THREADS, ONES_K, ONES_M, RELU,
};
use cudarc::driver::{CudaSlice, DriverError, LaunchConfig, PushKernelArg};

/// Where one member lives in the device buffers.
#[derive(Clone, Debug)]
pub struct MemberLayout {
    /// Layer widths, input first.
    pub dims: Vec<usize>,
    /// Start of the member's parameters (and moments) in the flat buffers.
    pub param_off: usize,
    /// Start of each layer's output `(rows, dims[l+1])` in the activation and delta buffers.
    pub act_off: Vec<usize>,
    /// Index into the per-member hyperparameter and state arrays.
    pub member: usize,
}

impl MemberLayout {
    pub fn n_layers(&self) -> usize {
        self.dims.len() - 1
    }

    /// Offset of `W_l` in the flat buffers (`b_l` follows it: `[W_l; b_l]` is one
    /// `(in + 1) × out` matrix).
    fn weight_off(&self, layer: usize) -> usize {
        self.param_off
            + self.dims[..=layer]
                .windows(2)
                .map(|w| (w[0] + 1) * w[1])
                .sum::<usize>()
    }
}

/// Which of the three GEMMs of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `y = act([x | 1]·[W; b])` (+ dropout on hidden layers).
    Forward,
    /// `dx = (dy·Wᵀ) ⊙ mask of the previous layer's output` (layers ≥ 1).
    BackwardX,
    /// `[x | 1]ᵀ·dy`, applied by the optimizer in place.
    BackwardW,
}

/// The problem of `member`'s layer `layer` in `pass` for a batch of `rows`. The layer's
/// input is the shared minibatch (layer 0, offset 0) or the previous layer's activations.
pub fn problem(pass: Pass, m: &MemberLayout, layer: usize, rows: usize) -> GemmProblem {
    let (n_in, n_out) = (m.dims[layer], m.dims[layer + 1]);
    let input_off = if layer == 0 { 0 } else { m.act_off[layer - 1] };
    let w = m.weight_off(layer);
    let i = |x: usize| i32::try_from(x).expect("layer sizes fit in i32");
    let base = GemmProblem {
        member: i(m.member),
        layer: i(layer),
        ..Default::default()
    };
    match pass {
        Pass::Forward => GemmProblem {
            a_off: input_off as i64,
            b_off: w as i64,
            c_off: m.act_off[layer] as i64,
            m: i(rows),
            n: i(n_out),
            k: i(n_in + 1),
            a_rs: i(n_in),
            a_cs: 1,
            b_rs: i(n_out),
            b_cs: 1,
            ldc: i(n_out),
            flags: ONES_K | if layer + 1 < m.n_layers() { RELU } else { 0 },
            ..base
        },
        Pass::BackwardX => GemmProblem {
            a_off: m.act_off[layer] as i64,
            b_off: w as i64,
            c_off: input_off as i64,
            aux_off: input_off as i64,
            m: i(rows),
            n: i(n_in),
            k: i(n_out),
            a_rs: i(n_out),
            a_cs: 1,
            b_rs: 1,
            b_cs: i(n_out),
            ldc: i(n_in),
            ..base
        },
        Pass::BackwardW => GemmProblem {
            a_off: input_off as i64,
            b_off: m.act_off[layer] as i64,
            c_off: w as i64,
            m: i(n_in + 1),
            n: i(n_out),
            k: i(rows),
            a_rs: 1,
            a_cs: i(n_in),
            b_rs: i(n_out),
            b_cs: 1,
            ldc: i(n_out),
            flags: ONES_M,
            ..base
        },
    }
}

/// A set of problems on the device, the tile shape that suits them and the grid that
/// covers the largest.
pub struct GemmLaunch {
    problems: CudaSlice<GemmProblem>,
    tile: GemmTile,
    grid: (u32, u32, u32),
}

impl GemmLaunch {
    /// Large tiles when the largest problem fills at least one in both dimensions (a
    /// 128-wide tile over a 10-wide output layer would idle most of its threads), unless
    /// the device is set to small tiles throughout.
    pub fn new(dev: &Device, problems: &[GemmProblem]) -> Result<Self, DriverError> {
        let max_m = problems.iter().map(|p| p.m).max().unwrap_or(1);
        let max_n = problems.iter().map(|p| p.n).max().unwrap_or(1);
        let tile = if max_m >= 128 && max_n >= 128 && !dev.small_tiles() {
            GemmTile::Large
        } else {
            GemmTile::Small
        };
        let tiles = |extent: i32| (extent.max(1) as u32).div_ceil(tile.edge());
        Ok(GemmLaunch {
            problems: dev.upload(Transfer::Layout, problems)?,
            tile,
            grid: (tiles(max_n), tiles(max_m), problems.len() as u32),
        })
    }

    pub fn tile(&self) -> GemmTile {
        self.tile
    }

    fn kernel(&self, dev: &Device) -> usize {
        super::device::Kernels::gemm_index(self.tile, dev.gemm_mode())
    }

    fn config(&self) -> LaunchConfig {
        LaunchConfig {
            grid_dim: self.grid,
            block_dim: (GEMM_THREADS, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}

/// The per-member arrays every launch reads. `state: None` is evaluation: every member
/// runs, without dropout.
pub struct Members<'a> {
    pub hparams: &'a CudaSlice<MemberHparams>,
    pub state: Option<&'a CudaSlice<MemberState>>,
}

const NULL: u64 = 0;

pub fn forward(
    dev: &Device,
    launch: &GemmLaunch,
    input: &CudaSlice<f32>,
    params: &CudaSlice<f32>,
    acts: &CudaSlice<f32>,
    members: &Members<'_>,
) -> Result<(), DriverError> {
    let mut b = dev
        .stream
        .launch_builder(&dev.kernels.linear_forward[launch.kernel(dev)]);
    b.arg(&launch.problems)
        .arg(input)
        .arg(params)
        .arg(acts)
        .arg(members.hparams);
    match members.state {
        Some(s) => b.arg(s),
        None => b.arg(&NULL),
    };
    // SAFETY: the problems were built from layouts inside these buffers' lengths; the
    // argument list matches the kernel's signature.
    unsafe { b.launch(launch.config()) }.map(drop)
}

pub fn backward_x(
    dev: &Device,
    launch: &GemmLaunch,
    deltas: &CudaSlice<f32>,
    params: &CudaSlice<f32>,
    acts: &CudaSlice<f32>,
    members: &Members<'_>,
    state: &CudaSlice<MemberState>,
) -> Result<(), DriverError> {
    let mut b = dev
        .stream
        .launch_builder(&dev.kernels.linear_backward_x[launch.kernel(dev)]);
    b.arg(&launch.problems)
        .arg(deltas)
        .arg(params)
        .arg(deltas)
        .arg(acts)
        .arg(members.hparams)
        .arg(state);
    // SAFETY: as in `forward`.
    unsafe { b.launch(launch.config()) }.map(drop)
}

#[allow(clippy::too_many_arguments)]
pub fn backward_w(
    dev: &Device,
    launch: &GemmLaunch,
    input: &CudaSlice<f32>,
    deltas: &CudaSlice<f32>,
    params: &CudaSlice<f32>,
    moments: (&CudaSlice<f32>, &CudaSlice<f32>),
    hparams: &CudaSlice<MemberHparams>,
    state: &CudaSlice<MemberState>,
) -> Result<(), DriverError> {
    let mut b = dev
        .stream
        .launch_builder(&dev.kernels.linear_backward_w[launch.kernel(dev)]);
    b.arg(&launch.problems)
        .arg(input)
        .arg(deltas)
        .arg(params)
        .arg(moments.0)
        .arg(moments.1)
        .arg(hparams)
        .arg(state);
    // SAFETY: as in `forward`.
    unsafe { b.launch(launch.config()) }.map(drop)
}

/// The GEMM kernel's own throughput on one `n³` product (GFLOP/s, best of 3): the
/// ceiling the population step is compared with on the GPU, measured in the same run.
pub fn gemm_ceiling_gflops(dev: &Device, n: usize) -> Result<f64, DriverError> {
    let m = MemberLayout {
        dims: vec![n - 1, n],
        param_off: 0,
        act_off: vec![0],
        member: 0,
    };
    // A 1-layer "model" with n−1 inputs: the bias row makes K = n.
    let launch = GemmLaunch::new(dev, &[problem(Pass::Forward, &m, 0, n)])?;
    let fill = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect()
    };
    let a = dev.upload(Transfer::Data, &fill(n * (n - 1)))?;
    let b = dev.upload(Transfer::Data, &fill(n * n))?;
    let c = dev.stream.alloc_zeros::<f32>(n * n)?;
    let hp = dev.upload(Transfer::Layout, &[MemberHparams::default()])?;
    let members = Members {
        hparams: &hp,
        state: None,
    };
    forward(dev, &launch, &a, &b, &c, &members)?;
    dev.stream.synchronize()?;
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = std::time::Instant::now();
        forward(dev, &launch, &a, &b, &c, &members)?;
        dev.stream.synchronize()?;
        best = best.max(2.0 * (n * n * n) as f64 / start.elapsed().as_secs_f64() / 1e9);
    }
    Ok(best)
}
