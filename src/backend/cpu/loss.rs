//! The two losses, forward and backward fused, chosen by what the rows are labelled with.
//!
//! Softmax cross-entropy (classification; CUDA twin: `kernels/loss.cu`): `logits`
//! `(batch, classes)`, `labels` `(batch)`. The loss is the batch mean of
//! `−log softmax(logits)[label]`, computed with the max subtracted (log-sum-exp) so large
//! logits do not overflow.
//!
//! Mean squared error (regression; no CUDA twin yet — the CUDA backend refuses regression):
//! `outputs` and `values` `(batch, width)`; the loss is the mean over all `batch · width`
//! elements of `(output − value)²`, PyTorch's `MSELoss()`.

use super::Real;
use crate::data::Targets;

/// Loss sum and correct count of `outputs` against `targets` (evaluation).
pub fn loss_forward<T: Real>(outputs: &[T], targets: Targets<'_>, width: usize) -> LossSums {
    match targets {
        Targets::Classes(labels) => softmax_cross_entropy_forward(outputs, labels, width),
        Targets::Values(values) => mean_squared_error(outputs, values, width, None),
    }
}

/// As [`loss_forward`], and writes the gradient of the batch-mean loss into `doutputs`.
pub fn loss_backward<T: Real>(
    outputs: &[T],
    targets: Targets<'_>,
    width: usize,
    doutputs: &mut [T],
) -> LossSums {
    match targets {
        Targets::Classes(labels) => {
            softmax_cross_entropy_backward(outputs, labels, width, doutputs)
        }
        Targets::Values(values) => mean_squared_error(outputs, values, width, Some(doutputs)),
    }
}

/// Sum over rows of each row's mean squared error (so that, as for cross-entropy, the sum
/// divided by the rows is the batch loss); with `doutputs`, writes
/// `2 (output − value) / (batch · width)`. `correct` stays 0: accuracy is not defined.
fn mean_squared_error<T: Real>(
    outputs: &[T],
    values: &[f32],
    width: usize,
    doutputs: Option<&mut [T]>,
) -> LossSums {
    let n = outputs.len().min(values.len());
    let per_row = T::one() / T::from(width.max(1)).unwrap_or_else(T::one);
    let mut loss = 0.0;
    for (o, &v) in outputs[..n].iter().zip(&values[..n]) {
        let e = *o - T::from_f32(v);
        loss += (e * e * per_row).to_f64();
    }
    if let Some(d) = doutputs {
        let scale = T::from(2.0 / n.max(1) as f64).unwrap_or_else(T::one);
        for ((d, o), &v) in d.iter_mut().zip(&outputs[..n]).zip(&values[..n]) {
            *d = (*o - T::from_f32(v)) * scale;
        }
    }
    LossSums { loss, correct: 0 }
}

/// Sum of per-row losses and number of rows whose arg-max equals the label.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossSums {
    pub loss: f64,
    pub correct: usize,
}

/// Loss and accuracy counts only (evaluation).
pub fn softmax_cross_entropy_forward<T: Real>(
    logits: &[T],
    labels: &[u32],
    classes: usize,
) -> LossSums {
    let mut scratch = vec![T::zero(); logits.len()];
    softmax_rows(logits, labels, classes, &mut scratch, |_, _, _| {})
}

/// As [`softmax_cross_entropy_forward`], and writes `dlogits = (softmax − onehot) / batch`,
/// the gradient of the batch-mean loss.
pub fn softmax_cross_entropy_backward<T: Real>(
    logits: &[T],
    labels: &[u32],
    classes: usize,
    dlogits: &mut [T],
) -> LossSums {
    let inv_batch = T::one() / T::from(labels.len()).unwrap_or_else(T::one);
    softmax_rows(logits, labels, classes, dlogits, |exps, total, label| {
        for d in exps.iter_mut() {
            *d = *d / total * inv_batch;
        }
        exps[label] = exps[label] - inv_batch;
    })
}

/// The loss and accuracy sums of the softmax over each row of `logits`. Each row's
/// unnormalised `exp(logit − max)` goes to `exps` — the whole batch in one vectorised pass —
/// and is then handed to `per_row` with the row's sum and label, so the loss and its
/// gradient share one exp per element.
fn softmax_rows<T: Real>(
    logits: &[T],
    labels: &[u32],
    classes: usize,
    exps: &mut [T],
    mut per_row: impl FnMut(&mut [T], T, usize),
) -> LossSums {
    let rows = labels.len().min(logits.len() / classes.max(1));
    let (logits, exps) = (&logits[..rows * classes], &mut exps[..rows * classes]);
    for (row, shifted) in logits
        .chunks_exact(classes)
        .zip(exps.chunks_exact_mut(classes))
    {
        let max = row[first_argmax(row)];
        for (s, &v) in shifted.iter_mut().zip(row) {
            *s = v - max;
        }
    }
    T::exp_in_place(exps);
    let mut sums = LossSums::default();
    for ((row, e), &label) in logits
        .chunks_exact(classes)
        .zip(exps.chunks_exact_mut(classes))
        .zip(labels)
    {
        let (argmax, label) = (first_argmax(row), label as usize);
        let total: T = e.iter().copied().sum();
        sums.loss += (total.ln() + row[argmax] - row[label]).to_f64();
        sums.correct += usize::from(argmax == label);
        per_row(e, total, label);
    }
    sums
}

/// The first index of the row's largest value. Selects rather than branches: with
/// logits in no particular order, a branch per element mispredicts often enough to
/// cost more than the rest of the softmax.
fn first_argmax<T: Real>(row: &[T]) -> usize {
    let (mut best, mut argmax) = (row[0], 0);
    for (c, &v) in row.iter().enumerate().skip(1) {
        let greater = v > best;
        best = if greater { v } else { best };
        argmax = if greater { c } else { argmax };
    }
    argmax
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_cost_log_classes() {
        let sums = softmax_cross_entropy_forward(&[0.0f64; 20], &[3, 7], 10);
        assert!((sums.loss / 2.0 - 10f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn huge_logits_stay_finite() {
        let logits = [1e30f32, 0.0, -1e30];
        let mut d = [0.0f32; 3];
        let sums = softmax_cross_entropy_backward(&logits, &[0], 3, &mut d);
        assert_eq!(sums.loss, 0.0);
        assert_eq!(sums.correct, 1);
        assert!(d.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn mean_squared_error_is_pytorchs_mean_over_elements() {
        let outputs = [1.0f64, 2.0, 3.0, 5.0];
        let values = [0.0f32, 2.0, 1.0, 5.0];
        // Elements' squared errors 1, 0, 4, 0: mean 1.25 over 4 elements; two rows of width 2.
        let sums = loss_forward(&outputs, Targets::Values(&values), 2);
        assert!((sums.loss / 2.0 - 1.25).abs() < 1e-12, "{}", sums.loss);
        assert_eq!(sums.correct, 0);
    }

    /// The analytic gradient of the batch-mean loss against central differences.
    fn assert_gradient_matches_finite_differences(outputs: [f64; 6], targets: Targets<'_>) {
        let mut d = [0.0; 6];
        loss_backward(&outputs, targets, 3, &mut d);
        let mean = |o: &[f64]| loss_forward(o, targets, 3).loss / 2.0;
        for i in 0..6 {
            let (mut up, mut down) = (outputs, outputs);
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric = (mean(&up) - mean(&down)) / 2e-6;
            assert!((numeric - d[i]).abs() < 1e-8, "{i}: {numeric} vs {}", d[i]);
        }
    }

    #[test]
    fn gradients_of_both_losses_match_finite_differences() {
        let outputs = [0.3f64, -1.2, 2.0, 0.1, 0.0, -0.5];
        assert_gradient_matches_finite_differences(outputs, Targets::Classes(&[2, 0]));
        let values = [1.0f32, 0.5, -2.0, 0.1, 3.0, 0.25];
        assert_gradient_matches_finite_differences(outputs, Targets::Values(&values));
    }
}
