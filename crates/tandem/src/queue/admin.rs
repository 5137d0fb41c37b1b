//! Queue operations behind `tandem queue stats|pending|dead|replay|purge-dead`.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Value;

use super::fields::{dead_key, delayed_key, now_ms, DEAD_FIELDS};
use super::{classify, connect, entries, int, pairs, text};
use crate::call::Error;

/// Stats of one stream: what `tandem queue stats` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The stream.
    pub stream: String,
    /// Entries in the stream (unread plus pending; acknowledged ones are deleted).
    pub length: u64,
    /// Each consumer group.
    pub groups: Vec<GroupStats>,
    /// Entries in the dead-letter stream `<stream>:dead`.
    pub dead: u64,
    /// Retries waiting for their time in `<stream>:delayed`.
    pub delayed: u64,
}

/// One consumer group's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    /// The group's name.
    pub name: String,
    /// Entries not yet delivered (None when the server cannot tell: Redis < 7).
    pub lag: Option<u64>,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
    /// Age of the oldest pending entry since it was published.
    pub oldest_pending_age: Option<Duration>,
    /// Pending entries per consumer.
    pub consumers: Vec<ConsumerPending>,
}

/// A consumer's pending count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerPending {
    /// The consumer's name (`<host>-<index>`).
    pub name: String,
    /// Its pending entries.
    pub pending: u64,
}

/// One pending entry (`XPENDING` extended form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// The stream entry id.
    pub id: String,
    /// The consumer holding it.
    pub consumer: String,
    /// Time since it was last delivered or its lease extended.
    pub idle: Duration,
    /// How many times it was delivered.
    pub deliveries: u64,
}

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The entry id in `<stream>:dead`.
    pub id: String,
    /// The task id.
    pub task_id: String,
    /// The method.
    pub method: String,
    /// Why it died: `failed`, `bad_request`, `max_deliveries` or `malformed`.
    pub reason: String,
    /// The error's kind, exception type and message.
    pub error: (String, String, String),
    /// The Python traceback, if the handler raised.
    pub traceback: String,
    /// Attempts made.
    pub attempts: u64,
    /// All fields of the entry as stored.
    pub fields: BTreeMap<String, Vec<u8>>,
}

/// Operations on one queue (stream, groups, dead letters).
#[derive(Debug, Clone)]
pub struct Admin {
    conn: super::Conn,
    stream: String,
}

impl Admin {
    /// Connects to `redis://HOST:PORT/STREAM`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for a malformed URI, [`Error::Unavailable`] when Redis is down.
    pub async fn from_uri(uri: &str) -> Result<Admin, Error> {
        let (url, stream) = super::parse_uri(uri)?;
        Admin::connect(&url, &stream).await
    }

    /// Connects to the Redis at `url` for `stream`.
    ///
    /// # Errors
    ///
    /// As [`Admin::from_uri`].
    pub async fn connect(url: &str, stream: &str) -> Result<Admin, Error> {
        Ok(Admin {
            conn: connect(url, Duration::from_secs(5)).await?,
            stream: stream.to_owned(),
        })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.conn.0.clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| classify(&self.stream, e))
    }

    /// Length, groups (lag, pending per consumer, oldest pending age), dead and delayed counts.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable.
    pub async fn stats(&self) -> Result<Stats, Error> {
        let s = &self.stream;
        let length: u64 = self.query(redis::cmd("XLEN").arg(s)).await?;
        let dead: u64 = self.query(redis::cmd("XLEN").arg(dead_key(s))).await?;
        let delayed: u64 = self.query(redis::cmd("ZCARD").arg(delayed_key(s))).await?;
        let mut groups = Vec::new();
        for g in self.groups().await? {
            let name = text(g.get("name").unwrap_or(&Value::Nil));
            let summary: Value = self.query(redis::cmd("XPENDING").arg(s).arg(&name)).await?;
            let (pending, min_id, consumers) = pending_summary(&summary);
            groups.push(GroupStats {
                lag: g
                    .get("lag")
                    .and_then(int)
                    .map(|l| u64::try_from(l).unwrap_or(0)),
                pending,
                oldest_pending_age: min_id
                    .map(|id| Duration::from_millis(now_ms().saturating_sub(id_ms(&id)))),
                consumers,
                name,
            });
        }
        Ok(Stats {
            stream: s.clone(),
            length,
            groups,
            dead,
            delayed,
        })
    }

    async fn groups(&self) -> Result<Vec<BTreeMap<String, Value>>, Error> {
        let mut conn = self.conn.0.clone();
        groups(&mut conn, &self.stream).await
    }

    /// Up to `count` pending entries of `group`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable, [`Error::Protocol`] for an unknown
    /// group.
    pub async fn pending(&self, group: &str, count: usize) -> Result<Vec<PendingEntry>, Error> {
        let rows: Value = self
            .query(
                redis::cmd("XPENDING")
                    .arg(&self.stream)
                    .arg(group)
                    .arg("-")
                    .arg("+")
                    .arg(count),
            )
            .await?;
        let Value::Array(rows) = rows else {
            return Ok(Vec::new());
        };
        Ok(rows
            .iter()
            .filter_map(|r| match r {
                Value::Array(p) if p.len() >= 4 => Some(PendingEntry {
                    id: text(&p[0]),
                    consumer: text(&p[1]),
                    idle: Duration::from_millis(int(&p[2]).unwrap_or(0).max(0).unsigned_abs()),
                    deliveries: int(&p[3]).unwrap_or(0).max(0).unsigned_abs(),
                }),
                _ => None,
            })
            .collect())
    }

    /// Up to `count` dead letters, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable.
    pub async fn dead(&self, count: usize) -> Result<Vec<DeadLetter>, Error> {
        let v: Value = self
            .query(
                redis::cmd("XRANGE")
                    .arg(dead_key(&self.stream))
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(entries(&v)
            .into_iter()
            .filter_map(|(id, fields)| fields.map(|f| dead_letter(id, f)))
            .collect())
    }

    /// Moves up to `count` dead letters back onto the stream (attempt reset to 1), each
    /// atomically (XADD + XDEL in one MULTI). Returns how many were replayed.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable.
    pub async fn replay(&self, count: usize) -> Result<usize, Error> {
        let letters = self.dead(count).await?;
        for d in &letters {
            let mut pipe = redis::pipe();
            pipe.atomic();
            let cmd = pipe.cmd("XADD").arg(&self.stream).arg("*");
            for (k, v) in &d.fields {
                if DEAD_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let v: &[u8] = if k == "attempt" { b"1" } else { v };
                cmd.arg(k).arg(v);
            }
            pipe.cmd("XDEL").arg(dead_key(&self.stream)).arg(&d.id);
            let mut conn = self.conn.0.clone();
            let _: Vec<Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| classify(&self.stream, e))?;
        }
        Ok(letters.len())
    }

    /// Deletes every dead letter; returns how many there were.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable.
    pub async fn purge_dead(&self) -> Result<u64, Error> {
        let key = dead_key(&self.stream);
        let n: u64 = self.query(redis::cmd("XLEN").arg(&key)).await?;
        let _: i64 = self.query(redis::cmd("DEL").arg(&key)).await?;
        Ok(n)
    }

    /// Deletes the whole queue: the stream with its consumer groups, its dead letters and its
    /// delayed retries. Stop its consumers first (a running consumer creates the stream again).
    /// Reply streams and completed-task keys expire on their own.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable.
    pub async fn delete(&self) -> Result<(), Error> {
        let s = &self.stream;
        let _: i64 = self
            .query(
                redis::cmd("DEL")
                    .arg(s)
                    .arg(dead_key(s))
                    .arg(delayed_key(s)),
            )
            .await?;
        Ok(())
    }
}

fn dead_letter(id: String, f: BTreeMap<String, Vec<u8>>) -> DeadLetter {
    let get = |k: &str| {
        f.get(k)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    DeadLetter {
        id,
        task_id: get("id"),
        method: get("method"),
        reason: get("dead_reason"),
        error: (get("err_kind"), get("err_type"), get("err_message")),
        traceback: get("err_traceback"),
        attempts: get("attempts").parse().unwrap_or(0),
        fields: f,
    }
}

async fn groups(
    conn: &mut ConnectionManager,
    stream: &str,
) -> Result<Vec<BTreeMap<String, Value>>, Error> {
    let v: Result<Value, _> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await;
    match v {
        Ok(Value::Array(gs)) => Ok(gs.iter().map(pairs).collect()),
        Ok(_) => Ok(Vec::new()),
        Err(e) if e.code() == Some("ERR") => Ok(Vec::new()), // no such key
        Err(e) => Err(classify(stream, e)),
    }
}

/// `XPENDING key group` summary: count, smallest id, per-consumer counts.
fn pending_summary(v: &Value) -> (u64, Option<String>, Vec<ConsumerPending>) {
    let Value::Array(p) = v else {
        return (0, None, Vec::new());
    };
    let count = p.first().and_then(int).unwrap_or(0).max(0).unsigned_abs();
    let min = p.get(1).map(text).filter(|s| !s.is_empty() && count > 0);
    let consumers = match p.get(3) {
        Some(Value::Array(cs)) => cs
            .iter()
            .filter_map(|c| match c {
                Value::Array(nc) if nc.len() == 2 => Some(ConsumerPending {
                    name: text(&nc[0]),
                    pending: int(&nc[1]).unwrap_or(0).max(0).unsigned_abs(),
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    (count, min, consumers)
}

fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn id_ms(id: &str) -> u64 {
    parse_id(id).0
}

/// The oldest id any group still needs: per group its oldest pending id, or (none pending)
/// its last-delivered id; the minimum over groups. None without groups (nothing is safe).
pub(crate) async fn safe_min_id(
    conn: &mut ConnectionManager,
    stream: &str,
) -> Result<Option<String>, Error> {
    let gs = groups(conn, stream).await?;
    if gs.is_empty() {
        return Ok(None);
    }
    let mut floor: Option<String> = None;
    for g in gs {
        let name = text(g.get("name").unwrap_or(&Value::Nil));
        let pending = g.get("pending").and_then(int).unwrap_or(0);
        let needed = if pending > 0 {
            let summary: Value = redis::cmd("XPENDING")
                .arg(stream)
                .arg(&name)
                .query_async(conn)
                .await
                .map_err(|e| classify(stream, e))?;
            match pending_summary(&summary).1 {
                Some(id) => id,
                None => return Ok(None),
            }
        } else {
            text(g.get("last-delivered-id").unwrap_or(&Value::Nil))
        };
        if floor
            .as_ref()
            .map_or(true, |f| parse_id(&needed) < parse_id(f))
        {
            floor = Some(needed);
        }
    }
    Ok(floor.filter(|f| parse_id(f) > (0, 0)))
}
