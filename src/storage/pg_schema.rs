//! popsweep's tables in a PostgreSQL database: created on first use, checked on every
//! open (a database another version of popsweep made is refused, naming both versions),
//! and a study's row.

use super::lease::LEASES_SCHEMA;
use postgres::Client;

/// The layout of popsweep's tables; a database written by another version is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// Every table, created on first use (under an advisory lock, so workers starting at once
/// do not race).
const SCHEMA: &str = "
CREATE TABLE popsweep_schema (version integer NOT NULL);
CREATE TABLE popsweep_studies (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE popsweep_ops (
    study_id integer NOT NULL REFERENCES popsweep_studies (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    txn bigint NOT NULL,
    op text NOT NULL,
    PRIMARY KEY (study_id, seq)
);
CREATE INDEX popsweep_ops_txn ON popsweep_ops (study_id, txn);
CREATE TABLE popsweep_records (
    id bigserial PRIMARY KEY,
    study_id integer NOT NULL REFERENCES popsweep_studies (id) ON DELETE CASCADE,
    token bigint NOT NULL UNIQUE,
    record text NOT NULL
);
CREATE INDEX popsweep_records_study ON popsweep_records (study_id, id);
";

/// An arbitrary key for `pg_advisory_xact_lock`: held while the schema is checked or made.
const SCHEMA_LOCK: i64 = 0x706f_7073_7765_6570; // "popsweep"

pub(super) enum Refusal {
    Message(String),
    Db(postgres::Error),
}

impl From<postgres::Error> for Refusal {
    fn from(e: postgres::Error) -> Refusal {
        Refusal::Db(e)
    }
}

/// Creates popsweep's tables in a database without them; refuses one of another version.
pub(super) fn check_schema(client: &mut Client) -> std::result::Result<(), Refusal> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('popsweep_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        tx.batch_execute(SCHEMA)?;
        tx.batch_execute(LEASES_SCHEMA)?;
        tx.execute(
            "INSERT INTO popsweep_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )?;
        tx.commit()?;
        return Ok(());
    }
    let version: Option<i32> = tx
        .query_opt("SELECT version FROM popsweep_schema LIMIT 1", &[])?
        .map(|r| r.get(0));
    match version {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(v) => Err(Refusal::Message(format!(
            "the database holds popsweep's tables of schema version {v}; this popsweep \
             uses version {SCHEMA_VERSION}: use a popsweep of version {v}, or another database"
        ))),
        None => Err(Refusal::Message(
            "popsweep_schema holds no version: these tables were not written by popsweep; \
             use another database"
                .into(),
        )),
    }
}

/// The study's id, its row created if absent when `create`.
pub(super) fn study_row(
    client: &mut Client,
    name: &str,
    create: bool,
) -> std::result::Result<Option<i32>, postgres::Error> {
    if create {
        client.execute(
            "INSERT INTO popsweep_studies (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            &[&name],
        )?;
    }
    Ok(client
        .query_opt("SELECT id FROM popsweep_studies WHERE name = $1", &[&name])?
        .map(|r| r.get(0)))
}
