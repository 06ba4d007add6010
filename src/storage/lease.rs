//! Heartbeats for a study in PostgreSQL: a worker holds a lease on each trial it asked,
//! renewed by a thread of its own; a trial whose lease lapses belonged to a worker that
//! died (or lost the network), and is failed and re-queued with the same parameters.
//!
//! This is Optuna's `heartbeat_interval` with its `RetryFailedTrialCallback`, with two
//! differences that follow from the storage:
//! - The expiry is checked inside every transaction, under the study's lock, by whichever
//!   process writes next (with or without heartbeats of its own): a dead worker's trials are failed exactly once, and a decision
//!   (an ASHA promotion, the next ask) never sees them as running.
//! - A retry is an ordinary enqueued configuration, so whichever worker asks next takes
//!   it; its attempts are the failed trials with the same parameters.
//! - A restart of the database renews every lease: no worker could renew while it was
//!   down, so only a worker that stays silent for a grace period after it is back loses
//!   its trials.

use super::{FrozenTrial, Op, StudyState, TrialState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The leases table; part of schema version 1 (see `postgres.rs`).
pub const LEASES_SCHEMA: &str = "
CREATE TABLE popsweep_leases (
    study_id integer NOT NULL REFERENCES popsweep_studies (id) ON DELETE CASCADE,
    trial integer NOT NULL,
    worker bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    grace_seconds double precision NOT NULL,
    max_retries integer NOT NULL,
    PRIMARY KEY (study_id, trial)
);
";

/// A worker's leases: who it is, how long a lease lasts, and the thread renewing them.
pub struct Leases {
    study_id: i32,
    worker: i64,
    /// How long a lease lasts unrenewed: two heartbeats (Optuna's default grace period).
    grace: Duration,
    max_retries: usize,
    stop: Arc<AtomicBool>,
    renewer: Option<JoinHandle<()>>,
}

impl Leases {
    /// Starts renewing this worker's leases every `interval` on a connection of its own.
    pub fn start(
        url: &str,
        study_id: i32,
        interval: Duration,
        max_retries: usize,
    ) -> std::result::Result<Leases, String> {
        if interval.is_zero() {
            return Err("the heartbeat interval must be positive".into());
        }
        let worker = super::postgres::random_token();
        let grace = interval * 2;
        let stop = Arc::new(AtomicBool::new(false));
        let (url, flag) = (url.to_string(), stop.clone());
        let renewer = std::thread::Builder::new()
            .name("popsweep-heartbeat".into())
            .spawn(move || renew(&url, study_id, worker, interval, grace, &flag))
            .map_err(|e| format!("cannot start the heartbeat thread: {e}"))?;
        Ok(Leases {
            study_id,
            worker,
            grace,
            max_retries,
            stop,
            renewer: Some(renewer),
        })
    }

    /// Leases the trials these operations ask and releases the ones they finish.
    pub fn take_asked(
        &self,
        tx: &mut postgres::Transaction<'_>,
        ops: &[Op],
    ) -> std::result::Result<(), postgres::Error> {
        let (mut asked, mut told) = (Vec::new(), Vec::new());
        for op in ops {
            match op {
                Op::Ask { trial, .. } => asked.push(*trial as i32),
                Op::Tell { trial, .. } => told.push(*trial as i32),
                _ => {}
            }
        }
        if !told.is_empty() {
            tx.execute(
                "DELETE FROM popsweep_leases WHERE study_id = $1 AND trial = ANY($2)",
                &[&self.study_id, &told],
            )?;
        }
        if !asked.is_empty() {
            let max_retries = self.max_retries.min(i32::MAX as usize) as i32;
            tx.execute(
                "INSERT INTO popsweep_leases (study_id, trial, worker, expires_at, grace_seconds, max_retries) \
                 SELECT $1, t, $2, now() + make_interval(secs => $3), $3, $5 FROM unnest($4::integer[]) AS t \
                 ON CONFLICT (study_id, trial) DO UPDATE SET worker = $2, expires_at = excluded.expires_at, \
                 grace_seconds = $3",
                &[&self.study_id, &self.worker, &self.grace.as_secs_f64(), &asked, &max_retries],
            )?;
        }
        Ok(())
    }
}

/// Takes every lapsed lease of the study and returns what follows for its trials: failed,
/// and their parameters re-queued while they have retries left.
pub fn expire(
    tx: &mut postgres::Transaction<'_>,
    study_id: i32,
    state: &StudyState,
) -> std::result::Result<Vec<Op>, postgres::Error> {
    // The server's start counts as a renewal of every lease: while it was down no worker
    // could renew, and a restart longer than the grace period must not fail every
    // running trial of every worker.
    let rows = tx.query(
        "DELETE FROM popsweep_leases WHERE study_id = $1 AND \
         GREATEST(expires_at, pg_postmaster_start_time() + make_interval(secs => grace_seconds)) < now() \
         RETURNING trial, max_retries",
        &[&study_id],
    )?;
    let mut lapsed: Vec<(usize, usize)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, i32>(0) as usize,
                r.get::<_, i32>(1).max(0) as usize,
            )
        })
        .collect();
    // In trial order, so retries queue as their trials were asked.
    lapsed.sort_unstable();
    let mut ops = Vec::new();
    for (number, max_retries) in lapsed {
        let Some(trial) = state
            .trials
            .get(number)
            .filter(|t| t.state == TrialState::Running)
        else {
            continue;
        };
        ops.extend(retry(trial, &state.trials, max_retries));
    }
    Ok(ops)
}

/// The operations that fail a lapsed trial and re-queue it while retries remain; its
/// attempts so far are the failed trials with the same parameters.
fn retry(trial: &FrozenTrial, trials: &[FrozenTrial], max_retries: usize) -> Vec<Op> {
    let attempts = trials
        .iter()
        .filter(|t| t.state == TrialState::Failed && t.params == trial.params)
        .count();
    let requeue = attempts < max_retries;
    eprintln!(
        "note: trial {}: its worker stopped renewing its lease; recorded failed{}",
        trial.number,
        match requeue {
            true => format!(
                " and re-queued its parameters (retry {} of {max_retries})",
                attempts + 1
            ),
            false => format!(" ({max_retries} retries used)"),
        }
    );
    let mut ops = vec![Op::Tell {
        trial: trial.number,
        state: TrialState::Failed,
        value: None,
        values: Vec::new(),
        constraints: Vec::new(),
    }];
    if requeue {
        ops.push(Op::Enqueue {
            params: trial.params.clone(),
            retry: true,
        });
    }
    ops
}

impl Drop for Leases {
    /// Stops renewing. Leases of trials still running lapse and go to other workers.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.renewer.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The heartbeat: every `interval`, pushes this worker's leases `grace` into the future.
/// A lost connection is retried quietly at the next beat (the worker's own transactions
/// report outages); if it stays lost past the grace period, the leases lapse, as they
/// should for a worker cut off from the study.
fn renew(
    url: &str,
    study_id: i32,
    worker: i64,
    interval: Duration,
    grace: Duration,
    stop: &AtomicBool,
) {
    let mut client: Option<postgres::Client> = None;
    while !stop.load(Ordering::Relaxed) {
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = super::pg_connection::connect(url).ok();
        }
        if let Some(c) = client.as_mut() {
            let renewed = c.execute(
                "UPDATE popsweep_leases SET expires_at = now() + make_interval(secs => $3) \
                 WHERE study_id = $1 AND worker = $2",
                &[&study_id, &worker, &grace.as_secs_f64()],
            );
            if renewed.is_err() {
                client = None;
            }
        }
        std::thread::park_timeout(interval);
    }
}
