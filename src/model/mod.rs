//! Trial models: what one member of a population is.

pub mod cnn;
pub mod hparams;
pub mod knobs;
pub mod layers;
mod mlp;
pub mod vit;

pub use hparams::Hparams;
pub use layers::{Arch, Attention, Conv2d, Layer, Norm, Pool};

/// Everything that defines one member: its architecture, its hyperparameters, the seed
/// from which its initial weights and dropout masks are drawn, and (cross-validation) the
/// fold of the data it sees.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberSpec {
    pub arch: Arch,
    pub hparams: Hparams,
    pub seed: u64,
    /// `None`: the population's training and validation sets. `Some`: a slice of them, so
    /// members of different cross-validation folds still train in one population.
    pub fold: Option<std::sync::Arc<Fold>>,
}

/// A member's view of the population's data: the training rows it learns from (in the
/// epoch's shared order, skipping the others) and the rows it is validated on.
#[derive(Clone, Debug, PartialEq)]
pub struct Fold {
    /// Distinguishes folds; members with the same id share one view.
    pub id: usize,
    /// Per training row: whether this fold trains on it.
    pub in_train: Vec<bool>,
    /// Indices into the validation set.
    pub val_rows: Vec<usize>,
}
