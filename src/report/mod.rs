//! What a sweep leaves on disk.

pub mod diagnostics;
pub mod html;
pub mod importance;
pub mod optuna_journal;
pub mod plot;
pub mod progress;
pub mod run;
pub mod run_files;
