//! Opening the GPU: the driver library, a context and stream, and the embedded kernels.
//!
//! cudarc loads libcuda at run time, so the binary builds and starts with no CUDA installed;
//! every way of not having a usable GPU becomes an [`Unavailable`] with the reason, never a
//! panic (cudarc panics if a context is created without libcuda, hence the check first).

use super::layout::GemmTile;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr,
    DriverError, ValidAsZeroBits,
};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// Why the CUDA backend cannot run here.
#[derive(Clone, Debug, PartialEq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no CUDA device: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// What a copy between host and device carries. Every copy the backend makes goes through
/// [`Device::upload`] or [`Device::download`] and is counted under one of these, so a test
/// can assert that the population stays on the device between epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// The training and validation sets (once per population).
    Data,
    /// Launch tables, hyperparameters and member state, written when the population's
    /// shape changes (insert, retain, copy, new hyperparameters).
    Layout,
    /// Weights and optimizer moments: a new member's initial state, an import, an export.
    Weights,
    /// The epoch's row order (4 bytes a row, every epoch).
    Order,
    /// The per-member sums read back after every epoch.
    Metrics,
}

impl Transfer {
    pub const ALL: [Transfer; 5] = [
        Transfer::Data,
        Transfer::Layout,
        Transfer::Weights,
        Transfer::Order,
        Transfer::Metrics,
    ];
}

/// Every kernel the backend launches, one field per `extern "C"` entry of `kernels/`.
pub struct Kernels {
    pub gather_rows: CudaFunction,
    pub advance_cursor: CudaFunction,
    /// Per tile shape and mode (`Kernels::gemm_index`): the three passes of
    /// `kernels/linear.cu`.
    pub linear_forward: [CudaFunction; 4],
    pub linear_backward_x: [CudaFunction; 4],
    pub linear_backward_w: [CudaFunction; 4],
    pub softmax_cross_entropy: CudaFunction,
    pub optimizer_step: CudaFunction,
    pub prepare_step: CudaFunction,
    pub clear_epoch_sums: CudaFunction,
    pub check_params: CudaFunction,
    /// The layered networks' kernels (`network.rs`): conv.cu, pool.cu, norm.cu,
    /// activation.cu, dropout.cu, tokens.cu and attention.cu.
    pub conv_forward: CudaFunction,
    pub conv_backward_x: CudaFunction,
    pub conv_backward_w: CudaFunction,
    pub pool_forward: CudaFunction,
    pub pool_backward: CudaFunction,
    pub batch_norm_stats: CudaFunction,
    pub batch_norm_forward: CudaFunction,
    pub batch_norm_backward: CudaFunction,
    pub batch_norm_running: CudaFunction,
    pub activation_forward: CudaFunction,
    pub activation_backward: CudaFunction,
    pub token_forward: CudaFunction,
    pub token_backward: CudaFunction,
    pub layer_norm_forward: CudaFunction,
    pub layer_norm_backward: CudaFunction,
    pub layer_norm_params: CudaFunction,
    pub attention_forward: CudaFunction,
    pub attention_backward: CudaFunction,
    pub dropout_forward: CudaFunction,
    pub dropout_backward: CudaFunction,
}

impl Kernels {
    /// Index into the GEMM entry points: 64, 128 blocked, 128 split, 128 TF32 (the 64
    /// tile has one fp32 form).
    pub fn gemm_index(tile: GemmTile, mode: GemmMode) -> usize {
        match (tile, mode) {
            (GemmTile::Small, _) => 0,
            (GemmTile::Large, GemmMode::Blocked) => 1,
            (GemmTile::Large, GemmMode::Split) => 2,
            (GemmTile::Large, GemmMode::Tf32) => 3,
        }
    }
}

/// How the 128-tile GEMMs multiply (`POPSWEEP_GEMM=blocked|split|tf32`, default split):
/// fp32 with each thread's outputs blocked or split (the same sums in the same order), or
/// TF32 tensor cores — opt in, since TF32 rounds inputs to 10 mantissa bits and no longer
/// equals the CPU twin to fp32 tolerances (PyTorch's `allow_tf32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmMode {
    Blocked,
    Split,
    Tf32,
}

impl GemmMode {
    pub fn name(self) -> &'static str {
        match self {
            GemmMode::Blocked => "blocked",
            GemmMode::Split => "split",
            GemmMode::Tf32 => "tf32",
        }
    }
}

/// A context on GPU 0, the one stream everything is ordered on, and the loaded kernels.
pub struct Device {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub kernels: Kernels,
    pub name: String,
    /// How the 128-tile GEMMs multiply (a `GemmMode` as u8).
    gemm: AtomicU8,
    /// Whether every GEMM uses 64-wide tiles (`POPSWEEP_GEMM_TILES=small`), rather than
    /// 128-wide ones for large problems.
    small_tiles: AtomicBool,
    /// Whether training steps are captured as a CUDA graph and replayed (unless
    /// `POPSWEEP_CUDA_GRAPH=0`).
    graphs: AtomicBool,
    /// Bytes copied between host and device, both ways, per [`Transfer`] kind.
    transferred: [AtomicU64; 5],
}

#[cfg(popsweep_kernels)]
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

impl Device {
    pub fn open() -> Result<Arc<Device>, Unavailable> {
        // SAFETY: only tries to dlopen the driver library; no CUDA call is made.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(Unavailable(
                "libcuda (the NVIDIA driver) is not installed".into(),
            ));
        }
        let count = CudaContext::device_count()
            .map_err(|e| Unavailable(format!("the driver found no device ({e})")))?;
        if count < 1 {
            return Err(Unavailable("the driver reports 0 devices".into()));
        }
        let ctx =
            CudaContext::new(0).map_err(|e| Unavailable(format!("cannot open GPU 0: {e}")))?;
        // One stream orders everything, so cudarc's per-buffer event tracking only adds cost.
        // SAFETY: no buffer is shared with another stream.
        unsafe { ctx.disable_event_tracking() };
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        // A stream of our own: the legacy default stream cannot be captured into a graph.
        let stream = ctx
            .new_stream()
            .map_err(|e| Unavailable(format!("cannot create a stream: {e}")))?;
        let kernels = load_kernels(&ctx)?;
        let setting = |var: &str, off: &str| std::env::var(var).map_or(true, |v| v != off);
        Ok(Arc::new(Device {
            ctx,
            stream,
            kernels,
            name,
            gemm: AtomicU8::new(match std::env::var("POPSWEEP_GEMM").as_deref() {
                Ok("blocked") => GemmMode::Blocked,
                Ok("tf32") => GemmMode::Tf32,
                _ => GemmMode::Split,
            } as u8),
            small_tiles: AtomicBool::new(!setting("POPSWEEP_GEMM_TILES", "small")),
            graphs: AtomicBool::new(setting("POPSWEEP_CUDA_GRAPH", "0")),
            transferred: Default::default(),
        }))
    }

    fn count<T>(&self, what: Transfer, len: usize) {
        let bytes = (len * std::mem::size_of::<T>()) as u64;
        self.transferred[what as usize].fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes copied between host and device so far under `what`.
    pub fn transferred(&self, what: Transfer) -> u64 {
        self.transferred[what as usize].load(Ordering::Relaxed)
    }

    /// `v` in a new device buffer, counted under `what`. An empty `v` gives a one-element
    /// zeroed buffer: a zero-length device buffer is not an allocation.
    pub fn upload<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        what: Transfer,
        v: &[T],
    ) -> Result<CudaSlice<T>, DriverError> {
        if v.is_empty() {
            return self.stream.alloc_zeros(1);
        }
        self.count::<T>(what, v.len());
        self.stream.clone_htod(v)
    }

    /// `v` into the start of `dst`, counted under `what`.
    pub fn upload_into<T: DeviceRepr, D: DevicePtrMut<T>>(
        &self,
        what: Transfer,
        v: &[T],
        dst: &mut D,
    ) -> Result<(), DriverError> {
        self.count::<T>(what, v.len());
        self.stream.memcpy_htod(v, dst)
    }

    /// A device buffer (or view) copied to the host, counted under `what`; waits for it.
    pub fn download<T: DeviceRepr, S: DevicePtr<T>>(
        &self,
        what: Transfer,
        src: &S,
    ) -> Result<Vec<T>, DriverError> {
        self.count::<T>(what, src.len());
        let v = self.stream.clone_dtoh(src)?;
        self.stream.synchronize()?;
        Ok(v)
    }

    pub fn gemm_mode(&self) -> GemmMode {
        match self.gemm.load(Ordering::Relaxed) {
            0 => GemmMode::Blocked,
            1 => GemmMode::Split,
            _ => GemmMode::Tf32,
        }
    }

    /// Chooses the 128-tile GEMM mode for later launches (the parity tests check each).
    pub fn set_gemm_mode(&self, mode: GemmMode) {
        self.gemm.store(mode as u8, Ordering::Relaxed);
    }

    pub fn small_tiles(&self) -> bool {
        self.small_tiles.load(Ordering::Relaxed)
    }

    pub fn graphs(&self) -> bool {
        self.graphs.load(Ordering::Relaxed)
    }

    /// Chooses whether later training steps are replayed from a CUDA graph.
    pub fn set_graphs(&self, on: bool) {
        self.graphs.store(on, Ordering::Relaxed);
    }
}

#[cfg(not(popsweep_kernels))]
fn load_kernels(_: &Arc<CudaContext>) -> Result<Kernels, Unavailable> {
    Err(Unavailable(
        "this binary was built with feature cuda but without nvcc, so it holds no kernels \
         (set NVCC or CUDA_HOME and rebuild)"
            .into(),
    ))
}

#[cfg(popsweep_kernels)]
fn load_kernels(ctx: &Arc<CudaContext>) -> Result<Kernels, Unavailable> {
    use cudarc::driver::CudaModule;
    use cudarc::nvrtc::Ptx;
    let module = |name: &str| -> Result<Arc<CudaModule>, Unavailable> {
        let (_, fatbin, ptx) = embedded::MODULES
            .iter()
            .find(|m| m.0 == name)
            .ok_or_else(|| Unavailable(format!("kernel module {name} is not embedded")))?;
        // The fatbin's sm_90 code loads on Hopper; other GPUs JIT its compute_80 PTX, and
        // the standalone PTX is the last resort.
        ctx.load_module(Ptx::from_binary(fatbin.to_vec()))
            .or_else(|_| ctx.load_module(Ptx::from_src(*ptx)))
            .map_err(|e| Unavailable(format!("cannot load kernels/{name}.cu: {e}")))
    };
    let function = |m: &Arc<CudaModule>, name: &str| {
        m.load_function(name)
            .map_err(|e| Unavailable(format!("kernel {name} missing: {e}")))
    };
    let (gather, linear, loss, optim, epoch) = (
        module("gather")?,
        module("linear")?,
        module("loss")?,
        module("optim")?,
        module("epoch")?,
    );
    let (conv, pool, norm, activation, dropout) = (
        module("conv")?,
        module("pool")?,
        module("norm")?,
        module("activation")?,
        module("dropout")?,
    );
    let (tokens, attention) = (module("tokens")?, module("attention")?);
    // In `Kernels::gemm_index` order.
    let gemm = |pass: &str| -> Result<[CudaFunction; 4], Unavailable> {
        Ok([
            function(&linear, &format!("{pass}_64"))?,
            function(&linear, &format!("{pass}_128"))?,
            function(&linear, &format!("{pass}_128s"))?,
            function(&linear, &format!("{pass}_128t"))?,
        ])
    };
    Ok(Kernels {
        gather_rows: function(&gather, "gather_rows")?,
        advance_cursor: function(&gather, "advance_cursor")?,
        linear_forward: gemm("linear_forward")?,
        linear_backward_x: gemm("linear_backward_x")?,
        linear_backward_w: gemm("linear_backward_w")?,
        softmax_cross_entropy: function(&loss, "softmax_cross_entropy")?,
        optimizer_step: function(&optim, "optimizer_step")?,
        prepare_step: function(&optim, "prepare_step")?,
        clear_epoch_sums: function(&epoch, "clear_epoch_sums")?,
        check_params: function(&epoch, "check_params")?,
        conv_forward: function(&conv, "conv_forward")?,
        conv_backward_x: function(&conv, "conv_backward_x")?,
        conv_backward_w: function(&conv, "conv_backward_w")?,
        pool_forward: function(&pool, "pool_forward")?,
        pool_backward: function(&pool, "pool_backward")?,
        batch_norm_stats: function(&norm, "batch_norm_stats")?,
        batch_norm_forward: function(&norm, "batch_norm_forward")?,
        batch_norm_backward: function(&norm, "batch_norm_backward")?,
        batch_norm_running: function(&norm, "batch_norm_running")?,
        activation_forward: function(&activation, "activation_forward")?,
        activation_backward: function(&activation, "activation_backward")?,
        token_forward: function(&tokens, "token_forward")?,
        token_backward: function(&tokens, "token_backward")?,
        layer_norm_forward: function(&norm, "layer_norm_forward")?,
        layer_norm_backward: function(&norm, "layer_norm_backward")?,
        layer_norm_params: function(&norm, "layer_norm_params")?,
        attention_forward: function(&attention, "attention_forward")?,
        attention_backward: function(&attention, "attention_backward")?,
        dropout_forward: function(&dropout, "dropout_forward")?,
        dropout_backward: function(&dropout, "dropout_backward")?,
    })
}
