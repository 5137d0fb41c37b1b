//! A worker in the pool's rotation, with its recycling state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::lane::Lane;
use crate::process::worker::{rss_bytes, Worker};

/// Recycling marks the supervisor and callers set on a member.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// A replacement is ready: the caller holding this worker hands it back for stopping.
    pub(crate) retire: AtomicBool,
    /// A replacement was asked for (once per worker, unless it fails to start).
    pub(crate) recycle_asked: AtomicBool,
}

/// One ready worker and its recycling state.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) worker: Box<Worker>,
    pub(crate) marks: Arc<Marks>,
    /// Where a call waits behind the running one.
    pub(crate) lane: Arc<Lane>,
    /// Calls after which it is recycled: `max_requests` plus up to 10 % jitter.
    limit: Option<u64>,
}

impl Member {
    pub(crate) fn new(worker: Worker, max_requests: Option<u64>) -> Self {
        let limit = jittered(max_requests, worker.pid());
        let lane = Lane::new(worker.pid(), worker.door.clone());
        Self {
            worker: Box::new(worker),
            marks: Arc::default(),
            lane,
            limit,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.worker.pid()
    }

    pub(crate) fn retiring(&self) -> bool {
        self.marks.retire.load(Ordering::Acquire)
    }

    /// Why this worker should be recycled now, the first time it should be.
    pub(crate) fn recycle_reason(&self, max_memory: Option<u64>) -> Option<String> {
        if self.marks.recycle_asked.load(Ordering::Relaxed) {
            return None;
        }
        let served = self.worker.served;
        let why = match self.limit {
            Some(limit) if served >= limit => {
                Some(format!("served {served} calls (max_requests {limit})"))
            }
            _ => max_memory.and_then(|max| {
                rss_bytes(self.pid())
                    .filter(|&rss| rss > max)
                    .map(|rss| format!("resident memory {rss} B above max_memory {max} B"))
            }),
        };
        if why.is_some() {
            self.marks.recycle_asked.store(true, Ordering::Relaxed);
        }
        why
    }
}

impl Drop for Member {
    /// Nothing hands this worker over any more: calls still behind it are settled when it has
    /// exited (`lane.rs`).
    fn drop(&mut self) {
        self.lane.orphan();
    }
}

/// A worker's own recycling limit: `max_requests` plus up to 10 % jitter, so that workers
/// started together are not all recycled at once.
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
