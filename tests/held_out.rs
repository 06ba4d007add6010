//! The test split is not read before the final evaluation: a sweep whose test rows are
//! replaced by garbage makes exactly the same tuning decisions, and only the final test
//! score changes.

mod common;

use popsweep::config;
use popsweep::data::{digits, Dataset};
use popsweep::sweep::{prepare_data, SweepOutcome};

const SWEEP: &str = "method: random\nmetric: {name: val_accuracy, goal: maximize}\nrun_cap: 9\n\
    early_terminate: {type: hyperband, min_iter: 1, eta: 3}\n\
    parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n  width: {values: [16, 32]}\n\
    train: {epochs: 3, batch_size: 64}\nmodel: {depth: 1}\nseed: 5\n";

fn run(data: &Dataset, tag: &str) -> SweepOutcome {
    let sweep = config::parse(SWEEP, "inline").unwrap();
    common::run_sweep_on(&sweep, data, &format!("heldout-{tag}")).unwrap()
}

#[test]
fn test_split_is_not_read_before_the_final_evaluation() {
    let clean = digits::load().unwrap();
    // Learn which rows are held out (the split depends only on labels and seed), then
    // poison exactly those rows.
    let sweep = config::parse(SWEEP, "inline").unwrap();
    let mut marked = clean.clone();
    for (i, row) in marked.features.chunks_mut(64).enumerate() {
        row[0] = i as f32; // a row id, to recognise held-out rows
    }
    let (_, held_out) = prepare_data(&sweep, &marked);
    let test_ids: Vec<usize> =
        held_out.final_evaluation(|rows| rows.features.chunks(64).map(|r| r[0] as usize).collect());
    assert_eq!(test_ids.len(), 270);
    let mut poisoned = clean.clone();
    for &i in &test_ids {
        poisoned.features[i * 64..(i + 1) * 64].fill(1e3);
    }

    let a = run(&clean, "clean");
    let b = run(&poisoned, "poisoned");
    assert_eq!(
        a.trials, b.trials,
        "tuning must not depend on the test rows"
    );
    let (best_a, best_b) = (a.summary.best.unwrap(), b.summary.best.unwrap());
    assert_eq!((best_a.trial, best_a.val), (best_b.trial, best_b.val));
    assert!(best_a.test > 0.8, "clean test accuracy {}", best_a.test);
    assert_ne!(
        best_a.test_loss, best_b.test_loss,
        "the final evaluation does read the test rows"
    );
}
