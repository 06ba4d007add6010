//! Schedulers: at each rung, which members continue, which stop, and (PBT) which copy
//! another member and change their hyperparameters. The maths lives here; the sweep driver
//! (the sweep module) applies the decisions to the population.

mod asha;
mod bands;
mod bohb;
mod halving;
pub mod hyperband;
mod median;
mod pbt;

pub use asha::Asha;
pub use bands::BandStopping;
pub use bohb::model_budget;
pub use halving::SuccessiveHalving;
pub use hyperband::{brackets, total_trials, Bracket};
pub use median::MedianStopping;
pub use pbt::Pbt;

/// What a scheduler decides for a member at a rung. Successive halving, ASHA and median
/// stopping answer `Continue` or `Stop`; PBT answers `Exploit { from }` followed by
/// `Explore { params }` for a member it moves.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Continue,
    Stop,
    /// Take the weights and optimizer state of the member training trial `from`.
    Exploit {
        from: usize,
    },
    /// Continue with these hyperparameters.
    Explore {
        params: crate::space::Params,
    },
}

/// A member's standing at a rung: the sweep metric, and a lower-is-better tie-break
/// (validation loss in a sweep). Accuracy on a few hundred validation rows ties often;
/// the loss separates those ties by confidence instead of by trial number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub value: f64,
    pub tiebreak: f64,
}

impl Score {
    /// A score with no tie-break.
    pub fn plain(value: f64) -> Score {
        Score {
            value,
            tiebreak: 0.0,
        }
    }
}

/// A finished trial's standing among the others, as the sweep picks its best trial and
/// every table of top trials lists them (see [`by_standing`]).
#[derive(Clone, Copy, Debug)]
pub struct Standing {
    pub epochs: usize,
    /// The metric at its last rung (NaN without one).
    pub value: f64,
    /// Its last epoch's validation loss (∞ without one).
    pub val_loss: f64,
    pub number: usize,
}

/// The order of trials by standing, best first: furthest trained (a pruned trial's early
/// value is not comparable), then the metric, then the lower validation loss (accuracy
/// ties often; the loss separates ties by confidence), then the earlier trial.
pub fn by_standing(a: Standing, b: Standing, maximize: bool) -> std::cmp::Ordering {
    let by_value = a.value.total_cmp(&b.value);
    b.epochs
        .cmp(&a.epochs)
        .then(if maximize {
            by_value.reverse()
        } else {
            by_value
        })
        .then(a.val_loss.total_cmp(&b.val_loss))
        .then(a.number.cmp(&b.number))
}

/// Indices of the finite scores (`None` marks a failed member), best first; equal values
/// are ordered by tie-break, then by index (the earlier trial), so every choice is
/// deterministic.
pub fn rank(scores: &[Option<Score>], maximize: bool) -> Vec<usize> {
    let mut ranked: Vec<(usize, Score)> = scores
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.filter(|s| s.value.is_finite()).map(|s| (i, s)))
        .collect();
    ranked.sort_by(|(ia, a), (ib, b)| {
        let order = a.value.total_cmp(&b.value);
        (if maximize { order.reverse() } else { order })
            .then(a.tiebreak.total_cmp(&b.tiebreak))
            .then(ia.cmp(ib))
    });
    ranked.into_iter().map(|(i, _)| i).collect()
}
