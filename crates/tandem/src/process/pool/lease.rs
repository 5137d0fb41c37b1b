//! One call, run by the caller's own task on a worker it checked out: no hand-off to another
//! task on the way in or out.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::member::Member;
use super::state::Shared;
use super::supervisor::Event;
use crate::call::{Error, Request, Response, Transport};
use crate::codec::{Codec, Payload};
use crate::process::frame::{CallBody, ErrorBody};
use crate::process::worker::{kill_group, Broken};

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

    /// Runs `req` under `deadline` and gives the worker back if it is still sound.
    pub(crate) async fn run(mut self, req: Request, deadline: Instant) -> Result<Response, Error> {
        let spin_us = spin_us(self.shared);
        let Some(member) = self.member.as_mut() else {
            return Err(Error::unavailable(
                Transport::Pool,
                req.method(),
                "no worker",
            ));
        };
        let (method, payload, meta) = req.into_parts();
        let pid = member.pid();
        let now = Instant::now();
        let body = CallBody {
            method,
            codec: payload.codec().as_str().to_owned(),
            payload: payload.into_bytes(),
            timeout_ms: Some(
                u64::try_from(deadline.saturating_duration_since(now).as_millis())
                    .unwrap_or(u64::MAX),
            ),
            traceparent: meta.traceparent,
            idempotency_key: meta.idempotency_key,
            headers: meta.headers,
            spin_us,
        };
        let answer = tokio::time::timeout_at(deadline.into(), member.worker.call(&body)).await;
        let target = || format!("{} on worker {pid}", body.method);
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
                Err(Error::Timeout {
                    transport: Transport::Pool,
                    target: target(),
                    elapsed: now.elapsed(),
                })
            }
        }
    }

    /// Returns a sound worker to rotation (or to the supervisor, to be recycled or retired).
    fn give_back(&mut self) {
        let Some(member) = self.member.take() else {
            return;
        };
        let shared = self.shared;
        if shared.crash_streak.load(Ordering::Relaxed) != 0 {
            shared.crash_streak.store(0, Ordering::Relaxed);
        }
        Shared::add(&shared.busy, -1);
        if member.retiring() {
            shared.tell(Event::Retire(member));
        } else {
            if let Some(why) = member.recycle_reason(shared.cfg.max_memory) {
                shared.tell(Event::Recycle {
                    pid: member.pid(),
                    why,
                });
            }
            if let Err(member) = shared.idle.put(member) {
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
            kill_group(member.pid());
            drop(member);
            Shared::add(&self.shared.busy, -1);
            self.shared.publish();
            self.shared.settle();
        }
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

/// What a caller asks of [`checkout`].
pub(crate) struct Want<'a> {
    pub(crate) method: &'a str,
    pub(crate) deadline: Instant,
    /// Callers that may wait for a worker; one more is `Overloaded`.
    pub(crate) queue_limit: usize,
    /// The app, for error messages.
    pub(crate) app: &'a str,
}

/// Waits for and checks out an idle worker, or says why none is coming.
pub(crate) async fn checkout(shared: &Shared, want: &Want<'_>) -> Result<Member, Error> {
    loop {
        let member = match shared.idle.try_take() {
            Some(m) => m,
            None => wait(shared, want).await?,
        };
        if member.retiring() {
            shared.tell(Event::Retire(member));
        } else if member.worker.has_exited() || member.worker.has_buffered() {
            // Dead, or it wrote while idle: killed on drop, and its exit brings the
            // replacement. Never let it answer this call with stale bytes.
            tracing::warn!(
                pid = member.pid(),
                "idle worker was unfit for a call; replacing it"
            );
        } else {
            return Ok(member);
        }
    }
}

async fn wait(shared: &Shared, want: &Want<'_>) -> Result<Member, Error> {
    let Want {
        method,
        deadline,
        queue_limit,
        app,
    } = *want;
    let queued = Queued::join(shared);
    if queued.ahead >= queue_limit {
        return Err(Error::Overloaded {
            transport: Transport::Pool,
            target: format!("{method} (queue of {app})"),
            limit: queue_limit,
        });
    }
    let started = Instant::now();
    let got = tokio::time::timeout_at(deadline.into(), shared.idle.take()).await;
    drop(queued);
    match got {
        Ok(Some(member)) => Ok(member),
        Ok(None) => Err(super::shut_down(method)),
        Err(_) => Err(Error::Timeout {
            transport: Transport::Pool,
            target: format!("{method} (waited for an idle worker)"),
            elapsed: started.elapsed(),
        }),
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
