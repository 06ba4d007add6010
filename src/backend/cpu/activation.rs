//! Hidden-layer activations, elementwise on `(batch, width)` blocks. CUDA twins: ReLU fused
//! into the MLP kernels (`kernels/activation.cuh`), and every kind in place for layered
//! networks (`kernels/activation.cu`).
//!
//! The backward pass takes the pre-activation `z` (kept by the forward pass): GELU's
//! derivative cannot be recovered from its output, and after dropout the output is
//! rescaled anyway.

use super::Real;
use crate::model::hparams::{Activation, LEAKY_SLOPE};

fn from_f64<T: Real>(x: f64) -> T {
    T::from(x).expect("every f64 converts to a float type")
}

/// ReLU in place: the fast path (the CUDA kernels' activation), which needs no copy of the
/// pre-activation.
pub fn relu_forward<T: Real>(y: &mut [T]) {
    for v in y {
        *v = v.max(T::zero());
    }
}

/// `dy ← dy · [y > 0]` from ReLU's *output* `y` (positive exactly where its input was;
/// after dropout, zero wherever the element was dropped, whose gradient is zero anyway).
/// The store is unconditional (a select, as the CUDA twin's `y > 0 ? d : 0`), so the loop
/// vectorises; a conditional store compiled to a branch per element.
pub fn relu_backward<T: Real>(y: &[T], dy: &mut [T]) {
    for (d, &v) in dy.iter_mut().zip(y) {
        *d = if v > T::zero() { *d } else { T::zero() };
    }
}

/// `y = act(z)`.
pub fn activation_forward<T: Real>(act: Activation, z: &[T], y: &mut [T]) {
    let slope = from_f64::<T>(LEAKY_SLOPE);
    for (y, &z) in y.iter_mut().zip(z) {
        *y = match act {
            Activation::Relu => z.max(T::zero()),
            Activation::LeakyRelu => {
                if z > T::zero() {
                    z
                } else {
                    slope * z
                }
            }
            Activation::Tanh => z.tanh(),
            Activation::Gelu => z * T::normal_cdf_pdf(z).0,
        };
    }
}

/// `dz = dy · act'(z)`, in place on `dy`.
pub fn activation_backward<T: Real>(act: Activation, z: &[T], dy: &mut [T]) {
    let slope = from_f64::<T>(LEAKY_SLOPE);
    for (d, &z) in dy.iter_mut().zip(z) {
        let grad = match act {
            Activation::Relu => {
                if z > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            Activation::LeakyRelu => {
                if z > T::zero() {
                    T::one()
                } else {
                    slope
                }
            }
            Activation::Tanh => {
                let t = z.tanh();
                T::one() - t * t
            }
            Activation::Gelu => {
                let (cdf, pdf) = T::normal_cdf_pdf(z);
                cdf + z * pdf
            }
        };
        *d *= grad;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        for act in [
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Tanh,
            Activation::Gelu,
        ] {
            for &z in &[-2.3f64, -0.4, 0.3, 1.7] {
                let f = |x: f64| {
                    let mut y = [0.0];
                    activation_forward(act, &[x], &mut y);
                    y[0]
                };
                let numeric = (f(z + 1e-6) - f(z - 1e-6)) / 2e-6;
                let mut d = [1.0];
                activation_backward(act, &[z], &mut d);
                assert!(
                    (numeric - d[0]).abs() < 1e-7,
                    "{act:?} at {z}: {numeric} vs {}",
                    d[0]
                );
            }
        }
    }

    #[test]
    fn known_values() {
        let mut y = [0.0f64; 3];
        activation_forward(Activation::Gelu, &[0.0, 1.0, -1.0], &mut y);
        // GELU(1) = Φ(1) = 0.841345; GELU(−1) = −(1 − Φ(1)).
        assert!(
            y[0] == 0.0
                && (y[1] - 0.841_344_746).abs() < 1e-8
                && (y[2] + 0.158_655_254).abs() < 1e-8
        );
        activation_forward(Activation::LeakyRelu, &[-3.0, 2.0, 0.0], &mut y);
        assert_eq!(y, [-0.03, 2.0, 0.0]);
        for (i, name) in Activation::NAMES.iter().enumerate() {
            assert_eq!(Activation::parse(name).unwrap().name(), *name);
            assert_eq!(Activation::parse(name).unwrap() as usize, i);
        }
    }
}
