//! Redis Streams transport: a producer that publishes tasks (and can await their results) and
//! the operations behind `tandem queue` (stats, pending, dead letters, replay).
//!
//! The Python side is `python -m tandem consume module:app --redis URL --stream S`, which runs
//! the App's handlers at least once per task (see `docs/queue.md` for the exact guarantee).
//! Choose the queue for work that need not answer in real time: reports, batch jobs,
//! notifications (`docs/choosing.md`).
//!
//! # Examples
//!
//! ```no_run
//! # async fn demo() -> Result<(), tandem::Error> {
//! use tandem::queue::Producer;
//! use tandem::{Payload, Request};
//!
//! let producer = Producer::from_uri("redis://127.0.0.1:6379/reports").await?;
//! let id = producer.publish(Request::new("monthly", Payload::json(&"2026-11").unwrap())).await?;
//! let answer = producer
//!     .publish_and_wait(Request::new("monthly", Payload::json(&"2026-10").unwrap()))
//!     .await?;
//! # let _ = (id, answer); Ok(()) }
//! ```
//!
//! # Caveats
//!
//! - **At least once.** A task whose consumer is killed mid-handler runs again; handlers
//!   must be idempotent (or use an idempotency key with the consumer's `--dedup-ttl`).
//! - **Cancellation.** Dropping a `publish_and_wait` future stops waiting; the task still
//!   runs, and its late reply is discarded.
//! - **Ordering.** Tasks are read in stream order, but retries, reclaims and several
//!   consumers reorder them.
//! - **Dropping the producer** deletes its reply stream (best effort, from a spawned task);
//!   if the process dies, the stream's expiry removes it.

mod admin;
mod config;
pub mod features;
pub mod fields;
#[cfg(feature = "metrics")]
mod observe;
mod producer;
mod reply;

pub use admin::{Admin, ConsumerPending, DeadLetter, GroupStats, PendingEntry, Stats};
pub use config::{Backpressure, Builder};
pub use features::Features;
#[cfg(feature = "metrics")]
pub use observe::Collector;
pub use producer::Producer;

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind as RedisKind, RedisError, Value};

use crate::call::{Error, Transport};

/// Converts a Redis error into the call model; the one place this transport does so.
pub(crate) fn classify(target: &str, err: RedisError) -> Error {
    let transient = err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_timeout()
        || matches!(
            err.kind(),
            RedisKind::BusyLoadingError | RedisKind::TryAgain | RedisKind::ClusterDown
        );
    if transient {
        return Error::Unavailable {
            transport: Transport::Queue,
            target: target.to_owned(),
            reason: format!("redis unreachable: {err}"),
            source: Some(Box::new(err)),
        };
    }
    if err.code() == Some("OOM") {
        return Error::Overloaded {
            transport: Transport::Queue,
            target: format!("{target} (redis maxmemory reached)"),
            limit: 0,
        };
    }
    if matches!(err.kind(), RedisKind::InvalidClientConfig) {
        return Error::bad_request(
            Transport::Queue,
            target,
            format!("invalid redis URL: {err} (expected redis://HOST:PORT/STREAM)"),
        );
    }
    Error::Protocol {
        transport: Transport::Queue,
        target: target.to_owned(),
        reason: format!("redis refused the command: {err}"),
        source: Some(Box::new(err)),
    }
}

/// Splits `redis://HOST:PORT/STREAM` into the server URL and the stream name.
///
/// # Errors
///
/// [`Error::BadRequest`] when the scheme is not `redis`/`rediss` or the stream is missing.
pub fn parse_uri(uri: &str) -> Result<(String, String), Error> {
    let bad = |why: &str| {
        Error::bad_request(
            Transport::Queue,
            uri,
            format!(
                "{why} (expected redis://HOST:PORT/STREAM, e.g. redis://127.0.0.1:6379/reports)"
            ),
        )
    };
    let rest = uri
        .strip_prefix("redis://")
        .or_else(|| uri.strip_prefix("rediss://"))
        .ok_or_else(|| bad("scheme is not redis:// or rediss://"))?;
    let scheme_len = uri.len() - rest.len();
    let (host, stream) = rest.split_once('/').ok_or_else(|| bad("no stream name"))?;
    if stream.is_empty() || host.is_empty() {
        return Err(bad("no host or no stream name"));
    }
    Ok((format!("{}{host}", &uri[..scheme_len]), stream.to_owned()))
}

/// A reconnecting connection (redis-rs `ConnectionManager`, which has no `Debug`).
#[derive(Clone)]
pub(crate) struct Conn(pub(crate) ConnectionManager);

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionManager")
    }
}

/// Opens a reconnecting connection.
pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Conn, Error> {
    let client = redis::Client::open(url).map_err(|e| classify(url, e))?;
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(timeout)
        .set_number_of_retries(2)
        .set_max_delay(500);
    match tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, cfg)).await {
        Ok(r) => r.map(Conn).map_err(|e| classify(url, e)),
        Err(_) => Err(Error::unavailable(
            Transport::Queue,
            url,
            format!("redis did not answer within {timeout:?}"),
        )),
    }
}

/// Bytes of a bulk/simple string value.
pub(crate) fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.clone().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        _ => None,
    }
}

/// Text of a string value (lossy), or `""`.
pub(crate) fn text(v: &Value) -> String {
    bytes(v)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// An integer value (also from its decimal string).
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other).parse().ok(),
    }
}

/// A flat `[k, v, k, v]` array or a RESP3 map as a map from text keys.
pub(crate) fn pairs(v: &Value) -> BTreeMap<String, Value> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (text(&c[0]), c[1].clone()))
            .collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        _ => BTreeMap::new(),
    }
}

/// A stream entry: its id and fields (None for an entry deleted while pending).
pub(crate) type Entry = (String, Option<BTreeMap<String, Vec<u8>>>);

/// A stream entry `[id, [k, v, ...]]` as its id and byte fields.
pub(crate) fn entry(v: &Value) -> Option<Entry> {
    let Value::Array(parts) = v else { return None };
    let id = text(parts.first()?);
    let fields = match parts.get(1) {
        Some(Value::Array(kv)) => Some(
            kv.chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (text(&c[0]), bytes(&c[1]).unwrap_or_default()))
                .collect(),
        ),
        _ => None,
    };
    Some((id, fields))
}

/// Entries of an XRANGE-style array.
pub(crate) fn entries(v: &Value) -> Vec<Entry> {
    match v {
        Value::Array(items) => items.iter().filter_map(entry).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_splits_into_server_and_stream() {
        let (url, stream) = parse_uri("redis://127.0.0.1:6379/orders").unwrap();
        assert_eq!(
            (url.as_str(), stream.as_str()),
            ("redis://127.0.0.1:6379", "orders")
        );
        let e = parse_uri("http://x/y").unwrap_err();
        assert!(e.to_string().contains("scheme is not redis://"), "{e}");
        assert!(parse_uri("redis://127.0.0.1:6379").is_err());
    }
}
