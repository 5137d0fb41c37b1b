//! The payment store: SQLite in WAL mode (`synchronous=FULL`), one writer thread that commits
//! in groups, and one reader thread on a read-only connection (WAL lets it read while the
//! writer commits). Queries run on those threads, so async handlers never block.
//!
//! **Group commit.** The writer takes every job waiting in its queue (up to [`MAX_GROUP`]),
//! runs each one in its own savepoint (a failing job rolls back alone), and commits them all in
//! one transaction: one fsync for the group instead of one per payment. A job's caller hears
//! back only after that commit is durable. Under load the queue holds many payments, so the
//! fsync cost is shared; with one payment at a time it is exactly one transaction per payment.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

/// A job runs on a database thread and returns what to do once its group is committed.
type Job = Box<dyn FnOnce(&mut Connection) -> Completion + Send>;
/// Tells a job's caller the outcome, given the commit's result.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The most jobs committed in one transaction.
pub(crate) const MAX_GROUP: usize = 256;

/// A handle to the database thread; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    tx: mpsc::SyncSender<Job>,
    reader: mpsc::SyncSender<Job>,
}

/// The database thread; join it after the last [`Db`] is dropped to flush the WAL.
#[derive(Debug)]
pub(crate) struct DbThread(JoinHandle<()>, JoinHandle<()>);

impl DbThread {
    /// Waits until every queued job ran and the connections are closed.
    pub(crate) fn join(self) {
        let _ = self.1.join();
        let _ = self.0.join();
    }
}

fn spawn(
    name: &str,
    mut conn: Connection,
    group: bool,
) -> Result<(mpsc::SyncSender<Job>, JoinHandle<()>), String> {
    let (tx, rx) = mpsc::sync_channel::<Job>(1024);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                if !group {
                    first(&mut conn)(Ok(()));
                    continue;
                }
                let mut jobs = vec![first];
                while jobs.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                commit_group(&mut conn, jobs);
            }
            let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
        })
        .map_err(|e| format!("cannot start the database thread: {e}"))?;
    Ok((tx, handle))
}

/// Runs `jobs` in one transaction and tells each caller once it is committed (or not).
fn commit_group(conn: &mut Connection, jobs: Vec<Job>) {
    // Without the outer transaction each job's savepoint commits on its own: still correct.
    let outer = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
    let done: Vec<Completion> = jobs.into_iter().map(|job| job(conn)).collect();
    let commit = if outer {
        conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            format!("database error: commit failed: {e}")
        })
    } else {
        Ok(())
    };
    for d in done {
        d(commit.clone());
    }
}

/// Runs `f` in a savepoint: released when it succeeds, rolled back when it fails.
fn in_savepoint<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    let result = f(conn);
    let end = if result.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    conn.execute_batch(end)?;
    result
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    body_hash TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    payment_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_at);
";

impl Db {
    /// Opens (or creates) the database and starts its thread.
    pub(crate) fn open(path: &Path) -> Result<(Db, DbThread), String> {
        let conn = Connection::open(path)
            .map_err(|e| format!("cannot open database {}: {e}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|_| conn.pragma_update(None, "busy_timeout", 5000))
            .and_then(|_| conn.execute_batch(SCHEMA))
            .map_err(|e| format!("cannot initialise database {}: {e}", path.display()))?;
        let reader = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open database {} for reading: {e}", path.display()))?;
        let (tx, writer_thread) = spawn("gateway-db", conn, true)?;
        let (reader, reader_thread) = spawn("gateway-db-read", reader, false)?;
        Ok((Db { tx, reader }, DbThread(writer_thread, reader_thread)))
    }

    /// Runs `f` atomically on the writer thread and returns its result once it is committed.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        submit(self.tx.clone(), move |c| in_savepoint(c, f)).await
    }

    /// Runs `f` on the read-only connection (it sees every committed payment).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        submit(self.reader.clone(), f).await
    }
}

async fn submit<T, F>(tx: mpsc::SyncSender<Job>, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
{
    let (done, wait) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let result = f(conn).map_err(|e| format!("database error: {e}"));
        Box::new(move |commit: Result<(), String>| {
            let _ = done.send(commit.and(result));
        })
    });
    match tx.try_send(job) {
        Ok(()) => {}
        Err(mpsc::TrySendError::Full(job)) => {
            // The channel is bounded: wait for room off the async threads.
            tokio::task::spawn_blocking(move || tx.send(job))
                .await
                .map_err(|e| format!("database thread: {e}"))?
                .map_err(|_| "database is closed".to_owned())?;
        }
        Err(mpsc::TrySendError::Disconnected(_)) => return Err("database is closed".into()),
    }
    wait.await
        .map_err(|_| "database thread stopped".to_owned())?
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_rolls_back_alone_and_the_group_commits() {
        let dir = std::env::temp_dir().join(format!("gateway-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (db, thread) = Db::open(&dir.join("t.sqlite3")).expect("open");
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..200 {
            let db = db.clone();
            calls.spawn(async move {
                db.run(move |c| {
                    c.execute(
                        "INSERT INTO outbox (payment_id, body) VALUES (?1, 'x')",
                        [format!("p{i}")],
                    )?;
                    if i == 7 {
                        // A second row with the same key: this job fails after its first write.
                        c.execute(
                            "INSERT INTO outbox (payment_id, body) VALUES ('p7', 'y')",
                            [],
                        )?;
                    }
                    Ok(())
                })
                .await
            });
        }
        let mut failed = Vec::new();
        while let Some(r) = calls.join_next().await {
            if let Err(e) = r.expect("join") {
                failed.push(e);
            }
        }
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].contains("UNIQUE"), "{}", failed[0]);
        let rows: i64 = db
            .read(|c| c.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)))
            .await
            .expect("count");
        assert_eq!(
            rows, 199,
            "every job but the failing one is committed, p7 not at all"
        );
        drop(db);
        thread.join();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
