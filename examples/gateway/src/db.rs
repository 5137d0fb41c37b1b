//! The payment store: SQLite in WAL mode (`synchronous=FULL`), one writer thread, one
//! transaction per payment, and one reader thread on a read-only connection (WAL lets it read
//! while the writer commits). Queries run on those threads, so async handlers never block.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

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
) -> Result<(mpsc::SyncSender<Job>, JoinHandle<()>), String> {
    let (tx, rx) = mpsc::sync_channel::<Job>(1024);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job(&mut conn);
            }
            let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
        })
        .map_err(|e| format!("cannot start the database thread: {e}"))?;
    Ok((tx, handle))
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
        let (tx, writer_thread) = spawn("gateway-db", conn)?;
        let (reader, reader_thread) = spawn("gateway-db-read", reader)?;
        Ok((Db { tx, reader }, DbThread(writer_thread, reader_thread)))
    }

    /// Runs `f` on the writer thread and returns its result.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        submit(self.tx.clone(), f).await
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
        let _ = done.send(f(conn));
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
        .map_err(|e| format!("database error: {e}"))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
