//! What a sweep leaves on disk.

pub mod dashboard;
pub mod diagnostics;
pub mod html;
pub mod importance;
pub mod optuna_journal;
pub mod page_data;
pub mod plot;
pub mod progress;
pub mod run;
pub mod run_files;
pub mod study_view;
