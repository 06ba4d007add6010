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
//! the step ([`LrSchedule`]): linear warm-up, then constant, step decay or cosine decay.

use super::Real;

/// Which update rule a member uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    AdamW,
}

impl OptimizerKind {
    pub const NAMES: [&'static str; 2] = ["sgd", "adamw"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sgd" => Some(OptimizerKind::Sgd),
            "adamw" => Some(OptimizerKind::AdamW),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

/// How the learning rate decays after the warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decay {
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        every_epochs: f32,
        gamma: f32,
    },
    /// Half a cosine from 1 to 0 over `total_epochs` (the sweep's full budget).
    Cosine {
        total_epochs: f32,
    },
}

/// A learning-rate schedule in epochs: a linear warm-up over `warmup_epochs`, then `decay`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    pub warmup_epochs: f32,
    pub decay: Decay,
}

impl LrSchedule {
    pub const CONSTANT: LrSchedule = LrSchedule {
        warmup_epochs: 0.0,
        decay: Decay::Constant,
    };

    pub fn is_constant(&self) -> bool {
        *self == Self::CONSTANT
    }

    /// The factor on the base learning rate for update number `step` (1-based) with
    /// `steps_per_epoch` minibatches per epoch. Warm-up reaches 1 at its last step; decay
    /// is evaluated at the epochs completed before the step.
    pub fn factor(&self, step: u64, steps_per_epoch: usize) -> f32 {
        let spe = steps_per_epoch.max(1) as f64;
        let done = (step.max(1) - 1) as f64 / spe;
        let decay = match self.decay {
            Decay::Constant => 1.0,
            Decay::Step {
                every_epochs,
                gamma,
            } => f64::from(gamma).powf((done / f64::from(every_epochs).max(1e-9)).floor()),
            Decay::Cosine { total_epochs } => {
                let t = (done / f64::from(total_epochs).max(1e-9)).min(1.0);
                0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        };
        let warmup_steps = f64::from(self.warmup_epochs) * spe;
        let warm = if warmup_steps > 0.0 {
            (step as f64 / warmup_steps).min(1.0)
        } else {
            1.0
        };
        (decay * warm) as f32
    }
}

/// One member's optimizer hyperparameters. `momentum` (and `nesterov`) are SGD's; AdamW
/// uses `beta1`, `beta2` and `eps` instead. `weight_decay` is L2 for SGD and decoupled for
/// AdamW, as in PyTorch; `l1` is an L1 penalty for either.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimHparams {
    pub kind: OptimizerKind,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub nesterov: bool,
    pub l1: f32,
    pub schedule: LrSchedule,
}

impl OptimHparams {
    pub fn sgd(lr: f32, momentum: f32, weight_decay: f32) -> Self {
        OptimHparams {
            kind: OptimizerKind::Sgd,
            lr,
            momentum,
            weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            nesterov: false,
            l1: 0.0,
            schedule: LrSchedule::CONSTANT,
        }
    }

    /// Whether the member uses only what the CUDA kernels implement (SGD with momentum or
    /// AdamW, L2/decoupled weight decay, a constant learning rate); else what it lacks.
    pub fn beyond_cuda(&self) -> Option<&'static str> {
        if self.nesterov {
            Some("Nesterov momentum")
        } else if self.l1 != 0.0 {
            Some("an L1 penalty")
        } else if !self.schedule.is_constant() {
            Some("a learning-rate schedule")
        } else {
            None
        }
    }

    /// AdamW with PyTorch's default betas (0.9, 0.999) and ε = 1e-8.
    pub fn adamw(lr: f32, weight_decay: f32) -> Self {
        OptimHparams {
            kind: OptimizerKind::AdamW,
            ..Self::sgd(lr, 0.0, weight_decay)
        }
    }
}

/// One update of `w` from `grad`. `step` is the 1-based number of this update (AdamW's
/// bias correction); `m` and `v` are the first and second moments (SGD uses `m` as its
/// velocity and leaves `v` alone). `lr_factor` is the schedule's factor at this step
/// ([`LrSchedule::factor`]); the caller knows the epoch length.
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

fn sgd_momentum_step<T: Real>(hp: &OptimHparams, w: &mut [T], grad: &[T], velocity: &mut [T]) {
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
    let (step_size, sqrt_bias2) = (T::from_f32(step_size), T::from_f32(sqrt_bias2));
    let decay = T::one() - T::from_f32(hp.lr) * T::from_f32(hp.weight_decay);
    let (b1, b2, eps, l1) = (
        T::from_f32(hp.beta1),
        T::from_f32(hp.beta2),
        T::from_f32(hp.eps),
        T::from_f32(hp.l1),
    );
    for (((w, &g), m), v) in w.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if l1 == T::zero() {
            g
        } else {
            g + l1_term(l1, *w)
        };
        *w *= decay;
        *m = b1 * *m + (T::one() - b1) * g;
        *v = b2 * *v + (T::one() - b2) * g * g;
        *w = *w - step_size * *m / (v.sqrt() / sqrt_bias2 + eps);
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
    fn schedules_warm_up_then_decay() {
        let cosine = LrSchedule {
            warmup_epochs: 1.0,
            decay: Decay::Cosine { total_epochs: 10.0 },
        };
        // 4 steps per epoch: warm-up 0.25, 0.5, 0.75, 1 over the first epoch.
        let f: Vec<f32> = (1..=4).map(|s| cosine.factor(s, 4)).collect();
        assert!(
            f.windows(2).all(|w| w[0] < w[1])
                && (f[3] - (0.5 * (1.0 + (std::f64::consts::PI * 0.075).cos())) as f32).abs()
                    < 1e-6
        );
        assert!(
            (cosine.factor(21, 4) - 0.5).abs() < 1e-6,
            "half way through 10 epochs"
        );
        assert!(cosine.factor(41, 4).abs() < 1e-6 && cosine.factor(400, 4).abs() < 1e-6);
        let step = LrSchedule {
            warmup_epochs: 0.0,
            decay: Decay::Step {
                every_epochs: 2.0,
                gamma: 0.1,
            },
        };
        assert_eq!(step.factor(1, 10), 1.0);
        assert_eq!(step.factor(20, 10), 1.0);
        assert!((step.factor(21, 10) - 0.1).abs() < 1e-7);
        assert!((step.factor(41, 10) - 0.01).abs() < 1e-8);
        assert_eq!(LrSchedule::CONSTANT.factor(12345, 7), 1.0);
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
}
