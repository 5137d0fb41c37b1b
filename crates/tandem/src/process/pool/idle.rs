//! The idle workers and the callers waiting for one, under one lock: a worker that frees goes
//! to the first waiting caller, and a caller waits only while no worker is idle, so callers
//! are served in arrival order. A waiting caller whose call fits one message can also be
//! written behind a running call (`lane.rs`).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::lane::Turn;
use super::member::Member;

/// A caller waiting for a worker.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// Unique per wait, in arrival order.
    pub(crate) ticket: u64,
    /// The call's frame when it may be written behind a running call (one message).
    pub(crate) frame: Option<Bytes>,
    pub(crate) turn: oneshot::Sender<Turn>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Idle workers, most recently used on top (a warm worker serves the next call).
    stack: Vec<Member>,
    line: VecDeque<Waiter>,
    closed: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct IdleSet(Mutex<Inner>);

impl IdleSet {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        crate::process::lock(&self.0)
    }

    /// Gives a free worker to the first waiting caller, else puts it in rotation; gives it
    /// back once the set is closed.
    pub(crate) fn put(&self, mut member: Member) -> Result<(), Member> {
        let mut inner = self.inner();
        if inner.closed {
            return Err(member);
        }
        while let Some(w) = inner.line.pop_front() {
            match w.turn.send(Turn::Direct(member)) {
                Ok(()) => return Ok(()),
                Err(Turn::Direct(m)) => member = m, // that caller is gone
                Err(_) => unreachable!("send returns the value it was given"),
            }
        }
        inner.stack.push(member);
        Ok(())
    }

    /// An idle worker, if one is free right now and no caller waits ahead.
    pub(crate) fn try_take(&self) -> Option<Member> {
        let mut inner = self.inner();
        if inner.line.is_empty() {
            inner.stack.pop()
        } else {
            None
        }
    }

    /// Joins the line (or takes an idle worker at once); `None` once the set is closed.
    pub(crate) fn wait(
        &self,
        ticket: u64,
        frame: Option<Bytes>,
    ) -> Option<oneshot::Receiver<Turn>> {
        let (turn, rx) = oneshot::channel();
        let mut inner = self.inner();
        if inner.closed {
            return None;
        }
        match inner.stack.pop() {
            Some(m) if inner.line.is_empty() => {
                let _ = turn.send(Turn::Direct(m));
            }
            other => {
                if let Some(m) = other {
                    inner.stack.push(m);
                }
                inner.line.push_back(Waiter {
                    ticket,
                    frame,
                    turn,
                });
            }
        }
        Some(rx)
    }

    /// Removes caller `ticket` from the line; whether it was there.
    pub(crate) fn leave(&self, ticket: u64) -> bool {
        let mut inner = self.inner();
        let before = inner.line.len();
        inner.line.retain(|w| w.ticket != ticket);
        inner.line.len() != before
    }

    /// Whether a worker is idle.
    pub(crate) fn has_idle(&self) -> bool {
        !self.inner().stack.is_empty()
    }

    /// Whether a waiting caller's call may be written behind a running one.
    pub(crate) fn has_queueable(&self) -> bool {
        self.inner().line.iter().any(|w| w.frame.is_some())
    }

    /// The first waiting caller whose call may be written behind a running one.
    pub(crate) fn next_to_queue(&self) -> Option<Waiter> {
        let mut inner = self.inner();
        let at = inner.line.iter().position(|w| w.frame.is_some())?;
        inner.line.remove(at)
    }

    /// Puts a caller back in the line at its arrival place (its call could not be written
    /// behind a running one, or was taken back from there); it gets a worker at once if one
    /// is idle.
    pub(crate) fn rejoin(&self, waiter: Waiter) {
        let mut inner = self.inner();
        if inner.closed {
            return;
        }
        let at = inner.line.partition_point(|w| w.ticket < waiter.ticket);
        inner.line.insert(at, waiter);
        while let Some(member) = inner.stack.pop() {
            let Some(w) = inner.line.pop_front() else {
                inner.stack.push(member);
                break;
            };
            if let Err(Turn::Direct(m)) = w.turn.send(Turn::Direct(member)) {
                inner.stack.push(m); // that caller is gone
            }
        }
    }

    /// Takes worker `pid` out of rotation if it is idle.
    pub(crate) fn remove(&self, pid: u32) -> Option<Member> {
        let mut inner = self.inner();
        let i = inner.stack.iter().position(|m| m.pid() == pid)?;
        Some(inner.stack.swap_remove(i))
    }

    /// Takes out every idle worker for which `faulty` says why it must go.
    pub(crate) fn remove_faulty<F>(
        &self,
        mut faulty: impl FnMut(&mut Member) -> Option<F>,
    ) -> Vec<(Member, F)> {
        let mut inner = self.inner();
        let mut out = Vec::new();
        let mut i = 0;
        while i < inner.stack.len() {
            match faulty(&mut inner.stack[i]) {
                Some(why) => out.push((inner.stack.swap_remove(i), why)),
                None => i += 1,
            }
        }
        out
    }

    /// Closes the set (waiting callers are told by their dropped turn) and returns the idle
    /// workers.
    pub(crate) fn close(&self) -> Vec<Member> {
        let mut inner = self.inner();
        inner.closed = true;
        inner.line.clear();
        std::mem::take(&mut inner.stack)
    }
}
