//! A worker's wire, reached beside the call in progress: write one more call behind the
//! running one, or take such a call back before the worker reads it.
//!
//! The wire is a seqpacket socket (`seqpacket.rs`), so a call written as one message is either
//! still queued whole at the worker's end or already read whole by the worker. The parent keeps
//! a duplicate of the worker's end: a non-blocking read on it takes a queued call back, and
//! then the worker never sees it. The kernel decides which reader gets the message, so a call
//! is run by the worker or taken back, never both. The duplicate is closed when the worker
//! exits (after [`SideDoor::set_on_exit`]'s hook ran), so that the parent's end then sees the
//! end of stream as it would without it.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::io::Interest;

use super::frame::HEADER_LEN;
use super::{lock, seqpacket};

/// What [`SideDoor::take_back`] found at the worker's end of the wire.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TakeBack {
    /// The queued message, now removed: the worker will never read it.
    Taken(Vec<u8>),
    /// Nothing queued: the worker read it (it runs or ran), or the worker is gone.
    Gone,
}

/// See the module docs.
pub(crate) struct SideDoor {
    /// A duplicate of the parent's end, for a queued call (one message, never blocking).
    writer: OwnedFd,
    /// A duplicate of the worker's end; `None` once the worker exited.
    worker_end: Mutex<Option<OwnedFd>>,
    /// Request ids on this wire: 1, 2, … whoever writes the call.
    next_id: AtomicU64,
    /// Run by the reaper thread when the worker has exited, before the duplicate is closed.
    on_exit: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for SideDoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideDoor")
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

impl SideDoor {
    /// A side door over duplicates of the parent's and the worker's ends of one wire.
    pub(crate) fn new(writer: OwnedFd, worker_end: OwnedFd) -> Self {
        Self {
            writer,
            worker_end: Mutex::new(Some(worker_end)),
            next_id: AtomicU64::new(1),
            on_exit: OnceLock::new(),
        }
    }

    /// Writes the next request id on this wire into a whole frame's header; returns it.
    pub(crate) fn stamp(&self, frame: &mut [u8]) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        frame[ID_AT..ID_AT + 8].copy_from_slice(&id.to_be_bytes());
        id
    }

    /// Writes `frame` (a whole frame of at most one message) with a fresh request id in its
    /// header; returns the id. Fails rather than block or split the frame.
    pub(crate) fn write(&self, frame: &mut [u8]) -> io::Result<u64> {
        let id = self.stamp(frame);
        let sent = seqpacket::send(self.writer.as_raw_fd(), frame)?;
        if sent != frame.len() {
            // A seqpacket send is all or nothing; anything else is not this socket.
            return Err(io::Error::other("short write on a seqpacket wire"));
        }
        Ok(id)
    }

    /// Takes back the next message queued at the worker's end, if at most `bound` bytes are
    /// queued there: the lengths of the calls written behind the running one. (While the
    /// worker has not read the call ahead of them, more is queued, and the first message read
    /// back would be that call: nothing is taken then.)
    pub(crate) fn take_back(&self, bound: usize) -> TakeBack {
        let guard = lock(&self.worker_end);
        let Some(fd) = guard.as_ref() else {
            return TakeBack::Gone;
        };
        match queued_bytes(fd.as_raw_fd()) {
            Some(n) if n > 0 && n <= bound => {}
            _ => return TakeBack::Gone,
        }
        let mut buf = vec![0u8; bound];
        match seqpacket::recv(fd.as_raw_fd(), &mut buf) {
            Ok(n) if n >= ID_AT + 8 => {
                buf.truncate(n);
                TakeBack::Taken(buf)
            }
            _ => TakeBack::Gone,
        }
    }

    /// Whether the worker has read everything but the last `bound` bytes written to it (the
    /// calls written behind the running one, which [`SideDoor::take_back`] can then take).
    pub(crate) fn caught_up(&self, bound: usize) -> bool {
        let guard = lock(&self.worker_end);
        guard
            .as_ref()
            .and_then(|fd| queued_bytes(fd.as_raw_fd()))
            .is_some_and(|n| n <= bound)
    }

    /// Waits until `caught_up` holds (it reads how far the worker must have read); false if
    /// the worker exited first.
    ///
    /// Each message the worker reads frees buffer space at the parent's end, which the kernel
    /// reports as writability: this registers for that only while it waits.
    pub(crate) async fn catch_up(&self, caught_up: impl Fn() -> bool) -> bool {
        if caught_up() {
            return true;
        }
        let Ok(room) = seqpacket::watch(&self.writer, Interest::WRITABLE) else {
            return false;
        };
        loop {
            if caught_up() {
                return true;
            }
            if lock(&self.worker_end).is_none() {
                return false;
            }
            match room.writable().await {
                Ok(mut guard) => guard.clear_ready(),
                Err(_) => return false,
            }
        }
    }

    /// The request ids of every message the worker left unread (it has exited: nothing races
    /// these reads).
    pub(crate) fn unread_ids(&self) -> Vec<u64> {
        let guard = lock(&self.worker_end);
        let Some(fd) = guard.as_ref() else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        let mut buf = vec![0u8; super::worker::MESSAGE_MAX];
        while let Ok(n) = seqpacket::recv(fd.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            ids.extend(request_id(&buf[..n]));
        }
        ids
    }

    /// Sets what runs when the worker has exited (once; later calls are ignored).
    pub(crate) fn set_on_exit(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_exit.set(hook);
    }

    /// The worker exited: runs the hook, then closes the duplicate of its end.
    pub(crate) fn worker_exited(&self) {
        if let Some(hook) = self.on_exit.get() {
            hook();
        }
        lock(&self.worker_end).take();
    }
}

/// Bytes queued unread at a socket (`FIONREAD`: for a seqpacket socket, all its messages).
#[allow(unsafe_code)]
fn queued_bytes(fd: std::os::fd::RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int into `n`, which outlives the call.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, std::ptr::addr_of_mut!(n)) };
    if rc == -1 {
        return None;
    }
    usize::try_from(n).ok()
}

/// Where a whole frame keeps its request id: after the length, magic, version, type and flags.
const ID_AT: usize = 4 + HEADER_LEN - 8;

/// The request id in a message that starts a frame.
pub(crate) fn request_id(message: &[u8]) -> Option<u64> {
    let id = message.get(ID_AT..ID_AT + 8)?;
    Some(u64::from_be_bytes(id.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::frame::{empty_body, Frame, MessageType};
    use std::io::Read;

    #[test]
    fn an_exited_workers_unread_calls_are_listed_by_id() {
        let (parent, worker) = seqpacket::pair().unwrap();
        let door = SideDoor::new(parent.try_clone().unwrap(), worker.try_clone().unwrap());
        drop(worker);
        let mut frame = Frame::new(MessageType::Ping, 0, empty_body()).encode();
        door.write(&mut frame).unwrap();
        door.write(&mut frame).unwrap();
        assert_eq!(door.unread_ids(), vec![1, 2]);
        assert!(door.unread_ids().is_empty());
    }

    #[test]
    fn a_queued_message_is_taken_back_whole_or_left_to_the_reader() {
        let (parent, worker) = seqpacket::pair().unwrap();
        let door = SideDoor::new(parent.try_clone().unwrap(), worker.try_clone().unwrap());
        let mut worker = std::os::unix::net::UnixStream::from(worker);
        let mut frame = Frame::new(MessageType::Ping, 0, empty_body()).encode();
        assert_eq!(door.write(&mut frame).unwrap(), 1);
        let len = frame.len();
        let taken = door.take_back(len);
        assert_eq!(
            taken,
            TakeBack::Taken(frame.clone()),
            "id 1 written in the header"
        );
        assert_eq!(door.take_back(len), TakeBack::Gone, "nothing left");
        assert_eq!(door.write(&mut frame).unwrap(), 2);
        let mut buf = [0u8; 64];
        let n = worker.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &frame[..], "the worker read it whole");
        assert_eq!(
            door.take_back(len),
            TakeBack::Gone,
            "so it cannot be taken back"
        );
        // Two queued (the call ahead is unread too): the one behind cannot be picked out.
        assert_eq!(door.write(&mut frame).unwrap(), 3);
        assert_eq!(door.write(&mut frame).unwrap(), 4);
        assert_eq!(door.take_back(len), TakeBack::Gone);
        door.worker_exited();
        assert_eq!(
            door.take_back(len),
            TakeBack::Gone,
            "closed with the worker"
        );
    }
}
