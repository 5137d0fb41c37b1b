//! The [`Builder`] of a [`Client`](super::Client) and its documented defaults.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::call::{Error, Transport};

use super::client::Client;

/// Default number of HTTP/2 connections per endpoint (see [`Builder::connections_per_endpoint`]).
pub const DEFAULT_CONNECTIONS_PER_ENDPOINT: usize = 4;
/// Default deadline of a call whose request carries none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default limit of one gRPC message, both ways: 64 MiB, as `python -m tandem serve`
/// (plain grpcio servers default to 4 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Settings of the retry of idempotent calls.
#[derive(Debug, Clone)]
pub(crate) struct RetrySettings {
    /// Attempts in all, the first included (gRFC A6 caps it at 5).
    pub(crate) max_attempts: u32,
    /// Whether `RESOURCE_EXHAUSTED` (overload) is retried too.
    pub(crate) retry_overloaded: bool,
    /// How long a deposit in the budget counts.
    pub(crate) budget_ttl: Duration,
    /// Retries per second always allowed.
    pub(crate) budget_min_per_sec: u32,
    /// Share of extra calls allowed on top of the first attempts (0.2 = 20 %).
    pub(crate) budget_ratio: f32,
}

/// Everything a built client needs, fixed at `build()`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) endpoints: Vec<String>,
    pub(crate) connections_per_endpoint: usize,
    pub(crate) default_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) gzip: bool,
    pub(crate) max_message_size: usize,
    pub(crate) idempotent_methods: BTreeSet<String>,
    pub(crate) retry: RetrySettings,
    pub(crate) health_service: String,
    pub(crate) health_interval: Duration,
    pub(crate) http2_keepalive: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) tcp_keepalive: Option<Duration>,
}

/// Builds a [`Client`]: endpoints, connections, deadlines, retries, health, compression.
///
/// Every setting has a default suited to `python -m tandem serve`; only the endpoints are
/// required.
///
/// ```no_run
/// # async fn demo() -> Result<(), tandem::Error> {
/// use std::time::Duration;
/// let client = tandem::grpc::Client::builder()
///     .endpoint("http://127.0.0.1:50051")
///     .endpoint("unix:///run/tandem/infer.sock")
///     .connections_per_endpoint(4)
///     .default_timeout(Duration::from_millis(200))
///     .gzip(true)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    settings: Settings,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            settings: Settings {
                endpoints: Vec::new(),
                connections_per_endpoint: DEFAULT_CONNECTIONS_PER_ENDPOINT,
                default_timeout: DEFAULT_TIMEOUT,
                connect_timeout: Duration::from_secs(1),
                gzip: false,
                max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                idempotent_methods: BTreeSet::new(),
                retry: RetrySettings {
                    max_attempts: 3,
                    retry_overloaded: false,
                    budget_ttl: Duration::from_secs(10),
                    budget_min_per_sec: 10,
                    budget_ratio: 0.2,
                },
                health_service: String::new(),
                health_interval: Duration::from_secs(1),
                http2_keepalive: None,
                keepalive_timeout: Duration::from_secs(20),
                tcp_keepalive: Some(Duration::from_secs(30)),
            },
        }
    }
}

impl Builder {
    /// Adds an endpoint: `http://HOST:PORT`, `grpc://HOST:PORT` or `unix:///path/to.sock`.
    pub fn endpoint(mut self, uri: impl Into<String>) -> Self {
        self.settings.endpoints.push(uri.into());
        self
    }

    /// Adds several endpoints (see [`Builder::endpoint`]).
    pub fn endpoints<I, S>(mut self, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings
            .endpoints
            .extend(uris.into_iter().map(Into::into));
        self
    }

    /// Sets how many HTTP/2 connections to open to each endpoint (default 4, at least 1).
    ///
    /// `python -m tandem serve --workers N` runs N processes behind one port with
    /// `SO_REUSEPORT`, which spreads *connections*, not calls: one HTTP/2 connection is pinned
    /// to one Python process. Use at least as many connections as server processes.
    pub fn connections_per_endpoint(mut self, n: usize) -> Self {
        self.settings.connections_per_endpoint = n.max(1);
        self
    }

    /// Sets the deadline of calls whose request has none (default 5 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.settings.default_timeout = timeout;
        self
    }

    /// Sets the TCP (or unix socket) connect timeout (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Sends requests gzip-compressed and accepts gzip responses (default off).
    ///
    /// gzip is the only compression Python's grpcio shares with tonic.
    pub fn gzip(mut self, on: bool) -> Self {
        self.settings.gzip = on;
        self
    }

    /// Sets the largest message sent or accepted, in bytes (default 64 MiB, as `tandem serve`).
    ///
    /// Keep it equal to the server's `--max-message-bytes` (`grpc.max_receive_message_length`;
    /// 4 MiB on a plain grpcio server): a larger request is refused here with a `BadRequest`
    /// before it is sent.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_size = bytes;
        self
    }

    /// Marks a method as idempotent, so its failed calls may be retried (see [`Builder::retry`]).
    ///
    /// A request carrying an idempotency key is retried whatever its method.
    pub fn idempotent_method(mut self, method: impl Into<String>) -> Self {
        self.settings.idempotent_methods.insert(method.into());
        self
    }

    /// Sets the attempts of an idempotent call, the first included (default 3, at most 5).
    ///
    /// Retries happen only inside the call's deadline, only on transient errors
    /// (`Unavailable`, plus `Overloaded` with [`Builder::retry_overloaded`]), on another
    /// connection when there is one, and only while the retry budget allows.
    pub fn retry(mut self, max_attempts: u32) -> Self {
        self.settings.retry.max_attempts = max_attempts.clamp(1, 5);
        self
    }

    /// Retries idempotent calls refused with `RESOURCE_EXHAUSTED` too (default off).
    pub fn retry_overloaded(mut self, on: bool) -> Self {
        self.settings.retry.retry_overloaded = on;
        self
    }

    /// Sets the retry budget: retries may add `ratio` extra calls (0.2 = 20 %) over a `ttl`
    /// window, plus `min_per_sec` retries per second always (default 10 s, 10/s, 0.2).
    pub fn retry_budget(mut self, ttl: Duration, min_per_sec: u32, ratio: f32) -> Self {
        self.settings.retry.budget_ttl = ttl.clamp(Duration::from_secs(1), Duration::from_secs(60));
        self.settings.retry.budget_min_per_sec = min_per_sec;
        self.settings.retry.budget_ratio = ratio.clamp(0.0, 10.0);
        self
    }

    /// Sets the `grpc.health.v1` service name watched on every connection (default `""`, the
    /// whole server; `tandem serve` also reports `tandem.v1.Call` and
    /// `inference.InferenceService`).
    pub fn health_service(mut self, service: impl Into<String>) -> Self {
        self.settings.health_service = service.into();
        self
    }

    /// Sets the longest pause between health re-checks of an unhealthy connection, and the
    /// polling period when the server has no `Watch` (default 1 s).
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.settings.health_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Turns on HTTP/2 keepalive pings every `interval` (default off).
    ///
    /// A grpcio server answers pings that come more often than its
    /// `grpc.http2.min_ping_interval_without_data_ms` (5 minutes by default) with a GOAWAY
    /// `too_many_pings` that drops the connection: keep `interval` at or above the server's
    /// setting. Pings are only sent while calls are open (never on idle connections), which is
    /// what grpcio's default `grpc.keepalive_permit_without_calls = 0` requires. Dead peers are
    /// otherwise found by TCP keepalive and by the health watch.
    pub fn http2_keepalive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.settings.http2_keepalive = interval;
        self.settings.keepalive_timeout = timeout;
        self
    }

    /// Sets the TCP keepalive of every connection (default 30 s; the kernel's probes, not
    /// HTTP/2 pings, so grpcio never objects).
    pub fn tcp_keepalive(mut self, interval: Option<Duration>) -> Self {
        self.settings.tcp_keepalive = interval;
        self
    }

    #[cfg(test)]
    pub(crate) fn into_settings(self) -> Settings {
        self.settings
    }

    /// Opens the connections (lazily) and starts health watching.
    ///
    /// # Errors
    ///
    /// `BadRequest` when no endpoint is given or one cannot be parsed; `Unavailable` when it is
    /// called outside a tokio runtime (health watching needs one).
    pub fn build(self) -> Result<Client, Error> {
        if self.settings.endpoints.is_empty() {
            return Err(Error::bad_request(
                Transport::Grpc,
                "grpc client",
                "no endpoint given: add one with .endpoint(\"http://HOST:PORT\") or \"unix:///path\"",
            ));
        }
        Client::start(self.settings)
    }
}
