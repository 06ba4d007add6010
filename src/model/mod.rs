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
    /// The member's own minibatch size, when tuned; `None` takes the sweep's. Design:
    /// ragged batches — every member walks the same shuffled order of the epoch, chunked by
    /// its own batch size (a member with smaller batches takes more steps per epoch), so
    /// members of every batch size still share one population and one data order.
    pub batch_size: Option<usize>,
}

/// Everything that defines one member: its architecture, its hyperparameters, and the seed
/// from which its initial weights and dropout masks are drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberSpec {
    pub arch: MlpArch,
    pub hparams: Hparams,
    pub seed: u64,
}
