//! SGD with momentum and L2 weight decay over one member's slice of the flat parameter
//! buffer. CUDA twin: `kernels/optim.cu`.
//!
//! PyTorch's `torch.optim.SGD` semantics (dampening 0, not Nesterov), so results can be
//! compared with it: `g ← g + wd·w`, `v ← μ·v + g`, `w ← w − lr·v`.

use super::Real;

/// One member's optimizer hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdHparams {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

pub fn sgd_momentum_step<T: Real>(hp: SgdHparams, w: &mut [T], grad: &[T], velocity: &mut [T]) {
    let (lr, mu, wd) = (
        T::from_f32(hp.lr),
        T::from_f32(hp.momentum),
        T::from_f32(hp.weight_decay),
    );
    for ((w, &g), v) in w.iter_mut().zip(grad).zip(velocity.iter_mut()) {
        let g = g + wd * *w;
        *v = mu * *v + g;
        *w = *w - lr * *v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_steps_match_hand_computation() {
        let hp = SgdHparams {
            lr: 0.5,
            momentum: 0.9,
            weight_decay: 0.1,
        };
        let (mut w, mut v) = (vec![1.0f64], vec![0.0f64]);
        sgd_momentum_step(hp, &mut w, &[2.0], &mut v);
        // g = 2 + 0.1·1 = 2.1; v = 2.1; w = 1 − 1.05
        assert!((v[0] - 2.1).abs() < 1e-7 && (w[0] + 0.05).abs() < 1e-7);
        sgd_momentum_step(hp, &mut w, &[2.0], &mut v);
        // g = 2 − 0.005 = 1.995; v = 1.89 + 1.995 = 3.885; w = −0.05 − 1.9425
        assert!((v[0] - 3.885).abs() < 1e-6 && (w[0] + 1.9925).abs() < 1e-6);
    }
}
