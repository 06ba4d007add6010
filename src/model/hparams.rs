//! The hyperparameter types of one member, below both backends and the config: which
//! activation, optimizer, learning-rate schedule, augmentation and minibatch size it trains
//! with. The backends implement them (CPU: `backend/cpu/{activation,optim,augment}.rs`;
//! CUDA: `kernels/*.cu`); the config parses into them.

/// One member's training hyperparameters (structure-of-arrays on the device side).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hparams {
    pub optim: OptimHparams,
    /// Dropout rate after every hidden layer, in [0, 1).
    pub dropout: f32,
    /// Dropout rate on a transformer's attention weights, in [0, 1).
    pub attn_dropout: f32,
    /// Input augmentation (none by default).
    pub augment: Augment,
    /// The member's own minibatch size, when tuned; `None` takes the sweep's. Design:
    /// ragged batches — every member walks the same shuffled order of the epoch, chunked by
    /// its own batch size (a member with smaller batches takes more steps per epoch), so
    /// members of every batch size still share one population and one data order.
    pub batch_size: Option<usize>,
}

/// Which nonlinearity a member's hidden layers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    /// `max(z, 0.01·z)`: PyTorch's default slope.
    LeakyRelu,
    Tanh,
    /// The exact GELU, `z·Φ(z)` (PyTorch's default, not the tanh approximation).
    Gelu,
}

/// Leaky ReLU's slope for negative inputs.
pub const LEAKY_SLOPE: f64 = 0.01;

impl Activation {
    pub const NAMES: [&'static str; 4] = ["relu", "leaky_relu", "tanh", "gelu"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "relu" => Some(Activation::Relu),
            "leaky_relu" => Some(Activation::LeakyRelu),
            "tanh" => Some(Activation::Tanh),
            "gelu" => Some(Activation::Gelu),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// One member's augmentation strengths.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Augment {
    pub noise: f32,
    pub shift: u32,
    /// Mirror each row's image left to right with probability 1/2.
    pub flip: bool,
}

impl Augment {
    pub fn is_active(&self) -> bool {
        self.noise > 0.0 || self.shift > 0 || self.flip
    }
}

/// The side of a square image of `n` pixels, if `n` is a square.
pub fn image_side(n: usize) -> Option<usize> {
    let side = (n as f64).sqrt().round() as usize;
    (side * side == n).then_some(side)
}

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
    /// AdamW, L2/decoupled weight decay, any learning-rate schedule); else what it lacks.
    pub fn beyond_cuda(&self) -> Option<&'static str> {
        if self.nesterov {
            Some("Nesterov momentum")
        } else if self.l1 != 0.0 {
            Some("an L1 penalty")
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
