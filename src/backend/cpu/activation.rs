//! ReLU, in place on `(batch, width)` activations. CUDA twin: `kernels/activation.cu`.

use super::Real;

pub fn relu_forward<T: Real>(y: &mut [T]) {
    for v in y {
        *v = v.max(T::zero());
    }
}

/// `dy ← dy · [y > 0]`, using the *output* `y`: ReLU's output is positive exactly where
/// its input was, so the pre-activation never needs to be kept.
pub fn relu_backward<T: Real>(y: &[T], dy: &mut [T]) {
    for (d, &v) in dy.iter_mut().zip(y) {
        if v <= T::zero() {
            *d = T::zero();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_zeroes_negatives_and_their_gradients() {
        let mut y = vec![-1.0f32, 0.0, 2.0];
        relu_forward(&mut y);
        assert_eq!(y, vec![0.0, 0.0, 2.0]);
        let mut dy = vec![5.0f32, 5.0, 5.0];
        relu_backward(&y, &mut dy);
        assert_eq!(dy, vec![0.0, 0.0, 5.0]);
    }
}
