//! [`Pool`]: a supervised pool of persistent Python workers, each serving one call at a time.

mod config;
mod idle;
mod lane;
mod lease;
mod member;
#[cfg(feature = "metrics")]
mod observe;
mod state;
mod supervisor;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

pub use config::{
    PoolBuilder, DEFAULT_MAX_PAYLOAD, DEFAULT_SPIN, DEFAULT_START_TIMEOUT, DEFAULT_TIMEOUT,
};

use self::lease::{Got, Lease};
use self::member::Member;
use self::state::{Shared, Supervision};
use self::supervisor::{Event, Supervisor};
use crate::call::{Error, Request, Response, Transport};
use crate::process::worker::{Registry, Worker};

/// A point-in-time view of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Workers alive and ready.
    pub workers: usize,
    /// Workers running a call.
    pub busy: usize,
    /// Workers waiting for a call.
    pub idle: usize,
    /// Calls waiting for a worker, including those written behind a running call.
    pub queued: usize,
    /// Of `queued`, the calls written behind a running call: each starts as soon as that call
    /// answers, or moves to another worker that frees first.
    pub pipelined: usize,
    /// Workers replaced after a crash, timeout, protocol error or failed start.
    pub restarts: u64,
    /// Workers retired by `max_requests` or `max_memory`.
    pub recycled: u64,
}

/// A supervised pool of persistent Python workers; a cheap, cloneable handle.
///
/// Every worker is `python -m tandem worker module:app`, started in its own process group
/// with its end of a socketpair on fd 3; the two sides speak length-prefixed msgpack frames
/// (see `docs/internals/process.md`), so nothing a handler prints can corrupt the protocol.
/// A call goes to an idle worker only (a slow call never holds up a fast one); calls wait in
/// a bounded queue, and a full queue answers [`Error::Overloaded`](crate::Error::Overloaded).
///
/// Choose the pool for hot, small calls where a one-shot script's ~20–150 ms spawn is too slow
/// and gRPC is more than the job needs (see `docs/choosing.md`); the protocol and every failure
/// mode are in `docs/internals/process.md`.
///
/// ```no_run
/// # async fn demo() -> Result<(), tandem::Error> {
/// use tandem::{process::Pool, Payload, Request};
///
/// let pool = Pool::builder("service:app").workers(2).build().await?;
/// let resp = pool
///     .call(Request::new("score", Payload::json(&serde_json::json!({"amount": 12})).unwrap()))
///     .await?;
/// let value: serde_json::Value = resp.decode().unwrap();
/// pool.shutdown().await;
/// # Ok(()) }
/// ```
///
/// # Caveats
///
/// - **Deadlines kill.** The pool owns each call's deadline (the request's, else
///   [`PoolBuilder::timeout`]). When it passes, the worker's whole process group is SIGKILLed,
///   reaped and replaced, and only that call fails with `Timeout`. Dropping a call's future
///   (cancellation) does the same to the worker running it.
/// - **Crashes.** A worker that dies mid-call (exit, segfault, OOM kill) fails that call with
///   `Unavailable` naming the exit status and its last stderr lines; it is replaced at once,
///   then with growing backoff while crashes repeat. Workers that die before becoming ready
///   again and again are a crash loop: calls then fail fast with `Unavailable` until one starts.
/// - **Dropping** the last `Pool` handle SIGKILLs every worker's process group; their reaper
///   threads collect them. Call [`Pool::shutdown`] to finish in-flight and queued calls first.
/// - **Parent death.** Idle workers exit on EOF of their control socket and busy ones through a
///   parent watchdog, so a parent killed with SIGKILL leaves no worker behind (except a handler
///   holding the GIL inside C code, which exits once it returns).
/// - **Ordering.** Calls start in submission order but may finish in any order.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    app: String,
    queue_limit: usize,
    max_payload: usize,
    timeout: Duration,
    methods: Vec<String>,
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("app", &self.inner.app)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// A builder for a pool serving the app `spec` (`"module:app"`).
    pub fn builder(app: impl Into<String>) -> PoolBuilder {
        PoolBuilder::new(app.into())
    }

    pub(crate) async fn start(b: PoolBuilder) -> Result<Pool, Error> {
        let wcfg = Arc::new(b.worker_config());
        let (events, events_rx) = mpsc::unbounded_channel();
        let registry = Registry::default();
        let exits = events.clone();
        registry.on_exit(Arc::new(move |pid, status| {
            let _ = exits.send(Event::Exited(pid, status));
        }));
        let mut starting = JoinSet::new();
        for _ in 0..b.workers {
            let cfg = wcfg.clone();
            let registry = registry.clone();
            starting.spawn(async move { Worker::spawn(&cfg, &registry).await });
        }
        let mut workers = Vec::with_capacity(b.workers);
        let mut failure = None;
        while let Some(res) = starting.join_next().await {
            match res {
                Ok(Ok(w)) => workers.push(w),
                Ok(Err(e)) => {
                    if failure.is_none() {
                        failure = Some(e);
                        // One failure fails the build: stop waiting for the others.
                        starting.abort_all();
                    }
                }
                Err(join) if join.is_cancelled() => {}
                Err(join) => {
                    failure.get_or_insert_with(|| {
                        Error::unavailable(
                            Transport::Pool,
                            format!("worker for {}", b.app),
                            format!("starting a worker panicked: {join}"),
                        )
                    });
                }
            }
        }
        if let Some(e) = failure {
            for w in &mut workers {
                w.kill().await;
            }
            return Err(e);
        }
        let methods = workers
            .first()
            .map(|w| w.hello.methods.clone())
            .unwrap_or_default();
        let supervision = Supervision {
            worker: wcfg,
            max_requests: b.max_requests,
            max_memory: b.max_memory,
            stop_grace: b.stop_grace,
            spin_us: u64::try_from(b.spin.as_micros()).unwrap_or(u64::MAX),
        };
        let shared = Arc::new(Shared::new(supervision, registry, events));
        let mut supervisor = Supervisor::new(shared.clone(), events_rx);
        for w in workers {
            supervisor.admit(Member::new(w, b.max_requests), None);
        }
        let queue_limit = b.queue_limit();
        let pool = Pool {
            inner: Arc::new(Inner {
                app: b.app,
                queue_limit,
                max_payload: b.max_payload,
                timeout: b.timeout,
                methods,
                shared,
                supervisor: Mutex::new(Some(tokio::spawn(supervisor.run()))),
            }),
        };
        tracing::info!(app = %pool.inner.app, workers = b.workers, "pool ready");
        Ok(pool)
    }

    /// Runs one call on an idle worker and returns its answer.
    ///
    /// # Errors
    ///
    /// - `BadRequest`: the payload is over `max_payload` (nothing was sent), the method is
    ///   unknown, or the payload does not decode in Python.
    /// - `Overloaded`: the queue of calls waiting for a worker is full.
    /// - `Timeout`: the deadline passed (the worker running it was killed and replaced).
    /// - `Unavailable`: the worker died during the call (exit status and last stderr lines in
    ///   the reason), the pool is shut down, or workers are crash-looping.
    /// - `Remote`: the handler raised (type, message, traceback).
    /// - `Protocol`: the worker sent a garbage or truncated frame (it was replaced).
    pub async fn call(&self, req: Request) -> Result<Response, Error> {
        let inner = &self.inner;
        let size = req.payload().len();
        if size > inner.max_payload {
            return Err(Error::bad_request(
                Transport::Pool,
                req.method(),
                format!(
                    "payload of {size} bytes exceeds max_payload of {} bytes (raise \
                     PoolBuilder::max_payload, or send large data another way)",
                    inner.max_payload
                ),
            ));
        }
        if let Some(reason) = inner.shared.crash_loop() {
            return Err(Error::unavailable(Transport::Pool, req.method(), reason));
        }
        let now = Instant::now();
        let deadline = req.metadata().deadline.unwrap_or(now + inner.timeout);
        if now >= deadline {
            return Err(Error::Timeout {
                transport: Transport::Pool,
                target: format!(
                    "{} (deadline passed before the call was sent)",
                    req.method()
                ),
                elapsed: Duration::ZERO,
            });
        }
        if inner.shared.is_closing() {
            return Err(shut_down(req.method()));
        }
        // A call that finds a worker idle and its answer within the spin completes without
        // ever waiting on the runtime; a task calling in a loop would then keep the worker and
        // its runtime thread to itself, and the other callers would not even reach the line.
        // Counting each call against the task's budget makes it yield now and then.
        tokio::task::coop::consume_budget().await;
        let mut call = lease::Call::new(req, deadline);
        let want = lease::Want {
            queue_limit: inner.queue_limit,
            app: &inner.app,
        };
        match lease::checkout(&inner.shared, &want, &mut call).await? {
            Got::Direct(member) => Lease::new(member, &inner.shared).run(&mut call).await,
            Got::Run(member, id) => Lease::new(member, &inner.shared).resume(&call, id).await,
        }
    }

    /// Current counts of workers, busy and idle workers, queued calls, restarts and recycles.
    pub fn stats(&self) -> PoolStats {
        let s = &self.inner.shared;
        let (workers, busy) = s.workers_busy();
        let queued = s.waiting.load(Ordering::SeqCst);
        PoolStats {
            workers,
            busy,
            idle: workers - busy,
            queued,
            pipelined: s.lanes.queued(),
            restarts: s.restarts.load(Ordering::SeqCst),
            recycled: s.recycled.load(Ordering::SeqCst),
        }
    }

    /// The app's methods, as the workers announced them in their ready handshake.
    pub fn methods(&self) -> Vec<String> {
        self.inner.methods.clone()
    }

    /// Stops accepting calls, lets in-flight and queued calls finish, then stops every worker
    /// (shutdown frame and EOF, SIGKILL after the stop grace) and reaps it.
    pub async fn shutdown(&self) {
        let shared = &self.inner.shared;
        shared.closing.send_replace(true);
        loop {
            let settled = shared.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let busy = shared.busy.load(Ordering::SeqCst);
            let waiting = shared.waiting.load(Ordering::SeqCst);
            let live = shared.live.load(Ordering::SeqCst);
            // Queued calls still get served while a worker is alive to serve them.
            if busy == 0 && (waiting == 0 || live == 0) {
                break;
            }
            settled.await;
        }
        // Callers still queued (no worker left to serve them) get `Unavailable`.
        let mut stopping = JoinSet::new();
        for mut member in shared.idle.close() {
            let grace = shared.cfg.stop_grace;
            stopping.spawn(async move { member.worker.stop(grace).await });
        }
        while stopping.join_next().await.is_some() {}
        shared.tell(Event::Stop);
        let supervisor = self.inner.supervisor.lock().ok().and_then(|mut g| g.take());
        if let Some(s) = supervisor {
            let _ = s.await;
        }
    }
}

fn shut_down(method: &str) -> Error {
    Error::unavailable(
        Transport::Pool,
        method,
        "the pool is shut down and accepts no more calls",
    )
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.closing.send_replace(true);
        drop(self.shared.idle.close());
        self.shared.tell(Event::Stop);
        if let Ok(mut g) = self.supervisor.lock() {
            if let Some(s) = g.take() {
                s.abort();
            }
        }
        // Workers still starting or stopping are dropped with the aborted supervisor (their
        // Drop kills them too), but the runtime may already be gone: kill every group here.
        self.shared.registry.kill_all();
    }
}

/// The future returned by [`Pool`]'s `tower::Service::call`.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

impl tower::Service<Request> for Pool {
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture;

    /// Always ready: a full queue is an `Overloaded` error from `call`, not backpressure here.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let pool = self.clone();
        Box::pin(async move { pool.call(req).await })
    }
}
