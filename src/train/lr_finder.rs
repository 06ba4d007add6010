//! Leslie Smith's learning-rate range test (Smith 2017, "Cyclical learning rates"; the
//! fastai form): the learning rate grows exponentially from `min_lr` to `max_lr` over
//! `steps` minibatches, the loss is smoothed with an exponential moving average (bias
//! corrected), and the test stops once the smoothed loss exceeds `stop_factor` times its
//! minimum. Two suggestions are read off each curve: the learning rate of the steepest
//! descent of the smoothed loss (against log lr), and the one at the minimum divided by 10.
//! The suggestion is the second, fastai's classic rule: on MNIST (784-256-10, SGD with
//! momentum 0.9) it landed 2.3× below the best of a 12-point grid trained 5 epochs each,
//! where the steepest descent landed 5.4× below (docs/lr-finder.md); the smoothed curve's
//! steepest point sits early, where the loss has only started to move.
//!
//! Population-batched: several seeds (and architectures) run their range tests together,
//! one member per thread, each on the same minibatches; the suggestion is the geometric
//! mean over members, so one unlucky initialisation does not decide it.

use crate::backend::cpu::network::NetworkWorkspace;
use crate::backend::cpu::network::{forward_backward, update_running_stats, StepDropout};
use crate::backend::cpu::optim::optimizer_step;
use crate::data::Dataset;
use crate::model::MemberSpec;
use crate::rng::{permutation, Stream};
use serde::Serialize;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug)]
pub struct RangeTest {
    pub min_lr: f64,
    pub max_lr: f64,
    pub steps: usize,
    pub batch_size: usize,
    /// EMA weight of the past in the smoothed loss (fastai: 0.98).
    pub smoothing: f64,
    /// Stop once the smoothed loss exceeds this multiple of its minimum (fastai: 4).
    pub stop_factor: f64,
}

impl Default for RangeTest {
    /// 1e-5 to 10 over 300 steps (50 per decade) with a 10-step moving average: the
    /// average lags the raw loss by about 1/(1−β) steps, a fifth of a decade here, where
    /// fastai's 100 steps with β = 0.98 lag by a whole decade and push the steepest-descent
    /// point towards the divergence.
    fn default() -> Self {
        RangeTest {
            min_lr: 1e-5,
            max_lr: 10.0,
            steps: 300,
            batch_size: 64,
            smoothing: 0.9,
            stop_factor: 4.0,
        }
    }
}

impl RangeTest {
    /// The learning rate at step `i` (0-based).
    pub fn lr_at(&self, i: usize) -> f64 {
        let t = i as f64 / (self.steps.max(2) - 1) as f64;
        self.min_lr * (self.max_lr / self.min_lr).powf(t)
    }
}

/// One point of a member's curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RangePoint {
    pub step: usize,
    pub lr: f64,
    pub loss: f64,
    pub smoothed: f64,
}

/// One member's range test and what it suggests.
#[derive(Clone, Debug, Serialize)]
pub struct MemberCurve {
    pub seed: u64,
    pub dims: Vec<usize>,
    pub points: Vec<RangePoint>,
    /// Why the test ended: `"diverged"` (smoothed loss above the stop factor or not
    /// finite) or `"max_lr"`.
    pub stopped: &'static str,
    pub steepest_lr: Option<f64>,
    pub min_loss_lr: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RangeResult {
    /// Geometric mean over members of the steepest-descent suggestions.
    pub steepest_lr: f64,
    /// Geometric mean over members of (lr at the minimum smoothed loss) / 10.
    pub min_div10_lr: f64,
    /// The one to use: minimum ÷ 10 (see the module docs).
    pub suggested_lr: f64,
    pub members: Vec<MemberCurve>,
}

/// Runs the range test for every member of `specs` on `train` (the hyperparameters'
/// learning rate is replaced by the schedule; momentum, weight decay and dropout are kept).
pub fn range_test(
    test: &RangeTest,
    specs: &[MemberSpec],
    train: &Dataset,
    threads: usize,
) -> RangeResult {
    // A batch larger than the data is the whole data (the workspace is sized by it).
    let test = &RangeTest {
        batch_size: test.batch_size.clamp(1, train.len().max(1)),
        ..*test
    };
    // One shared sequence of minibatches, enough for every step.
    let per_epoch = train.len().div_ceil(test.batch_size).max(1);
    let epochs = test.steps.div_ceil(per_epoch);
    let order: Vec<usize> = (0..epochs)
        .flat_map(|e| permutation(train.len(), 0x1F, Stream::Shuffle, e as u32))
        .collect();
    let queue = Mutex::new((0..specs.len()).collect::<Vec<_>>());
    let results = Mutex::new(vec![None; specs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    break;
                };
                let curve = member_range_test(test, &specs[i], train, &order);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(curve);
            });
        }
    });
    let members: Vec<MemberCurve> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|c| c.expect("every member ran"))
        .collect();
    let geomean = |xs: Vec<f64>| -> f64 {
        if xs.is_empty() {
            return f64::NAN;
        }
        (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
    };
    let steepest_lr = geomean(members.iter().filter_map(|m| m.steepest_lr).collect());
    let min_div10_lr = geomean(
        members
            .iter()
            .filter_map(|m| m.min_loss_lr.map(|lr| lr / 10.0))
            .collect(),
    );
    RangeResult {
        steepest_lr,
        min_div10_lr,
        suggested_lr: min_div10_lr,
        members,
    }
}

fn member_range_test(
    test: &RangeTest,
    spec: &MemberSpec,
    train: &Dataset,
    order: &[usize],
) -> MemberCurve {
    let arch = &spec.arch;
    let mut params = arch.init_params(spec.seed);
    let (mut m1, mut m2) = (vec![0.0f32; params.len()], vec![0.0f32; params.len()]);
    let mut grad = vec![0.0f32; params.len()];
    let mut ws = NetworkWorkspace::new(arch, test.batch_size);
    let (mut avg, mut best) = (0.0f64, f64::INFINITY);
    let mut points = Vec::new();
    let mut stopped = "max_lr";
    for step in 0..test.steps {
        let start = (step * test.batch_size) % (order.len().max(1));
        let rows: Vec<usize> = order[start..(start + test.batch_size).min(order.len())].to_vec();
        let batch = train.subset(&rows);
        let dropout = StepDropout {
            rate: spec.hparams.dropout,
            attn_rate: spec.hparams.attn_dropout,
            seed: spec.seed,
            step: step as u64,
        };
        let sums = forward_backward(
            arch,
            &params,
            &batch.features,
            batch.targets(),
            Some(dropout),
            &mut ws,
            &mut grad,
        );
        let loss = sums.loss / batch.len().max(1) as f64;
        avg = test.smoothing * avg + (1.0 - test.smoothing) * loss;
        let smoothed = avg / (1.0 - test.smoothing.powi(step as i32 + 1));
        let lr = test.lr_at(step);
        points.push(RangePoint {
            step,
            lr,
            loss,
            smoothed,
        });
        if !smoothed.is_finite() || smoothed > test.stop_factor * best {
            stopped = "diverged";
            break;
        }
        best = best.min(smoothed);
        let hp = crate::model::hparams::OptimHparams {
            lr: lr as f32,
            ..spec.hparams.optim
        };
        let t = arch.trainable_params();
        let (p, g) = (&mut params[..t], &grad[..t]);
        optimizer_step(&hp, step as u64 + 1, 1.0, p, g, &mut m1[..t], &mut m2[..t]);
        update_running_stats(&ws, &mut params);
    }
    let (steepest_lr, min_loss_lr) = suggestions(&points);
    MemberCurve {
        seed: spec.seed,
        dims: arch.dense_widths(),
        points,
        stopped,
        steepest_lr,
        min_loss_lr,
    }
}

/// `(steepest descent, minimum)` of a curve's smoothed loss. The steepest descent is the
/// most negative slope of smoothed loss against ln lr (central differences), searched up
/// to the minimum: past it the loss only climbs.
pub fn suggestions(points: &[RangePoint]) -> (Option<f64>, Option<f64>) {
    let finite: Vec<&RangePoint> = points.iter().filter(|p| p.smoothed.is_finite()).collect();
    let min_at = finite
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.smoothed.total_cmp(&b.1.smoothed))
        .map(|(i, _)| i);
    let Some(min_at) = min_at else {
        return (None, None);
    };
    let slope = |i: usize| {
        let (a, b) = (finite[i - 1], finite[i + 1]);
        (b.smoothed - a.smoothed) / (b.lr.ln() - a.lr.ln())
    };
    let steepest = (1..min_at.min(finite.len().saturating_sub(1)))
        .min_by(|&i, &j| slope(i).total_cmp(&slope(j)))
        .map(|i| finite[i].lr);
    (steepest, Some(finite[min_at].lr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(f: impl Fn(f64) -> f64) -> Vec<RangePoint> {
        let test = RangeTest::default();
        (0..test.steps)
            .map(|step| {
                let lr = test.lr_at(step);
                RangePoint {
                    step,
                    lr,
                    loss: f(lr),
                    smoothed: f(lr),
                }
            })
            .collect()
    }

    #[test]
    fn schedule_spans_min_to_max_exponentially() {
        let t = RangeTest::default();
        assert!((t.lr_at(0) - 1e-5).abs() < 1e-18 && (t.lr_at(299) - 10.0).abs() < 1e-9);
        let ratio = t.lr_at(1) / t.lr_at(0);
        assert!((t.lr_at(51) / t.lr_at(50) - ratio).abs() < 1e-9);
    }

    #[test]
    fn suggestions_find_the_steepest_drop_and_the_minimum() {
        // A loss that falls fastest (in ln lr) at lr = 1e-2 and is lowest at lr = 1.
        let pts = curve(|lr| {
            let x = lr.log10();
            let drop = 1.0 / (1.0 + (3.0 * (x + 2.0)).exp()); // sigmoid step centred at 1e-2
            1.0 + 2.0 * drop + 0.05 * x.max(0.0).powi(2) * 40.0 - 0.1 * (-(x * x)).exp()
        });
        let (steepest, min) = suggestions(&pts);
        let (steepest, min) = (steepest.unwrap(), min.unwrap());
        assert!(
            (steepest.log10() + 2.0).abs() < 0.1,
            "steepest at {steepest}"
        );
        assert!((min.log10()).abs() < 0.2, "minimum at {min}");
    }

    #[test]
    fn a_flat_or_empty_curve_gives_no_steepest_point() {
        assert_eq!(suggestions(&[]), (None, None));
        let one = curve(|_| 1.0);
        assert!(suggestions(&one[..1]).0.is_none());
    }

    #[test]
    fn range_test_on_digits_stops_after_the_loss_explodes() {
        use crate::model::{Arch, Hparams};
        let data = crate::data::digits::load().unwrap();
        let spec = |seed| MemberSpec {
            arch: Arch::mlp(64, &[64], 10),
            hparams: Hparams {
                optim: crate::model::hparams::OptimHparams::sgd(0.0, 0.9, 0.0),
                dropout: 0.0,
                attn_dropout: 0.0,
                augment: Default::default(),
                batch_size: None,
            },
            seed,
            fold: None,
        };
        let test = RangeTest {
            max_lr: 100.0,
            ..RangeTest::default()
        };
        let r = range_test(&test, &[spec(1), spec(2)], &data, 2);
        for m in &r.members {
            assert_eq!(m.stopped, "diverged", "lr up to 100 must blow SGD up");
            assert!(m.points.len() < test.steps);
        }
        // A sensible SGD learning rate for this model lies well inside (1e-4, 10).
        assert!(
            r.suggested_lr > 1e-4 && r.suggested_lr < 10.0,
            "{}",
            r.suggested_lr
        );
        assert!(
            r.min_div10_lr > 1e-4 && r.min_div10_lr < 10.0,
            "{}",
            r.min_div10_lr
        );
    }
}
