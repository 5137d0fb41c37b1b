//! The supervisor: one task per pool that replaces dead workers (with backoff, reporting a
//! crash loop), recycles workers make-before-break, and checks idle workers for faults.
//!
//! Every worker death reaches it the same way, from the worker's reaper thread, whatever
//! caused it (a crash, a timeout or protocol kill by a caller, a cancelled call): one death,
//! one replacement. Callers never start workers; they only kill the ones they found broken.

use std::collections::HashMap;
use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::member::{Marks, Member};
use super::state::Shared;
use crate::call::Error;
use crate::process::worker::{describe_exit, IdleFault, Worker};

/// Consecutive start failures after which a replacement reports a crash loop.
const CRASH_LOOP_AFTER: u32 = 3;
/// Longest pause between two start attempts.
const MAX_START_BACKOFF: Duration = Duration::from_secs(10);
/// Longest pause before replacing a worker while workers keep dying.
const MAX_CRASH_BACKOFF: Duration = Duration::from_secs(5);
/// How often idle workers are checked for stray bytes and closed wires.
const IDLE_SCAN: Duration = Duration::from_millis(100);
/// Pause before a worker whose replacement failed to start may ask to be recycled again.
const RECYCLE_RETRY: Duration = Duration::from_secs(1);

/// What the supervisor hears from reaper threads, callers and the pool handle.
#[derive(Debug)]
pub(crate) enum Event {
    /// A worker process was reaped.
    Exited(u32, ExitStatus),
    /// A worker asks to be recycled; it keeps serving until its replacement is ready.
    Recycle { pid: u32, why: String },
    /// A worker marked for retirement came back from a call: stop it.
    Retire(Member),
    /// The pool is shut down or dropped.
    Stop,
}

/// A replacement that finished starting (or gave up because the pool is closing).
struct Started {
    member: Option<Result<Member, Error>>,
    /// The worker it recycles, if it is not replacing a dead one.
    replaces: Option<u32>,
}

pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Workers in rotation, by pid.
    known: HashMap<u32, Arc<Marks>>,
    starting: JoinSet<Started>,
    stopping: JoinSet<()>,
}

enum Fault {
    Idle(IdleFault),
    Retired,
}

impl Supervisor {
    pub(crate) fn new(shared: Arc<Shared>, events: mpsc::UnboundedReceiver<Event>) -> Self {
        Self {
            shared,
            events,
            known: HashMap::new(),
            starting: JoinSet::new(),
            stopping: JoinSet::new(),
        }
    }

    /// Runs until [`Event::Stop`]; then abandons starting workers (killing them) and waits
    /// for the ones being stopped.
    pub(crate) async fn run(mut self) {
        let mut scan = tokio::time::interval(IDLE_SCAN);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    None | Some(Event::Stop) => break,
                    Some(event) => self.on_event(event),
                },
                Some(done) = self.starting.join_next(), if !self.starting.is_empty() => {
                    if let Ok(started) = done {
                        self.on_started(started);
                    }
                }
                Some(_) = self.stopping.join_next(), if !self.stopping.is_empty() => {}
                _ = scan.tick() => self.scan_idle().await,
            }
        }
        self.starting.shutdown().await;
        while self.stopping.join_next().await.is_some() {}
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Exited(pid, status) => self.died(pid, &describe_exit(&status)),
            Event::Recycle { pid, why } => {
                if self.known.contains_key(&pid) && !self.shared.is_closing() {
                    tracing::info!(pid, "recycling worker: {why}");
                    self.start(Duration::ZERO, Some(pid));
                }
            }
            Event::Retire(member) => self.stop(member),
            Event::Stop => {}
        }
    }

    /// Puts a ready worker in rotation; it replaces `replaces` when recycling.
    pub(crate) fn admit(&mut self, member: Member, replaces: Option<u32>) {
        if self.shared.is_closing() {
            return; // dropping it kills it
        }
        let pid = member.pid();
        self.known.insert(pid, member.marks.clone());
        Shared::add(&self.shared.live, 1);
        self.shared.publish();
        if member.worker.has_exited() {
            // It died between its handshake and now, and its exit event may have come first.
            self.died(pid, "exited right after starting");
            return;
        }
        self.shared.lanes.add(&member.lane);
        if self.shared.release(member).is_err() {
            return;
        }
        if let Some(old) = replaces {
            self.retire(old, pid);
        }
    }

    /// A worker in rotation died: count it, take it out, and start its replacement.
    fn died(&mut self, pid: u32, how: &str) {
        if self.known.remove(&pid).is_none() {
            return; // retired, never admitted, or already counted
        }
        Shared::add(&self.shared.live, -1);
        Shared::bump(&self.shared.restarts);
        self.shared.publish();
        drop(self.shared.idle.remove(pid));
        self.shared.settle();
        if self.shared.is_closing() {
            return;
        }
        let streak = self.shared.crash_streak.fetch_add(1, Ordering::SeqCst) + 1;
        let pause = match streak {
            0 | 1 => Duration::ZERO,
            n => (Duration::from_millis(50) * 2u32.saturating_pow(n - 2)).min(MAX_CRASH_BACKOFF),
        };
        tracing::info!(
            pid,
            "worker {pid} {how}; starting a replacement (in {pause:?})"
        );
        self.start(pause, None);
    }

    /// Takes the recycled worker `old` out of rotation now that `new` serves in its place.
    fn retire(&mut self, old: u32, new: u32) {
        let Some(marks) = self.known.remove(&old) else {
            return;
        };
        Shared::add(&self.shared.live, -1);
        Shared::bump(&self.shared.recycled);
        self.shared.publish();
        tracing::info!(old, new, "worker recycled");
        match self.shared.idle.remove(old) {
            Some(member) => self.stop(member),
            // Busy (or claimed by a caller): whoever holds it hands it back.
            None => marks.retire.store(true, Ordering::Release),
        }
    }

    fn stop(&mut self, mut member: Member) {
        let grace = self.shared.cfg.stop_grace;
        self.stopping
            .spawn(async move { member.worker.stop(grace).await });
    }

    fn start(&mut self, pause: Duration, replaces: Option<u32>) {
        let shared = self.shared.clone();
        self.starting.spawn(async move {
            let member = match replaces {
                None => respawn(&shared, pause).await,
                Some(old) => {
                    let started = spawn_member(&shared).await;
                    if let Err(e) = &started {
                        tracing::warn!(
                            pid = old,
                            "replacement worker failed to start, keeping the old one: {e}"
                        );
                        tokio::time::sleep(RECYCLE_RETRY).await;
                    }
                    Some(started)
                }
            };
            Started { member, replaces }
        });
    }

    fn on_started(&mut self, started: Started) {
        match started.member {
            Some(Ok(member)) => self.admit(member, started.replaces),
            Some(Err(_)) => {
                // A recycling start failed: the old worker may ask again.
                if let Some(marks) = started.replaces.and_then(|pid| self.known.get(&pid)) {
                    marks.recycle_asked.store(false, Ordering::Relaxed);
                }
            }
            None => {}
        }
    }

    /// Takes out idle workers that exited, closed the wire, wrote bytes nobody asked for, or
    /// were retired while a caller held them.
    async fn scan_idle(&mut self) {
        let idle = &self.shared.idle;
        let faulty = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(idle.remove_faulty(|m| {
                if m.retiring() {
                    Some(Fault::Retired)
                } else {
                    m.worker.idle_fault(cx).map(Fault::Idle)
                }
            }))
        })
        .await;
        for (member, fault) in faulty {
            match fault {
                Fault::Retired => self.stop(member),
                Fault::Idle(IdleFault::Unsolicited(n)) => {
                    tracing::warn!(
                        pid = member.pid(),
                        "idle worker wrote {n} bytes nobody asked for (protocol violation; \
                         last stderr: {}); replacing it",
                        member.worker.stderr_tail()
                    );
                    drop(member); // killed; its exit brings the replacement
                }
                Fault::Idle(IdleFault::Exited) => drop(member),
            }
        }
    }
}

async fn spawn_member(shared: &Shared) -> Result<Member, Error> {
    let worker = Worker::spawn(&shared.cfg.worker, &shared.registry).await?;
    Ok(Member::new(worker, shared.cfg.max_requests))
}

/// Starts a worker after `pause`, retrying with backoff; `None` once the pool closes.
async fn respawn(shared: &Shared, pause: Duration) -> Option<Result<Member, Error>> {
    if !pause.is_zero() && pause_unless_closing(shared, pause).await {
        return None;
    }
    let mut failures = 0u32;
    loop {
        if shared.is_closing() {
            return None;
        }
        match spawn_member(shared).await {
            Ok(member) => {
                shared.set_crash_loop(None);
                return Some(Ok(member));
            }
            Err(e) => {
                failures += 1;
                let app = &shared.cfg.worker.app;
                tracing::warn!(app = %app, attempt = failures, "worker failed to start: {e}");
                if failures >= CRASH_LOOP_AFTER {
                    shared.set_crash_loop(Some(format!(
                        "crash loop: {failures} workers in a row died before becoming ready, \
                         restarting with backoff; last: {e}"
                    )));
                }
                let pause = (Duration::from_millis(100) * 2u32.saturating_pow(failures - 1))
                    .min(MAX_START_BACKOFF);
                if pause_unless_closing(shared, pause).await {
                    return None;
                }
            }
        }
    }
}

/// Sleeps, returning early (true) when the pool starts closing.
async fn pause_unless_closing(shared: &Shared, d: Duration) -> bool {
    let mut closing = shared.closing.subscribe();
    tokio::select! {
        _ = tokio::time::sleep(d) => shared.is_closing(),
        _ = closing.wait_for(|c| *c) => true,
    }
}
