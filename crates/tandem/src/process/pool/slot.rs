//! One worker slot: takes calls from the shared queue only while its worker is idle, owns each
//! call's deadline, replaces a worker that crashed, hung or broke the wire (with backoff), and
//! recycles one that served enough calls or grew too large (make before break).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

use super::state::{Job, Shared};
use crate::call::{Error, Response, Transport};
use crate::codec::{Codec, Payload};
use crate::process::frame::CallBody;
use crate::process::worker::{rss_bytes, Broken, IdleFault, Worker, WorkerConfig};

/// Consecutive start failures after which a slot reports a crash loop.
const CRASH_LOOP_AFTER: u32 = 3;
/// Longest pause between two start attempts.
const MAX_START_BACKOFF: Duration = Duration::from_secs(10);
/// Longest pause before replacing a worker that keeps crashing during calls.
const MAX_CRASH_BACKOFF: Duration = Duration::from_secs(5);

/// What a slot needs besides its worker.
#[derive(Debug, Clone)]
pub(crate) struct SlotConfig {
    pub(crate) worker: Arc<WorkerConfig>,
    pub(crate) max_requests: Option<u64>,
    pub(crate) max_memory: Option<u64>,
    pub(crate) stop_grace: Duration,
}

pub(crate) type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// Whether a worker can take another call after a job.
enum After {
    Healthy,
    Replace,
}

pub(crate) struct Slot {
    pub(crate) cfg: SlotConfig,
    pub(crate) shared: Arc<Shared>,
    pub(crate) queue: Queue,
    /// Calls without an answer in a row that ended with the worker replaced.
    crash_streak: u32,
    /// Starts that failed in a row.
    start_failures: u32,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

async fn next_job(queue: &Queue) -> Option<Job> {
    queue.lock().await.recv().await
}

async fn join_opt<T>(h: &mut Option<JoinHandle<T>>) -> Option<T> {
    match h {
        Some(j) => {
            let r = j.await.ok();
            *h = None;
            r
        }
        None => std::future::pending().await,
    }
}

/// A worker's own recycling limit: `max_requests` plus up to 10 % jitter.
fn jittered(limit: Option<u64>, pid: u32) -> Option<u64> {
    limit.map(|n| {
        let spread = n / 10;
        if spread == 0 {
            return n;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0);
        let seed = (u64::from(pid)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(nanos))
            >> 7;
        n + seed % (spread + 1)
    })
}

impl Slot {
    pub(crate) fn new(cfg: SlotConfig, shared: Arc<Shared>, queue: Queue) -> Self {
        Self {
            cfg,
            shared,
            queue,
            crash_streak: 0,
            start_failures: 0,
        }
    }

    /// Serves calls until the queue closes (graceful shutdown), then stops its worker.
    pub(crate) async fn run(mut self, first: Worker) {
        let mut current = Some(first);
        loop {
            let worker = match current.take() {
                Some(w) => w,
                None => match self.respawn().await {
                    Some(w) => w,
                    None => return,
                },
            };
            Shared::add(&self.shared.live, 1);
            self.shared.publish();
            let done = self.serve(worker).await;
            Shared::add(&self.shared.live, -1);
            self.shared.publish();
            if done {
                return;
            }
            Shared::bump(&self.shared.restarts);
            self.shared.publish();
            let pause = match self.crash_streak {
                0 | 1 => Duration::ZERO,
                n => {
                    (Duration::from_millis(50) * 2u32.saturating_pow(n - 2)).min(MAX_CRASH_BACKOFF)
                }
            };
            if !pause.is_zero() && self.pause(pause).await {
                return;
            }
        }
    }

    /// Sleeps, returning early (true) when the pool starts closing.
    async fn pause(&self, d: Duration) -> bool {
        let mut closing = self.shared.closing.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(d) => self.shared.is_closing(),
            _ = closing.wait_for(|c| *c) => true,
        }
    }

    /// Starts a new worker, with backoff between failed starts; `None` once the pool closes.
    async fn respawn(&mut self) -> Option<Worker> {
        loop {
            if self.shared.is_closing() {
                return None;
            }
            match Worker::spawn(&self.cfg.worker, &self.shared.registry).await {
                Ok(w) => {
                    self.start_failures = 0;
                    self.shared.set_crash_loop(None);
                    return Some(w);
                }
                Err(e) => {
                    self.start_failures += 1;
                    let n = self.start_failures;
                    tracing::warn!(app = %self.cfg.worker.app, attempt = n, "worker failed to start: {e}");
                    if n >= CRASH_LOOP_AFTER {
                        self.shared.set_crash_loop(Some(format!(
                            "crash loop: {n} workers in a row died before becoming ready, \
                             restarting with backoff; last: {e}"
                        )));
                    }
                    let pause = (Duration::from_millis(100) * 2u32.saturating_pow(n - 1))
                        .min(MAX_START_BACKOFF);
                    if self.pause(pause).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Serves calls with `worker`; true when the pool is closing (the worker was stopped),
    /// false when the worker was lost and must be replaced.
    async fn serve(&mut self, mut worker: Worker) -> bool {
        let mut limit = jittered(self.cfg.max_requests, worker.pid());
        let mut replacement: Option<JoinHandle<Result<Worker, crate::Error>>> = None;
        let mut retry_recycle_at = Instant::now();
        loop {
            let job = tokio::select! {
                biased;
                fault = worker.idle_fault() => {
                    match fault {
                        IdleFault::Exited => {
                            let reason = worker.death_reason().await;
                            tracing::warn!(pid = worker.pid(), "idle {reason}; replacing it");
                        }
                        IdleFault::Unsolicited(n) => {
                            tracing::warn!(
                                pid = worker.pid(),
                                "idle worker wrote {n} bytes nobody asked for (protocol \
                                 violation; last stderr: {}); replacing it",
                                worker.stderr_tail()
                            );
                            worker.kill().await;
                        }
                    }
                    abort_replacement(&mut replacement);
                    return false;
                }
                ready = join_opt(&mut replacement) => {
                    match ready {
                        Some(Ok(new)) => {
                            let mut old = std::mem::replace(&mut worker, new);
                            limit = jittered(self.cfg.max_requests, worker.pid());
                            Shared::bump(&self.shared.recycled);
                            tracing::info!(old = old.pid(), new = worker.pid(), "worker recycled");
                            let grace = self.cfg.stop_grace;
                            tokio::spawn(async move { old.stop(grace).await });
                        }
                        Some(Err(e)) => {
                            tracing::warn!(pid = worker.pid(), "replacement worker failed to start, keeping the old one: {e}");
                            retry_recycle_at = Instant::now() + Duration::from_secs(1);
                        }
                        None => {}
                    }
                    continue;
                }
                job = next_job(&self.queue) => job,
            };
            let Some(job) = job else {
                abort_replacement(&mut replacement);
                worker.stop(self.cfg.stop_grace).await;
                return true;
            };
            if job.reply.is_closed() {
                continue;
            }
            Shared::add(&self.shared.busy, 1);
            self.shared.publish();
            let after = self.run_job(&mut worker, job).await;
            Shared::add(&self.shared.busy, -1);
            self.shared.publish();
            match after {
                After::Replace => {
                    self.crash_streak += 1;
                    abort_replacement(&mut replacement);
                    return false;
                }
                After::Healthy => self.crash_streak = 0,
            }
            if replacement.is_none() && Instant::now() >= retry_recycle_at {
                if let Some(why) = self.recycle_reason(&worker, limit) {
                    tracing::info!(pid = worker.pid(), "recycling worker: {why}");
                    let cfg = self.cfg.worker.clone();
                    let registry = self.shared.registry.clone();
                    replacement =
                        Some(tokio::spawn(
                            async move { Worker::spawn(&cfg, &registry).await },
                        ));
                }
            }
        }
    }

    fn recycle_reason(&self, worker: &Worker, limit: Option<u64>) -> Option<String> {
        if let Some(limit) = limit {
            if worker.served >= limit {
                return Some(format!(
                    "served {} calls (max_requests {limit})",
                    worker.served
                ));
            }
        }
        if let Some(max) = self.cfg.max_memory {
            if let Some(rss) = rss_bytes(worker.pid()) {
                if rss > max {
                    return Some(format!("resident memory {rss} B above max_memory {max} B"));
                }
            }
        }
        None
    }

    /// Runs one job on `worker` under its deadline and answers the caller.
    async fn run_job(&mut self, worker: &mut Worker, job: Job) -> After {
        let Job {
            req,
            deadline,
            mut reply,
        } = job;
        let (method, payload, meta) = req.into_parts();
        let pid = worker.pid();
        let target = format!("{method} on worker {pid}");
        let now = Instant::now();
        if now >= deadline {
            let _ = reply.send(Err(Error::Timeout {
                transport: Transport::Pool,
                target: format!("{method} (deadline passed while queued)"),
                elapsed: Duration::ZERO,
            }));
            return After::Healthy;
        }
        let remaining = deadline - now;
        let body = CallBody {
            method,
            codec: payload.codec().as_str().to_owned(),
            payload: payload.into_bytes(),
            timeout_ms: Some(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX)),
            traceparent: meta.traceparent,
            idempotency_key: meta.idempotency_key,
            headers: meta.headers,
        };
        enum Ended {
            Answer(
                Result<Result<(String, bytes::Bytes), crate::process::frame::ErrorBody>, Broken>,
            ),
            Deadline,
            Cancelled,
        }
        let ended = tokio::select! {
            r = worker.call(&body) => Ended::Answer(r),
            () = tokio::time::sleep_until(deadline.into()) => Ended::Deadline,
            () = reply.closed() => Ended::Cancelled,
        };
        match ended {
            Ended::Answer(Ok(Ok((codec, bytes)))) => match codec.parse::<Codec>() {
                Ok(codec) => {
                    let resp = Response::new(Payload::new(codec, bytes))
                        .with_header("worker-pid", pid.to_string());
                    let _ = reply.send(Ok(resp));
                    After::Healthy
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::protocol(
                        Transport::Pool,
                        target,
                        format!("answer has an unknown codec: {e}; the worker was replaced"),
                    )));
                    worker.kill().await;
                    After::Replace
                }
            },
            Ended::Answer(Ok(Err(eb))) => {
                let _ = reply.send(Err(Error::from_wire(
                    Transport::Pool,
                    target,
                    &eb.kind,
                    &eb.exc_type,
                    &eb.message,
                    &eb.traceback,
                )));
                After::Healthy
            }
            Ended::Answer(Err(Broken::Exited)) => {
                let reason = worker.death_reason().await;
                tracing::warn!(pid, "{reason} during a call; replacing it");
                let _ = reply.send(Err(Error::unavailable(
                    Transport::Pool,
                    target,
                    format!("{reason}; the worker is being restarted"),
                )));
                After::Replace
            }
            Ended::Answer(Err(Broken::Protocol(why))) => {
                let tail = worker.stderr_tail();
                let _ = reply.send(Err(Error::protocol(
                    Transport::Pool,
                    target,
                    format!("{why}; the worker was replaced (last stderr: {tail})"),
                )));
                worker.kill().await;
                After::Replace
            }
            Ended::Deadline => {
                let _ = reply.send(Err(Error::Timeout {
                    transport: Transport::Pool,
                    target,
                    elapsed: now.elapsed(),
                }));
                tracing::warn!(
                    pid,
                    "call passed its deadline; killing the worker's process group"
                );
                worker.kill().await;
                After::Replace
            }
            Ended::Cancelled => {
                tracing::debug!(
                    pid,
                    "caller went away mid-call; killing the worker's process group"
                );
                worker.kill().await;
                After::Replace
            }
        }
    }
}

fn abort_replacement(h: &mut Option<JoinHandle<Result<Worker, crate::Error>>>) {
    if let Some(h) = h.take() {
        // Aborting drops the half-started worker, whose Drop kills its process group; the
        // reaper thread collects it. A finished-but-unclaimed worker is dropped the same way.
        h.abort();
    }
}
