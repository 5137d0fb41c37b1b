//! The idle workers: a stack with one semaphore permit per worker on it, so that callers wait
//! for an idle worker in FIFO order (tokio's semaphore is fair) and the supervisor can take a
//! given worker out of rotation without racing a caller.
//!
//! Invariant: the available permits never exceed the workers on the stack. A caller takes a
//! permit, then pops; [`IdleSet::put`] pushes, then adds a permit; [`IdleSet::remove`] takes
//! a permit and the worker under the stack's lock.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Semaphore;

use super::member::Member;

/// Idle workers, most recently used on top (a warm worker serves the next call).
#[derive(Debug)]
pub(crate) struct IdleSet {
    stack: Mutex<Vec<Member>>,
    permits: Semaphore,
}

impl IdleSet {
    pub(crate) fn new() -> Self {
        Self {
            stack: Mutex::new(Vec::new()),
            permits: Semaphore::new(0),
        }
    }

    fn stack(&self) -> MutexGuard<'_, Vec<Member>> {
        // A panic while holding this lock leaves the stack consistent: keep using it.
        self.stack
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts a worker in rotation (a new one, or one back from a call); gives it back once the
    /// set is closed.
    pub(crate) fn put(&self, member: Member) -> Result<(), Member> {
        let mut stack = self.stack();
        if self.permits.is_closed() {
            return Err(member);
        }
        stack.push(member);
        drop(stack);
        self.permits.add_permits(1);
        Ok(())
    }

    /// An idle worker, if one is free right now and no caller waits ahead.
    pub(crate) fn try_take(&self) -> Option<Member> {
        self.permits.try_acquire().ok()?.forget();
        self.stack().pop()
    }

    /// Waits for an idle worker in FIFO order; `None` once the set is closed.
    pub(crate) async fn take(&self) -> Option<Member> {
        self.permits.acquire().await.ok()?.forget();
        self.stack().pop()
    }

    /// Takes worker `pid` out of rotation if it is idle and no waiting caller has claimed it
    /// (then the caller that gets it checks it again).
    pub(crate) fn remove(&self, pid: u32) -> Option<Member> {
        let mut stack = self.stack();
        let i = stack.iter().position(|m| m.pid() == pid)?;
        self.permits.try_acquire().ok()?.forget();
        Some(stack.swap_remove(i))
    }

    /// Takes out every idle worker for which `faulty` says why it must go.
    pub(crate) fn remove_faulty<F>(
        &self,
        mut faulty: impl FnMut(&mut Member) -> Option<F>,
    ) -> Vec<(Member, F)> {
        let mut stack = self.stack();
        let mut out = Vec::new();
        let mut i = 0;
        while i < stack.len() {
            match faulty(&mut stack[i]) {
                Some(why)
                    if self.permits.try_acquire().is_ok_and(|p| {
                        p.forget();
                        true
                    }) =>
                {
                    out.push((stack.swap_remove(i), why));
                }
                _ => i += 1,
            }
        }
        out
    }

    /// Closes the set (waiting callers get `None`) and returns the idle workers.
    pub(crate) fn close(&self) -> Vec<Member> {
        let mut stack = self.stack();
        self.permits.close();
        std::mem::take(&mut *stack)
    }
}
