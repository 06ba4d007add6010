//! A CNN sweep end to end on the embedded digits: trials whose geometry does not fit the
//! 8×8 images, and trials over the FLOPs budget, are recorded failed untrained with the
//! reason; the others train, and every record carries its model's size.

mod common;

use popsweep::config;
use popsweep::data::digits;
use popsweep::model::cnn::{CnnSpec, ImageShape};
use popsweep::model::hparams::Activation;
use popsweep::model::Arch;
use popsweep::space::ParamValue;
use popsweep::storage::TrialState;

const SWEEP: &str = "
name: cnn-digits
method: grid
metric: {name: val_accuracy, goal: maximize}
model: {type: cnn, layers: 2, fc_width: 16, max_flops: 150000}
train: {epochs: 2, batch_size: 32, optimizer: adamw, lr: 0.003}
parameters:
  filters: {values: [4, 16]}
  kernel_size: {values: [3, 5]}
";

#[test]
fn a_cnn_sweep_refuses_what_does_not_fit_and_sizes_every_trial() {
    let sweep = config::parse(SWEEP, "cnn.yaml").unwrap();
    let outcome = common::run_sweep_on(&sweep, &digits::load().unwrap(), "cnn-sweep").unwrap();
    assert_eq!(outcome.trials.len(), 4);
    let int = |r: &popsweep::storage::TrialRecord, k: &str| match r.params[k] {
        ParamValue::Int(v) => v as usize,
        ref other => panic!("{k} = {other}"),
    };
    let digits_image = ImageShape::square(64).unwrap();
    for r in &outcome.trials {
        let (filters, kernel) = (int(r, "filters"), int(r, "kernel_size"));
        let error = r.error.clone().unwrap_or_default();
        if kernel == 5 {
            // 8×8 → pool → 4×4: a 5×5 kernel does not fit the second convolution.
            assert_eq!(r.state, TrialState::Failed, "{r:?}");
            assert!(
                error.contains("kernel_size 5 is larger than the 4×4 input of convolution 2"),
                "{error}"
            );
            assert_eq!((r.param_count, r.flops_per_sample, r.epochs), (0, 0, 0));
            continue;
        }
        let spec = CnnSpec {
            filters,
            layers: 2,
            kernel_size: kernel,
            fc_width: 16,
            ..CnnSpec::default()
        };
        let arch = Arch::cnn(digits_image, &spec, Activation::Relu, 10).unwrap();
        assert_eq!(r.param_count, arch.param_count());
        assert_eq!(r.flops_per_sample, 2 * arch.macs_per_sample());
        if r.flops_per_sample > 150_000 {
            assert_eq!(r.state, TrialState::Failed, "{r:?}");
            assert!(
                error.contains("exceed the budget model.max_flops = 150000"),
                "{error}"
            );
            assert_eq!(r.epochs, 0);
        } else {
            assert_eq!(r.state, TrialState::Complete, "{r:?}");
            assert!(r.history[1].val_accuracy > 0.5, "{:?}", r.history);
        }
    }
    // Both budget outcomes occur, so the branches above are not vacuous.
    assert!(outcome
        .trials
        .iter()
        .any(|r| r.state == TrialState::Complete));
    assert!(outcome
        .trials
        .iter()
        .any(|r| r.error.as_deref().is_some_and(|e| e.contains("max_flops"))));
}

/// An NPY array `(N, C, H, W)` is an image set of that shape: a CNN sweep over it needs no
/// `data.shape`, its members are built for two-channel 6×6 images, and its augmentation
/// moves such images (neither refused as non-square rows of 72 features).
#[test]
fn an_npy_image_array_keeps_its_shape_for_a_cnn() {
    let dir = std::env::temp_dir().join(format!("popsweep-cnn-npy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rows = 60;
    let pixels: Vec<u8> = (0..rows * 72)
        .flat_map(|i| (((i * 37) % 11) as f32 / 11.0).to_le_bytes())
        .collect();
    let labels: Vec<u8> = (0..rows)
        .flat_map(|i| ((i % 3) as i64).to_le_bytes())
        .collect();
    std::fs::write(
        dir.join("x.npy"),
        common::npy("<f4", "(60, 2, 6, 6)", &pixels),
    )
    .unwrap();
    std::fs::write(dir.join("y.npy"), common::npy("<i8", "(60,)", &labels)).unwrap();
    // Shift and flip move two-channel images (every channel alike), which rows of 72
    // features as square images would not allow.
    let sweep = "name: npy-cnn\nmethod: random\nmetric: {name: val_loss}\nrun_cap: 2\n\
                 model: {type: cnn, filters: 3, layers: 1, fc_width: 4}\n\
                 train: {epochs: 1, shift: 1, flip: true}\n\
                 data: {format: npy, features: x.npy, labels: y.npy}\n";
    std::fs::write(dir.join("sweep.yaml"), sweep).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args([
            "run",
            "sweep.yaml",
            "--out",
            "run",
            "--quiet",
            "--no-sanity",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = ImageShape {
        channels: 2,
        height: 6,
        width: 6,
    };
    let spec = CnnSpec {
        filters: 3,
        layers: 1,
        fc_width: 4,
        ..CnnSpec::default()
    };
    let want = Arch::cnn(image, &spec, Activation::Relu, 3)
        .unwrap()
        .param_count();
    let text = std::fs::read_to_string(dir.join("run/trials.jsonl")).unwrap();
    for line in text.lines() {
        let r: popsweep::storage::TrialRecord = serde_json::from_str(line).unwrap();
        assert_eq!(
            (r.state, r.param_count),
            (TrialState::Complete, want),
            "{line}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `batch_norm: true` puts a batch normalisation after every convolution; the records
/// count its scale and shift as parameters but not its running statistics (PyTorch's
/// `parameters()`), and the members learn.
#[test]
fn a_batch_norm_cnn_sweep_trains_and_counts_only_trainable_parameters() {
    let text = "name: bn\nmethod: grid\nmetric: {name: val_accuracy, goal: maximize}\n\
                model: {type: cnn, layers: 2, fc_width: 16, batch_norm: true}\n\
                train: {epochs: 2, batch_size: 32, optimizer: adamw, lr: 0.003}\n\
                parameters:\n  filters: {values: [4, 8]}\n";
    let sweep = config::parse(text, "bn.yaml").unwrap();
    let outcome = common::run_sweep_on(&sweep, &digits::load().unwrap(), "cnn-bn").unwrap();
    assert_eq!(outcome.trials.len(), 2);
    for r in &outcome.trials {
        let filters = match r.params["filters"] {
            ParamValue::Int(v) => v as usize,
            ref other => panic!("filters = {other}"),
        };
        let spec = CnnSpec {
            filters,
            layers: 2,
            fc_width: 16,
            batch_norm: true,
            ..CnnSpec::default()
        };
        let arch = Arch::cnn(ImageShape::square(64).unwrap(), &spec, Activation::Relu, 10).unwrap();
        assert_eq!(r.param_count, arch.trainable_params());
        assert!(arch.param_count() > arch.trainable_params());
        assert_eq!(r.state, TrialState::Complete, "{r:?}");
        assert!(r.history[1].val_accuracy > 0.5, "{:?}", r.history);
    }
}
