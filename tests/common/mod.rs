//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

pub mod cdp;
#[cfg(feature = "cuda")]
pub mod emulate;
pub mod pg;
pub mod served;

use popsweep::backend::cpu::CpuBackend;
use popsweep::backend::{Backend, EpochPlan};
use popsweep::config::Sweep;
use popsweep::data::Dataset;
use popsweep::data::{digits, split_stratified, SplitFractions, TuningData};
use popsweep::error::Result;
use popsweep::model::hparams::OptimHparams;
use popsweep::model::{Arch, Hparams, MemberSpec};
use popsweep::population::Population;
use popsweep::report::run_files::RunFiles;
use popsweep::rng::{permutation, Stream};
use popsweep::storage::{OpsIn, RunStorage, Storage};
use popsweep::sweep::{prepare_data, run_sweep, SweepOutcome};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn digits_tuning() -> TuningData {
    split_stratified(&digits::load().unwrap(), SplitFractions::default(), 11).0
}

pub fn spec(hidden: &[usize], lr: f32, momentum: f32, dropout: f32, seed: u64) -> MemberSpec {
    MemberSpec {
        arch: Arch::mlp(64, hidden, 10),
        hparams: Hparams {
            optim: OptimHparams::sgd(lr, momentum, 1e-4),
            dropout,
            attn_dropout: 0.0,
            augment: Default::default(),
            batch_size: None,
        },
        seed,
        fold: None,
    }
}

/// CNNs of different filters, depths, kernel sizes, pooling, batch norm and spatial
/// dropout, beside an MLP, on the 8×8 digits.
pub fn ragged_cnns() -> Vec<MemberSpec> {
    use popsweep::model::cnn::{CnnSpec, ImageShape};
    let digits = ImageShape::square(64).unwrap();
    let cnn = |filters, layers, kernel_size, (global_pool, batch_norm), lr, seed| {
        let spec = CnnSpec {
            filters,
            layers,
            kernel_size,
            global_pool,
            batch_norm,
            // The batch-norm member drops whole channels too.
            spatial_dropout: batch_norm,
            fc_width: 16,
            ..CnnSpec::default()
        };
        MemberSpec {
            arch: Arch::cnn(
                digits,
                &spec,
                popsweep::model::hparams::Activation::Relu,
                10,
            )
            .unwrap(),
            ..spec_with(lr, seed)
        }
    };
    vec![
        cnn(4, 1, 5, (false, false), 0.003, 1),
        cnn(8, 2, 3, (false, false), 0.003, 2),
        cnn(8, 2, 3, (true, false), 0.01, 3),
        spec(&[16], 0.05, 0.9, 0.0, 4),
        cnn(3, 3, 1, (false, false), 0.003, 5),
        cnn(6, 2, 3, (false, true), 0.003, 6),
    ]
}

/// Vision transformers of heads {1, 2, 4}, widths {32, 64} and depths {1, 2} (one with
/// attention dropout, one with a class token) beside an MLP, on the 8×8 digits cut into
/// 2×2 patches (16 tokens).
pub fn ragged_vits() -> Vec<MemberSpec> {
    use popsweep::data::ImageShape;
    use popsweep::model::vit::{VitPool, VitSpec};
    let digits = ImageShape::square(64).unwrap();
    let vit = |(heads, d_model, layers), pool, seed| {
        let spec = VitSpec {
            patch: 2,
            d_model,
            heads,
            layers,
            mlp_ratio: 2,
            pool,
        };
        MemberSpec {
            arch: Arch::vit(digits, &spec, 10).unwrap(),
            ..spec_with(0.005, seed)
        }
    };
    let mut dropping = vit((2, 64, 2), VitPool::Mean, 5);
    dropping.hparams.attn_dropout = 0.1;
    vec![
        vit((1, 32, 1), VitPool::Mean, 1),
        vit((2, 32, 2), VitPool::Class, 2),
        vit((4, 64, 1), VitPool::Mean, 3),
        spec(&[16], 0.05, 0.9, 0.0, 4),
        dropping,
    ]
}

/// [`ragged_vits`] for comparisons across backends, with SGD: a key's bias has an exactly
/// zero gradient (adding it shifts a query's every score alike, which the softmax
/// ignores), which each backend computes as rounding noise, and AdamW normalises that
/// noise into steps of about the learning rate, different on each side.
pub fn ragged_vits_for_parity() -> Vec<MemberSpec> {
    let mut specs = ragged_vits();
    for s in &mut specs {
        s.hparams.optim = OptimHparams::sgd(0.05, 0.9, 1e-4);
    }
    specs
}

/// [`ragged_cnns`] for comparisons across backends: the batch-norm member trains with SGD.
/// The bias of a convolution before batch norm has an exactly zero gradient, which each
/// backend computes as rounding noise of ~1e-9 in its own order, and AdamW normalises
/// that noise into steps of about the learning rate (different on each side), where SGD
/// scales it by the learning rate.
pub fn ragged_cnns_for_parity() -> Vec<MemberSpec> {
    let mut specs = ragged_cnns();
    let bn = specs.len() - 1;
    assert!(
        !specs[bn].arch.state_offsets().is_empty(),
        "the last member has batch norm"
    );
    specs[bn].hparams.optim = OptimHparams::sgd(0.03, 0.9, 1e-4);
    specs
}

/// AdamW (the usual optimizer for CNNs; SGD at one rate suits neither every depth nor
/// global pooling on raw pixels), dropout 0.1.
pub fn spec_with(lr: f32, seed: u64) -> MemberSpec {
    let mut s = spec(&[8], lr, 0.9, 0.1, seed);
    s.hparams.optim.kind = popsweep::model::hparams::OptimizerKind::AdamW;
    s
}

/// Relative L2 distance of `got` (a GPU's output) from `want`; every value of `got` must be
/// finite.
pub fn rel_error(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|v| v.is_finite()), "non-finite GPU output");
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let den: f64 = want.iter().map(|b| f64::from(*b).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// One epoch of the same members on two backends, alike: each member's weights within
/// `tol` (relative L2), the same steps, train and validation losses within `tol` relative,
/// validation accuracy within two of `val_rows` rows; and some member learned.
pub fn assert_epoch_alike(on_gpu: &Population, on_cpu: &Population, val_rows: usize, tol: f64) {
    for slot in 0..on_cpu.len() {
        let err = rel_error(on_gpu.params(slot), on_cpu.params(slot));
        assert!(err < tol, "member {slot}: weights differ by {err}");
        let (g, c) = (&on_gpu.members()[slot], &on_cpu.members()[slot]);
        assert_eq!(g.steps, c.steps);
        let (hg, hc) = (&g.history[0], &c.history[0]);
        assert!((hg.train_loss - hc.train_loss).abs() < tol * hc.train_loss);
        assert!((hg.val_loss - hc.val_loss).abs() < tol * hc.val_loss);
        assert!((hg.val_accuracy - hc.val_accuracy).abs() <= 2.0 / val_rows as f64);
    }
    let best = (on_gpu.members().iter())
        .map(|m| m.history[0].val_accuracy)
        .fold(0.0, f64::max);
    assert!(best > 0.5, "training learned nothing (best {best})");
}

/// Trains `specs` together as one population for `epochs` epochs with shared minibatches.
pub fn train_together(
    specs: &[MemberSpec],
    data: &TuningData,
    epochs: usize,
    threads: usize,
) -> Population {
    train_on(&CpuBackend::new(threads), specs, data, epochs)
}

/// As [`train_together`], on any backend.
pub fn train_on(
    backend: &dyn Backend,
    specs: &[MemberSpec],
    data: &TuningData,
    epochs: usize,
) -> Population {
    let mut pop = Population::new();
    for (trial, spec) in specs.iter().enumerate() {
        pop.insert(trial, spec.clone());
    }
    for epoch in 0..epochs {
        let plan = EpochPlan {
            order: permutation(data.train.len(), 99, Stream::Shuffle, epoch as u32),
            batch_size: 32,
        };
        backend
            .train_epoch(&mut pop, &data.train, &data.val, &plan)
            .unwrap();
    }
    pop
}

/// Runs `sweep` on `data` with the CPU backend (2 threads), its run directory a fresh
/// temporary one named by `tag` and removed afterwards.
pub fn run_sweep_on(sweep: &Sweep, data: &Dataset, tag: &str) -> Result<SweepOutcome> {
    let (tuning, held_out) = prepare_data(sweep, data);
    let dir = std::env::temp_dir().join(format!("popsweep-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let storage = RunStorage::create(&dir, OpsIn::Memory)?;
    let outcome = run_sweep(
        sweep,
        &tuning,
        held_out,
        &CpuBackend::new(2),
        Box::new(storage),
        &RunFiles::new(&dir),
        &mut |_| {},
    );
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// An NPY v1 file: `descr` such as `<f4`, `shape` as Python writes it, then `data`.
pub fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// `popsweep run` on `yaml`, written as `NAME.yaml` in a temporary folder of `tag`'s; the
/// output and the run directory (`NAME.run`, removed first).
pub fn run_sweep_text(tag: &str, name: &str, yaml: &str) -> (Output, PathBuf) {
    let dir = std::env::temp_dir().join(format!("popsweep-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    let out_dir = dir.join(format!("{name}.run"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (out, out_dir)
}

/// A run directory's trial records as JSON, read as popsweep reads them (checksums
/// checked), in the order recorded.
pub fn record_values(dir: &Path) -> Vec<serde_json::Value> {
    RunStorage::read(dir)
        .unwrap()
        .records()
        .unwrap()
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

/// What Optuna itself reads from `journal` (tests/fixtures/load_optuna_journal.py), or
/// `None` without a Python that has optuna.
pub fn optuna_reads(journal: &Path) -> Option<serde_json::Value> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/load_optuna_journal.py");
    let out = Command::new(python()?)
        .arg(script)
        .arg(journal)
        .output()
        .unwrap();
    Some(serde_json::from_str(&ok(&out)).unwrap())
}

pub fn python() -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var_os("POPSWEEP_OPTUNA_PYTHON")?);
    let probe = Command::new(&python)
        .args(["-c", "import optuna"])
        .output()
        .ok()?;
    probe.status.success().then_some(python)
}

/// Runs the popsweep binary with `args`.
pub fn popsweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(args)
        .output()
        .unwrap()
}

/// `popsweep run SWEEP --out DIR --quiet --no-sanity`, which must succeed.
pub fn run_quietly(sweep: &Path, out: &Path) {
    ok(&popsweep(&[
        "run",
        sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--no-sanity",
    ]));
}

/// The stdout of a command that must succeed (its stderr in the failure).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
