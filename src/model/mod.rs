//! Trial models: what one member of a population is.

pub mod knobs;
pub mod mlp;

pub use mlp::{MlpArch, MlpWorkspace};

use crate::backend::cpu::optim::OptimHparams;

/// One member's training hyperparameters (structure-of-arrays on the device side).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hparams {
    pub optim: OptimHparams,
    /// Dropout rate after every hidden layer, in [0, 1).
    pub dropout: f32,
    /// Input augmentation (none by default).
    pub augment: crate::backend::cpu::augment::Augment,
}

/// Everything that defines one member: its architecture, its hyperparameters, and the seed
/// from which its initial weights and dropout masks are drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberSpec {
    pub arch: MlpArch,
    pub hparams: Hparams,
    pub seed: u64,
}
