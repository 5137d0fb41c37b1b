//! [`PoolBuilder`]: a pool's options and their defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::Pool;
use crate::call::Error;
use crate::process::frame::FRAME_OVERHEAD;
use crate::process::worker::WorkerConfig;

/// Default largest payload, each direction: 64 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024 * 1024;
/// Default deadline of a call whose request carries none: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a worker has to import the app and say ready: 10 s.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time each side of a call polls for the other before sleeping: 50 µs.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Builds a [`Pool`]; every option has a documented default.
///
/// | option | default |
/// |---|---|
/// | [`workers`](Self::workers) | number of cores |
/// | [`python`](Self::python) | [`default_python()`](crate::process::default_python) |
/// | [`max_queue`](Self::max_queue) | `4 × workers²`, at least 16 |
/// | [`max_payload`](Self::max_payload) | 64 MiB, each direction |
/// | [`timeout`](Self::timeout) | 30 s, when the request has no deadline |
/// | [`start_timeout`](Self::start_timeout) | 10 s |
/// | [`max_requests`](Self::max_requests) / [`max_memory`](Self::max_memory) | never recycle |
/// | [`stop_grace`](Self::stop_grace) | 5 s |
/// | [`spin`](Self::spin) | 50 µs |
///
/// ```no_run
/// # async fn demo() -> Result<(), tandem::Error> {
/// use std::time::Duration;
/// let pool = tandem::process::Pool::builder("service:app")
///     .workers(4)
///     .timeout(Duration::from_secs(2))
///     .max_requests(Some(10_000))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    pub(crate) app: String,
    pub(crate) workers: usize,
    pub(crate) python: PathBuf,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) max_queue: Option<usize>,
    pub(crate) max_payload: usize,
    pub(crate) timeout: Duration,
    pub(crate) start_timeout: Duration,
    pub(crate) max_requests: Option<u64>,
    pub(crate) max_memory: Option<u64>,
    pub(crate) stop_grace: Duration,
    pub(crate) spin: Duration,
}

impl PoolBuilder {
    pub(crate) fn new(app: String) -> Self {
        Self {
            app,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            python: crate::process::default_python(),
            cwd: None,
            env: Vec::new(),
            max_queue: None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            timeout: DEFAULT_TIMEOUT,
            start_timeout: DEFAULT_START_TIMEOUT,
            max_requests: None,
            max_memory: None,
            stop_grace: Duration::from_secs(5),
            spin: DEFAULT_SPIN,
        }
    }

    /// Number of worker processes (default: the number of cores; at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// The Python interpreter (default [`default_python()`](crate::process::default_python)).
    pub fn python(mut self, python: impl Into<PathBuf>) -> Self {
        self.python = python.into();
        self
    }

    /// Working directory of the workers (default: inherited); the app module is imported from it.
    pub fn cwd(mut self, dir: PathBuf) -> Self {
        self.cwd = Some(dir);
        self
    }

    /// Sets an environment variable for the workers (added to the inherited environment).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Calls that may wait for an idle worker before `call` answers `Overloaded`
    /// (default: `4 × workers²`, at least 16; piscina's rule of thumb is `workers²`).
    pub fn max_queue(mut self, n: usize) -> Self {
        self.max_queue = Some(n);
        self
    }

    /// Largest payload in bytes, applied to requests (refused with `BadRequest` before
    /// sending) and to answers (the worker refuses to send a larger one). Default 64 MiB.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Deadline of a call whose request has none (default 30 s). The pool owns every call's
    /// deadline: on expiry the worker's process group is killed and the worker replaced.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time a worker has from spawn to its ready handshake (default 10 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Recycle a worker after this many calls, plus a per-worker jitter of up to 10 % so
    /// workers do not all restart together (default: never). The replacement is started and
    /// ready before the old worker is retired.
    pub fn max_requests(mut self, n: Option<u64>) -> Self {
        self.max_requests = n;
        self
    }

    /// Recycle a worker whose resident memory (RSS, from `/proc`) passes this many bytes after a
    /// call (default: no limit). Make before break, as [`max_requests`](Self::max_requests).
    pub fn max_memory(mut self, bytes: Option<u64>) -> Self {
        self.max_memory = bytes;
        self
    }

    /// How long [`Pool::shutdown`] waits for a worker to exit before killing it (default 5 s).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// How long each side of a call polls the wire before it sleeps (default 50 µs;
    /// `Duration::ZERO` turns it off): the caller, for the answer, right after sending the call;
    /// the worker, for the next call, right after answering.
    ///
    /// Both peek at the wire without blocking and yield the CPU between peeks (`sched_yield`),
    /// so any other runnable thread goes first. An answer or a call that comes within the spin
    /// finds its reader awake on its CPU instead of asleep: on a VM whose idle vCPUs halt at
    /// once, waking a sleeper costs a VM exit, and the spin cuts the pool's latency at low
    /// concurrency by a third to a half (`docs/internals/process.md`, "Where the time goes").
    /// The spin is asked for only while no caller waits for a worker. Its price: up to this
    /// much CPU per call on each side when the answer or the next call is slower, and the
    /// caller's runtime thread is held for that long (do not set it high on a
    /// `current_thread` runtime that serves other work).
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// The queue bound in effect.
    pub(crate) fn queue_limit(&self) -> usize {
        self.max_queue
            .unwrap_or_else(|| (self.workers * self.workers * 4).max(16))
            .max(1)
    }

    pub(crate) fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            python: self.python.clone(),
            app: self.app.clone(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            max_frame: self.max_payload.saturating_add(FRAME_OVERHEAD),
            start_timeout: self.start_timeout,
        }
    }

    /// Starts the workers and returns once every one of them sent its ready handshake.
    ///
    /// # Errors
    ///
    /// `Unavailable` when a worker cannot start or exits before it is ready (the reason
    /// carries its exit status and last stderr lines, e.g. the `ImportError` of the app), or
    /// stays silent past the start timeout; `Protocol` when a worker's handshake is invalid.
    /// Workers already started are killed and reaped before the error is returned.
    pub async fn build(self) -> Result<Pool, Error> {
        Pool::start(self).await
    }
}
