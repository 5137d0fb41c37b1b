//! Pipelining: while a worker runs a call, the next waiting call is written behind it, so the
//! worker starts that call the moment it answers, without waiting for the parent to send it.
//!
//! A call written behind a running one is not committed to that worker: the worker reads one
//! message per call (`seqpacket.rs`), and until it reads this one the parent can take it back
//! whole through the worker's [`SideDoor`]. The pool does so whenever another worker is free
//! first (no call waits behind a slow one while a worker idles), when the caller gives up, and
//! when the worker dies before reaching it (the call then runs elsewhere instead of failing).
//!
//! Up to [`BEHIND`] calls wait written behind each worker, so that it has its next call
//! even when the parent is slow to write one (both CPUs busy). The worker reads them in order;
//! the parent takes back the next unread one, which is the oldest unless the worker is reading
//! it right then (each message carries its request id, so the parent knows which it got).
//! Calls whose frame needs several messages are never written behind (they wait for a free
//! worker).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::member::Member;
use crate::process::lock;
use crate::process::side_door::{request_id, SideDoor, TakeBack};

/// How many calls may wait written behind each worker's running call.
pub(crate) const BEHIND: usize = 2;

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
    /// Its frame as the caller made it (one message), to queue it again elsewhere.
    pub(crate) frame: Bytes,
    pub(crate) turn: oneshot::Sender<Turn>,
}

/// One worker's place for the calls written behind its running one.
#[derive(Debug)]
pub(crate) struct Lane {
    pid: u32,
    door: Arc<SideDoor>,
    slot: Mutex<Slot>,
}

/// The calls written behind, in the order the worker reads them; `closed` once the worker
/// exited (nothing more is written), `orphaned` once its holder let the worker go without
/// handing it over (no one will read the answers of the calls still behind).
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) queued: VecDeque<Queued>,
    closed: bool,
    orphaned: bool,
}

impl Slot {
    /// The bytes of the calls written behind: all that may be unread once the worker has
    /// read its running call.
    fn bytes(&self) -> usize {
        self.queued.iter().map(|q| q.frame.len()).sum()
    }
}

impl Lane {
    /// The lane of a worker with this pid and side door; it settles its queued calls when the
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

    /// Whether another call may be written behind (the worker runs, and fewer than
    /// [`BEHIND`] wait).
    pub(crate) fn has_room(&self) -> bool {
        let slot = self.slot();
        !slot.closed && slot.queued.len() < BEHIND
    }

    /// Whether any call is written behind the running one.
    pub(crate) fn has_queued(&self) -> bool {
        !self.slot().queued.is_empty()
    }

    /// Waits until the worker has read its running call (only calls written behind are
    /// unread); false if it exited first.
    pub(crate) async fn catch_up(&self) -> bool {
        self.door
            .catch_up(|| {
                let bound = self.slot().bytes();
                self.door.caught_up(bound)
            })
            .await
    }

    /// Writes the caller's call behind the running one if there is room; gives the caller
    /// back when there is not (full, or the write failed). The worker must have read the
    /// running call ([`Lane::catch_up`]).
    pub(crate) fn queue(
        &self,
        ticket: u64,
        frame: Bytes,
        turn: oneshot::Sender<Turn>,
    ) -> Result<(), (Bytes, oneshot::Sender<Turn>)> {
        let mut slot = self.slot();
        if slot.queued.len() >= BEHIND || slot.closed {
            return Err((frame, turn));
        }
        let mut stamped = frame.to_vec();
        match self.door.write(&mut stamped) {
            Ok(id) => {
                tracing::debug!(pid = self.pid, id, "call written behind the running one");
                slot.queued.push_back(Queued {
                    ticket,
                    id,
                    frame,
                    turn,
                });
                Ok(())
            }
            Err(e) => {
                tracing::debug!(
                    pid = self.pid,
                    "cannot write a call behind the running one: {e}"
                );
                Err((frame, turn))
            }
        }
    }

    /// Takes back the next call the worker has not read, if only calls written behind are
    /// unread (`ahead`: the bytes of a call taken out of the slot but written before them).
    /// Returns its request id, and its entry if it is in the slot. The unread messages are the
    /// last ones written, so when they total no more than these calls they are among them:
    /// the id is in the slot, or it is the one ahead.
    fn take_back_next(&self, slot: &mut Slot, ahead: usize) -> Option<(u64, Option<Queued>)> {
        let TakeBack::Taken(message) = self.door.take_back(ahead + slot.bytes()) else {
            return None;
        };
        let id = request_id(&message)?;
        tracing::debug!(pid = self.pid, id, "queued call taken back unread");
        let at = slot.queued.iter().position(|q| q.id == id);
        Some((id, at.and_then(|i| slot.queued.remove(i))))
    }

    /// Takes back one call the worker has not read: the oldest, unless the worker is reading
    /// it right now.
    pub(crate) fn take_back_one(&self) -> Option<Queued> {
        let mut slot = self.slot();
        self.take_back_next(&mut slot, 0)?.1
    }

    /// Takes back calls the worker has not read, oldest first, until caller `ticket`'s; returns
    /// whether its call was among them, and the others taken back on the way.
    pub(crate) fn take_back_until(&self, ticket: u64) -> (bool, Vec<Queued>) {
        let mut slot = self.slot();
        let mut others = Vec::new();
        while slot.queued.iter().any(|q| q.ticket == ticket) {
            match self.take_back_next(&mut slot, 0) {
                Some((_, Some(q))) if q.ticket == ticket => return (true, others),
                Some((_, Some(q))) => others.push(q),
                _ => break,
            }
        }
        (false, others)
    }

    /// Takes back every call the worker has not read. `ahead`: the request id and length of a
    /// call taken out of the slot but written before its calls; the result says whether it was
    /// taken back too.
    pub(crate) fn take_back_all(&self, ahead: Option<(u64, usize)>) -> (bool, Vec<Queued>) {
        let mut slot = self.slot();
        let (mut ahead_back, mut all) = (false, Vec::new());
        loop {
            let before = ahead.filter(|_| !ahead_back).map_or(0, |(_, len)| len);
            match self.take_back_next(&mut slot, before) {
                Some((id, None)) if ahead.is_some_and(|(a, _)| a == id) => ahead_back = true,
                Some((_, Some(q))) => all.push(q),
                _ => return (ahead_back, all),
            }
        }
    }

    /// Takes out the first call written behind, for the worker's holder to hand the worker
    /// over to it.
    pub(crate) fn hand_over(&self) -> Option<Queued> {
        self.slot().queued.pop_front()
    }

    /// The worker exited: the calls behind that it had not read run elsewhere. One it read
    /// may have been answered before it died: its caller learns that from the wire, when the
    /// worker's holder hands the worker over to it (the answer, or the end of the wire). Only
    /// when no one holds the worker any more is such a call lost.
    fn worker_exited(&self) {
        let mut slot = self.slot();
        slot.closed = true;
        if slot.queued.is_empty() {
            return;
        }
        let unread = self.door.unread_ids();
        for q in std::mem::take(&mut slot.queued) {
            if unread.contains(&q.id) {
                let _ = q.turn.send(Turn::Retry);
            } else if slot.orphaned {
                let _ = q.turn.send(self.lost());
            } else {
                slot.queued.push_back(q);
            }
        }
    }

    /// The worker's holder let it go (killed, or dropped) without handing it over.
    pub(crate) fn orphan(&self) {
        let mut slot = self.slot();
        slot.orphaned = true;
        if slot.closed {
            for q in std::mem::take(&mut slot.queued) {
                let _ = q.turn.send(self.lost());
            }
        }
    }

    fn lost(&self) -> Turn {
        Turn::Lost(format!(
            "worker {} exited while running this call, which was queued behind another",
            self.pid
        ))
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

    /// The lanes with a call written behind, with their oldest such call's ticket (no
    /// allocation when there is none: this runs each time a worker frees).
    fn queued_lanes(&self) -> Vec<(u64, Arc<Lane>)> {
        lock(&self.0)
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|l| {
                let ticket = l.slot().queued.front().map(|q| q.ticket)?;
                Some((ticket, l))
            })
            .collect()
    }

    /// How many calls are written behind a running call.
    pub(crate) fn queued(&self) -> usize {
        lock(&self.0)
            .iter()
            .filter_map(Weak::upgrade)
            .map(|l| l.slot().queued.len())
            .sum()
    }

    /// Takes back caller `ticket`'s queued call, wherever it is; with the calls queued ahead of
    /// it on that worker that had to be taken back too (they wait for a worker again).
    pub(crate) fn withdraw(&self, ticket: u64) -> (Withdrawn, Vec<Queued>) {
        let lane = lock(&self.0)
            .iter()
            .filter_map(Weak::upgrade)
            .find(|l| l.slot().queued.iter().any(|q| q.ticket == ticket));
        let Some(lane) = lane else {
            return (Withdrawn::NotQueued, Vec::new());
        };
        let (taken, others) = lane.take_back_until(ticket);
        let found = if taken {
            Withdrawn::TakenBack
        } else if lane.slot().queued.iter().any(|q| q.ticket == ticket) {
            Withdrawn::Running
        } else {
            Withdrawn::NotQueued // handed over meanwhile
        };
        (found, others)
    }

    /// Takes back the oldest queued call that no worker has read yet (for a worker that is
    /// free), skipping the lane of worker `except`.
    pub(crate) fn steal(&self, except: u32) -> Option<Queued> {
        let mut lanes = self.queued_lanes();
        lanes.retain(|(_, l)| l.pid != except);
        lanes.sort_by_key(|(ticket, _)| *ticket);
        lanes.into_iter().find_map(|(_, lane)| lane.take_back_one())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::frame::{empty_body, Frame, MessageType};
    use crate::process::seqpacket;
    use std::io::Read;
    use tokio::sync::oneshot::error::TryRecvError;

    /// A lane over a fresh wire, and the worker's end to read from.
    fn lane() -> (Arc<Lane>, Arc<SideDoor>, std::os::unix::net::UnixStream) {
        let (parent, worker) = seqpacket::pair().unwrap();
        let door = Arc::new(SideDoor::new(
            parent.try_clone().unwrap(),
            worker.try_clone().unwrap(),
        ));
        (Lane::new(7, door.clone()), door, worker.into())
    }

    fn queue(lane: &Lane, ticket: u64) -> oneshot::Receiver<Turn> {
        let (tx, rx) = oneshot::channel();
        let frame = Bytes::from(Frame::new(MessageType::Ping, 0, empty_body()).encode());
        lane.queue(ticket, frame, tx).unwrap();
        rx
    }

    fn read_one(worker: &mut std::os::unix::net::UnixStream) {
        let mut buf = [0u8; 64];
        assert!(worker.read(&mut buf).unwrap() > 0);
    }

    #[test]
    fn calls_the_worker_read_wait_for_its_holder_after_it_exits() {
        let (lane, door, mut worker) = lane();
        let (mut b, mut c) = (queue(&lane, 1), queue(&lane, 2));
        read_one(&mut worker); // b: answered before the worker died, say
        read_one(&mut worker); // c: running when it died
        door.worker_exited();
        assert_eq!(b.try_recv().unwrap_err(), TryRecvError::Empty);
        assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
        assert_eq!(
            lane.hand_over().unwrap().ticket,
            1,
            "its holder hands it over to b"
        );
        lane.orphan(); // c's turn never comes
        assert!(matches!(c.try_recv(), Ok(Turn::Lost(_))));
    }

    #[test]
    fn a_worker_let_go_loses_the_calls_it_read_and_retries_the_others() {
        let (lane, door, mut worker) = lane();
        let (mut b, mut c) = (queue(&lane, 1), queue(&lane, 2));
        read_one(&mut worker);
        lane.orphan();
        assert_eq!(
            b.try_recv().unwrap_err(),
            TryRecvError::Empty,
            "still alive"
        );
        door.worker_exited();
        assert!(matches!(b.try_recv(), Ok(Turn::Lost(_))));
        assert!(matches!(c.try_recv(), Ok(Turn::Retry)));
        assert!(!lane.has_room(), "closed");
    }

    #[test]
    fn the_next_unread_call_is_taken_back_by_its_id() {
        let (lane, _door, mut worker) = lane();
        let (_b, _c) = (queue(&lane, 1), queue(&lane, 2));
        assert!(!lane.has_room(), "two behind at most");
        read_one(&mut worker);
        // b is read: the next unread one is c, whichever the oldest queued is.
        assert_eq!(lane.take_back_one().unwrap().ticket, 2);
        assert!(lane.take_back_one().is_none(), "b cannot be taken back");
        assert_eq!(lane.hand_over().unwrap().ticket, 1);
    }

    #[test]
    fn withdrawing_a_call_takes_back_the_ones_ahead_of_it() {
        let (lane, _door, _worker) = lane();
        let (_b, _c) = (queue(&lane, 1), queue(&lane, 2));
        let (found, ahead) = lane.take_back_until(2);
        assert!(found);
        assert_eq!(ahead.iter().map(|q| q.ticket).collect::<Vec<_>>(), vec![1]);
        assert!(!lane.has_queued());
    }
}
