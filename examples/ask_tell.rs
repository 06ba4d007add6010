//! Ask and tell: the study suggests, code of any shape evaluates, the study is told. Here a
//! declared search space (the sweep file's `parameters` syntax), suggestions in batches
//! (a batch sees its earlier members as running trials), intermediate values with a
//! successive-halving pruner, and the best trial at the end.
//!
//!     cargo run --release --example ask_tell -- [TRIALS]
//!
//! The objective is a noisy, slowly converging "training" of the Branin function, so
//! that pruning has something to decide.

use popsweep::error::{Error, Result};
use popsweep::pruning::PrunerSpec;
use popsweep::space::ParamValue;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};

const SPACE: &str = r#"{
    "x": {"distribution": "uniform", "min": -5.0, "max": 10.0},
    "y": {"distribution": "uniform", "min": 0.0, "max": 15.0},
    "steps": {"values": [8, 16]}
}"#;

fn branin(x: f64, y: f64) -> f64 {
    let pi = std::f64::consts::PI;
    let (b, c) = (5.1 / (4.0 * pi * pi), 5.0 / pi);
    (y - b * x * x + c * x - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * pi)) * x.cos() + 10.0
}

fn main() -> Result<()> {
    let n_trials: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| Error::Run(format!("TRIALS: {e}")))?,
        None => 64,
    };
    let space = popsweep::config::parse_space(SPACE, "SPACE")?;
    let pruner = PrunerSpec::parse(r#"{"kind": "successive_halving", "min_resource": 2}"#)
        .map_err(Error::Run)?;
    let mut study = Study::in_memory(space, SamplerKind::Tpe, false, 42)
        .and_then(|s| s.with_pruner(&pruner))
        .map_err(Error::Run)?;

    let (mut asked, mut pruned) = (0, 0);
    while asked < n_trials {
        // Four at a time, as four workers would take them.
        let batch = study.ask_batch(4.min(n_trials - asked))?;
        asked += batch.len();
        for trial in batch {
            let get = |name: &str| trial.params[name].as_f64().expect("numeric");
            let (x, y) = (get("x"), get("y"));
            let steps = match trial.params["steps"] {
                ParamValue::Int(s) => s as u64,
                _ => unreachable!("the space says steps are integers"),
            };
            let target = branin(x, y);
            let mut outcome = Outcome::Complete(target);
            for step in 1..=steps {
                // Converges to the target from above, as a loss does.
                let value = target + 50.0 / step as f64;
                study.report_first(trial.number, step, value)?;
                if study.should_prune(trial.number)? {
                    outcome = Outcome::Pruned;
                    pruned += 1;
                    break;
                }
            }
            study.tell(trial.number, outcome)?;
        }
    }
    let best = study
        .best()?
        .ok_or_else(|| Error::Run("no trial completed".into()))?;
    println!("{asked} trials, {pruned} pruned");
    println!(
        "best trial {}: {:.4} at {} (the minimum is 0.3979)",
        best.number,
        best.value.unwrap_or(f64::NAN),
        serde_json::to_string(&best.params).expect("parameters serialize")
    );
    Ok(())
}
