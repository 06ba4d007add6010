//! popsweep: hyperparameter tuning that trains a whole population of trial models at once.
//!
//! Data flow: a sweep file is validated into a [`config::Sweep`]; the data set is split
//! into [`data::TuningData`] and a sealed [`data::HeldOutTest`]; the sampler suggests a
//! population; a [`backend::Backend`] trains it rung by rung; the scheduler keeps the best;
//! the best trial is evaluated once on the test split ([`sweep::run_sweep`]).

pub mod backend;
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod external;
pub mod interrupt;
pub mod kinds;
pub mod limits;
pub mod model;
pub mod population;
pub mod pruning;
pub mod report;
pub mod rng;
pub mod space;
pub mod storage;
pub mod sweep;
pub mod train;
pub mod tuner;
