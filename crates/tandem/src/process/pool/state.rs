//! State shared between the pool handle and its worker slots: counters, the crash-loop flag,
//! the methods from the handshake, and the queue of calls waiting for an idle worker.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::call::{Error, Request, Response};
use crate::process::worker::Registry;

/// One call waiting for, or running on, a worker.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) req: Request,
    pub(crate) deadline: Instant,
    pub(crate) reply: oneshot::Sender<Result<Response, Error>>,
}

/// Counters and flags every slot updates and [`Pool::stats`](super::Pool::stats) reads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) live: AtomicUsize,
    pub(crate) busy: AtomicUsize,
    pub(crate) restarts: AtomicU64,
    pub(crate) recycled: AtomicU64,
    crash_loop: Mutex<Option<String>>,
    pub(crate) registry: Registry,
    pub(crate) closing: watch::Sender<bool>,
    /// Kept up to date as workers start, stop, take and finish calls ([`Pool::instrument`]).
    ///
    /// [`Pool::instrument`]: super::Pool::instrument
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Mutex<Option<crate::metrics::PoolMetrics>>,
}

impl Shared {
    pub(crate) fn new(registry: Registry) -> Self {
        Self {
            live: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
            recycled: AtomicU64::new(0),
            crash_loop: Mutex::new(None),
            registry,
            closing: watch::channel(false).0,
            #[cfg(feature = "metrics")]
            metrics: Mutex::new(None),
        }
    }

    pub(crate) fn add(counter: &AtomicUsize, delta: isize) {
        if delta >= 0 {
            counter.fetch_add(delta.unsigned_abs(), Ordering::SeqCst);
        } else {
            let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_sub(delta.unsigned_abs()))
            });
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::SeqCst);
    }

    /// `(workers, busy)`: live workers, and those running a call.
    pub(crate) fn workers_busy(&self) -> (usize, usize) {
        let workers = self.live.load(Ordering::SeqCst);
        (workers, self.busy.load(Ordering::SeqCst).min(workers))
    }

    /// Mirrors busy, idle and restarts into the instrumented metrics, if any.
    pub(crate) fn publish(&self) {
        #[cfg(feature = "metrics")]
        if let Ok(slot) = self.metrics.lock() {
            if let Some(m) = slot.as_ref() {
                let (workers, busy) = self.workers_busy();
                m.set_busy(busy);
                m.set_idle(workers - busy);
                m.set_restarts_total(self.restarts.load(Ordering::SeqCst));
            }
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    pub(crate) fn set_crash_loop(&self, reason: Option<String>) {
        if let Ok(mut g) = self.crash_loop.lock() {
            *g = reason;
        }
    }

    /// The crash-loop reason, when no worker is alive and workers keep dying before ready.
    pub(crate) fn crash_loop(&self) -> Option<String> {
        if self.live.load(Ordering::SeqCst) > 0 {
            return None;
        }
        self.crash_loop.lock().ok().and_then(|g| g.clone())
    }
}
