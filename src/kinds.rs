//! Names shared by the sweep file, the study's storage and the tuner: which sampler, and
//! which way the objective goes. A leaf module, so that storage can type its study header
//! without importing the tuner (which imports storage).

use serde::{Deserialize, Serialize};

/// The samplers a study can name (`--sampler`, or a sweep's `method`). Stored by name
/// (a journal's header), read back by name or alias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum SamplerKind {
    Random,
    Sobol,
    Grid,
    /// TPE with the always-active parameters modelled jointly (Optuna's default for a
    /// single objective since v4): Optuna's setting with narrow candidate draws around
    /// the best good trials (`TpeOptions::popsweep`).
    Tpe,
    /// TPE with every parameter modelled on its own (Optuna's `multivariate=False`).
    TpeUnivariate,
    /// TPE in the setting Watanabe (2023) recommends.
    TpeWatanabe,
    /// Gaussian process with expected improvement (W&B's `bayes`).
    Gp,
    /// NSGA-II (Optuna's `NSGAIISampler` defaults): a genetic algorithm over generations
    /// of 50, for several objectives.
    Nsga2,
}

impl TryFrom<String> for SamplerKind {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        SamplerKind::parse(&name)
            .ok_or_else(|| format!("unknown sampler `{name}` (known: {})", SamplerKind::NAMES))
    }
}

impl From<SamplerKind> for &'static str {
    fn from(kind: SamplerKind) -> &'static str {
        kind.name()
    }
}

impl SamplerKind {
    pub const NAMES: &'static str =
        "random, sobol, grid, tpe, tpe-univariate, tpe-watanabe, gp (alias bayes), nsga2";

    pub fn parse(name: &str) -> Option<SamplerKind> {
        match name {
            "random" => Some(SamplerKind::Random),
            "sobol" => Some(SamplerKind::Sobol),
            "grid" => Some(SamplerKind::Grid),
            "tpe" => Some(SamplerKind::Tpe),
            "tpe-univariate" => Some(SamplerKind::TpeUnivariate),
            "tpe-watanabe" => Some(SamplerKind::TpeWatanabe),
            "gp" | "bayes" => Some(SamplerKind::Gp),
            "nsga2" => Some(SamplerKind::Nsga2),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Random => "random",
            SamplerKind::Sobol => "sobol",
            SamplerKind::Grid => "grid",
            SamplerKind::Tpe => "tpe",
            SamplerKind::TpeUnivariate => "tpe-univariate",
            SamplerKind::TpeWatanabe => "tpe-watanabe",
            SamplerKind::Gp => "gp",
            SamplerKind::Nsga2 => "nsga2",
        }
    }
}

/// Whether a study's objective is minimised or maximised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Minimize,
    Maximize,
}

impl Direction {
    pub fn parse(name: &str) -> Option<Direction> {
        match name {
            "minimize" => Some(Direction::Minimize),
            "maximize" => Some(Direction::Maximize),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Minimize => "minimize",
            Direction::Maximize => "maximize",
        }
    }

    pub fn maximize(self) -> bool {
        self == Direction::Maximize
    }
}
