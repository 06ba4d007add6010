//! An ensemble of finished models scored on one set of rows: the mean of the members'
//! class probabilities (classification) or of their outputs (regression), the usual way
//! to turn a sweep's top configurations into one better model. Only the final test
//! evaluates an ensemble, once, on a few thousand rows at most, so it runs here on the CPU
//! whatever trained the members (as [`super::evaluate_params`] does for one member).

use super::loss::loss_forward;
use super::network::{predict, NetworkWorkspace};
use crate::data::{Dataset, Task};
use crate::model::Arch;
use crate::population::Evaluation;

/// Rows per forward pass (bounds the workspace, not the result).
const CHUNK: usize = 256;

/// Loss and accuracy of the ensemble of `members` (architecture and flat parameters) on
/// `rows`. For classification the loss is the cross-entropy of the mean probabilities and
/// a row is correct when their largest is its label (the first one on a tie); for
/// regression, the mean squared error of the mean output. An empty ensemble scores NaN.
pub fn ensemble_evaluation(members: &[(&Arch, &[f32])], rows: &Dataset) -> Evaluation {
    let n = rows.len();
    let Some(width) = members.first().map(|(arch, _)| arch.outputs()) else {
        return Evaluation {
            loss: f64::NAN,
            accuracy: f64::NAN,
        };
    };
    let mut mean = vec![0.0f64; n * width];
    let mut outputs = vec![0.0f32; n * width];
    for (arch, params) in members {
        let mut ws = NetworkWorkspace::new(arch, CHUNK);
        predict(arch, params, &rows.features, &mut ws, CHUNK, &mut outputs);
        for (row, out) in mean
            .chunks_exact_mut(width)
            .zip(outputs.chunks_exact(width))
        {
            let mut out: Vec<f64> = out.iter().map(|&o| f64::from(o)).collect();
            if rows.task == Task::Classification {
                softmax_in_place(&mut out);
            }
            for (m, o) in row.iter_mut().zip(out) {
                *m += o;
            }
        }
    }
    let k = members.len() as f64;
    // The loss functions take logits: the log of a probability vector is a logit vector
    // whose softmax is that vector, so the mean probabilities go in as their logs.
    let combined: Vec<f64> = match rows.task {
        Task::Classification => mean.iter().map(|p| (p / k).ln()).collect(),
        Task::Regression => mean.iter().map(|v| v / k).collect(),
    };
    let sums = loss_forward(&combined, rows.targets(), width);
    let count = n.max(1) as f64;
    Evaluation {
        loss: sums.loss / count,
        accuracy: match rows.task {
            Task::Classification => sums.correct as f64 / count,
            Task::Regression => f64::NAN,
        },
    }
}

/// One row's logits into its class probabilities, in f64 so that a confident member's
/// least likely class keeps a probability above 0 (and the ensemble a finite loss) unless
/// its logit trails by more than about 745.
fn softmax_in_place(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        total += *v;
    }
    for v in row.iter_mut() {
        *v /= total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::evaluate_params;
    use crate::data::digits;

    fn model(width: usize, seed: u64, data: &Dataset) -> (Arch, Vec<f32>) {
        let arch = Arch::mlp(data.n_features, &[width], data.n_classes);
        let params = arch.init_params(seed);
        (arch, params)
    }

    /// One member is that member; two copies of one member are that member too; two
    /// different members are neither (their probabilities mix).
    #[test]
    fn an_ensemble_of_one_model_is_the_model_and_two_models_mix() {
        let data = digits::load()
            .unwrap()
            .subset(&(0..300).collect::<Vec<_>>());
        let (a, pa) = model(16, 1, &data);
        let (b, pb) = model(32, 2, &data);
        let alone = evaluate_params(&a, &pa, &data);
        let one = ensemble_evaluation(&[(&a, &pa)], &data);
        let twice = ensemble_evaluation(&[(&a, &pa), (&a, &pa)], &data);
        for e in [one, twice] {
            assert_eq!(e.accuracy, alone.accuracy);
            assert!(
                (e.loss - alone.loss).abs() < 1e-5 * alone.loss,
                "{e:?} {alone:?}"
            );
        }
        let other = evaluate_params(&b, &pb, &data);
        let mixed = ensemble_evaluation(&[(&a, &pa), (&b, &pb)], &data);
        // The cross-entropy is convex in the probabilities: the mixture's loss is at most
        // the members' mean, and here strictly below it (they disagree).
        assert!(
            mixed.loss < 0.5 * (alone.loss + other.loss) - 1e-6,
            "{mixed:?}"
        );
        assert!(ensemble_evaluation(&[], &data).loss.is_nan());
    }

    /// Hand-made cases: a row's probabilities, and a regression ensemble's mean output.
    #[test]
    fn probabilities_and_mean_outputs_by_hand() {
        let mut out = [0.0f64, 3.0f64.ln()];
        softmax_in_place(&mut out);
        assert!((out[0] - 0.25).abs() < 1e-12 && (out[1] - 0.75).abs() < 1e-12);
        // A regression ensemble averages outputs: two constant predictors 0 and 2 of a
        // target 1 each have error 1; their mean has none.
        let rows = Dataset {
            features: vec![0.0; 3],
            labels: Vec::new(),
            values: vec![1.0; 3],
            n_features: 1,
            n_classes: 1,
            task: Task::Regression,
            image: None,
        };
        let arch = Arch::mlp(1, &[], 1);
        let constant = |c: f32| {
            let mut p = arch.init_params(0);
            p.iter_mut().for_each(|w| *w = 0.0);
            *p.last_mut().unwrap() = c; // the output's bias
            p
        };
        let (zero, two) = (constant(0.0), constant(2.0));
        assert!((evaluate_params(&arch, &zero, &rows).loss - 1.0).abs() < 1e-9);
        let both = ensemble_evaluation(&[(&arch, &zero), (&arch, &two)], &rows);
        assert!(
            both.loss.abs() < 1e-12 && both.accuracy.is_nan(),
            "{both:?}"
        );
    }
}
