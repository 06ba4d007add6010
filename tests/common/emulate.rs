//! Running kernels of kernels/*.cu on the CPU for the emulation tests
//! (tests/kernel_emulation.rs, tests/plan_emulation.rs): the harness (tests/emulate/),
//! compiled once per test binary, runs plans (`backend::cuda::plan`) on buffers given by
//! role, and the helpers those tests share.

use popsweep::backend::cuda::layout::{MemberHparams, MemberState};
use popsweep::backend::cuda::network::{NetworkPlan, Table};
use popsweep::backend::cuda::plan::{Arg, Buffer, Launch};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The harness, compiled once per test run; `None` after printing why the test skips.
pub fn harness() -> Option<&'static Path> {
    static EXE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let exe = EXE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-harness");
        let compiler = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        let status = Command::new(&compiler)
            .args(["-std=c++20", "-O1", "-pthread", "-w"])
            .arg(root.join("tests/emulate/harness.cpp"))
            .arg("-o")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => Ok(out),
            Ok(s) => panic!("tests/emulate/harness.cpp does not compile with {compiler} ({s})"),
            Err(e) => Err(format!("{compiler}: {e}")),
        }
    });
    match exe {
        Ok(path) => Some(path),
        Err(why) => {
            println!("SKIP: no C++ compiler: {why}");
            None
        }
    }
}

/// Bytes of a slice of plain C-layout values.
pub fn bytes<T: Copy>(v: &[T]) -> Vec<u8> {
    // SAFETY: `T` is a `#[repr(C)]` mirror or a primitive without padding (sizes asserted
    // in layout.rs); reading its bytes is reading initialised memory.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
        .to_vec()
}

pub fn values<T: Copy>(b: &[u8]) -> Vec<T> {
    let n = std::mem::size_of::<T>();
    b.chunks_exact(n)
        // SAFETY: each chunk holds the bytes of one `T` written by the harness.
        .map(|c| unsafe { std::ptr::read_unaligned(c.as_ptr().cast::<T>()) })
        .collect()
}

/// Runs `launches` in order in the harness, on `buffers`; every buffer a launch names comes
/// back as the kernels left it.
pub fn run(exe: &Path, launches: &[Launch], buffers: &mut BTreeMap<Buffer, Vec<u8>>) {
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "emulate-{}-{}",
        std::process::id(),
        CASE.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut script = String::new();
    for launch in launches {
        let (g, b) = (launch.config.grid_dim, launch.config.block_dim);
        let name = launch.kernel.name();
        script += &format!(
            "launch {name} {} {} {} {} {} {}\n",
            g.0, g.1, g.2, b.0, b.1, b.2
        );
        for arg in &launch.args {
            script += &match arg {
                Arg::Buf(buffer) => {
                    let data = buffers
                        .get(buffer)
                        .unwrap_or_else(|| panic!("{name} reads {buffer:?}, which the test lacks"));
                    std::fs::write(dir.join(format!("{}.bin", buffer.file_name())), data).unwrap();
                    format!("buf {}\n", buffer.file_name())
                }
                Arg::Int(v) => format!("int {v}\n"),
                Arg::Float(v) => format!("float {v:e}\n"),
                Arg::Null => "null\n".to_string(),
            };
        }
    }
    std::fs::write(dir.join("launch.txt"), script).unwrap();
    let status = Command::new(exe).arg(&dir).status().unwrap();
    assert!(status.success(), "the harness failed: {status}");
    for (buffer, data) in buffers.iter_mut() {
        if let Ok(out) = std::fs::read(dir.join(format!("{}.out", buffer.file_name()))) {
            *data = out;
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Largest difference relative to the reference's largest magnitude.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}[{i}]: kernel {g}, CPU twin {w} (scale {scale})"
        );
    }
}

pub fn alive(members: usize) -> Vec<MemberState> {
    (0..members)
        .map(|_| MemberState {
            alive: 1,
            ..Default::default()
        })
        .collect()
}

fn table_bytes(table: &Table<'_>) -> Vec<u8> {
    match table {
        Table::Conv(t) => bytes(t),
        Table::Pool(t) => bytes(t),
        Table::Norm(t) => bytes(t),
        Table::Element(t) => bytes(t),
        Table::Token(t) => bytes(t),
        Table::LayerNorm(t) => bytes(t),
        Table::Attention(t) => bytes(t),
        Table::Loss(t) => bytes(t),
        Table::Ranges(t) => bytes(t),
    }
}

/// The buffers of a population laid out by `plan`, as the device holds them before its
/// first step: `members`' initial weights and zero moments, alive at step 0, reading
/// `data` in `order`.
pub fn network_buffers(
    plan: &NetworkPlan,
    specs: &[popsweep::model::MemberSpec],
    data: &popsweep::data::Dataset,
) -> BTreeMap<Buffer, Vec<u8>> {
    let params: Vec<f32> = specs
        .iter()
        .flat_map(|s| s.arch.init_params(s.seed))
        .collect();
    let lengths = plan.buffer_lengths();
    let hparams: Vec<MemberHparams> = specs.iter().map(MemberHparams::of).collect();
    let order: Vec<u32> = (0..data.len() as u32).collect();
    let mut buffers = BTreeMap::from([
        (Buffer::Features, bytes(&data.features)),
        (Buffer::Labels, bytes(&data.labels)),
        (Buffer::Order, bytes(&order)),
        (Buffer::Acts, bytes(&vec![0.0f32; lengths.acts])),
        (Buffer::Deltas, bytes(&vec![0.0f32; lengths.acts])),
        (Buffer::Targets, bytes(&vec![0u32; plan.capacity()])),
        (Buffer::Picks, bytes(&vec![0u32; lengths.picks.max(1)])),
        (Buffer::Stats, bytes(&vec![0.0f32; lengths.stats.max(1)])),
        (Buffer::Skips, bytes(&vec![0.0f32; lengths.skips.max(1)])),
        (Buffer::Saved, bytes(&vec![0.0f32; lengths.saved.max(1)])),
        (
            Buffer::Weights,
            bytes(&vec![0.0f32; lengths.weights.max(1)]),
        ),
        (Buffer::Grad, bytes(&vec![0.0f32; params.len()])),
        (Buffer::Moment1, bytes(&vec![0.0f32; params.len()])),
        (Buffer::Moment2, bytes(&vec![0.0f32; params.len()])),
        (Buffer::Params, bytes(&params)),
        (Buffer::Hparams, bytes(&hparams)),
        (Buffer::State, bytes(&alive(specs.len()))),
    ]);
    for (buffer, table) in plan.tables() {
        buffers.insert(buffer, table_bytes(&table));
    }
    buffers
}
