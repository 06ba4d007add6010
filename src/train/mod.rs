//! Training procedures around a population: the learning-rate range test and the sanity
//! preflight.

pub mod lr_finder;
pub mod sanity;
