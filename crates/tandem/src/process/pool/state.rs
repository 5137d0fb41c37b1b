//! State shared by the pool handle, its callers and its supervisor: the idle workers, counters,
//! the crash-loop flag, and the channel to the supervisor.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use super::idle::IdleSet;
use super::lane::{Lanes, Turn};
use super::member::Member;
use super::supervisor::Event;
use crate::process::worker::{Registry, WorkerConfig};

/// How workers are started, recycled and stopped, and how they wait between calls.
#[derive(Debug, Clone)]
pub(crate) struct Supervision {
    pub(crate) worker: Arc<WorkerConfig>,
    pub(crate) max_requests: Option<u64>,
    pub(crate) max_memory: Option<u64>,
    pub(crate) stop_grace: Duration,
    /// [`PoolBuilder::spin`](super::PoolBuilder::spin) in microseconds.
    pub(crate) spin_us: u64,
}

/// Counters and flags that callers and the supervisor update and
/// [`Pool::stats`](super::Pool::stats) reads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) idle: IdleSet,
    /// Every worker's place for the calls written behind its running one.
    pub(crate) lanes: Lanes,
    /// Waiting callers' tickets, in arrival order.
    pub(crate) tickets: AtomicU64,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    pub(crate) cfg: Supervision,
    /// Ready workers in rotation (idle or busy), not counting retiring ones.
    pub(crate) live: AtomicUsize,
    pub(crate) busy: AtomicUsize,
    /// Callers waiting for an idle worker.
    pub(crate) waiting: AtomicUsize,
    pub(crate) restarts: AtomicU64,
    pub(crate) recycled: AtomicU64,
    /// Worker deaths since a call last succeeded (sets the pause before a replacement).
    pub(crate) crash_streak: AtomicU32,
    crash_loop: Mutex<Option<String>>,
    pub(crate) registry: Registry,
    pub(crate) closing: watch::Sender<bool>,
    /// Told when a call ends or a worker dies while the pool is closing.
    pub(crate) settled: Notify,
    /// Kept up to date as workers start, stop, take and finish calls ([`Pool::instrument`]).
    ///
    /// [`Pool::instrument`]: super::Pool::instrument
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Mutex<Option<crate::metrics::PoolMetrics>>,
}

impl Shared {
    pub(crate) fn new(
        cfg: Supervision,
        registry: Registry,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Self {
            idle: IdleSet::default(),
            lanes: Lanes::default(),
            tickets: AtomicU64::new(0),
            events,
            cfg,
            live: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
            recycled: AtomicU64::new(0),
            crash_streak: AtomicU32::new(0),
            crash_loop: Mutex::new(None),
            registry,
            closing: watch::channel(false).0,
            settled: Notify::new(),
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

    /// A free worker takes the oldest call written behind a busy worker that has not started
    /// (no call waits behind a slow one while a worker idles), else the first waiting caller,
    /// else it goes idle. Gives it back once the pool is closed.
    pub(crate) fn release(&self, mut member: Member) -> Result<(), Member> {
        if let Some(q) = self.lanes.steal(member.pid()) {
            tracing::debug!(
                pid = member.pid(),
                "a free worker takes a call queued behind another"
            );
            match q.turn.send(Turn::Direct(member)) {
                Ok(()) => return Ok(()),
                Err(Turn::Direct(m)) => member = m, // that caller gave up meanwhile
                Err(_) => unreachable!("send returns the value it was given"),
            }
        }
        self.idle.put(member)
    }

    /// Calls taken back from behind a worker wait for a worker again, in their places.
    pub(crate) fn rejoin(&self, calls: Vec<super::lane::Queued>) {
        for q in calls {
            self.idle.rejoin(super::idle::Waiter {
                ticket: q.ticket,
                frame: Some(q.frame),
                turn: q.turn,
            });
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Wakes a shutdown waiting for in-flight calls to end.
    pub(crate) fn settle(&self) {
        if self.is_closing() {
            self.settled.notify_waiters();
        }
    }

    /// Tells the supervisor; a stopped supervisor drops the event (and any worker in it,
    /// whose `Drop` kills its process group).
    pub(crate) fn tell(&self, event: Event) {
        let _ = self.events.send(event);
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
