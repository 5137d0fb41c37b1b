//! The per-producer reply stream: results of `publish_and_wait` come back here.
//!
//! One reader task per producer blocks on `XREAD` of `<stream>:reply:<producer id>` (its own
//! connection, so blocking does not stall publishing), hands each reply to the waiter of its
//! task id, deletes what it read, and refreshes the stream's expiry. Dropping the router
//! stops the reader and deletes the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::fields::Reply;

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>;

/// Routes replies to the futures waiting for them.
#[derive(Debug)]
pub(crate) struct Router {
    key: String,
    waiters: Waiters,
    reader: JoinHandle<()>,
    conn: super::Conn,
}

impl Router {
    /// Starts the reader on `conn` (a dedicated connection).
    pub(crate) fn start(key: String, conn: super::Conn, ttl: Duration) -> Router {
        let waiters: Waiters = Arc::default();
        let reader = tokio::spawn(read_loop(key.clone(), conn.0.clone(), waiters.clone(), ttl));
        Router {
            key,
            waiters,
            reader,
            conn,
        }
    }

    /// The reply stream's key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Registers a waiter for `task_id` (before publishing, so no reply is missed).
    pub(crate) fn wait_for(&self, task_id: &str) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(task_id.to_owned(), tx);
        }
        rx
    }

    /// Forgets the waiter of `task_id` (timed out or cancelled).
    pub(crate) fn forget(&self, task_id: &str) {
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(task_id);
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.reader.abort();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let mut conn = self.conn.0.clone();
            let key = self.key.clone();
            handle.spawn(async move {
                let _: Result<i64, _> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
            });
        }
    }
}

async fn read_loop(key: String, mut conn: ConnectionManager, waiters: Waiters, ttl: Duration) {
    let mut last = "0-0".to_owned();
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    loop {
        let read: Result<Value, _> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(500)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(&key)
            .arg(&last)
            .query_async(&mut conn)
            .await;
        let value = match read {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(stream = %key, error = %e, "reply stream read failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut seen = Vec::new();
        for (_stream, list) in stream_lists(&value) {
            for (id, fields) in super::entries(&list) {
                last.clone_from(&id);
                seen.push(id);
                let Some(fields) = fields else { continue };
                match Reply::from_fields(&fields) {
                    Ok((task_id, reply)) => {
                        let tx = waiters.lock().ok().and_then(|mut w| w.remove(&task_id));
                        if let Some(tx) = tx {
                            let _ = tx.send(reply);
                        }
                    }
                    Err(e) => tracing::warn!(stream = %key, error = %e, "malformed reply ignored"),
                }
            }
        }
        let mut pipe = redis::pipe();
        if !seen.is_empty() {
            pipe.cmd("XDEL").arg(&key).arg(&seen).ignore();
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
        let _: Result<(), _> = pipe.query_async(&mut conn).await;
    }
}

/// `XREAD`'s reply as (stream, entries) pairs, for RESP2 arrays and RESP3 maps.
fn stream_lists(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(p) if p.len() == 2 => Some((super::text(&p[0]), p[1].clone())),
                _ => None,
            })
            .collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (super::text(k), v.clone())).collect(),
        _ => Vec::new(),
    }
}
