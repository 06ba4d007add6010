//! What a sweep leaves on disk.

pub mod log;
pub mod plot;
