//! Where a study lives: its operations (ask, report, tell, enqueue) and the full record of
//! each finished trial. Every kind of sweep — built-in, external program, nested CV, and
//! the ask/tell CLI — reads and writes through the one [`Storage`] trait; the run
//! directory's other files (`summary.json`, `trials.csv`, the report) are derived from its
//! records.
//!
//! - [`MemoryStorage`]: nothing on disk (a sampler's scratch study, tests).
//! - [`RunStorage`]: a directory. Operations in memory (a built-in sweep, whose asks a
//!   resume re-derives from the seed) or in an append-only journal shared by processes
//!   (`journal.jsonl`: ask/tell, external programs); records in `trials.jsonl`.
//!
//! - [`PgStorage`]: a study in PostgreSQL, shared by processes on many machines, with
//!   heartbeats that fail and re-queue a dead worker's trials.
//!
//! A transaction is a closure over the replayed state that may run more than once (a
//! lost connection retries it), so the drivers never see which storage they write to.

pub mod journal;
mod lease;
pub mod lock;
mod memory;
mod ops;
mod pg_connection;
mod pg_schema;
mod pg_tls;
pub mod postgres;
mod records;
mod run_dir;
mod sealed;
mod trial;

pub use journal::Journal;
pub use memory::MemoryStorage;
pub use ops::{Op, StudyState};
pub use postgres::PgStorage;
pub use records::{is_zero, Lineage, RungValue, TrialRecord};
pub use run_dir::{OpsIn, RunStorage};
pub use trial::{FrozenTrial, TrialState};

use crate::error::Result;
pub use crate::kinds::Direction;
use crate::kinds::SamplerKind;
use serde::{Deserialize, Serialize};

/// What created the study: fixed by the first `ask`, reused by every later one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyHeader {
    pub direction: Direction,
    /// Every objective's direction, for a study of several (then `direction` is the
    /// first's); empty for one objective.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directions: Vec<Direction>,
    pub sampler: SamplerKind,
    pub seed: u64,
    /// The `parameters` block as written (YAML or JSON text); empty for define-by-run.
    pub space: String,
    /// The study's name (Hyperband's pruner hashes it); empty for studies made before.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The pruner `tell --intermediate` consults; none: never prune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruner: Option<crate::pruning::PrunerSpec>,
    /// The sweep file of a study that `run --storage` workers share (`report --storage`
    /// reads it); empty for an ask/tell study.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sweep: String,
}

/// A decision over the replayed study: the operations to record, or why none can be.
/// It may be called more than once when the storage retries a conflicting transaction.
pub type Decide<'a> = dyn FnMut(&StudyState) -> std::result::Result<Vec<Op>, String> + 'a;

/// A study's storage. Errors of the storage itself (I/O, a lost connection) are the outer
/// `Result`; a refused decision is the inner one.
pub trait Storage {
    /// Runs `decide` on the up-to-date state and records the operations it returns,
    /// atomically with respect to every other process sharing the study.
    fn transact_ops(&mut self, decide: &mut Decide<'_>) -> Result<std::result::Result<(), String>>;

    /// The state, refreshed with what other processes recorded.
    fn state(&mut self) -> Result<&StudyState>;

    /// Adds a finished trial's full record (durable after [`Storage::sync`]).
    fn record(&mut self, record: &TrialRecord) -> Result<()>;

    /// Makes every record added so far durable; called once per rung.
    fn sync(&mut self) -> Result<()>;

    /// Every record, in the order recorded. A trial may have several: one per outer fold
    /// of a nested cross-validation, or a rewrite after a crash.
    fn records(&mut self) -> Result<Vec<TrialRecord>>;

    /// Problems met reading the storage (torn or invalid lines), taken once.
    fn take_warnings(&mut self) -> Vec<String>;

    /// Whether processes elsewhere work on the same study at the same time (a database):
    /// a sweep then asks within one shared cap and decides on every worker's results.
    fn shared(&self) -> bool {
        false
    }
}

impl dyn Storage + '_ {
    /// [`Storage::transact_ops`] for a decision that also returns a value.
    pub fn transact<R>(
        &mut self,
        mut decide: impl FnMut(&StudyState) -> std::result::Result<(Vec<Op>, R), String>,
    ) -> Result<std::result::Result<R, String>> {
        let mut value = None;
        let outcome = self.transact_ops(&mut |state| {
            let (ops, r) = decide(state)?;
            value = Some(r);
            Ok(ops)
        })?;
        Ok(outcome.map(|()| value.expect("a recorded decision has a value")))
    }
}
