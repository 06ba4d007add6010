//! Softmax cross-entropy, forward and backward fused. CUDA twin: `kernels/loss.cu`.
//!
//! `logits` `(batch, classes)`, `labels` `(batch)`. The loss is the batch mean of
//! `−log softmax(logits)[label]`, computed with the max subtracted (log-sum-exp) so large
//! logits do not overflow.

use super::Real;

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
    let mut sums = LossSums::default();
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        let (loss, correct) = row_loss(row, label as usize);
        sums.loss += loss.to_f64();
        sums.correct += usize::from(correct);
    }
    sums
}

/// As [`softmax_cross_entropy_forward`], and writes `dlogits = (softmax − onehot) / batch`,
/// the gradient of the batch-mean loss.
pub fn softmax_cross_entropy_backward<T: Real>(
    logits: &[T],
    labels: &[u32],
    classes: usize,
    dlogits: &mut [T],
) -> LossSums {
    let mut sums = LossSums::default();
    let inv_batch = T::one() / T::from(labels.len()).unwrap_or_else(T::one);
    for ((row, drow), &label) in logits
        .chunks_exact(classes)
        .zip(dlogits.chunks_exact_mut(classes))
        .zip(labels)
    {
        let (loss, correct) = row_loss(row, label as usize);
        sums.loss += loss.to_f64();
        sums.correct += usize::from(correct);
        let max = row.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
        let mut total = T::zero();
        for (d, &v) in drow.iter_mut().zip(row) {
            *d = (v - max).exp();
            total += *d;
        }
        for (c, d) in drow.iter_mut().enumerate() {
            let onehot = if c == label as usize {
                T::one()
            } else {
                T::zero()
            };
            *d = (*d / total - onehot) * inv_batch;
        }
    }
    sums
}

/// One row's loss and whether its first arg-max is the label.
fn row_loss<T: Real>(row: &[T], label: usize) -> (T, bool) {
    let mut argmax = 0;
    for (c, &v) in row.iter().enumerate() {
        if v > row[argmax] {
            argmax = c;
        }
    }
    let max = row[argmax];
    let log_total = row.iter().map(|&v| (v - max).exp()).sum::<T>().ln();
    (log_total + max - row[label], argmax == label)
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
    fn gradient_matches_finite_differences() {
        let logits = [0.3f64, -1.2, 2.0, 0.1, 0.0, -0.5];
        let labels = [2u32, 0];
        let mut d = [0.0; 6];
        softmax_cross_entropy_backward(&logits, &labels, 3, &mut d);
        let mean = |l: &[f64]| softmax_cross_entropy_forward(l, &labels, 3).loss / 2.0;
        for i in 0..6 {
            let (mut up, mut down) = (logits, logits);
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric = (mean(&up) - mean(&down)) / 2e-6;
            assert!((numeric - d[i]).abs() < 1e-8, "{i}: {numeric} vs {}", d[i]);
        }
    }
}
