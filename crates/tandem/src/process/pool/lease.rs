//! One call, run by the caller's own task on the worker it got: no hand-off to another task
//! on the way in or out. While every worker is busy, a waiting call may be written behind a
//! running one (`lane.rs`); its caller then only reads the answer once its turn comes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::idle::Waiter;
use super::lane::{Lane, Turn, Withdrawn};
use super::member::Member;
use super::state::Shared;
use super::supervisor::Event;
use crate::call::{Error, Request, Response, Transport};
use crate::codec::{Codec, Payload};
use crate::process::frame::{CallBody, ErrorBody};
use crate::process::worker::{kill_group, Broken, MESSAGE_MAX};

/// Where a call's frame is when its caller gets a worker.
enum Start {
    /// Still to write (a free worker).
    Write(Vec<u8>),
    /// Written behind the previous call, with this request id.
    Written(u64),
}

/// A call on its way to a worker.
pub(crate) struct Call {
    body: CallBody,
    deadline: Instant,
    started: Instant,
}

impl Call {
    pub(crate) fn new(req: Request, deadline: Instant) -> Self {
        let (method, payload, meta) = req.into_parts();
        let started = Instant::now();
        // The deadline is fixed, so its place on the worker's clock is too.
        let left = deadline.saturating_duration_since(started);
        let deadline_ns = monotonic_ns()
            .map(|now| now.saturating_add(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)));
        Self {
            body: CallBody {
                method,
                codec: payload.codec().as_str().to_owned(),
                payload: payload.into_bytes(),
                timeout_ms: None,
                traceparent: meta.traceparent,
                idempotency_key: meta.idempotency_key,
                headers: meta.headers,
                spin_us: 0,
                deadline_ns,
            },
            deadline,
            started,
        }
    }

    pub(crate) fn method(&self) -> &str {
        &self.body.method
    }

    /// The call frame as of now (the time left, and whether the worker should spin after it);
    /// its request id is set when it is written.
    fn frame(&mut self, spin_us: u64) -> Vec<u8> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        self.body.timeout_ms = Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        self.body.spin_us = spin_us;
        self.body.encode_frame(0)
    }
}

/// A worker checked out by a caller.
///
/// Dropped while it still holds the worker (the call failed in a way that leaves the worker
/// unusable, or the caller's future was dropped mid-call), it kills the worker's process
/// group; the supervisor starts the replacement when the worker is reaped.
pub(crate) struct Lease<'a> {
    member: Option<Member>,
    shared: &'a Arc<Shared>,
}

impl<'a> Lease<'a> {
    pub(crate) fn new(member: Member, shared: &'a Arc<Shared>) -> Self {
        Shared::add(&shared.busy, 1);
        shared.publish();
        Self {
            member: Some(member),
            shared,
        }
    }

    /// Writes `call` on the worker, then reads its answer.
    pub(crate) async fn run(self, call: &mut Call) -> Result<Response, Error> {
        let spin_us = spin_us(self.shared);
        let frame = call.frame(spin_us);
        self.finish(call, Start::Write(frame), Duration::from_micros(spin_us))
            .await
    }

    /// Reads the answer to `call`, written on this worker behind the previous call with
    /// request id `id`.
    pub(crate) async fn resume(self, call: &Call, id: u64) -> Result<Response, Error> {
        let spin = Duration::from_micros(spin_us(self.shared));
        self.finish(call, Start::Written(id), spin).await
    }

    /// Runs `call` on this worker: writes it (or finds it written behind the previous call),
    /// then reads its answer, polling for up to `spin` first.
    async fn finish(
        mut self,
        call: &Call,
        start: Start,
        spin: Duration,
    ) -> Result<Response, Error> {
        let deadline = call.deadline;
        let shared = self.shared;
        let Some(member) = self.member.as_mut() else {
            return Err(Error::unavailable(
                Transport::Pool,
                call.method(),
                "no worker",
            ));
        };
        let pid = member.pid();
        // One future for the whole exchange: when the answer comes within the spin, the call
        // completes in one poll, without registering its deadline timer.
        let (lane, retiring) = (member.lane.clone(), member.retiring());
        let exchange = async {
            let id = match start {
                Start::Write(mut frame) => member.worker.send(&mut frame).await?,
                Start::Written(id) => id,
            };
            let answer = member.worker.answer(id, spin);
            tokio::pin!(answer);
            tokio::select! {
                biased;
                done = &mut answer => done,
                () = queue_behind(shared, &lane, retiring) => answer.await,
            }
        };
        let answer = tokio::time::timeout_at(deadline.into(), exchange).await;
        let target = || format!("{} on worker {pid}", call.method());
        match answer {
            Ok(Ok(Ok((codec, bytes)))) => match codec.parse::<Codec>() {
                Ok(codec) => {
                    self.give_back();
                    Ok(Response::new(Payload::new(codec, bytes))
                        .with_header("worker-pid", pid.to_string()))
                }
                Err(e) => Err(Error::protocol(
                    Transport::Pool,
                    target(),
                    format!("answer has an unknown codec: {e}; the worker was replaced"),
                )),
            },
            Ok(Ok(Err(eb))) => {
                self.give_back();
                Err(remote(&eb, target()))
            }
            Ok(Err(Broken::Exited)) => {
                let reason = member.worker.death_reason().await;
                tracing::warn!(pid, "{reason} during a call; replacing it");
                Err(Error::unavailable(
                    Transport::Pool,
                    target(),
                    format!("{reason}; the worker is being restarted"),
                ))
            }
            Ok(Err(Broken::Protocol(why))) => Err(Error::protocol(
                Transport::Pool,
                target(),
                format!(
                    "{why}; the worker was replaced (last stderr: {})",
                    member.worker.stderr_tail()
                ),
            )),
            Err(_) => {
                tracing::warn!(
                    pid,
                    "call passed its deadline; killing the worker's process group"
                );
                Err(timeout(call, pid))
            }
        }
    }

    /// Returns a sound worker: to the call queued behind, else to rotation (or to the
    /// supervisor, to be recycled or retired).
    fn give_back(&mut self) {
        let Some(mut member) = self.member.take() else {
            return;
        };
        let shared = self.shared;
        if shared.crash_streak.load(Ordering::Relaxed) != 0 {
            shared.crash_streak.store(0, Ordering::Relaxed);
        }
        Shared::add(&shared.busy, -1);
        let lane = member.lane.clone();
        if member.retiring() {
            // Calls written behind go to the other workers; one it already read runs here.
            shared.rejoin(lane.take_back_all(None).1);
        }
        if let Some(q) = lane.hand_over() {
            let (id, len) = (q.id, q.frame.len());
            match q.turn.send(Turn::Run(member, id)) {
                Ok(()) => {
                    shared.publish();
                    return;
                }
                Err(Turn::Run(m, _)) => {
                    member = m; // its caller gave up
                    let (taken, others) = lane.take_back_all(Some((id, len)));
                    shared.rejoin(others);
                    if !taken {
                        drop(member); // it runs for nobody: killed on drop
                        shared.publish();
                        shared.settle();
                        return;
                    }
                }
                Err(_) => unreachable!("send returns the value it was given"),
            }
        }
        if member.retiring() {
            shared.tell(Event::Retire(member));
        } else {
            if let Some(why) = member.recycle_reason(shared.cfg.max_memory) {
                shared.tell(Event::Recycle {
                    pid: member.pid(),
                    why,
                });
            }
            if let Err(member) = shared.release(member) {
                shared.tell(Event::Retire(member));
            }
        }
        shared.publish();
        shared.settle();
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(member) = self.member.take() {
            tracing::debug!(
                pid = member.pid(),
                "killing a worker whose call did not finish cleanly"
            );
            // A call queued behind is settled when the worker is reaped (lane.rs).
            kill_group(member.pid());
            drop(member);
            Shared::add(&self.shared.busy, -1);
            self.shared.publish();
            self.shared.settle();
        }
    }
}

/// Writes the first waiting calls that fit one message behind `lane`'s running call (up to
/// [`BEHIND`](super::lane::BEHIND)), so that the worker starts the next as soon as it answers.
/// Only once the worker has read the running call (waiting for that if needed, alongside the
/// answer): then only calls written behind are unread, and each can be taken back whole if
/// another worker frees first or its caller gives up.
///
/// Until then a worker that frees cannot take back the calls already behind this one (the
/// running call was just handed over to, with another behind it): once caught up, they go to
/// any worker that went idle meanwhile.
async fn queue_behind(shared: &Shared, lane: &Lane, retiring: bool) {
    let wanted = || !retiring && lane.has_room() && shared.idle.has_queueable();
    if !(wanted() || lane.has_queued()) || !lane.catch_up().await {
        return;
    }
    while shared.idle.has_idle() {
        let Some(q) = lane.take_back_one() else {
            break;
        };
        shared.rejoin(vec![q]);
    }
    while wanted() {
        let Some(w) = shared.idle.next_to_queue() else {
            return;
        };
        let Waiter {
            ticket,
            frame,
            turn,
        } = w;
        if let Err((frame, turn)) = lane.queue(ticket, frame.unwrap_or_default(), turn) {
            shared.idle.rejoin(Waiter {
                ticket,
                frame: Some(frame),
                turn,
            });
            return;
        }
    }
}

/// Now on `CLOCK_MONOTONIC`, the clock the worker's `time.monotonic()` reads.
#[allow(unsafe_code)]
fn monotonic_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which outlives the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn timeout(call: &Call, pid: u32) -> Error {
    Error::Timeout {
        transport: Transport::Pool,
        target: format!("{} on worker {pid}", call.method()),
        elapsed: call.started.elapsed(),
    }
}

/// How long the caller may poll for this call's answer and the worker for the next call: only
/// while no caller waits for a worker, when a CPU is likely free to poll on. With callers
/// queued every worker is busy, the cores are too, and polling would take CPU from the callers
/// that feed them.
fn spin_us(shared: &Shared) -> u64 {
    if shared.waiting.load(Ordering::Relaxed) == 0 {
        shared.cfg.spin_us
    } else {
        0
    }
}

fn remote(eb: &ErrorBody, target: String) -> Error {
    Error::from_wire(
        Transport::Pool,
        target,
        &eb.kind,
        &eb.exc_type,
        &eb.message,
        &eb.traceback,
    )
}

/// The bounds a caller of [`checkout`] waits under (the call brings its method and deadline).
pub(crate) struct Want<'a> {
    /// Callers that may wait for a worker; one more is `Overloaded`.
    pub(crate) queue_limit: usize,
    /// The app, for error messages.
    pub(crate) app: &'a str,
}

/// What a caller got from [`checkout`].
pub(crate) enum Got {
    /// A free worker: write the call on it ([`Lease::run`]).
    Direct(Member),
    /// The call is on this worker with this request id ([`Lease::resume`]).
    Run(Member, u64),
}

/// Waits for a worker (or for the call's turn on one it was written to), or says why none
/// is coming.
pub(crate) async fn checkout(
    shared: &Shared,
    want: &Want<'_>,
    call: &mut Call,
) -> Result<Got, Error> {
    loop {
        let turn = match shared.idle.try_take() {
            Some(m) => Turn::Direct(m),
            None => wait(shared, want, call).await?,
        };
        match turn {
            Turn::Direct(member) => {
                if let Some(member) = fit(shared, member) {
                    return Ok(Got::Direct(member));
                }
            }
            Turn::Run(member, id) => return Ok(Got::Run(member, id)),
            Turn::Retry => {}
            Turn::Lost(why) => {
                return Err(Error::unavailable(Transport::Pool, call.method(), why));
            }
        }
    }
}

/// The worker, if it may take a call: not retiring, alive, and silent while idle.
fn fit(shared: &Shared, member: Member) -> Option<Member> {
    if member.retiring() {
        shared.tell(Event::Retire(member));
        None
    } else if member.worker.has_exited() || member.worker.has_buffered() {
        // Dead, or it wrote while idle: killed on drop, and its exit brings the replacement.
        // Never let it answer this call with stale bytes.
        tracing::warn!(
            pid = member.pid(),
            "idle worker was unfit for a call; replacing it"
        );
        None
    } else {
        Some(member)
    }
}

async fn wait(shared: &Shared, want: &Want<'_>, call: &mut Call) -> Result<Turn, Error> {
    let Want { queue_limit, app } = *want;
    let queued = Queued::join(shared);
    if queued.ahead >= queue_limit {
        return Err(Error::Overloaded {
            transport: Transport::Pool,
            target: format!("{} (queue of {app})", call.method()),
            limit: queue_limit,
        });
    }
    let started = Instant::now();
    let ticket = shared.tickets.fetch_add(1, Ordering::Relaxed);
    // It may be written behind a running call if it fits one message (and never spins: the
    // workers are busy).
    let frame = call.frame(0);
    let frame = (frame.len() <= MESSAGE_MAX).then(|| Bytes::from(frame));
    let method = call.method();
    let Some(rx) = shared.idle.wait(ticket, frame) else {
        return Err(super::shut_down(method));
    };
    let mut waiting = Waiting {
        shared,
        ticket,
        rx: Some(rx),
    };
    let got = tokio::time::timeout_at(call.deadline.into(), waiting.turn()).await;
    drop(queued);
    match got {
        Ok(Some(turn)) => Ok(turn),
        Ok(None) => Err(super::shut_down(method)),
        Err(_) => Err(Error::Timeout {
            transport: Transport::Pool,
            target: format!("{method} (waited for an idle worker)"),
            elapsed: started.elapsed(),
        }),
    }
}

/// A caller waiting for its turn; dropped before the turn came (deadline, or the caller's
/// future dropped), it withdraws the call from wherever it waits.
struct Waiting<'a> {
    shared: &'a Shared,
    ticket: u64,
    rx: Option<oneshot::Receiver<Turn>>,
}

impl Waiting<'_> {
    /// The turn; `None` when the pool closed.
    async fn turn(&mut self) -> Option<Turn> {
        let rx = self.rx.as_mut()?;
        let turn = rx.await.ok();
        self.rx = None;
        turn
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let shared = self.shared;
        if shared.idle.leave(self.ticket) {
            return;
        }
        let (found, others) = shared.lanes.withdraw(self.ticket);
        shared.rejoin(others);
        if found == Withdrawn::NotQueued {
            // Neither waiting nor queued: its turn came just now.
            match rx.try_recv() {
                Ok(Turn::Direct(member)) => {
                    if let Err(member) = shared.release(member) {
                        shared.tell(Event::Retire(member));
                    }
                }
                Ok(Turn::Run(member, _)) => drop(member), // it runs past its deadline: killed
                _ => {}
            }
        }
        // Queued and already read by its worker: the worker is killed when its turn comes.
    }
}

/// A caller counted in [`Shared::waiting`] until dropped (also when its future is dropped).
struct Queued<'a> {
    shared: &'a Shared,
    /// Callers that were waiting already.
    ahead: usize,
}

impl<'a> Queued<'a> {
    fn join(shared: &'a Shared) -> Self {
        let ahead = shared.waiting.fetch_add(1, Ordering::SeqCst);
        Self { shared, ahead }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        Shared::add(&self.shared.waiting, -1);
        self.shared.settle();
    }
}
