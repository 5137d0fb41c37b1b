//! The producer: publishes tasks with XADD, bounds the stream, applies backpressure, and
//! awaits results (`publish_and_wait`, which is also its `tower::Service` call).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use redis::Value;
use tokio::sync::OnceCell;

use super::config::{Backpressure, Builder, Config};
use super::features::Features;
use super::fields::{now_ms, Reply, Task};
use super::reply::Router;
use super::{classify, connect, int, pairs, text};
use crate::call::{Error, Metadata, Request, Response, Transport};

/// Publishes tasks onto a Redis stream for `python -m tandem consume`.
///
/// Cheap to clone (one shared connection). Built with [`Producer::builder`] or
/// [`Producer::from_uri`]. Implements `tower::Service<Request>` as
/// [`Producer::publish_and_wait`].
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    conn: super::Conn,
    features: Features,
    producer_id: String,
    seq: AtomicU64,
    backlog: Mutex<Option<(Instant, u64)>>,
    last_trim: Mutex<Instant>,
    router: OnceCell<Router>,
}

impl Producer {
    /// A builder for the producer of `stream` on the Redis at `url` (`redis://HOST:PORT/DB`).
    pub fn builder(url: impl Into<String>, stream: impl Into<String>) -> Builder {
        Builder::new(url, stream)
    }

    /// Connects with the defaults to `redis://HOST:PORT/STREAM`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for a malformed URI, [`Error::Unavailable`] when Redis is down.
    pub async fn from_uri(uri: &str) -> Result<Producer, Error> {
        let (url, stream) = super::parse_uri(uri)?;
        Producer::builder(url, stream).build().await
    }

    pub(crate) async fn connect(config: Config) -> Result<Producer, Error> {
        let conn = connect(&config.url, config.connect_timeout).await?;
        let mut c0 = conn.0.clone();
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut c0)
            .await
            .map_err(|e| classify(&config.stream, e))?;
        let features = Features::from_info(&info);
        if features.idmp() {
            if let Some(window) = config.idmp_window {
                configure_idmp(&mut c0, &config, window).await?;
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let producer_id = format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff_ffff);
        tracing::debug!(stream = %config.stream, ?features, "queue producer connected");
        Ok(Producer {
            inner: Arc::new(Inner {
                config,
                conn,
                features,
                producer_id,
                seq: AtomicU64::new(0),
                backlog: Mutex::new(None),
                last_trim: Mutex::new(Instant::now()),
                router: OnceCell::new(),
            }),
        })
    }

    /// The stream this producer writes to.
    pub fn stream(&self) -> &str {
        &self.inner.config.stream
    }

    /// What the connected server supports.
    pub fn features(&self) -> Features {
        self.inner.features
    }

    /// The reply stream of this producer, once `publish_and_wait` was used.
    pub fn reply_stream(&self) -> Option<&str> {
        self.inner.router.get().map(Router::key)
    }

    /// Publishes one task; returns its task id.
    ///
    /// On Redis 8.6+ a task with an idempotency key is published with `XADD … IDMP`: when
    /// the same key was published within the server's IDMP window (see
    /// [`Builder::idmp_producer`]), nothing is written and the id of the task already in the
    /// stream is returned.
    ///
    /// # Errors
    ///
    /// [`Error::Overloaded`] past the high-water mark, [`Error::Unavailable`] when Redis is
    /// unreachable (the task may or may not have been written: publishing again is safe
    /// with an idempotency key: Redis 8.6+ drops the duplicate, older servers rely on the
    /// consumer's `--dedup-ttl`).
    ///
    /// [`Builder::idmp_producer`]: super::Builder::idmp_producer
    pub async fn publish(&self, request: Request) -> Result<String, Error> {
        let deadline = request.metadata().deadline;
        self.admit(1, deadline).await?;
        let task = self.task(request, None);
        let written = self.xadd(&[&task]).await?;
        Ok(written
            .into_iter()
            .find(|w| !w.task_id.is_empty())
            .map_or(task.id, |w| w.task_id))
    }

    /// Publishes many tasks in one pipeline; returns their ids in order.
    ///
    /// # Errors
    ///
    /// As [`Producer::publish`]; the backpressure check counts the whole batch.
    pub async fn publish_batch(&self, requests: Vec<Request>) -> Result<Vec<String>, Error> {
        let deadline = requests.iter().filter_map(|r| r.metadata().deadline).min();
        self.admit(requests.len() as u64, deadline).await?;
        let tasks: Vec<Task> = requests.into_iter().map(|r| self.task(r, None)).collect();
        let written = self.xadd(&tasks.iter().collect::<Vec<_>>()).await?;
        Ok(tasks
            .into_iter()
            .zip(written)
            .map(|(t, w)| {
                if w.task_id.is_empty() {
                    t.id
                } else {
                    w.task_id
                }
            })
            .collect())
    }

    /// Publishes a task and waits for its result until the request's deadline (or the
    /// builder's `wait_timeout`).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no result came in time (the task may still run later),
    /// [`Error::Remote`] / [`Error::BadRequest`] as sent back by the consumer, and the
    /// errors of [`Producer::publish`]. On Redis 8.6+, a retry with the idempotency key of a
    /// task this producer already published waits for that task's result; a key another
    /// producer published within the IDMP window is an [`Error::BadRequest`] (its result
    /// goes to that producer).
    pub async fn publish_and_wait(&self, request: Request) -> Result<Response, Error> {
        let started = Instant::now();
        let wait = request
            .metadata()
            .remaining()
            .unwrap_or(self.inner.config.wait_timeout);
        let method = request.method().to_owned();
        let router = self.router().await?;
        let deadline = Some(request.metadata().deadline.unwrap_or(started + wait));
        self.admit(1, deadline).await?;
        let task = self.task(request, Some(router.key().to_owned()));
        let mut rx = router.wait_for(&task.id);
        let written = match self.xadd(&[&task]).await {
            Ok(mut w) => w.pop(),
            Err(e) => {
                router.forget(&task.id);
                return Err(e);
            }
        };
        let target = format!("{} on {}", method, self.inner.config.stream);
        let mut waited = task.id.clone();
        if let Some(dup) = written.filter(|w| w.duplicate) {
            router.forget(&task.id);
            let key = task.idempotency_key.as_deref().unwrap_or_default();
            if dup.task_id.is_empty() {
                return Err(Error::bad_request(
                    Transport::Queue,
                    &target,
                    format!(
                        "idempotency key {key:?} was already published within the server's \
                         IDMP window and that task was already handled (XADD IDMP dropped \
                         this duplicate; its result went to the first caller): use a new key \
                         to run it again"
                    ),
                ));
            }
            if dup.reply_to.as_deref() != Some(router.key()) {
                return Err(Error::bad_request(
                    Transport::Queue,
                    &target,
                    format!(
                        "idempotency key {key:?} was already published as task {} by another \
                         producer within the server's IDMP window (XADD IDMP dropped this \
                         duplicate); its result goes to that producer: use a new key to run \
                         it again",
                        dup.task_id
                    ),
                ));
            }
            tracing::debug!(task = %dup.task_id, "duplicate publish: waiting for the original");
            waited = dup.task_id;
            rx = router.wait_for(&waited);
        }
        match tokio::time::timeout(wait.saturating_sub(started.elapsed()), rx).await {
            Ok(Ok(Reply::Ok(payload))) => Ok(Response::new(payload)),
            Ok(Ok(Reply::Err {
                kind,
                exc_type,
                message,
                traceback,
            })) => Err(Error::from_wire(
                Transport::Queue,
                target,
                &kind,
                &exc_type,
                &message,
                &traceback,
            )),
            Ok(Err(_)) | Err(_) => {
                router.forget(&waited);
                Err(Error::Timeout {
                    transport: Transport::Queue,
                    target: format!("{target} (task {waited})"),
                    elapsed: started.elapsed(),
                })
            }
        }
    }

    /// The number of entries not yet delivered to the group (`XINFO GROUPS` lag; the stream
    /// length where the server does not report lag, which equals the backlog because
    /// consumers delete acknowledged entries).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable.
    pub async fn backlog(&self) -> Result<u64, Error> {
        let mut conn = self.inner.conn.0.clone();
        let stream = &self.inner.config.stream;
        let groups: Result<Value, _> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(&mut conn)
            .await;
        let lag = match groups {
            Ok(Value::Array(gs)) => gs
                .iter()
                .map(pairs)
                .find(|g| text(g.get("name").unwrap_or(&Value::Nil)) == self.inner.config.group)
                .and_then(|g| g.get("lag").and_then(int)),
            Ok(_) => None,
            Err(e) if e.code() == Some("ERR") => None, // no such key yet
            Err(e) => return Err(classify(stream, e)),
        };
        if let Some(lag) = lag {
            return Ok(u64::try_from(lag).unwrap_or(0));
        }
        let len: u64 = redis::cmd("XLEN")
            .arg(stream)
            .query_async(&mut conn)
            .await
            .map_err(|e| classify(stream, e))?;
        Ok(len)
    }

    /// Trims entries no group still needs: on Redis 8.2+ with `XTRIM MAXLEN 0 ACKED`, otherwise
    /// with `XTRIM MINID` at the oldest entry that is pending or not yet delivered in any
    /// group. Never drops a pending entry. Returns how many entries were removed.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable.
    pub async fn trim(&self) -> Result<u64, Error> {
        let mut conn = self.inner.conn.0.clone();
        let stream = &self.inner.config.stream;
        let c = |e| classify(stream, e);
        if self.inner.features.acked_trim() {
            // With no group, ACKED counts every entry as acknowledged: keep them all.
            let groups: Result<Value, _> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(stream)
                .query_async(&mut conn)
                .await;
            match groups {
                Ok(Value::Array(gs)) if !gs.is_empty() => {}
                Ok(_) => return Ok(0),
                Err(e) if e.code() == Some("ERR") => return Ok(0), // no such key
                Err(e) => return Err(c(e)),
            }
            // Exact MAXLEN 0 with ACKED: every entry all groups acknowledged goes, and only
            // those (an approximate MAXLEN would keep them below the length bound).
            return redis::cmd("XTRIM")
                .arg(stream)
                .arg("MAXLEN")
                .arg("0")
                .arg("ACKED")
                .query_async(&mut conn)
                .await
                .map_err(c);
        }
        let Some(threshold) = super::admin::safe_min_id(&mut conn, stream).await? else {
            return Ok(0);
        };
        redis::cmd("XTRIM")
            .arg(stream)
            .arg("MINID")
            .arg(threshold)
            .query_async(&mut conn)
            .await
            .map_err(c)
    }

    // ----- internals ---------------------------------------------------------------------

    async fn router(&self) -> Result<&Router, Error> {
        self.inner
            .router
            .get_or_try_init(|| async {
                let c = &self.inner.config;
                let conn = connect(&c.url, c.connect_timeout).await?;
                let key = format!("{}:reply:{}", c.stream, self.inner.producer_id);
                Ok(Router::start(key, conn, c.reply_ttl))
            })
            .await
    }

    fn task(&self, request: Request, reply_to: Option<String>) -> Task {
        let (method, payload, meta) = request.into_parts();
        let Metadata {
            deadline,
            traceparent,
            idempotency_key,
            headers,
        } = meta;
        let now = now_ms();
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        Task {
            id: format!("{}-{seq}", self.inner.producer_id),
            method,
            payload,
            attempt: 1,
            enq_ms: now,
            deadline_ms: deadline.map(|d| {
                now + u64::try_from(d.saturating_duration_since(Instant::now()).as_millis())
                    .unwrap_or(u64::MAX / 2)
            }),
            traceparent,
            idempotency_key,
            reply_to,
            headers: headers.into_iter().collect(),
        }
    }

    /// XADDs the tasks in one pipeline (keyed tasks on 8.6+ through [`XADD_IDMP`]) and
    /// reports what is in the stream for each: itself, or the task its key already names.
    async fn xadd(&self, tasks: &[&Task]) -> Result<Vec<Written>, Error> {
        let c = &self.inner.config;
        let f = self.inner.features;
        let mut pipe = redis::pipe();
        for task in tasks {
            let idmp = task.idempotency_key.as_deref().filter(|_| f.idmp());
            let cmd = match idmp {
                Some(_) => pipe.cmd("EVAL").arg(XADD_IDMP).arg(1).arg(&c.stream),
                None => pipe.cmd("XADD").arg(&c.stream),
            };
            if f.acked_trim() {
                cmd.arg("ACKED");
            }
            if let Some(key) = idmp {
                cmd.arg("IDMP").arg(&c.idmp_producer).arg(key);
            }
            if f.acked_trim() {
                cmd.arg("MAXLEN").arg("~").arg(c.max_len);
            }
            cmd.arg("*");
            for (k, v) in task.to_fields() {
                cmd.arg(k).arg(v);
            }
        }
        let mut conn = self.inner.conn.0.clone();
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| classify(&c.stream, e))?;
        let written = tasks
            .iter()
            .zip(replies)
            .map(|(task, reply)| Written::from_reply(task, &reply))
            .collect();
        if let Ok(mut b) = self.inner.backlog.lock() {
            if let Some((_, n)) = b.as_mut() {
                *n += tasks.len() as u64;
            }
        }
        self.maybe_trim();
        Ok(written)
    }

    fn maybe_trim(&self) {
        if self.inner.features.acked_trim() {
            return; // XADD … ACKED MAXLEN trims as it goes
        }
        let due = match self.inner.last_trim.lock() {
            Ok(mut last) if last.elapsed() >= self.inner.config.trim_every => {
                *last = Instant::now();
                true
            }
            _ => false,
        };
        if due {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.trim().await {
                    tracing::debug!(error = %e, "queue trim failed; retried later");
                }
            });
        }
    }

    async fn admit(&self, n: u64, deadline: Option<Instant>) -> Result<(), Error> {
        let Some(limit) = self.inner.config.high_water else {
            return Ok(());
        };
        let overloaded = || Error::Overloaded {
            transport: Transport::Queue,
            target: format!(
                "{} (group {} backlog past the high-water mark)",
                self.inner.config.stream, self.inner.config.group
            ),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        };
        let cached = self.inner.backlog.lock().ok().and_then(|b| *b);
        let mut backlog = match cached {
            Some((at, n)) if at.elapsed() < self.inner.config.backlog_refresh => n,
            _ => self.measure().await?,
        };
        if backlog + n <= limit {
            return Ok(());
        }
        let Backpressure::Wait(max) = self.inner.config.backpressure else {
            return Err(overloaded());
        };
        let until = deadline.map_or(Instant::now() + max, |d| d.min(Instant::now() + max));
        let mut pause = Duration::from_millis(2);
        while backlog + n > limit {
            if Instant::now() + pause > until {
                return Err(overloaded());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
            backlog = self.measure().await?;
        }
        Ok(())
    }

    async fn measure(&self) -> Result<u64, Error> {
        let n = self.backlog().await?;
        if let Ok(mut b) = self.inner.backlog.lock() {
            *b = Some((Instant::now(), n));
        }
        Ok(n)
    }
}

/// `XADD … IDMP` that also says whether the server dropped the publish as a duplicate: a
/// duplicate returns the id of the first entry and adds nothing, so the stream's
/// `entries-added` counter is compared around it, atomically. Returns `{entry id, 1 if
/// duplicate, task id, reply stream}` (the last two read from the first entry, empty when
/// it was already handled and deleted). KEYS[1] stream; ARGV the XADD arguments after it.
const XADD_IDMP: &str = r"
local function added()
  local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
  if type(info) ~= 'table' or info.err then return -1 end
  for i = 1, #info, 2 do
    if info[i] == 'entries-added' then return info[i + 1] end
  end
  return -1
end
local before = added()
local id = redis.call('XADD', KEYS[1], unpack(ARGV))
if added() ~= before then return {id, 0, '', ''} end
local task, reply = '', ''
local e = redis.call('XRANGE', KEYS[1], id, id)
if #e == 1 then
  local f = e[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'id' then task = f[i + 1] elseif f[i] == 'reply' then reply = f[i + 1] end
  end
end
return {id, 1, task, reply}
";

/// What the stream holds for one published task.
#[derive(Debug)]
struct Written {
    /// The task's id, or the id of the task with the same idempotency key that was already
    /// published (the server dropped this publish; empty when that task was already handled
    /// and deleted).
    task_id: String,
    /// Whether the server dropped this publish as a duplicate.
    duplicate: bool,
    /// The first task's reply stream, for a duplicate.
    reply_to: Option<String>,
}

impl Written {
    fn from_reply(task: &Task, reply: &Value) -> Written {
        let mine = Written {
            task_id: task.id.clone(),
            duplicate: false,
            reply_to: None,
        };
        let Value::Array(parts) = reply else {
            return mine; // plain XADD: the entry id
        };
        if parts.get(1).and_then(int) != Some(1) {
            return mine;
        }
        let reply_to = parts.get(3).map(text).filter(|r| !r.is_empty());
        let task_id = parts.get(2).map(text).unwrap_or_default();
        tracing::debug!(task = %task_id, "XADD IDMP dropped a duplicate publish");
        Written {
            task_id,
            duplicate: true,
            reply_to,
        }
    }
}

/// Creates the stream (with the group, as the consumer does) and sets its IDMP window.
async fn configure_idmp(
    conn: &mut redis::aio::ConnectionManager,
    config: &Config,
    (duration, max_keys): (Duration, u64),
) -> Result<(), Error> {
    let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&config.stream)
        .arg(&config.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => return Err(classify(&config.stream, e)),
        _ => {}
    }
    redis::cmd("XCFGSET")
        .arg(&config.stream)
        .arg("IDMP-DURATION")
        .arg(duration.as_secs().max(1))
        .arg("IDMP-MAXSIZE")
        .arg(max_keys.max(1))
        .query_async::<()>(conn)
        .await
        .map_err(|e| classify(&config.stream, e))
}

impl tower::Service<Request> for Producer {
    type Response = Response;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let me = self.clone();
        Box::pin(async move { me.publish_and_wait(request).await })
    }
}
