//! What a sweep leaves on disk.

pub mod log;
