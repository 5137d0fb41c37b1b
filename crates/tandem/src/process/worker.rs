//! One persistent Python worker: spawning it in its own process group with the wire on fd 3,
//! the ready handshake, one call at a time, and killing and reaping it.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::frame::{self, empty_body, ErrorBody, Frame, Hello, MessageType, ReadError, VERSION};
use super::output::{drain, Stream, Tail};
use super::seqpacket::{self, Sender, SeqPacket};
use super::side_door::SideDoor;
use crate::call::{Error, Transport};

/// close_range(2) flag: set FD_CLOEXEC on the range instead of closing it (Linux 5.11).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// The fd number the worker finds its end of the socketpair on.
pub(crate) const WORKER_FD: i32 = 3;

/// The largest message on the wire: a longer frame travels as several, in order. Every read
/// on the wire asks for at least this much, so that no message is ever cut short.
pub(crate) const MESSAGE_MAX: usize = 64 * 1024;

/// How a worker is started; shared by all workers of a pool.
#[derive(Debug, Clone)]
pub(crate) struct WorkerConfig {
    pub(crate) python: PathBuf,
    pub(crate) app: String,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) max_frame: usize,
    pub(crate) start_timeout: Duration,
}

/// Called from a worker's reaper thread with its pid and exit status once it is reaped.
pub(crate) type ExitHook = Arc<dyn Fn(u32, ExitStatus) + Send + Sync>;

/// Pids of live workers, so that dropping the pool can kill them even without a runtime, and
/// the hook that hears of every worker's exit.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    pids: Arc<Mutex<HashSet<u32>>>,
    on_exit: Arc<OnceLock<ExitHook>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("pids", &self.pids)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Sets the hook told of each worker's exit (the first call wins).
    pub(crate) fn on_exit(&self, hook: ExitHook) {
        let _ = self.on_exit.set(hook);
    }

    fn insert(&self, pid: u32) {
        if let Ok(mut s) = self.pids.lock() {
            s.insert(pid);
        }
    }

    fn contains(&self, pid: u32) -> bool {
        self.pids.lock().map(|s| s.contains(&pid)).unwrap_or(false)
    }

    fn remove(&self, pid: u32) {
        if let Ok(mut s) = self.pids.lock() {
            s.remove(&pid);
        }
    }

    /// SIGKILLs the process group of every registered worker.
    pub(crate) fn kill_all(&self) {
        if let Ok(s) = self.pids.lock() {
            for &pid in s.iter() {
                kill_group(pid);
            }
        }
    }
}

/// A worker broke its contract during a call and must be replaced.
#[derive(Debug)]
pub(crate) enum Broken {
    /// The worker exited or closed its end (the reason is built from its exit status).
    Exited,
    /// The worker sent bytes that are not a valid answer.
    Protocol(String),
}

/// Why an idle worker must be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleFault {
    /// It exited or closed the wire.
    Exited,
    /// It wrote this many bytes (at least) without being asked.
    Unsolicited(usize),
}

/// One running worker process.
#[derive(Debug)]
pub(crate) struct Worker {
    pid: u32,
    reader: BufReader<SeqPacket>,
    writer: Sender,
    exit: watch::Receiver<Option<ExitStatus>>,
    reaped: Arc<AtomicBool>,
    tail: Tail,
    drains: Vec<JoinHandle<()>>,
    registry: Registry,
    max_frame: usize,
    /// Calls written behind the running one, and their request ids.
    pub(crate) door: Arc<SideDoor>,
    /// The worker's ready handshake.
    pub(crate) hello: Hello,
    /// Calls answered so far.
    pub(crate) served: u64,
}

/// Polls `fd` for up to `budget`, yielding the CPU between polls, until a byte (or end of
/// stream) waits on it; returns whether one does. Nothing is consumed.
#[allow(unsafe_code)]
fn spin_until_readable(fd: i32, budget: Duration) -> bool {
    let start = std::time::Instant::now();
    let mut byte = 0u8;
    loop {
        // SAFETY: recv(2) writes at most one byte into `byte`, which outlives the call.
        let n = unsafe {
            libc::recv(
                fd,
                std::ptr::addr_of_mut!(byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return true;
        }
        if start.elapsed() >= budget {
            return false;
        }
        std::thread::yield_now();
    }
}

/// Writes a frame as messages of at most [`MESSAGE_MAX`] bytes (one, for most frames).
async fn write_frame(w: &mut Sender, frame: &[u8]) -> std::io::Result<()> {
    for message in frame.chunks(MESSAGE_MAX) {
        w.write_all(message).await?;
    }
    Ok(())
}

/// Sends SIGKILL to the process group led by `pid` (each worker leads its own group).
pub(crate) fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // kill(2) with a negative pid signals the whole group; ESRCH (already gone) is fine.
        let _ = sys_kill(-pid, libc::SIGKILL);
    }
}

#[allow(unsafe_code)]
fn sys_kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, sig) }
}

/// Puts the child in its own session and process group (so a timeout kills the handler's
/// own children too, and a terminal's Ctrl-C reaches only the parent), moves its end of the
/// socketpair to fd 3 without `FD_CLOEXEC`, and closes every fd above 3. Every fd the pool
/// opens is CLOEXEC anyway; closing the rest also drops fds the parent inherited.
#[allow(unsafe_code)]
fn isolate(cmd: &mut Command, child_fd: i32) {
    // SAFETY: the closure runs in the forked child before exec and calls only the
    // async-signal-safe setsid(2), dup2(2), fcntl(2) and close_range(2); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if child_fd == WORKER_FD {
                let flags = libc::fcntl(child_fd, libc::F_GETFD);
                if flags == -1
                    || libc::fcntl(child_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(child_fd, WORKER_FD) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // Mark everything above the wire CLOEXEC, including fds the parent inherited
            // without it (a jobserver pipe, say), so exec closes them as Python's subprocess
            // would; std's own exec-error pipe keeps working until then. Kernels before 5.11
            // lack the flag and the worker then keeps such inherited fds.
            libc::syscall(
                libc::SYS_close_range,
                WORKER_FD + 1,
                u32::MAX,
                CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
}

/// Describes how a process ended: `status 1`, `killed by signal 11 (SIGSEGV)`.
pub(crate) fn describe_exit(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = match sig {
                libc::SIGKILL => " (SIGKILL: killed, e.g. by the OOM killer or a timeout)",
                libc::SIGSEGV => " (SIGSEGV: segmentation fault)",
                libc::SIGABRT => " (SIGABRT: aborted)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGBUS => " (SIGBUS)",
                libc::SIGFPE => " (SIGFPE)",
                libc::SIGILL => " (SIGILL)",
                _ => "",
            };
            format!("killed by signal {sig}{name}")
        }
        None => format!("{status}"),
    }
}

/// Resident memory of `pid` in bytes, from `/proc/<pid>/statm`.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

#[allow(unsafe_code)]
fn page_size() -> u64 {
    // SAFETY: sysconf(3) reads a constant and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).unwrap_or(4096)
}

fn start_error(cfg: &WorkerConfig, reason: String) -> Error {
    Error::unavailable(Transport::Pool, format!("worker for {}", cfg.app), reason)
}

impl Worker {
    /// Starts a worker and waits for its ready handshake (at most `start_timeout`).
    ///
    /// # Errors
    ///
    /// `Unavailable` when the process cannot start, exits before the handshake (the reason
    /// names the exit status and the last stderr lines) or stays silent past `start_timeout`;
    /// `Protocol` when its first frame is not a valid hello of this protocol version.
    pub(crate) async fn spawn(cfg: &WorkerConfig, registry: &Registry) -> Result<Worker, Error> {
        let (parent, child) = seqpacket::pair()
            .map_err(|e| start_error(cfg, format!("cannot create the socketpair: {e}")))?;
        let mut cmd = Command::new(&cfg.python);
        cmd.args(["-m", "tandem", "worker", &cfg.app])
            .arg("--fd")
            .arg(WORKER_FD.to_string())
            .arg("--max-frame")
            .arg(cfg.max_frame.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PYTHONUNBUFFERED", "1");
        if let Some(cwd) = &cfg.cwd {
            cmd.current_dir(cwd);
        }
        for (k, v) in &cfg.env {
            cmd.env(k, v);
        }
        isolate(&mut cmd, child.as_raw_fd());
        let mut proc = cmd.spawn().map_err(|e| {
            start_error(
                cfg,
                format!(
                    "cannot start {} -m tandem worker {}: {e}",
                    cfg.python.display(),
                    cfg.app
                ),
            )
        })?;
        // Duplicates of both ends, for calls written behind the running one (side_door.rs).
        let door = match (parent.try_clone(), child.try_clone()) {
            (Ok(writer), Ok(worker_end)) => Arc::new(SideDoor::new(writer, worker_end)),
            (Err(e), _) | (_, Err(e)) => {
                kill_group(proc.id());
                let _ = proc.wait();
                return Err(start_error(cfg, format!("cannot duplicate the wire: {e}")));
            }
        };
        drop(child);
        let pid = proc.id();
        registry.insert(pid);
        let tail = Tail::default();
        let mut drains = Vec::new();
        if let Some(out) = proc.stdout.take() {
            if let Ok(out) = tokio::process::ChildStdout::from_std(out) {
                drains.push(drain(out, pid, Stream::Stdout, tail.clone()));
            }
        }
        if let Some(err) = proc.stderr.take() {
            if let Ok(err) = tokio::process::ChildStderr::from_std(err) {
                drains.push(drain(err, pid, Stream::Stderr, tail.clone()));
            }
        }
        // One thread per worker blocks in waitpid, so a worker is reaped the moment it exits,
        // whatever the async side is doing (no zombies, even while the pool is idle).
        let (exit_tx, exit) = watch::channel(None);
        let reaped = Arc::new(AtomicBool::new(false));
        let reaped2 = reaped.clone();
        let on_exit = registry.on_exit.clone();
        let door2 = door.clone();
        let reaper = std::thread::Builder::new()
            .name(format!("tandem-reap-{pid}"))
            .spawn(move || {
                let status = proc.wait();
                reaped2.store(true, Ordering::SeqCst);
                // Before the parent's end sees the end of stream: settle a call queued behind.
                door2.worker_exited();
                if let Ok(status) = status {
                    let _ = exit_tx.send(Some(status));
                    if let Some(hook) = on_exit.get() {
                        hook(pid, status);
                    }
                }
            });
        let halves = reaper.map(|_| ()).and_then(|()| {
            let writer = parent.try_clone()?;
            Ok((SeqPacket::new(parent), Sender::new(writer)))
        });
        let (r, w) = match halves {
            Ok(s) => s,
            Err(e) => {
                kill_group(pid);
                registry.remove(pid);
                return Err(start_error(cfg, format!("cannot watch worker {pid}: {e}")));
            }
        };
        let mut worker = Worker {
            pid,
            reader: BufReader::with_capacity(MESSAGE_MAX, r),
            writer: w,
            exit,
            reaped,
            tail,
            drains,
            registry: registry.clone(),
            max_frame: cfg.max_frame,
            door,
            hello: Hello {
                protocol: 0,
                pid,
                app: String::new(),
                methods: Vec::new(),
                max_frame: 0,
                message_max: 0,
            },
            served: 0,
        };
        match worker.handshake(cfg).await {
            Ok(hello) => {
                worker.hello = hello;
                Ok(worker)
            }
            Err(e) => {
                worker.kill().await;
                Err(e)
            }
        }
    }

    async fn handshake(&mut self, cfg: &WorkerConfig) -> Result<Hello, Error> {
        let pid = self.pid;
        let read = tokio::time::timeout(
            cfg.start_timeout,
            frame::read_frame(&mut self.reader, self.max_frame),
        )
        .await;
        let target = format!("worker {pid} for {}", cfg.app);
        let frame = match read {
            Err(_) => {
                return Err(Error::unavailable(
                    Transport::Pool,
                    target,
                    format!(
                        "no ready handshake within the start timeout of {:?} (importing the app \
                         took too long or hung); last stderr: {}",
                        cfg.start_timeout,
                        self.tail.render(5)
                    ),
                ))
            }
            Ok(Err(ReadError::Eof | ReadError::Io(_))) => {
                let how = self.death_reason().await;
                return Err(Error::unavailable(
                    Transport::Pool,
                    target,
                    format!("{how} before its ready handshake"),
                ));
            }
            Ok(Err(ReadError::Frame(e))) => {
                return Err(Error::protocol(
                    Transport::Pool,
                    target,
                    format!(
                        "bad ready handshake: {e}; last stderr: {}",
                        self.tail.render(5)
                    ),
                ))
            }
            Ok(Ok(f)) => f,
        };
        if frame.ty != MessageType::Hello {
            return Err(Error::protocol(
                Transport::Pool,
                target,
                format!("expected a hello frame first, got {}", frame.ty.as_str()),
            ));
        }
        let hello = Hello::from_value(&frame.body)
            .map_err(|e| Error::protocol(Transport::Pool, target.clone(), e.to_string()))?;
        if hello.protocol != u64::from(VERSION) {
            return Err(Error::protocol(
                Transport::Pool,
                target,
                format!(
                    "worker speaks pool protocol {} but this host speaks {VERSION}: install the \
                     same tandem version on both sides",
                    hello.protocol
                ),
            ));
        }
        if hello.message_max < u64::try_from(MESSAGE_MAX).unwrap_or(u64::MAX) {
            return Err(Error::protocol(
                Transport::Pool,
                target,
                if hello.message_max == 0 {
                    "the worker's hello has no message_max: its tandem package predates the \
                     seqpacket wire this host uses (frames as messages of up to 64 KiB); install \
                     the same tandem version on both sides"
                        .to_owned()
                } else {
                    format!(
                        "the worker receives wire messages of up to {} bytes whole, but this \
                         host sends up to {MESSAGE_MAX}: install the same tandem version on both \
                         sides",
                        hello.message_max
                    )
                },
            ));
        }
        Ok(hello)
    }

    /// The worker's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves once the process has exited (and been reaped).
    pub(crate) async fn exited(&mut self) {
        let _ = self.exit.wait_for(Option::is_some).await;
    }

    /// Whether the process has exited (and been reaped).
    pub(crate) fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Whether bytes the worker wrote sit unread in the buffer (none should between calls).
    pub(crate) fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Checks, without waiting, whether an idle worker needs replacing: it exited, closed its
    /// end of the wire, or wrote bytes nobody asked for (a protocol violation that would
    /// otherwise fail the next, innocent call). Bytes already read stay buffered.
    /// Polls with `cx`, whose task is woken if bytes arrive later.
    pub(crate) fn idle_fault(&mut self, cx: &mut std::task::Context<'_>) -> Option<IdleFault> {
        if self.has_exited() {
            return Some(IdleFault::Exited);
        }
        match std::pin::Pin::new(&mut self.reader).poll_fill_buf(cx) {
            std::task::Poll::Pending => None,
            std::task::Poll::Ready(Ok([]) | Err(_)) => Some(IdleFault::Exited),
            std::task::Poll::Ready(Ok(bytes)) => Some(IdleFault::Unsolicited(bytes.len())),
        }
    }

    /// Writes a call frame (a whole frame, id field to be set) with the next request id;
    /// returns the id, or `Exited` when the wire is closed.
    pub(crate) async fn send(&mut self, frame: &mut [u8]) -> Result<u64, Broken> {
        let id = self.door.stamp(frame);
        match write_frame(&mut self.writer, frame).await {
            Ok(()) => Ok(id),
            Err(_) => Err(Broken::Exited),
        }
    }

    /// Reads the answer to call `id`, polling the wire for up to `spin` first.
    ///
    /// Returns the worker's answer (`Ok((codec, payload))` or its error body), or [`Broken`]
    /// when the worker must be replaced. Cancel-safe only in the sense that the worker must be
    /// killed if this future is dropped midway.
    pub(crate) async fn answer(
        &mut self,
        id: u64,
        spin: Duration,
    ) -> Result<Result<(String, Bytes), ErrorBody>, Broken> {
        if !spin.is_zero() && self.reader.buffer().is_empty() {
            // Poll for the answer as the worker will for the next call (`PoolBuilder::spin`):
            // a quick answer is then read at once, without the runtime's sleep and wake-up.
            if spin_until_readable(self.reader.get_ref().raw_fd(), spin) {
                // Read at once: the runtime need not hear of the answer (nor wake for it).
                self.reader.get_mut().quiet();
            }
        }
        let bytes = match frame::read_frame_bytes(&mut self.reader, self.max_frame).await {
            Ok(b) => Bytes::from(b),
            Err(ReadError::Eof | ReadError::Io(_)) => return Err(Broken::Exited),
            Err(ReadError::Frame(e)) => return Err(Broken::Protocol(e.to_string())),
        };
        if let Some(ok) = frame::read_ok_answer(&bytes, id) {
            self.served += 1;
            return Ok(Ok(ok));
        }
        let frame =
            frame::decode_after_prefix(&bytes).map_err(|e| Broken::Protocol(e.to_string()))?;
        if frame.id != id {
            return Err(Broken::Protocol(format!(
                "answer carries request id {} but call {id} was in flight",
                frame.id
            )));
        }
        self.served += 1;
        match frame.ty {
            MessageType::Ok => frame::read_ok(&frame.body)
                .map(Ok)
                .map_err(|e| Broken::Protocol(e.to_string())),
            MessageType::Error => ErrorBody::from_value(&frame.body)
                .map(Err)
                .map_err(|e| Broken::Protocol(e.to_string())),
            other => Err(Broken::Protocol(format!(
                "expected an ok or error frame, got {}",
                other.as_str()
            ))),
        }
    }

    /// "worker 12 exited (exit status 1); last stderr: …", after waiting briefly for the exit
    /// status and the rest of stderr.
    pub(crate) async fn death_reason(&mut self) -> String {
        let status = tokio::time::timeout(Duration::from_secs(2), self.exited()).await;
        let observed = *self.exit.borrow();
        let status = match (status, observed) {
            (Ok(()), Some(st)) => {
                kill_group(self.pid); // children the worker left behind
                describe_exit(&st)
            }
            _ => {
                // It closed its end of the wire but did not exit: finish it.
                self.kill().await;
                "closed the wire without exiting (killed)".to_owned()
            }
        };
        for d in self.drains.drain(..) {
            let _ = tokio::time::timeout(Duration::from_millis(500), d).await;
        }
        format!(
            "worker {} {}; last stderr: {}",
            self.pid,
            match status.as_str() {
                s if s.starts_with("exit") || s.starts_with("killed by") => format!("exited ({s})"),
                s => s.to_owned(),
            },
            self.tail.render(5)
        )
    }

    /// The last stderr lines, for error messages.
    pub(crate) fn stderr_tail(&self) -> String {
        self.tail.render(5)
    }

    /// SIGKILLs the worker's process group and waits (up to 5 s) until it is reaped.
    pub(crate) async fn kill(&mut self) {
        // Signal the group even when the leader is already reaped: members it left (a
        // handler's own children) keep the pgid allocated, so it cannot have been reused.
        kill_group(self.pid);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.exited()).await;
        self.registry.remove(self.pid);
    }

    /// Asks the worker to exit (shutdown frame, then EOF on the wire), waits up to `grace`,
    /// then kills its group.
    pub(crate) async fn stop(&mut self, grace: Duration) {
        let bye = Frame::new(MessageType::Shutdown, 0, empty_body()).encode();
        let _ = write_frame(&mut self.writer, &bye).await;
        let _ = self.writer.shutdown().await;
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            tracing::warn!(
                pid = self.pid,
                "worker did not exit within {grace:?} of shutdown; killing it"
            );
        }
        self.kill().await;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.reaped.load(Ordering::SeqCst) || self.registry.contains(self.pid) {
            kill_group(self.pid);
        }
        self.registry.remove(self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn spin_sees_a_waiting_byte_or_end_of_stream_without_consuming_it() {
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let started = std::time::Instant::now();
        assert!(!spin_until_readable(fd, Duration::from_millis(5)));
        assert!(started.elapsed() >= Duration::from_millis(5));
        a.write_all(b"xy").unwrap();
        assert!(spin_until_readable(fd, Duration::from_secs(10)));
        let mut got = [0u8; 2];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"xy", "the peek must leave both bytes");
        drop(a);
        assert!(
            spin_until_readable(fd, Duration::from_secs(10)),
            "end of stream counts"
        );
    }

    #[test]
    fn exits_are_described_with_their_signal_name() {
        assert_eq!(
            describe_exit(&ExitStatus::from_raw(7 << 8)),
            "exit status 7"
        );
        let segv = describe_exit(&ExitStatus::from_raw(libc::SIGSEGV));
        assert!(segv.starts_with("killed by signal 11 (SIGSEGV"), "{segv}");
        let kill = describe_exit(&ExitStatus::from_raw(libc::SIGKILL));
        assert!(kill.contains("OOM killer"), "{kill}");
    }

    #[test]
    fn rss_of_this_process_is_readable() {
        assert!(rss_bytes(std::process::id()).is_some_and(|b| b > 0));
        assert_eq!(rss_bytes(u32::MAX), None);
    }
}
