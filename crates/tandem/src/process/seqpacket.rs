//! The pool's wire: a connected `AF_UNIX` `SOCK_SEQPACKET` pair, with the parent's end driven
//! by tokio.
//!
//! Each write is one message and each read takes one message whole, so a worker reads exactly
//! the call it is about to serve and nothing after it, and a call written behind a running one
//! can be taken back whole (see `pool/lane.rs`). tokio's `UnixStream` cannot carry this: it
//! takes a short read for a drained socket and waits for the next readiness edge, which is
//! true of a stream and false of messages (a 100-byte message leaves the rest of the queue
//! unread). [`SeqPacket`] clears readiness only when a read or write would block.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// Creates a connected seqpacket pair, both ends close-on-exec and the first non-blocking.
#[allow(unsafe_code)]
pub(crate) fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: socketpair(2) writes two fds into `fds`, which outlives the call.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created by socketpair(2) and are owned by nobody else.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    set_nonblocking(a.as_raw_fd())?;
    Ok((a, b))
}

#[allow(unsafe_code)]
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(2) on an fd we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags == -1 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Registers a duplicate of `fd` with the runtime for `interest`, for as long as the returned
/// handle lives (dropping it deregisters): the wire is watched only while someone waits.
#[allow(unsafe_code)]
pub(crate) fn watch(fd: &OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    let dup = fd.try_clone()?;
    // SAFETY: an `OwnedFd` keeps its fd open and unchanged until it is dropped with the
    // `AsyncFd` that owns it.
    Ok(unsafe { AsyncFd::register_with_interest(dup, interest) }?)
}

/// One message from a non-blocking socket into `buf` (`Ok(0)`: end of stream).
#[allow(unsafe_code)]
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recv(2) writes at most `buf.len()` bytes into `buf`, which outlives the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `buf` as one message on a non-blocking socket, never raising SIGPIPE.
#[allow(unsafe_code)]
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: send(2) reads at most `buf.len()` bytes from `buf`, which outlives the call.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// The parent's end of the wire, for reading. It reads without asking the runtime, and is
/// registered for readability only from a read that would block until [`SeqPacket::quiet`]:
/// registered all along, every answer would wake the runtime's parked thread even when the
/// caller polled for it (`PoolBuilder::spin`) and read it at once, a context switch per call.
#[derive(Debug)]
pub(crate) struct SeqPacket {
    fd: OwnedFd,
    registered: Option<AsyncFd<OwnedFd>>,
}

impl SeqPacket {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Self {
            fd,
            registered: None,
        }
    }

    /// The raw fd, for polls that must not consume (the spin).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Stops asking the runtime about readability, until a read would block again.
    pub(crate) fn quiet(&mut self) {
        self.registered = None;
    }

    fn register(&mut self) -> io::Result<&AsyncFd<OwnedFd>> {
        if self.registered.is_none() {
            self.registered = Some(watch(&self.fd, Interest::READABLE)?);
        }
        self.registered
            .as_ref()
            .ok_or_else(|| io::Error::other("not registered"))
    }
}

impl AsyncRead for SeqPacket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let fd = self.fd.as_raw_fd();
        let unfilled = buf.initialize_unfilled();
        if self.registered.is_none() {
            match recv(fd, unfilled) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let registered = self.register()?;
        loop {
            let mut guard = ready!(registered.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|_| recv(fd, unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

/// The parent's end of the wire, for writing. It writes without asking the runtime, and
/// registers for writability only while a write would block: registered all along, every
/// message the worker reads would wake the runtime's parked thread (the kernel reports the
/// freed buffer space), a context switch per call for nothing.
#[derive(Debug)]
pub(crate) struct Sender {
    fd: OwnedFd,
    blocked: Option<AsyncFd<OwnedFd>>,
}

impl Sender {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Self { fd, blocked: None }
    }

    /// Waits for room on the wire, registering for it on first need.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.blocked.is_none() {
            self.blocked = Some(watch(&self.fd, Interest::WRITABLE)?);
        }
        let Some(blocked) = self.blocked.as_ref() else {
            return Poll::Ready(Ok(()));
        };
        let mut guard = ready!(blocked.poll_write_ready(cx))?;
        guard.clear_ready();
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Sender {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match send(self.fd.as_raw_fd(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => {
                    self.blocked = None; // deregistered: room again
                    return Poll::Ready(done);
                }
            }
            ready!(self.poll_room(cx))?;
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    #[allow(unsafe_code)]
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: shutdown(2) on an fd we own.
        if unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) } == -1 {
            return Poll::Ready(Err(io::Error::last_os_error()));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A short message must not hide the one queued behind it (tokio's `UnixStream` would
    /// wait for another readiness edge here, and none comes).
    #[tokio::test]
    async fn reads_every_queued_message_and_keeps_their_bounds() {
        let (parent, child) = pair().unwrap();
        let mut sender = Sender::new(parent.try_clone().unwrap());
        let mut parent = SeqPacket::new(parent);
        let child = std::os::unix::net::UnixStream::from(child);
        use std::io::Write;
        (&child).write_all(b"short").unwrap();
        (&child).write_all(&[7u8; 3000]).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        assert_eq!(parent.read(&mut buf).await.unwrap(), 5);
        assert_eq!(parent.read(&mut buf).await.unwrap(), 3000);
        sender.write_all(b"one").await.unwrap();
        sender.write_all(b"two").await.unwrap();
        let mut small = [0u8; 16];
        use std::io::Read;
        assert_eq!((&child).read(&mut small).unwrap(), 3);
        assert_eq!(&small[..3], b"one");
        assert_eq!((&child).read(&mut small).unwrap(), 3);
        drop(child);
        assert_eq!(parent.read(&mut buf).await.unwrap(), 0, "end of stream");
    }
}
