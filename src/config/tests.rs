use super::*;
use crate::data::csv::LabelColumn;
use crate::data::Task;
use crate::model::hparams::{Activation, Decay, LrSchedule};
use crate::space::Distribution;

fn error_of(text: &str) -> String {
    parse(text, "s.yaml").unwrap_err().to_string()
}

const BASE: &str = "method: random\nmetric:\n  name: val_accuracy\n  goal: maximize\n";

#[test]
fn default_sweep_is_valid() {
    let sweep = parse(DEFAULT_SWEEP, DEFAULT_SWEEP_NAME).unwrap();
    assert!(sweep.metric.maximize);
    assert!(matches!(sweep.schedule, Schedule::Halving(_)));
    assert!(!sweep.space.params.is_empty());
}

#[test]
fn unknown_key_names_key_and_line() {
    let e = error_of(&format!("{BASE}parameters:\n  lr:\n    mn: 1\n"));
    assert!(
        e.starts_with("s.yaml:7: parameters.lr.mn: unknown field `mn`"),
        "{e}"
    );
    let e = error_of(&format!("{BASE}colour: red\n"));
    assert!(
        e.starts_with("s.yaml:5: colour: unknown field `colour`"),
        "{e}"
    );
}

#[test]
fn min_above_max_names_field_and_line() {
    let text = format!(
        "{BASE}parameters:\n  lr:\n    distribution: uniform\n    min: 0.5\n    max: 0.1\n"
    );
    assert_eq!(
        error_of(&text),
        "s.yaml:8: parameters.lr.min: min 0.5 is greater than max 0.1"
    );
}

#[test]
fn log_distribution_needs_positive_min() {
    let text = format!(
        "{BASE}parameters:\n  weight_decay:\n    distribution: log_uniform_values\n    min: 0\n    max: 0.1\n"
    );
    assert_eq!(
        error_of(&text),
        "s.yaml:8: parameters.weight_decay.min: log_uniform_values is on a log scale and needs min > 0, got 0"
    );
}

#[test]
fn out_of_range_and_wrong_type_values_are_rejected() {
    let e = error_of(&format!(
        "{BASE}parameters:\n  dropout:\n    values: [0.1, 1.5]\n"
    ));
    assert!(
        e.contains("parameters.dropout.values: 1.5 is outside"),
        "{e}"
    );
    let e = error_of(&format!("{BASE}parameters:\n  depth:\n    values: [1.5]\n"));
    assert!(e.contains("depth takes integer values"), "{e}");
    let e = error_of(&format!("{BASE}parameters:\n  colour:\n    values: [1]\n"));
    assert!(
        e.starts_with("s.yaml:6: parameters.colour: unknown parameter"),
        "{e}"
    );
}

#[test]
fn malformed_yaml_reports_a_line() {
    let e = error_of("method: random\nmetric: [unclosed\n");
    assert!(e.starts_with("s.yaml:"), "{e}");
}

#[test]
fn wandb_inference_and_hyperband_from_max_iter_and_s() {
    let text = format!(
        "{BASE}early_terminate:\n  type: hyperband\n  max_iter: 27\n  s: 2\n\
         parameters:\n  depth:\n    min: 1\n    max: 3\n  lr:\n    min: 0.01\n    max: 0.1\n"
    );
    let sweep = parse(&text, "s.yaml").unwrap();
    let dist = |n: &str| sweep.space.get(n).unwrap().dist.clone();
    assert!(matches!(
        dist("depth"),
        Distribution::Int {
            low: 1,
            high: 3,
            ..
        }
    ));
    assert!(matches!(dist("lr"), Distribution::Float { log: false, .. }));
    let Schedule::Halving(sh) = sweep.schedule else {
        panic!("early_terminate gives successive halving")
    };
    assert_eq!((sh.min_budget, sh.max_budget, sh.eta), (3, 27, 3));
}

#[test]
fn data_sources_parse_and_bad_ones_are_named() {
    let idx = parse(
        &format!("{BASE}data:\n  format: idx\n  train_images: a\n  train_labels: b\n  test_images: c\n  test_labels: d\n"),
        "s.yaml",
    )
    .unwrap();
    assert!(matches!(idx.data, DataSource::Idx { test: Some(_), .. }));
    let e = error_of(&format!(
        "{BASE}data:\n  format: idx\n  train_images: a\n  train_labels: b\n  test_images: c\n"
    ));
    assert!(e.contains("give both test_images and test_labels"), "{e}");
    let e = error_of(&format!("{BASE}data:\n  format: parquet\n"));
    assert_eq!(
        e,
        "s.yaml:6: data.format: format `parquet` is not supported (supported: idx, csv, npy)"
    );
    let csv = parse(
        &format!("{BASE}data: {{format: csv, path: x.csv, label: 3}}\n"),
        "s.yaml",
    )
    .unwrap();
    assert!(matches!(
        csv.data,
        DataSource::Csv {
            label: LabelColumn::Index(3),
            ..
        }
    ));
}

#[test]
fn locate_follows_indentation() {
    let text = "a:\n  b: 1\nc:\n  b:\n    d: 2\n";
    assert_eq!(locate(text, &["c", "b", "d"]), Some(5));
    assert_eq!(locate(text, &["a", "b"]), Some(2));
    assert_eq!(locate(text, &["a", "d"]), None);
}

#[test]
fn optimizer_options_and_schedules_parse_and_are_checked() {
    let base = "name: x\nmethod: random\nmetric: {name: val_loss}\nparameters:\n  l1: {distribution: uniform, min: 0, max: 0.001}\n";
    let sweep = parse(
        &format!("{base}train:\n  epochs: 12\n  nesterov: true\n  lr_schedule: {{type: cosine, warmup_epochs: 2}}\n"),
        "s.yaml",
    )
    .unwrap();
    assert!(sweep.defaults.nesterov);
    assert_eq!(
        sweep.defaults.schedule,
        LrSchedule {
            warmup_epochs: 2.0,
            decay: Decay::Cosine { total_epochs: 12.0 }
        }
    );
    let err = |text: &str| {
        parse(&format!("{base}{text}"), "s.yaml")
            .unwrap_err()
            .to_string()
    };
    assert!(err("train: {optimizer: adamw, nesterov: true}\n").contains("train.nesterov"));
    assert!(err("train: {lr_schedule: {type: linear}}\n").contains("unknown schedule `linear`"));
    assert!(err("train: {lr_schedule: {type: step, step_epochs: 0}}\n").contains("step_epochs"));
    assert!(err("train: {l1: -1}\n").contains("train.l1"));
}

#[test]
fn architecture_helpers_parse() {
    let sweep = parse(
        "name: x\nmethod: random\nmetric: {name: val_loss}\nparameters:\n  width: {distribution: pow2, min: 10, max: 300}\nmodel: {max_params: 50000}\n",
        "s.yaml",
    )
    .unwrap();
    let Distribution::Categorical { choices, .. } = &sweep.space.params[0].dist else {
        panic!("pow2 is an ordered categorical")
    };
    let widths: Vec<i64> = choices
        .iter()
        .filter_map(|c| c.as_f64())
        .map(|v| v as i64)
        .collect();
    assert_eq!(widths, vec![16, 32, 64, 128, 256]);
    assert_eq!(sweep.max_params, Some(50_000));
    let bad = "name: x\nmethod: random\nmetric: {name: val_loss}\nparameters:\n  width: {distribution: pow2, min: 5, max: 7}\n";
    assert!(parse(bad, "s.yaml")
        .unwrap_err()
        .to_string()
        .contains("no power of two"));
}

#[test]
fn activation_is_a_default_and_a_knob() {
    let base = "name: x\nmethod: random\nmetric: {name: val_loss}\n";
    let sweep = parse(
        &format!("{base}parameters:\n  activation: {{values: [relu, gelu]}}\nmodel: {{activation: tanh}}\n"),
        "s.yaml",
    )
    .unwrap();
    assert_eq!(sweep.defaults.activation, Activation::Tanh);
    let err = |text: &str| {
        parse(&format!("{base}{text}"), "s.yaml")
            .unwrap_err()
            .to_string()
    };
    assert!(err("parameters:\n  activation: {values: [relu, swish]}\n").contains("takes one of"));
    assert!(
        err("parameters:\n  activation: {distribution: uniform, min: 0.0, max: 1.0}\n")
            .contains("categorical")
    );
    assert!(
        err("parameters:\n  lr: {value: 0.1}\nmodel: {activation: swish}\n")
            .contains("unknown activation `swish`")
    );
}

#[test]
fn npy_data_and_normalisation_parse() {
    let base =
        "name: x\nmethod: random\nmetric: {name: val_loss}\nparameters:\n  lr: {value: 0.1}\n";
    let sweep = parse(
        &format!(
            "{base}data: {{format: npy, features: X.npy, labels: y.npy, normalize: standard}}\n"
        ),
        "s.yaml",
    )
    .unwrap();
    assert_eq!(
        sweep.data,
        DataSource::Npy {
            features: "X.npy".into(),
            labels: "y.npy".into(),
            task: Task::Classification,
        }
    );
    assert_eq!(sweep.normalize, Normalize::Standard);
    let err = |t: &str| {
        parse(&format!("{base}{t}"), "s.yaml")
            .unwrap_err()
            .to_string()
    };
    assert!(err("data: {format: npy, features: X.npy}\n").contains("needs `labels`"));
    assert!(err("data: {normalize: zscore}\n").contains("data.normalize"));
}
