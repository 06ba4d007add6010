//! Optimizers over one member's slice of the flat parameter buffer. CUDA twin:
//! `kernels/optim.cu` (which applies the same arithmetic to the whole population in one
//! launch, reading each member's hyperparameters from per-member arrays).
//!
//! Both follow PyTorch's arithmetic, so results can be compared with it:
//! - SGD (`torch.optim.SGD`, dampening 0) with L2 weight decay added to the gradient:
//!   `g ← g + wd·w`, `m ← μ·m + g`, `w ← w − lr·m` (Nesterov: `w ← w − lr·(g + μ·m)`);
//! - AdamW (`torch.optim.AdamW`) with decoupled weight decay: `w ← w·(1 − lr·wd)`,
//!   `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
//!   `w ← w − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`.
//!
//! An L1 penalty `l1·Σ|w|` adds its subgradient `l1·sign(w)` (0 at 0) to the gradient, for
//! either optimizer. The learning rate is the member's `lr` times its schedule's factor at
//! the step ([`crate::model::hparams::LrSchedule`]): linear warm-up, then constant, step decay or cosine decay.

use super::Real;
use crate::model::hparams::{OptimHparams, OptimizerKind};

/// One update of `w` from `grad`. `step` is the 1-based number of this update (AdamW's
/// bias correction); `m` and `v` are the first and second moments (SGD uses `m` as its
/// velocity and leaves `v` alone). `lr_factor` is the schedule's factor at this step
/// ([`crate::model::hparams::LrSchedule::factor`]); the caller knows the epoch length.
pub fn optimizer_step<T: Real>(
    hp: &OptimHparams,
    step: u64,
    lr_factor: f32,
    w: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let hp = OptimHparams {
        lr: hp.lr * lr_factor,
        ..*hp
    };
    match hp.kind {
        OptimizerKind::Sgd => sgd_momentum_step(&hp, w, grad, m),
        OptimizerKind::AdamW => adamw_step(&hp, step, w, grad, m, v),
    }
}

/// `l1·sign(w)`: the L1 penalty's subgradient (0 at w = 0).
fn l1_term<T: Real>(l1: T, w: T) -> T {
    if w > T::zero() {
        l1
    } else if w < T::zero() {
        -l1
    } else {
        T::zero()
    }
}

widest_vectors! {
    /// SGD with momentum, vectorised as [`adamw_step`] is.
    fn sgd_momentum_step<T: Real>(hp: &OptimHparams, w: &mut [T], grad: &[T], velocity: &mut [T])
    as sgd_avx512, sgd_avx2 => sgd_update
}

#[inline(always)]
fn sgd_update<T: Real>(hp: &OptimHparams, w: &mut [T], grad: &[T], velocity: &mut [T]) {
    let (lr, mu, wd, l1) = (
        T::from_f32(hp.lr),
        T::from_f32(hp.momentum),
        T::from_f32(hp.weight_decay),
        T::from_f32(hp.l1),
    );
    if l1 == T::zero() && !hp.nesterov {
        // The common case without per-element branches, so the loop vectorises.
        for ((w, &g), v) in w.iter_mut().zip(grad).zip(velocity.iter_mut()) {
            let g = g + wd * *w;
            *v = mu * *v + g;
            *w = *w - lr * *v;
        }
        return;
    }
    for ((w, &g), v) in w.iter_mut().zip(grad).zip(velocity.iter_mut()) {
        let g = g + wd * *w + l1_term(l1, *w);
        *v = mu * *v + g;
        let update = if hp.nesterov { g + mu * *v } else { *v };
        *w = *w - lr * update;
    }
}

/// AdamW's per-step scalars `(step size lr/(1−β1ᵗ), √(1−β2ᵗ))`, computed in f64 as
/// `-expm1(t·ln β)` so that `1 − βᵗ` loses no precision for small `t`. The CUDA kernel
/// receives these two numbers per member, so both devices start from the same values.
pub fn adamw_scalars(hp: &OptimHparams, step: u64) -> (f32, f32) {
    let t = step.max(1) as f64;
    let bias1 = -(t * f64::from(hp.beta1).ln()).exp_m1();
    let bias2 = -(t * f64::from(hp.beta2).ln()).exp_m1();
    ((f64::from(hp.lr) / bias1) as f32, bias2.sqrt() as f32)
}

fn adamw_step<T: Real>(
    hp: &OptimHparams,
    step: u64,
    w: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let (step_size, sqrt_bias2) = adamw_scalars(hp, step);
    let k = AdamwConstants {
        step_size: T::from_f32(step_size),
        sqrt_bias2: T::from_f32(sqrt_bias2),
        decay: T::one() - T::from_f32(hp.lr) * T::from_f32(hp.weight_decay),
        b1: T::from_f32(hp.beta1),
        b2: T::from_f32(hp.beta2),
        eps: T::from_f32(hp.eps),
        l1: T::from_f32(hp.l1),
    };
    adamw_vectorised(&k, w, grad, m, v)
}

/// AdamW's per-step constants in the element type.
struct AdamwConstants<T> {
    step_size: T,
    sqrt_bias2: T,
    decay: T,
    b1: T,
    b2: T,
    eps: T,
    l1: T,
}

widest_vectors! {
    /// A tenth to a sixth of an MLP's step, bound by two divisions and a square root per
    /// element.
    fn adamw_vectorised<T: Real>(
        k: &AdamwConstants<T>,
        w: &mut [T],
        g: &[T],
        m: &mut [T],
        v: &mut [T],
    ) as adamw_avx512, adamw_avx2 => adamw_update
}

#[inline(always)]
fn adamw_update<T: Real>(k: &AdamwConstants<T>, w: &mut [T], grad: &[T], m: &mut [T], v: &mut [T]) {
    let one = T::one();
    let update = |w: &mut T, g: T, m: &mut T, v: &mut T| {
        *w *= k.decay;
        *m = k.b1 * *m + (one - k.b1) * g;
        *v = k.b2 * *v + (one - k.b2) * g * g;
        *w = *w - k.step_size * *m / (v.sqrt() / k.sqrt_bias2 + k.eps);
    };
    let all = w.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut());
    if k.l1 == T::zero() {
        // Without the L1 term's per-element branch, so the loop vectorises.
        all.for_each(|(((w, &g), m), v)| update(w, g, m, v));
    } else {
        all.for_each(|(((w, &g), m), v)| {
            let g = g + l1_term(k.l1, *w);
            update(w, g, m, v)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_two_steps_match_hand_computation() {
        let hp = OptimHparams::sgd(0.5, 0.9, 0.1);
        let (mut w, mut m, mut v) = (vec![1.0f64], vec![0.0f64], vec![7.0f64]);
        optimizer_step(&hp, 1, 1.0, &mut w, &[2.0], &mut m, &mut v);
        // g = 2 + 0.1·1 = 2.1; m = 2.1; w = 1 − 1.05
        assert!((m[0] - 2.1).abs() < 1e-7 && (w[0] + 0.05).abs() < 1e-7);
        optimizer_step(&hp, 2, 1.0, &mut w, &[2.0], &mut m, &mut v);
        // g = 2 − 0.005 = 1.995; m = 1.89 + 1.995 = 3.885; w = −0.05 − 1.9425
        assert!((m[0] - 3.885).abs() < 1e-6 && (w[0] + 1.9925).abs() < 1e-6);
        assert_eq!(v[0], 7.0, "SGD leaves the second moment alone");
    }

    #[test]
    fn adamw_matches_hand_computation() {
        let hp = OptimHparams::adamw(0.1, 0.01);
        let (mut w, mut m, mut v) = (vec![1.0f64], vec![0.0f64], vec![0.0f64]);
        optimizer_step(&hp, 1, 1.0, &mut w, &[0.5], &mut m, &mut v);
        // Step 1: w = 0.999; m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25 → w −= 0.1·0.5/(0.5+ε).
        // Tolerances allow for the hyperparameters being f32 (β1 = 0.9 is 0.9 − 2.4e-8).
        assert!((m[0] - 0.05).abs() < 1e-7 && (v[0] - 0.00025).abs() < 1e-8);
        assert!((w[0] - (0.999 - 0.1 * 0.5 / (0.5 + 1e-8))).abs() < 1e-6);
        optimizer_step(&hp, 2, 1.0, &mut w, &[-1.0], &mut m, &mut v);
        let m2 = 0.9 * 0.05 + -0.1;
        let v2: f64 = 0.999 * 0.00025 + 0.001 * 1.0;
        let w_decayed = (0.999 - 0.1 * 0.5 / (0.5 + 1e-8)) * (1.0 - 0.1 * 0.01);
        let expect =
            w_decayed - 0.1 / (1.0 - 0.81) * m2 / (v2.sqrt() / (1.0f64 - 0.998001).sqrt() + 1e-8);
        assert!((w[0] - expect).abs() < 1e-6, "{} vs {expect}", w[0]);
    }

    #[test]
    fn penalties_match_finite_differences_of_their_terms() {
        // With lr 1 and no momentum, SGD's step is minus the full gradient: the loss
        // gradient plus the derivatives of (wd/2)·w² and l1·|w|.
        let hp = OptimHparams {
            l1: 0.3,
            ..OptimHparams::sgd(1.0, 0.0, 0.2)
        };
        let penalty = |w: f64| 0.5 * 0.2 * w * w + 0.3 * w.abs();
        for w0 in [-1.7f64, -0.2, 0.4, 2.5] {
            let (mut w, mut m, mut v) = (vec![w0], vec![0.0], vec![0.0]);
            optimizer_step(&hp, 1, 1.0, &mut w, &[0.5], &mut m, &mut v);
            let numeric = 0.5 + (penalty(w0 + 1e-6) - penalty(w0 - 1e-6)) / 2e-6;
            assert!(
                ((w0 - w[0]) - numeric).abs() < 1e-6,
                "w0 {w0}: {} vs {numeric}",
                w0 - w[0]
            );
        }
        // The subgradient at exactly 0 is 0: L1 does not push a zero weight.
        let (mut w, mut m, mut v) = (vec![0.0f64], vec![0.0], vec![0.0]);
        optimizer_step(&hp, 1, 1.0, &mut w, &[0.0], &mut m, &mut v);
        assert_eq!(w[0], 0.0);
    }

    #[test]
    fn nesterov_looks_ahead_by_one_momentum_step() {
        let hp = OptimHparams {
            nesterov: true,
            ..OptimHparams::sgd(0.1, 0.9, 0.0)
        };
        let (mut w, mut m, mut v) = (vec![1.0f64], vec![0.0], vec![0.0]);
        optimizer_step(&hp, 1, 1.0, &mut w, &[1.0], &mut m, &mut v);
        // m = 1; update = g + μ·m = 1.9
        assert!((w[0] - (1.0 - 0.19)).abs() < 1e-7);
        optimizer_step(&hp, 2, 1.0, &mut w, &[1.0], &mut m, &mut v);
        // m = 1.9; update = 1 + 0.9·1.9 = 2.71
        assert!((w[0] - (0.81 - 0.271)).abs() < 1e-6);
    }

    #[test]
    fn adamw_first_step_moves_each_weight_by_about_lr() {
        // Adam's signature: the first step is ±lr whatever the gradient's scale.
        let hp = OptimHparams::adamw(0.01, 0.0);
        let grads = [1e-4, -3.0, 250.0];
        let (mut w, mut m, mut v) = (vec![0.0f32; 3], vec![0.0f32; 3], vec![0.0f32; 3]);
        optimizer_step(&hp, 1, 1.0, &mut w, &grads, &mut m, &mut v);
        for (w, g) in w.iter().zip(grads) {
            assert!((w.abs() - 0.01).abs() < 1e-4 && w.signum() == -g.signum());
        }
    }

    /// SGD's compiled versions give the portable loop's bits, plain, with Nesterov and
    /// with L1 (the branchy loop).
    #[test]
    fn sgd_versions_give_the_same_bits() {
        let n = 1000 + 13;
        let value = |i: usize, salt: u32| {
            ((i as u32).wrapping_mul(2_654_435_761) ^ salt) as f32 / u32::MAX as f32 - 0.5
        };
        let start = |salt| (0..n).map(|i| value(i, salt)).collect::<Vec<f32>>();
        let g = start(1);
        for (nesterov, l1) in [(false, 0.0f32), (true, 0.0), (false, 1e-3)] {
            let hp = OptimHparams {
                nesterov,
                l1,
                ..OptimHparams::sgd(0.05, 0.9, 1e-4)
            };
            let run = |f: &dyn Fn(&mut [f32], &mut [f32])| {
                let (mut w, mut m) = (start(2), start(3));
                f(&mut w, &mut m);
                [w, m].map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<u32>>())
            };
            let portable = run(&|w, m| sgd_update(&hp, w, &g, m));
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    assert!(run(&|w, m| unsafe { sgd_avx2(&hp, w, &g, m) }) == portable);
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    assert!(run(&|w, m| unsafe { sgd_avx512(&hp, w, &g, m) }) == portable);
                }
            }
            assert!(portable[0]
                .iter()
                .zip(start(2))
                .any(|(a, b)| *a != b.to_bits()));
        }
    }

    /// An AdamW loop over `(w, m, v)`.
    type Update<'a> = &'a dyn Fn(&mut [f32], &mut [f32], &mut [f32]);

    /// Each compiled version of the AdamW loop gives the portable loop's bits, with and
    /// without L1, over a length that leaves a remainder after every vector width.
    #[test]
    fn adamw_versions_give_the_same_bits() {
        let n = 1000 + 13;
        let value = |i: usize, salt: u32| {
            ((i as u32).wrapping_mul(2_654_435_761) ^ salt) as f32 / u32::MAX as f32 - 0.5
        };
        for l1 in [0.0f32, 1e-3] {
            let k = AdamwConstants {
                step_size: 0.01f32,
                sqrt_bias2: 0.3,
                decay: 0.9999,
                b1: 0.9,
                b2: 0.999,
                eps: 1e-8,
                l1,
            };
            let start = |salt| (0..n).map(|i| value(i, salt)).collect::<Vec<f32>>();
            let g = start(1);
            let run = |f: Update<'_>| {
                let (mut w, mut m) = (start(2), start(3));
                let mut v: Vec<f32> = start(4).iter().map(|x| x * x).collect();
                f(&mut w, &mut m, &mut v);
                [w, m, v].map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<u32>>())
            };
            let portable = run(&|w, m, v| adamw_update(&k, w, &g, m, v));
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    let avx2 = run(&|w, m, v| unsafe { adamw_avx2(&k, w, &g, m, v) });
                    assert!(avx2 == portable, "AVX2 differs (l1 {l1})");
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    let avx512 = run(&|w, m, v| unsafe { adamw_avx512(&k, w, &g, m, v) });
                    assert!(avx512 == portable, "AVX-512 differs (l1 {l1})");
                }
            }
            assert!(portable[0]
                .iter()
                .zip(start(2))
                .any(|(a, b)| *a != b.to_bits()));
        }
    }
}
