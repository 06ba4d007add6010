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
pub use bands::{BandScheduler, BandStopping};
pub use bohb::model_budget;
pub use halving::{FullBudget, SuccessiveHalving};
pub use hyperband::{brackets, total_trials, Bracket};
pub use median::MedianStopping;
pub use pbt::{Pbt, PbtScheduler};

/// A trial arriving at a decision point of its schedule: after `curve.len()` units of
/// training (epochs, or `train.epoch_fraction` of one).
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    pub trial: usize,
    /// The sweep metric after each unit trained so far; the last is its value now.
    pub curve: &'a [f64],
    /// Its standing now; `None` for a trial that failed (it is never kept).
    pub score: Option<Score>,
    /// The hyperparameters it trains with now (PBT explores from them).
    pub params: &'a crate::space::Params,
}

impl Arrival<'_> {
    /// Units trained.
    pub fn epochs(&self) -> usize {
        self.curve.len()
    }
}

/// Every schedule answers arrivals through this one interface: Optuna's pruner,
/// generalised so that PBT fits. The driver trains, collects arrivals, asks for decisions
/// and applies them to the population; the scheduler never touches the population.
///
/// The contract (tests/schedulers.rs holds every scheduler to it): `decide` returns at
/// least one decision per arrival, naming only the arriving trials (an exploit's source
/// is one of them too); a trial that arrives with its full budget is never stopped; the
/// same arrivals in the same order give the same decisions.
pub trait Scheduler: Send {
    /// The name `summary.json` and the progress lines use.
    fn name(&self) -> &'static str;

    /// The full budget in units, where it has one (W&B's band rule for external programs
    /// has none: a program decides itself how long it reports).
    fn max_budget(&self) -> Option<usize>;

    /// Whether `decide` must see every trial arriving at a point together (successive
    /// halving ranks a whole rung, PBT a whole round); otherwise each arrival is answered
    /// as it comes, and no trial waits for another.
    fn synchronous(&self) -> bool;

    /// Whether an arrival of `trial` after `epochs` units stands at a rung: its value there
    /// is recorded among the trial's rung values.
    fn is_rung(&self, trial: usize, epochs: usize) -> bool;

    /// What each arriving trial does next.
    fn decide(&mut self, arrivals: &[Arrival<'_>], maximize: bool) -> Vec<(usize, Decision)>;

    /// `trial` finished its full budget with `curve` (median stopping compares later
    /// trials with it).
    fn complete(&mut self, _trial: usize, _curve: &[f64]) {}

    /// Another worker's trial (a study shared by several processes) stood at rung `rung`
    /// (0-based among the rungs it passed) with `score`: an asynchronous scheduler counts
    /// it among the rung's values as if it had arrived here.
    fn observe_rung(&mut self, _rung: usize, _score: Score) {}

    /// Its random stream, for a scheduler that draws (PBT): a checkpoint saves it and a
    /// resume puts it back, so the resumed sweep draws what the uninterrupted one would.
    fn rng_mut(&mut self) -> Option<&mut rand_chacha::ChaCha8Rng> {
        None
    }
}

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

impl Decision {
    /// `Continue` if `keep`, else `Stop`.
    pub fn keep(keep: bool) -> Decision {
        if keep {
            Decision::Continue
        } else {
            Decision::Stop
        }
    }
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
