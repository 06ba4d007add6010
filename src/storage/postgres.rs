//! A study in PostgreSQL, shared by every process and machine that opens it.
//!
//! The database holds what a journal holds, in rows: the study's operations in order
//! (`popsweep_ops`, one [`Op`] as JSON text per row, numbered per study) and its trial
//! records (`popsweep_records`). Each process replays the operations into the same
//! [`StudyState`] a journal builds, incrementally, so a transaction reads only what others
//! wrote since its last one.
//!
//! - **One writer at a time per study.** A transaction locks the study's row
//!   (`SELECT … FOR UPDATE`), reads the operations others appended, decides and appends.
//!   Writers thus commit in sequence order, and a reader without the lock always sees a
//!   prefix of the sequence. Trial numbers come from the replayed state under the lock:
//!   never one twice.
//! - **A lost connection is retried**, with backoff, for up to
//!   `POPSWEEP_DB_RETRY_SECONDS` (default 600): a worker outlives a database restart.
//!   A commit whose answer was lost is the one ambiguous case: every transaction carries
//!   a random token (`txn`), and after reconnecting the storage first looks for it, so
//!   a decision is recorded once, never twice.
//! - **Records are kept in memory until stored**: [`Storage::record`] queues; `sync`
//!   inserts the queue in one transaction, each record with a random token that makes a
//!   retried insert idempotent (`ON CONFLICT DO NOTHING`).
//! - **A versioned schema**: `popsweep_schema` holds [`SCHEMA_VERSION`]; a database
//!   created by another version is refused with both numbers, never altered.
//!
//! The client is the `postgres` crate (rust-postgres, sfackler): the maintained,
//! synchronous PostgreSQL client of the Rust ecosystem, with the wire protocol, SCRAM
//! authentication and URL parsing that a hand-written client would have to repeat.

use super::lease::Leases;
use super::pg_connection::{connect, describe, is_transient, retry_patience, url_error};
use super::pg_schema::{check_schema, study_row, Refusal};
use super::{Decide, Op, Storage, StudyState, TrialRecord};
use crate::error::{Error, Result};
use postgres::Client;
use std::time::{Duration, Instant};

pub use super::pg_connection::{is_url, redact};
pub use super::pg_schema::SCHEMA_VERSION;

pub struct PgStorage {
    url: String,
    client: Client,
    study_id: i32,
    state: StudyState,
    /// The sequence number of the next operation to replay.
    next_seq: i64,
    /// Records not yet stored: (token, JSON), kept until an insert commits.
    unstored: Vec<(i64, String)>,
    warnings: Vec<String>,
    leases: Option<Leases>,
    /// The token of a transaction whose commit may have landed before the connection
    /// was lost; looked for before anything is decided again.
    in_doubt: Option<i64>,
    /// Whether the storage already said it lost the connection (said once per outage).
    reported_outage: bool,
}

impl PgStorage {
    /// Connects to `url` and opens the study `name`, creating it if absent when `create`
    /// (a reader such as `best` creates nothing). The schema is created in an empty
    /// database and checked in any other.
    pub fn open(url: &str, name: &str, create: bool) -> Result<PgStorage> {
        if name.trim().is_empty() {
            return Err(url_error(url, "a study name is needed (--study-name)"));
        }
        let mut client = connect(url)?;
        check_schema(&mut client).map_err(|e| match e {
            Refusal::Message(m) => url_error(url, &m),
            Refusal::Db(e) => url_error(url, &format!("cannot set up popsweep's tables: {e}")),
        })?;
        let study_id = study_row(&mut client, name, create)
            .map_err(|e| url_error(url, &format!("cannot open study `{name}`: {e}")))?
            .ok_or_else(|| {
                url_error(
                    url,
                    &format!("no study named `{name}` here yet; create it with `popsweep ask --space ...`"),
                )
            })?;
        let mut storage = PgStorage {
            url: url.to_string(),
            client,
            study_id,
            state: StudyState::default(),
            next_seq: 0,
            unstored: Vec::new(),
            warnings: Vec::new(),
            leases: None,
            in_doubt: None,
            reported_outage: false,
        };
        storage.retrying("reading the study", |s| s.replay_new())?;
        Ok(storage)
    }

    /// Trials asked through this storage hold a lease renewed every `interval / 3` by a
    /// thread of its own; a trial whose lease lapses (its worker died) is failed by the
    /// next transaction of any worker and re-queued up to `max_retries` times.
    pub fn with_heartbeat(mut self, interval: Duration, max_retries: usize) -> Result<PgStorage> {
        let leases = Leases::start(&self.url, self.study_id, interval, max_retries)
            .map_err(|e| url_error(&self.url, &e))?;
        self.leases = Some(leases);
        Ok(self)
    }

    /// The database, its password hidden.
    pub fn shown_url(&self) -> String {
        redact(&self.url)
    }

    /// Reads the operations appended since the last read and applies them.
    fn replay_new(&mut self) -> std::result::Result<(), postgres::Error> {
        let rows = read_new(&mut self.client, self.study_id, self.next_seq)?;
        apply_rows(
            &mut self.state,
            &mut self.next_seq,
            &mut self.warnings,
            &rows,
        );
        Ok(())
    }

    /// One attempt at a transaction (see [`Storage::transact_ops`]); a connection error is
    /// the outer `Err`, for [`PgStorage::retrying`].
    fn try_transact(
        &mut self,
        txn: i64,
        decide: &mut Decide<'_>,
    ) -> std::result::Result<std::result::Result<(), String>, postgres::Error> {
        if let Some(token) = self.in_doubt {
            let landed = self.client.query_opt(
                "SELECT 1 FROM popsweep_ops WHERE study_id = $1 AND txn = $2 LIMIT 1",
                &[&self.study_id, &token],
            )?;
            self.in_doubt = None;
            if landed.is_some() {
                // The records queued then went with it.
                self.unstored.clear();
                self.replay_new()?;
                return Ok(Ok(()));
            }
        }
        let mut tx = self.client.transaction()?;
        tx.execute(
            "SELECT 1 FROM popsweep_studies WHERE id = $1 FOR UPDATE",
            &[&self.study_id],
        )?;
        let rows = read_new(&mut tx, self.study_id, self.next_seq)?;
        apply_rows(
            &mut self.state,
            &mut self.next_seq,
            &mut self.warnings,
            &rows,
        );
        // Trials of dead workers are failed (and re-queued) before anything is decided, so
        // the decision sees them as what they now are.
        let mut ops = super::lease::expire(&mut tx, self.study_id, &self.state)?;
        // Applied in place: a copy of the state per transaction would make every ask and
        // tell linear in the study. Whatever goes wrong from here on drops the state, and
        // the next read rebuilds it from the database.
        for op in &ops {
            self.state
                .apply(op)
                .expect("an expiry fails a running trial");
        }
        let decided = match decide(&self.state) {
            Ok(decided) => decided,
            Err(e) if ops.is_empty() => return Ok(Err(e)),
            // The expiry is recorded even when the decision is refused.
            Err(e) => {
                let written = commit_ops(tx, self.study_id, txn, self.next_seq, &ops);
                return match self.settle(txn, written) {
                    Ok(()) => Ok(Err(e)),
                    Err(db) => {
                        self.forget_state();
                        Err(db)
                    }
                };
            }
        };
        for op in &decided {
            if let Err(e) = self.state.apply(op) {
                (self.state, self.next_seq) = (StudyState::default(), 0);
                return Ok(Err(e));
            }
        }
        ops.extend(decided);
        let staged = match &self.leases {
            Some(leases) => leases.take_asked(&mut tx, &ops),
            None => Ok(()),
        }
        // Records queued before this decision (a trial's record before its tell) commit
        // with it: a worker killed after a tell never leaves a finished trial without its
        // record.
        .and_then(|()| insert_records(&mut tx, self.study_id, &self.unstored));
        let written = match staged {
            Ok(()) => commit_ops(tx, self.study_id, txn, self.next_seq, &ops),
            Err(e) => {
                drop(tx); // rolled back
                Err((false, e))
            }
        };
        if let Err(db) = self.settle(txn, written) {
            self.forget_state();
            return Err(db);
        }
        self.unstored.clear();
        Ok(Ok(()))
    }

    /// Drops the replayed state (it holds operations that may not have been recorded);
    /// the next read replays the study from its start.
    fn forget_state(&mut self) {
        self.state = StudyState::default();
        self.next_seq = 0;
    }

    /// Accounts for a commit: `written` operations appended, or an error after which the
    /// commit may or may not have landed (the token settles it after reconnecting).
    fn settle(
        &mut self,
        txn: i64,
        written: std::result::Result<usize, (bool, postgres::Error)>,
    ) -> std::result::Result<(), postgres::Error> {
        match written {
            Ok(n) => {
                self.next_seq += n as i64;
                Ok(())
            }
            Err((in_doubt, e)) => {
                if in_doubt {
                    self.in_doubt = Some(txn);
                }
                Err(e)
            }
        }
    }

    /// Inserts the records not yet stored, in one transaction.
    fn store_records(&mut self) -> std::result::Result<(), postgres::Error> {
        if self.unstored.is_empty() {
            return Ok(());
        }
        insert_records(&mut self.client, self.study_id, &self.unstored)?;
        self.unstored.clear();
        Ok(())
    }

    /// Runs `attempt`, reconnecting with backoff while the database is unreachable, for up
    /// to `POPSWEEP_DB_RETRY_SECONDS`. Other database errors end it at once.
    fn retrying<R>(
        &mut self,
        what: &str,
        mut attempt: impl FnMut(&mut Self) -> std::result::Result<R, postgres::Error>,
    ) -> Result<R> {
        let patience = retry_patience();
        let start = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let error = match attempt(self) {
                Ok(r) => {
                    if self.reported_outage {
                        eprintln!("note: {}: connected again", redact(&self.url));
                        self.reported_outage = false;
                    }
                    return Ok(r);
                }
                Err(e) => e,
            };
            if !is_transient(&error) {
                return Err(Error::Run(format!(
                    "{}: {what}: {}",
                    redact(&self.url),
                    describe(&error)
                )));
            }
            if start.elapsed() >= patience {
                return Err(Error::Run(format!(
                    "{}: {what}: the database was unreachable for {} s ({}); nothing \
                     finished was lost: run the same command again once it is back",
                    redact(&self.url),
                    start.elapsed().as_secs(),
                    describe(&error)
                )));
            }
            if !self.reported_outage {
                eprintln!(
                    "warning: {}: lost the database while {what} ({}); retrying for up to {} s",
                    redact(&self.url),
                    describe(&error),
                    patience.as_secs()
                );
                self.reported_outage = true;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
            if self.client.is_closed() || self.client.is_valid(Duration::from_secs(2)).is_err() {
                if let Ok(client) = connect(&self.url) {
                    self.client = client;
                }
            }
        }
    }
}

impl Storage for PgStorage {
    fn transact_ops(&mut self, decide: &mut Decide<'_>) -> Result<std::result::Result<(), String>> {
        let txn = random_token();
        self.retrying("recording a decision", |s| s.try_transact(txn, decide))
    }

    fn state(&mut self) -> Result<&StudyState> {
        self.retrying("reading the study", |s| s.replay_new())?;
        Ok(&self.state)
    }

    fn record(&mut self, record: &TrialRecord) -> Result<()> {
        let text = serde_json::to_string(record).expect("trial records serialize");
        self.unstored.push((random_token(), text));
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.retrying("storing trial records", |s| s.store_records())
    }

    fn records(&mut self) -> Result<Vec<TrialRecord>> {
        self.sync()?;
        let study = self.study_id;
        let rows = self.retrying("reading trial records", |s| {
            s.client.query(
                "SELECT id, record FROM popsweep_records WHERE study_id = $1 ORDER BY id",
                &[&study],
            )
        })?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.get(0);
            let text: &str = row.get(1);
            match serde_json::from_str(text) {
                Ok(r) => records.push(r),
                Err(e) => self.warnings.push(format!(
                    "record {id}: skipped an unreadable trial record ({e})"
                )),
            }
        }
        Ok(records)
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn shared(&self) -> bool {
        true
    }
}

impl Drop for PgStorage {
    /// Records still unstored at the end (the database gone for longer than the retries
    /// waited) are printed rather than lost silently.
    fn drop(&mut self) {
        if self.unstored.is_empty() || self.store_records().is_ok() {
            return;
        }
        eprintln!(
            "error: {}: {} trial records could not be stored; they follow, one per line",
            redact(&self.url),
            self.unstored.len()
        );
        for (_, text) in &self.unstored {
            eprintln!("{text}");
        }
    }
}

/// Appends `ops` (numbered from `seq`) in the open transaction and commits it: the number
/// appended, or the error and whether it struck during the commit itself (then the
/// outcome is unknown).
fn commit_ops(
    mut tx: postgres::Transaction<'_>,
    study_id: i32,
    txn: i64,
    seq: i64,
    ops: &[Op],
) -> std::result::Result<usize, (bool, postgres::Error)> {
    let texts: Vec<String> = ops
        .iter()
        .map(|op| serde_json::to_string(op).expect("operations serialize"))
        .collect();
    if !texts.is_empty() {
        tx.execute(
            "INSERT INTO popsweep_ops (study_id, seq, txn, op) \
             SELECT $1, $2 + t.i - 1, $3, t.op FROM unnest($4::text[]) WITH ORDINALITY AS t(op, i)",
            &[&study_id, &seq, &txn, &texts],
        )
        .map_err(|e| (false, e))?;
    }
    tx.commit().map_err(|e| (true, e))?;
    Ok(texts.len())
}

/// Inserts records, each at most once (a retried insert finds its token taken).
fn insert_records(
    client: &mut impl postgres::GenericClient,
    study_id: i32,
    records: &[(i64, String)],
) -> std::result::Result<(), postgres::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let tokens: Vec<i64> = records.iter().map(|(t, _)| *t).collect();
    let texts: Vec<&str> = records.iter().map(|(_, r)| r.as_str()).collect();
    client.execute(
        "INSERT INTO popsweep_records (study_id, token, record) \
         SELECT $1, t.token, t.record FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS t(token, record, i) \
         ORDER BY t.i ON CONFLICT (token) DO NOTHING",
        &[&study_id, &tokens, &texts],
    )?;
    Ok(())
}

/// The study's operations from sequence number `from` on, in order.
fn read_new(
    client: &mut impl postgres::GenericClient,
    study_id: i32,
    from: i64,
) -> std::result::Result<Vec<postgres::Row>, postgres::Error> {
    client.query(
        "SELECT seq, op FROM popsweep_ops WHERE study_id = $1 AND seq >= $2 ORDER BY seq",
        &[&study_id, &from],
    )
}

/// Applies replayed rows; an unreadable or contradicting row is reported and skipped, as a
/// journal skips a damaged line.
fn apply_rows(
    state: &mut StudyState,
    next_seq: &mut i64,
    warnings: &mut Vec<String>,
    rows: &[postgres::Row],
) {
    for row in rows {
        let seq: i64 = row.get(0);
        let text: &str = row.get(1);
        let applied = serde_json::from_str::<Op>(text)
            .map_err(|e| e.to_string())
            .and_then(|op| state.apply(&op));
        if let Err(why) = applied {
            warnings.push(format!("operation {seq} skipped: {why}"));
        }
        *next_seq = seq + 1;
    }
}

/// A random 63-bit token (positive, for readability in `psql`).
pub(super) fn random_token() -> i64 {
    (rand::random::<u64>() >> 1) as i64
}
