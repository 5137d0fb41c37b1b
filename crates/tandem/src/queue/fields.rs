//! The queue wire: the fields of task, reply and dead-letter stream entries.
//!
//! Every value is a Redis bulk string. The format is specified field by field in
//! `docs/internals/queue.md`; the shared vectors in `proto/vectors/queue/` keep this file and
//! `python/src/tandem/_queue/fields.py` equal.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::codec::{Codec, Payload};

/// The format version written in the `v` field.
pub const VERSION: &str = "1";
/// The prefix of free header fields (`h:<name>`).
pub const HEADER_PREFIX: &str = "h:";
const REQUIRED: [&str; 7] = ["v", "id", "method", "codec", "payload", "attempt", "enq_ms"];

/// An entry that is not a valid task or reply: the message says which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct FieldError {
    /// What is wrong, e.g. `missing field 'method'`.
    pub reason: String,
}

fn err(reason: impl Into<String>) -> FieldError {
    FieldError {
        reason: reason.into(),
    }
}

/// One task entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The task id, chosen by the producer.
    pub id: String,
    /// The App handler's name.
    pub method: String,
    /// The payload and its codec.
    pub payload: Payload,
    /// 1 for the first publish, +1 per scheduled retry.
    pub attempt: u32,
    /// Unix time of the first publish, in milliseconds.
    pub enq_ms: u64,
    /// Unix time after which the caller stops waiting, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// The W3C traceparent.
    pub traceparent: Option<String>,
    /// The idempotency key.
    pub idempotency_key: Option<String>,
    /// The stream the result is written to.
    pub reply_to: Option<String>,
    /// Free headers.
    pub headers: BTreeMap<String, String>,
}

impl Task {
    /// The entry's fields in wire order (the inverse of [`Task::from_fields`]).
    pub fn to_fields(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = vec![
            ("v".into(), VERSION.into()),
            ("id".into(), self.id.clone().into_bytes()),
            ("method".into(), self.method.clone().into_bytes()),
            ("codec".into(), self.payload.codec().as_str().into()),
            ("payload".into(), self.payload.bytes().to_vec()),
            ("attempt".into(), self.attempt.to_string().into_bytes()),
            ("enq_ms".into(), self.enq_ms.to_string().into_bytes()),
        ];
        if let Some(d) = self.deadline_ms {
            out.push(("deadline_ms".into(), d.to_string().into_bytes()));
        }
        let optional = [
            ("tp", &self.traceparent),
            ("idem", &self.idempotency_key),
            ("reply", &self.reply_to),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                out.push((name.into(), v.clone().into_bytes()));
            }
        }
        for (k, v) in &self.headers {
            out.push((format!("{HEADER_PREFIX}{k}"), v.clone().into_bytes()));
        }
        out
    }

    /// Reads a task entry.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] naming the missing or invalid field.
    pub fn from_fields(fields: &BTreeMap<String, Vec<u8>>) -> Result<Task, FieldError> {
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|n| !fields.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            let s = if missing.len() > 1 { "s" } else { "" };
            return Err(err(format!("missing field{s} {}", missing.join(", "))));
        }
        let version = &fields["v"];
        if version.as_slice() != VERSION.as_bytes() {
            let shown = String::from_utf8_lossy(&version[..version.len().min(16)]).into_owned();
            return Err(err(format!(
                "unsupported format version {shown:?} (this side reads 1)"
            )));
        }
        let codec_name = text(fields, "codec")?;
        let codec = Codec::ALL
            .into_iter()
            .find(|c| c.as_str() == codec_name)
            .ok_or_else(|| {
                err(format!(
                    "unknown codec {:?} (accepted: json, msgpack, raw)",
                    truncate(&codec_name)
                ))
            })?;
        let method = text(fields, "method")?;
        if method.is_empty() {
            return Err(err("field 'method' is empty"));
        }
        let id = text(fields, "id")?;
        if id.is_empty() {
            return Err(err("field 'id' is empty"));
        }
        let attempt = int(fields, "attempt")?;
        if attempt < 1 {
            return Err(err(format!("field 'attempt' is {attempt}, below 1")));
        }
        let headers = fields
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(HEADER_PREFIX)
                    .map(|name| (name.to_owned(), String::from_utf8_lossy(v).into_owned()))
            })
            .collect();
        Ok(Task {
            id,
            method,
            payload: Payload::new(codec, fields["payload"].clone()),
            attempt: u32::try_from(attempt).map_err(|_| err("field 'attempt' is too large"))?,
            enq_ms: int(fields, "enq_ms")?,
            deadline_ms: opt(fields, "deadline_ms", |f| int(f, "deadline_ms"))?,
            traceparent: opt(fields, "tp", |f| text(f, "tp"))?,
            idempotency_key: opt(fields, "idem", |f| text(f, "idem"))?,
            reply_to: opt(fields, "reply", |f| text(f, "reply"))?,
            headers,
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn opt<T>(
    fields: &BTreeMap<String, Vec<u8>>,
    name: &str,
    read: impl FnOnce(&BTreeMap<String, Vec<u8>>) -> Result<T, FieldError>,
) -> Result<Option<T>, FieldError> {
    if fields.contains_key(name) {
        read(fields).map(Some)
    } else {
        Ok(None)
    }
}

fn text(fields: &BTreeMap<String, Vec<u8>>, name: &str) -> Result<String, FieldError> {
    let raw = fields
        .get(name)
        .ok_or_else(|| err(format!("missing field '{name}'")))?;
    String::from_utf8(raw.clone()).map_err(|_| err(format!("field '{name}' is not UTF-8")))
}

fn int(fields: &BTreeMap<String, Vec<u8>>, name: &str) -> Result<u64, FieldError> {
    let t = text(fields, name)?;
    t.parse::<u64>().map_err(|_| {
        err(format!(
            "field '{name}' is not an integer: {:?}",
            truncate(&t)
        ))
    })
}

/// A result written by a consumer to the producer's reply stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The handler returned this payload.
    Ok(Payload),
    /// The task failed for good (the portable error form every Python side sends).
    Err {
        /// The error kind (`remote`, `bad_request`, ...).
        kind: String,
        /// The exception type.
        exc_type: String,
        /// The message.
        message: String,
        /// The traceback.
        traceback: String,
    },
}

impl Reply {
    /// Reads a reply entry: its task id and outcome.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] for a missing id/status or an unknown status or codec.
    pub fn from_fields(fields: &BTreeMap<String, Vec<u8>>) -> Result<(String, Reply), FieldError> {
        let id = text(fields, "id")?;
        let status = text(fields, "status")?;
        let reply = match status.as_str() {
            "ok" => {
                let name = text(fields, "codec")?;
                let codec = Codec::ALL
                    .into_iter()
                    .find(|c| c.as_str() == name)
                    .ok_or_else(|| err(format!("unknown codec {:?} in reply", truncate(&name))))?;
                let data = fields.get("payload").cloned().unwrap_or_default();
                Reply::Ok(Payload::new(codec, data))
            }
            "error" => {
                let get = |n: &str| {
                    fields
                        .get(n)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default()
                };
                Reply::Err {
                    kind: get("kind"),
                    exc_type: get("type"),
                    message: get("message"),
                    traceback: get("traceback"),
                }
            }
            other => {
                return Err(err(format!(
                    "unknown reply status {:?} (expected ok or error)",
                    truncate(other)
                )))
            }
        };
        Ok((id, reply))
    }
}

/// The dead-letter stream of `stream`.
pub fn dead_key(stream: &str) -> String {
    format!("{stream}:dead")
}

/// The sorted set of retries waiting for their time.
pub fn delayed_key(stream: &str) -> String {
    format!("{stream}:delayed")
}

/// Fields added to a task entry when it is dead-lettered (removed again on replay).
pub const DEAD_FIELDS: [&str; 8] = [
    "dead_reason",
    "err_kind",
    "err_type",
    "err_message",
    "err_traceback",
    "attempts",
    "dead_ms",
    "src_id",
];

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_round_trips_through_fields() {
        let task = Task {
            id: "t1".into(),
            method: "score".into(),
            payload: Payload::new(Codec::Raw, vec![0u8, 255]),
            attempt: 2,
            enq_ms: 5,
            deadline_ms: Some(9),
            traceparent: Some("00-aa-bb-01".into()),
            idempotency_key: None,
            reply_to: Some("s:reply:p".into()),
            headers: [("k".to_owned(), "v".to_owned())].into(),
        };
        let map: BTreeMap<String, Vec<u8>> = task.to_fields().into_iter().collect();
        assert_eq!(Task::from_fields(&map), Ok(task));
    }
}
