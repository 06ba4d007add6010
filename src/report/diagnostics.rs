//! Regularisation diagnostics: which trials overfit, judged from their train−validation
//! gap over time, and which way to move.

use crate::storage::TrialRecord;
use serde::Serialize;

/// A train−validation accuracy gap above this, with the validation loss risen off its
/// minimum, marks overfitting; above `GAP_ALONE` the gap is enough on its own.
pub const GAP: f64 = 0.03;
pub const GAP_ALONE: f64 = 0.10;
/// The same for regression's loss gap (`EpochMetrics::gap`): a training loss under 70%
/// of the validation loss with the latter rising, or under half of it.
pub const LOSS_GAP: f64 = 0.3;
pub const LOSS_GAP_ALONE: f64 = 0.5;
/// The validation loss's rise above its minimum (relative) that counts as rising.
pub const RISE: f64 = 0.05;

#[derive(Clone, Debug, Serialize)]
pub struct Overfitting {
    pub trial: usize,
    /// The train−validation gap after the last epoch (`EpochMetrics::gap`).
    pub gap: f64,
    /// Last validation loss over its minimum, minus 1.
    pub val_loss_rise: f64,
    /// The epoch with the lowest validation loss: where training should have stopped.
    pub best_epoch: usize,
    pub advice: String,
}

/// The overfitting trials (with at least three epochs), worst gap first.
pub fn overfitting(trials: &[TrialRecord]) -> Vec<Overfitting> {
    let mut flags: Vec<Overfitting> = trials
        .iter()
        .filter(|t| t.history.len() >= 3)
        .filter_map(|t| {
            let last = t.history.last()?;
            let (best_epoch, min_loss) = t
                .history
                .iter()
                .map(|h| (h.epoch, h.val_loss))
                .filter(|(_, l)| l.is_finite())
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            let gap = last.gap();
            let (with_rise, alone) = if last.val_accuracy.is_nan() {
                (LOSS_GAP, LOSS_GAP_ALONE)
            } else {
                (GAP, GAP_ALONE)
            };
            let rise = last.val_loss / min_loss.max(1e-12) - 1.0;
            let overfit = (gap > with_rise && rise > RISE) || gap > alone;
            overfit.then(|| Overfitting {
                trial: t.number,
                gap,
                val_loss_rise: rise,
                best_epoch,
                advice: advice(t),
            })
        })
        .collect();
    flags.sort_by(|a, b| b.gap.total_cmp(&a.gap));
    flags
}

/// Which way to move: more of the regularisers the trial has room in, or less capacity.
fn advice(t: &TrialRecord) -> String {
    let number = |name: &str| t.params.get(name).and_then(|v| v.as_f64());
    let mut moves = Vec::new();
    match number("dropout") {
        Some(d) if d < 0.3 => moves.push(format!("more dropout (now {d:.2})")),
        None => moves.push("dropout".to_string()),
        _ => {}
    }
    match number("weight_decay") {
        Some(w) => moves.push(format!("more weight decay (now {w:.1e})")),
        None => moves.push("weight decay".to_string()),
    }
    // A convolutional trial: its knobs name it (the untuned ones are not in its record).
    let cnn = ["filters", "layers", "kernel_size", "fc_width"]
        .iter()
        .any(|n| t.params.contains_key(*n));
    moves.push(match cnn {
        true => "augmentation (shift, which is a random crop after padding; flip where mirrored \
                 images mean the same)"
            .to_string(),
        false => "augmentation".to_string(),
    });
    if cnn {
        moves.push("global average pooling in place of a wide dense layer".to_string());
    }
    let mut size: Vec<String> = ["width", "depth", "filters", "layers", "fc_width"]
        .iter()
        .filter_map(|n| number(n).map(|v| format!("{n} {v}")))
        .collect();
    if t.param_count > 0 {
        size.push(format!("{} parameters", t.param_count));
    }
    let capacity = if size.is_empty() {
        "a smaller model".to_string()
    } else {
        format!("a smaller model (now {})", size.join(", "))
    };
    format!("{}; or {capacity}", moves.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::EpochMetrics;
    use crate::space::{ParamValue, Params};
    use crate::storage::TrialState;

    fn trial(number: usize, curve: &[(f64, f64, f64)]) -> TrialRecord {
        let mut params = Params::new();
        params.insert("dropout".into(), ParamValue::Float(0.05));
        params.insert("width".into(), ParamValue::Int(256));
        TrialRecord {
            number,
            params,
            state: TrialState::Complete,
            epochs: curve.len(),
            rungs: Vec::new(),
            history: curve
                .iter()
                .enumerate()
                .map(
                    |(i, &(train_accuracy, val_accuracy, val_loss))| EpochMetrics {
                        grad_norm: None,
                        nonfinite_grads: None,
                        epoch: i + 1,
                        train_loss: 0.1,
                        train_accuracy,
                        val_loss,
                        val_accuracy,
                    },
                )
                .collect(),
            ..TrialRecord::default()
        }
    }

    #[test]
    fn flags_a_growing_gap_with_rising_validation_loss_only() {
        let overfit = trial(
            1,
            &[(0.9, 0.88, 0.40), (0.97, 0.91, 0.30), (0.995, 0.92, 0.36)],
        );
        let healthy = trial(
            2,
            &[(0.9, 0.89, 0.40), (0.94, 0.93, 0.30), (0.95, 0.94, 0.28)],
        );
        let wide_gap = trial(3, &[(0.9, 0.8, 0.5), (0.99, 0.85, 0.4), (1.0, 0.86, 0.39)]);
        let short = trial(4, &[(1.0, 0.5, 1.0), (1.0, 0.5, 2.0)]);
        let flags = overfitting(&[overfit, healthy, wide_gap, short]);
        let ids: Vec<usize> = flags.iter().map(|f| f.trial).collect();
        assert_eq!(
            ids,
            vec![3, 1],
            "worst gap first; healthy and too-short trials unflagged"
        );
        assert_eq!(flags[1].best_epoch, 2);
        assert!(flags[1].advice.contains("more dropout (now 0.05)"));
        assert!(flags[1].advice.contains("width 256"));
    }

    #[test]
    fn regression_is_judged_by_its_loss_gap() {
        // Accuracy NaN (regression): (train loss, validation loss) per epoch.
        let curve = |number: usize, losses: &[(f64, f64)]| {
            let mut t = trial(number, &vec![(f64::NAN, f64::NAN, 0.0); losses.len()]);
            for (h, &(train, val)) in t.history.iter_mut().zip(losses) {
                (h.train_loss, h.val_loss) = (train, val);
            }
            t
        };
        // Train loss 0.5 of validation's and validation rising: overfit. Train 0.9 of
        // validation's: healthy. Train a third of validation's: overfit on the gap alone.
        let rising = curve(1, &[(2.0, 2.2), (1.2, 1.6), (0.9, 1.8)]);
        let healthy = curve(2, &[(2.0, 2.2), (1.5, 1.7), (1.4, 1.55)]);
        let wide = curve(3, &[(2.0, 2.2), (1.0, 2.0), (0.6, 1.9)]);
        let flags = overfitting(&[rising, healthy, wide]);
        let ids: Vec<usize> = flags.iter().map(|f| f.trial).collect();
        assert_eq!(ids, vec![3, 1], "{flags:?}");
        assert!((flags[0].gap - (1.0 - 0.6 / 1.9)).abs() < 1e-12);
    }

    #[test]
    fn a_convolutional_trial_gets_convolutional_advice_and_its_size() {
        let mut cnn = trial(3, &[(0.9, 0.88, 0.40), (0.99, 0.90, 0.45)]);
        cnn.params.remove("width");
        cnn.params.insert("filters".into(), ParamValue::Int(32));
        cnn.param_count = 421_642;
        let text = advice(&cnn);
        assert!(
            text.contains("random crop") && text.contains("flip"),
            "{text}"
        );
        assert!(text.contains("global average pooling"), "{text}");
        assert!(text.contains("now filters 32, 421642 parameters"), "{text}");
        let mlp = trial(4, &[(0.9, 0.88, 0.40), (0.99, 0.90, 0.45)]);
        assert!(!advice(&mlp).contains("pooling"));
    }
}
