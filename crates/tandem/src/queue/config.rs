//! The producer's builder and its defaults.

use std::time::Duration;

use crate::call::{Error, Transport};

use super::producer::Producer;

/// What `publish` does when the group's backlog is past the high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Fail at once with [`Error::Overloaded`].
    Reject,
    /// Wait for the backlog to drain, at most this long (or the request's deadline), then
    /// fail with [`Error::Overloaded`].
    Wait(Duration),
}

/// The producer's settings; see [`Builder`] for each one's meaning and default.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) url: String,
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) high_water: Option<u64>,
    pub(crate) backpressure: Backpressure,
    pub(crate) backlog_refresh: Duration,
    pub(crate) trim_every: Duration,
    pub(crate) max_len: u64,
    pub(crate) wait_timeout: Duration,
    pub(crate) reply_ttl: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) idmp_producer: String,
    pub(crate) idmp_window: Option<(Duration, u64)>,
}

/// Builds a [`Producer`]: `Producer::builder(url, stream).group("g").build().await`.
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
}

impl Builder {
    pub(crate) fn new(url: impl Into<String>, stream: impl Into<String>) -> Builder {
        Builder {
            config: Config {
                url: url.into(),
                stream: stream.into(),
                group: "tandem".into(),
                high_water: None,
                backpressure: Backpressure::Reject,
                backlog_refresh: Duration::from_millis(50),
                trim_every: Duration::from_secs(1),
                max_len: 1_000_000,
                wait_timeout: Duration::from_secs(30),
                reply_ttl: Duration::from_secs(300),
                connect_timeout: Duration::from_secs(5),
                idmp_producer: "tandem".into(),
                idmp_window: None,
            },
        }
    }

    /// The consumer group whose lag is watched and whose pending entries bound trimming
    /// (default `tandem`, the Python consumer's default). All groups are respected by trimming.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.config.group = group.into();
        self
    }

    /// Rejects or waits (see [`Builder::backpressure`]) when the backlog (entries not yet
    /// delivered to the group) passes `limit`. Default: no limit.
    pub fn high_water(mut self, limit: u64) -> Self {
        self.config.high_water = Some(limit);
        self
    }

    /// What to do past the high-water mark (default [`Backpressure::Reject`]).
    pub fn backpressure(mut self, mode: Backpressure) -> Self {
        self.config.backpressure = mode;
        self
    }

    /// How long a measured backlog is trusted before it is measured again (default 50 ms);
    /// in between it grows by what this producer published.
    pub fn backlog_refresh(mut self, every: Duration) -> Self {
        self.config.backlog_refresh = every;
        self
    }

    /// How often the stream is trimmed below the oldest entry still needed (default 1 s).
    pub fn trim_every(mut self, every: Duration) -> Self {
        self.config.trim_every = every;
        self
    }

    /// On Redis 8.2+, the approximate length kept by `ACKED` trimming (default 1,000,000;
    /// only acknowledged entries are ever trimmed).
    pub fn max_len(mut self, len: u64) -> Self {
        self.config.max_len = len;
        self
    }

    /// How long `publish_and_wait` waits when the request has no deadline (default 30 s).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.config.wait_timeout = timeout;
        self
    }

    /// The expiry refreshed on the reply stream while the producer lives (default 300 s).
    pub fn reply_ttl(mut self, ttl: Duration) -> Self {
        self.config.reply_ttl = ttl;
        self
    }

    /// How long connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// On Redis 8.6+, the producer id under which tasks with an idempotency key are
    /// published with `XADD … IDMP <id> <key>` (default `tandem`). The server drops a second
    /// publish of the same (id, key) within its IDMP window, so keep it stable across
    /// restarts: a publish retried by a restarted process is then deduplicated too.
    pub fn idmp_producer(mut self, id: impl Into<String>) -> Self {
        self.config.idmp_producer = id.into();
        self
    }

    /// On Redis 8.6+, sets the stream's IDMP window (`XCFGSET IDMP-DURATION/IDMP-MAXSIZE`):
    /// how long and how many idempotency keys per producer id the server remembers. Default:
    /// the server's (100 s and 100 keys per producer id). Every producer of a stream should
    /// set the same values: a change clears the remembered keys.
    pub fn idmp_window(mut self, duration: Duration, max_keys: u64) -> Self {
        self.config.idmp_window = Some((duration, max_keys));
        self
    }

    /// Connects and returns the producer.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for an invalid URL, [`Error::Unavailable`] when Redis does not
    /// answer.
    pub async fn build(self) -> Result<Producer, Error> {
        if self.config.stream.is_empty() {
            return Err(Error::bad_request(
                Transport::Queue,
                &self.config.url,
                "empty stream name (give one, e.g. redis://127.0.0.1:6379/orders)",
            ));
        }
        Producer::connect(self.config).await
    }
}
