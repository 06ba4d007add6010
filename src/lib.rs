//! popsweep: hyperparameter tuning that trains a whole population of trial models at once.
//!
//! Data flow: a sweep file is validated into a [`config::Sweep`]; the data set is split
//! into [`data::TuningData`] and a sealed [`data::HeldOutTest`]; the sampler suggests a
//! population; a [`backend::Backend`] trains it rung by rung; the scheduler keeps the best;
//! the best trial is evaluated once on the test split ([`sweep::run_sweep`]).
//!
//! # Quick start
//!
//! From the command line, `popsweep run sweep.yaml` trains a sweep file's population;
//! `popsweep ask` / `tell` / `best` serve a study to any language. From Rust, a study runs
//! an objective of one's own, as Optuna's `study.optimize` does
//! (`examples/define_by_run.rs` is the whole program):
//!
//! ```rust,ignore
//! use popsweep::pruning::PrunerSpec;
//! use popsweep::space::Space;
//! use popsweep::tuner::sampler::SamplerKind;
//! use popsweep::tuner::study::{Outcome, Study};
//!
//! let pruner = PrunerSpec::parse("median")?;
//! let mut study = Study::in_memory(Space::default(), SamplerKind::Tpe, false, 0)?
//!     .with_pruner(&pruner)?;
//! study.optimize(50, |trial| {
//!     let lr = trial.suggest_float("lr", 1e-4, 1.0, true)?;
//!     let mut loss = f64::NAN;
//!     for epoch in 1..=20 {
//!         loss = train_one_epoch(lr); // your training code
//!         trial.report(epoch, loss)?;
//!         if trial.should_prune()? {
//!             return Ok(Outcome::Pruned);
//!         }
//!     }
//!     Ok(Outcome::Complete(loss))
//! })?;
//! println!("{:?}", study.best()?);
//! ```
//!
//! Several objectives: [`tuner::study::Study::with_directions`],
//! [`tuner::study::Study::tell_values`] and [`tuner::study::Study::best_trials`]
//! (`examples/multi_objective.rs`). An experiment on the engine itself — a
//! [`population::Population`] trained epoch by epoch by a [`backend::Backend`], with a
//! rule of one's own between epochs — is `examples/population_experiment.rs`.

/// `fn $name` runs the `#[inline(always)]` function `$portable`, compiled for the widest
/// vectors the CPU has — AVX-512F as `$avx512`, AVX2 as `$avx2`, else as written — and
/// picked at run time, so one portable binary still vectorises the hot loops the compiler
/// could only give SSE2. Every version does the same IEEE operations in the same order
/// (Rust fuses no multiply-add on its own), so `$portable` gives the same bits in each; the
/// callers' tests compare them.
macro_rules! widest_vectors {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident $(<$($g:ident: $bound:path),*>)? ($($arg:ident: $ty:ty),* $(,)?)
        as $avx512:ident, $avx2:ident => $portable:ident
    ) => {
        $(#[$attr])*
        $vis fn $name $(<$($g: $bound),*>)? ($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked on the line above).
                    return unsafe { $avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked on the line above).
                    return unsafe { $avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn $avx512 $(<$($g: $bound),*>)? ($($arg: $ty),*) {
            $portable($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2 $(<$($g: $bound),*>)? ($($arg: $ty),*) {
            $portable($($arg),*)
        }
    };
}

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
