//! SQLite's refresh-token rotations, written by one task on a connection of its own, in
//! batches.
//!
//! A rotation is one row inserted into the `refresh_rotations` view (migrations 0015, 0021): its
//! trigger marks the old token used if it is live and its session has not ended, and only then
//! inserts the new token. The writer takes every rotation queued meanwhile (at most [`BATCH`])
//! and writes them with one multi-row INSERT — one statement, so one hand-off to the
//! connection's thread and one commit for the whole batch — then reads which of the new tokens
//! exist: those rotations happened, the others were refused and changed nothing. A hand-off to
//! SQLite's thread and back costs more CPU than the SQL it carries, and a commit costs a WAL
//! write: a burst of refreshes shares both.
//!
//! Nothing is answered before the statement has committed: in WAL mode with
//! `synchronous = NORMAL` a committed transaction is in the WAL file, so a rotation a client was
//! told about survives a crash of the process (a power cut may lose the commits since the last
//! checkpoint; `synchronous = FULL` would sync every commit).
//!
//! Concurrency is the database's own: the rows of a batch are rotated one after the other, so
//! of two rotations of one token the second finds it used and is refused, exactly as when they
//! commit apart; a logout on another connection takes the write lock before or after the whole
//! statement. A statement that fails changes nothing, and every rotation of its batch is
//! answered with the error (the client may retry with the same token, which was not rotated).

use std::collections::HashSet;

use sqlx::QueryBuilder;
use sqlx::sqlite::{Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::{RefreshToken, StoreError, StoreResult};

/// Rotations written in one statement at most.
const BATCH: usize = 64;
/// Rotations waiting for the writer at most; beyond, callers wait to queue theirs.
const QUEUE: usize = 1024;

struct Rotation {
    old_hash: String,
    now: i64,
    new: RefreshToken,
    done: oneshot::Sender<StoreResult<bool>>,
}

/// The queue to the writer task; the task ends when this is dropped.
pub(super) struct RotationWriter {
    jobs: mpsc::Sender<Rotation>,
}

/// The writer task is gone (the runtime is shutting down) or its connection cannot reach the
/// file: answered 503; the token was not rotated.
fn writer_gone() -> StoreError {
    StoreError::Unavailable(sqlx::Error::WorkerCrashed)
}

impl RotationWriter {
    /// Start the writer task on `conn` (a connection used for nothing else).
    pub(super) fn start(conn: SqliteConnection) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(conn, queue));
        Self { jobs }
    }

    /// Mark `old_hash` used and store `new`; `false`, changing nothing, when the old token was
    /// not live. Returns once the rotation is committed (or refused).
    pub(super) async fn rotate(
        &self,
        old_hash: &str,
        now: i64,
        new: &RefreshToken,
    ) -> StoreResult<bool> {
        let (done, answer) = oneshot::channel();
        let job = Rotation {
            old_hash: old_hash.to_owned(),
            now,
            new: new.clone(),
            done,
        };
        self.jobs.send(job).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

async fn write_loop(mut conn: SqliteConnection, mut queue: mpsc::Receiver<Rotation>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        match write_batch(&mut conn, &batch).await {
            Ok(rotated) => {
                for job in batch.drain(..) {
                    let done = rotated.contains(job.new.token_hash.as_str());
                    let _ = job.done.send(Ok(done));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, rotations = batch.len(), "refresh rotations failed");
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(failed(&e)));
                }
            }
        }
    }
}

/// Rotate every token of `batch` in one statement; returns the new tokens' hashes that were
/// stored, i.e. the rotations that happened.
async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[Rotation],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO refresh_rotations (token_hash, family_id, client_id, user_id, sid, scope, \
         auth_time, created_at, expires_at, family_expires_at, used_at, revoked_at, access_jti, \
         access_exp, amr, old_hash, now) ",
    );
    insert.push_values(batch, |mut row, job| {
        let t = &job.new;
        row.push_bind(&t.token_hash)
            .push_bind(&t.family_id)
            .push_bind(&t.client_id)
            .push_bind(&t.user_id)
            .push_bind(&t.sid)
            .push_bind(&t.scope)
            .push_bind(t.auth_time)
            .push_bind(t.created_at)
            .push_bind(t.expires_at)
            .push_bind(t.family_expires_at)
            .push_bind(t.used_at)
            .push_bind(t.revoked_at)
            .push_bind(&t.access_jti)
            .push_bind(t.access_exp)
            .push_bind(&t.amr)
            .push_bind(&job.old_hash)
            .push_bind(job.now);
    });
    insert.build().execute(&mut *conn).await?;
    // Committed. A stored token is never deleted before its family expires, which a rotated
    // one has not: the new tokens found are exactly the rotations that happened.
    let mut stored =
        QueryBuilder::<Sqlite>::new("SELECT token_hash FROM refresh_tokens WHERE token_hash IN (");
    let mut hashes = stored.separated(", ");
    for job in batch {
        hashes.push_bind(&job.new.token_hash);
    }
    stored.push(")");
    let rows: Vec<(String,)> = stored.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}

/// What each rotation of a failed batch is told: unavailable (503, retry) when the database
/// could not be reached, the error itself otherwise (a new token that collided with a stored
/// one: never in practice, tokens are 256 random bits).
fn failed(e: &sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => writer_gone(),
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        other => StoreError::Database(sqlx::Error::Protocol(format!(
            "refresh rotations not written: {other}"
        ))),
    }
}
