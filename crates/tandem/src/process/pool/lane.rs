//! Pipelining: while a worker runs a call, the next waiting call is written behind it, so the
//! worker starts that call the moment it answers, without waiting for the parent to send it.
//!
//! A call written behind a running one is not committed to that worker: the worker reads one
//! message per call (`seqpacket.rs`), and until it reads this one the parent can take it back
//! whole through the worker's [`SideDoor`]. The pool does so whenever another worker is free
//! first (no call waits behind a slow one while a worker idles), when the caller gives up, and
//! when the worker dies before reaching it (the call then runs elsewhere instead of failing).
//!
//! One call at most waits behind each worker. Calls whose frame needs several messages are
//! never written behind (they wait for a free worker).

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::oneshot;

use super::member::Member;
use crate::process::lock;
use crate::process::side_door::{SideDoor, TakeBack};

/// What a waiting caller is told.
#[derive(Debug)]
pub(crate) enum Turn {
    /// A free worker: write the call on it.
    Direct(Member),
    /// The call was written behind another on this worker, with this request id, and it is
    /// now its turn: read its answer.
    Run(Member, u64),
    /// The call was written behind another and taken back unread: wait for a worker again.
    Retry,
    /// The worker the call was written to died after reading it (why, for the error).
    Lost(String),
}

/// A call written behind the running one.
#[derive(Debug)]
pub(crate) struct Queued {
    /// The caller's ticket (see [`super::idle::Waiter`]).
    pub(crate) ticket: u64,
    /// The call's request id on this worker's wire.
    pub(crate) id: u64,
    /// The length of its frame (one message).
    pub(crate) len: usize,
    pub(crate) turn: oneshot::Sender<Turn>,
}

/// One worker's place for a call written behind its running one.
#[derive(Debug)]
pub(crate) struct Lane {
    pid: u32,
    door: Arc<SideDoor>,
    slot: Mutex<Slot>,
}

/// The call written behind, if any; `closed` once the worker exited (nothing more is written).
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) queued: Option<Queued>,
    closed: bool,
}

impl Lane {
    /// The lane of a worker with this pid and side door; it settles its queued call when the
    /// worker exits.
    pub(crate) fn new(pid: u32, door: Arc<SideDoor>) -> Arc<Self> {
        let lane = Arc::new(Self {
            pid,
            door: door.clone(),
            slot: Mutex::new(Slot::default()),
        });
        let weak = Arc::downgrade(&lane);
        door.set_on_exit(Box::new(move || {
            if let Some(lane) = weak.upgrade() {
                lane.worker_exited();
            }
        }));
        lane
    }

    pub(crate) fn slot(&self) -> MutexGuard<'_, Slot> {
        lock(&self.slot)
    }

    /// Waits until the worker has read its running call; false if it exited first.
    pub(crate) async fn catch_up(&self) -> bool {
        self.door.catch_up().await
    }

    /// Writes `frame` behind the running call for the caller `ticket` if the place is free;
    /// gives the caller's `turn` back when it is not (taken, or the write failed). The worker
    /// must have read the running call ([`Lane::catch_up`]).
    pub(crate) fn queue(
        &self,
        ticket: u64,
        frame: &[u8],
        turn: oneshot::Sender<Turn>,
    ) -> Result<(), oneshot::Sender<Turn>> {
        let mut slot = self.slot();
        if slot.queued.is_some() || slot.closed {
            return Err(turn);
        }
        let mut frame = frame.to_vec();
        match self.door.write(&mut frame) {
            Ok(id) => {
                tracing::debug!(pid = self.pid, id, "call written behind the running one");
                slot.queued = Some(Queued {
                    ticket,
                    id,
                    len: frame.len(),
                    turn,
                });
                Ok(())
            }
            Err(e) => {
                tracing::debug!(
                    pid = self.pid,
                    "cannot write a call behind the running one: {e}"
                );
                Err(turn)
            }
        }
    }

    /// Takes the queued call back if the worker has not read it (then nothing of it runs).
    /// `only` restricts this to one caller's call.
    pub(crate) fn take_back(&self, only: Option<u64>) -> Option<Queued> {
        let mut slot = self.slot();
        let queued = slot.queued.as_ref()?;
        if only.is_some_and(|t| queued.ticket != t) {
            return None;
        }
        match self.door.take_back(queued.len) {
            TakeBack::Taken(_) => {
                tracing::debug!(
                    pid = self.pid,
                    id = queued.id,
                    "queued call taken back unread"
                );
                slot.queued.take()
            }
            TakeBack::Gone => None,
        }
    }

    /// Takes the queued call out, for the worker's holder to hand the worker over to it.
    pub(crate) fn hand_over(&self) -> Option<Queued> {
        self.slot().queued.take()
    }

    /// Takes back a call of `len` bytes already taken out of the slot; whether the worker had
    /// not read it.
    pub(crate) fn reclaim(&self, len: usize) -> bool {
        matches!(self.door.take_back(len), TakeBack::Taken(_))
    }

    /// The worker exited: its queued call runs elsewhere if it was not read, else it is lost.
    fn worker_exited(&self) {
        let mut slot = self.slot();
        slot.closed = true;
        let Some(q) = slot.queued.take() else {
            return;
        };
        let turn = if self.door.unread_ids().contains(&q.id) {
            Turn::Retry
        } else {
            Turn::Lost(format!(
                "worker {} exited while running this call, which was queued behind another",
                self.pid
            ))
        };
        let _ = q.turn.send(turn);
    }
}

/// What [`Lanes::withdraw`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Withdrawn {
    /// The call was queued and is taken back unread: it never runs.
    TakenBack,
    /// Queued, but its worker already read it: it runs, and only killing the worker stops it
    /// (done when the worker is handed over to the caller that gave up).
    Running,
    /// Not queued behind any worker (still in line, or its turn came).
    NotQueued,
}

/// The lanes of the pool's workers (weak: a lane goes with its worker).
#[derive(Debug, Default)]
pub(crate) struct Lanes(Mutex<Vec<Weak<Lane>>>);

impl Lanes {
    pub(crate) fn add(&self, lane: &Arc<Lane>) {
        let mut all = lock(&self.0);
        all.retain(|l| l.strong_count() > 0);
        all.push(Arc::downgrade(lane));
    }

    /// The lanes with a call written behind, with that call's ticket (no allocation when there
    /// is none: this runs each time a worker frees).
    fn queued_lanes(&self) -> Vec<(u64, Arc<Lane>)> {
        lock(&self.0)
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|l| {
                let ticket = l.slot().queued.as_ref().map(|q| q.ticket)?;
                Some((ticket, l))
            })
            .collect()
    }

    /// How many calls are written behind a running call.
    pub(crate) fn queued(&self) -> usize {
        self.queued_lanes().len()
    }

    /// Takes back caller `ticket`'s queued call, wherever it is.
    pub(crate) fn withdraw(&self, ticket: u64) -> Withdrawn {
        let Some((_, lane)) = self.queued_lanes().into_iter().find(|(t, _)| *t == ticket) else {
            return Withdrawn::NotQueued;
        };
        if lane.take_back(Some(ticket)).is_some() {
            Withdrawn::TakenBack
        } else if lane
            .slot()
            .queued
            .as_ref()
            .is_some_and(|q| q.ticket == ticket)
        {
            Withdrawn::Running
        } else {
            Withdrawn::NotQueued // handed over meanwhile
        }
    }

    /// Takes back the oldest queued call that no worker has read yet (for a worker that is
    /// free), skipping the lane of worker `except`.
    pub(crate) fn steal(&self, except: u32) -> Option<Queued> {
        let mut lanes = self.queued_lanes();
        lanes.retain(|(_, l)| l.pid != except);
        lanes.sort_by_key(|(ticket, _)| *ticket);
        lanes
            .into_iter()
            .find_map(|(ticket, lane)| lane.take_back(Some(ticket)))
    }
}
