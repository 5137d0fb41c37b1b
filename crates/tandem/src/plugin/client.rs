//! [`Host`]: the handle to one supervised plugin, and its `tower::Service` of the call model.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::config::{Builder, Config};
use super::instance::{self, Instance, Lease};
use super::reattach::{self, ReattachConfig};
use super::{reload, supervisor};
use crate::proto::call::{call_client::CallClient, call_reply, CallRequest};
use crate::{Codec, Error, Payload, Request, Response, Transport};

/// What the host currently routes calls to.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// A healthy instance.
    Ready(Arc<Instance>),
    /// Restarting after a crash; calls wait.
    Starting,
    /// Crashed and not restarted (restart off, or a reattached plugin); calls fail at once.
    Down(String),
    /// Killed; calls fail at once.
    Closed,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Option<Config>,
    pub(crate) name: String,
    pub(crate) slot: watch::Sender<Slot>,
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    pub(crate) next_id: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) reloads: AtomicU64,
    /// Kept up to date at each restart and reload ([`Host::instrument`]).
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Mutex<Option<crate::metrics::PluginMetrics>>,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Counts a restart (a crashed instance replaced) and updates the instrumented metrics.
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.sync_metrics();
    }

    /// Counts a reload (a new instance swapped in) and updates the instrumented metrics.
    pub(crate) fn reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.sync_metrics();
    }

    #[cfg(not(feature = "metrics"))]
    fn sync_metrics(&self) {}
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.drain(..).for_each(|t| t.abort());
        }
    }
}

/// A host for one go-plugin plugin: starts it, supervises it (restart with backoff, hot
/// reload), and calls `tandem.v1.Call/Invoke` on it as a `tower::Service`.
///
/// Clones share the same plugin. The plugin process is killed by [`Host::kill`], or with
/// SIGKILL of its process group when the last clone is dropped.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), tandem::Error> {
/// use tandem::plugin::Host;
/// use tandem::{Payload, Request};
///
/// let host = Host::builder("python3").args(["-m", "tandem", "plugin", "service:app"]).start().await?;
/// let reply = host.call(Request::new("score", Payload::json(&serde_json::json!({"x": 1})).unwrap())).await?;
/// host.kill().await;
/// # Ok(()) }
/// ```
///
/// # Caveats
///
/// - Dropping the last clone without `kill` sends SIGKILL to the process group at once (no
///   graceful Shutdown); the child is reaped by a background task while the runtime runs.
/// - A call on a plugin that crashes mid-call fails with `Unavailable`; it is resent to the
///   restarted plugin only if its request never left the host.
#[derive(Debug, Clone)]
pub struct Host {
    pub(crate) shared: Arc<Shared>,
}

impl Host {
    /// A builder for a plugin started as `program`.
    pub fn builder(program: impl Into<std::path::PathBuf>) -> Builder {
        Builder::new(program)
    }

    pub(crate) async fn start(config: Config) -> Result<Host, Error> {
        let first = instance::start(&config, 0).await?;
        let host = Host::from_slot(Some(config), Slot::Ready(first));
        supervisor::spawn(&host);
        reload::spawn_triggers(&host);
        Ok(host)
    }

    fn from_slot(config: Option<Config>, slot: Slot) -> Host {
        let name = match (&config, &slot) {
            (Some(c), _) => c.name.clone(),
            (None, Slot::Ready(i)) => i.name.clone(),
            _ => "plugin".to_owned(),
        };
        Host {
            shared: Arc::new(Shared {
                config,
                name,
                slot: watch::channel(slot).0,
                reload_lock: tokio::sync::Mutex::new(()),
                next_id: AtomicU64::new(1),
                restarts: AtomicU64::new(0),
                reloads: AtomicU64::new(0),
                #[cfg(feature = "metrics")]
                metrics: Mutex::new(None),
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Attaches to a plugin that is already running (no handshake, no TLS, no logs, no
    /// restarts: go-plugin's reattach).
    ///
    /// # Errors
    ///
    /// `Unavailable` if the pid is gone or the plugin does not answer its health check.
    pub async fn reattach(config: ReattachConfig) -> Result<Host, Error> {
        let instance = reattach::reattach(&config, 0, "reattached".to_owned()).await?;
        let host = Host::from_slot(None, Slot::Ready(instance));
        supervisor::spawn(&host);
        Ok(host)
    }

    /// How to reattach to the current instance from elsewhere (e.g. after the host restarts).
    pub fn reattach_config(&self) -> Option<ReattachConfig> {
        self.current().map(|i| ReattachConfig {
            address: i.handshake.address.clone(),
            pid: i.pid,
            protocol_version: i.handshake.app_version,
            test: false,
        })
    }

    /// Stops supervising and forgets the plugin without killing it (for a later reattach).
    pub fn detach(&self) {
        if let Ok(mut tasks) = self.shared.tasks.lock() {
            tasks.drain(..).for_each(|t| t.abort());
        }
        if let Slot::Ready(i) = self.shared.slot.send_replace(Slot::Closed) {
            i.forget();
        }
    }

    pub(crate) fn current(&self) -> Option<Arc<Instance>> {
        match &*self.shared.slot.borrow() {
            Slot::Ready(i) => Some(Arc::clone(i)),
            _ => None,
        }
    }

    /// The current plugin process id (`None` while restarting or after `kill`).
    pub fn pid(&self) -> Option<u32> {
        self.current().map(|i| i.pid)
    }

    /// The app protocol version the current instance negotiated.
    pub fn negotiated_version(&self) -> Option<u32> {
        self.current().map(|i| i.handshake.app_version)
    }

    /// How many times the plugin was restarted after a crash.
    pub fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::Relaxed)
    }

    /// How many times a new instance was swapped in by a reload (explicit, SIGHUP or file
    /// change).
    pub fn reloads(&self) -> u64 {
        self.shared.reloads.load(Ordering::Relaxed)
    }

    /// The gRPC channel of the current instance, for typed clients of the plugin's own services.
    pub fn channel(&self) -> Option<Channel> {
        self.current().map(|i| i.channel.clone())
    }

    /// Health check: `grpc.health.v1.Health/Check` of service `plugin` must answer SERVING.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the plugin is down or not SERVING; `Timeout` after 5 s.
    pub async fn ping(&self) -> Result<(), Error> {
        let lease = self.acquire(None, "health check").await?;
        lease.instance.ping(Duration::from_secs(5)).await
    }

    /// Kills the plugin: Shutdown RPC, a bounded wait, SIGKILL of its process group, reap, a
    /// bounded wait for its pipes. Stops supervision. Idempotent.
    pub async fn kill(&self) {
        if let Ok(mut tasks) = self.shared.tasks.lock() {
            tasks.drain(..).for_each(|t| t.abort());
        }
        let _guard = self.shared.reload_lock.lock().await;
        if let Slot::Ready(i) = self.shared.slot.send_replace(Slot::Closed) {
            i.kill().await;
        }
    }

    /// Waits for a ready instance and counts a call in on it.
    pub(crate) async fn acquire(
        &self,
        deadline: Option<Instant>,
        what: &str,
    ) -> Result<Lease, Error> {
        let started = Instant::now();
        let mut rx = self.shared.slot.subscribe();
        loop {
            {
                let slot = rx.borrow_and_update();
                match &*slot {
                    // An instance that already exited is as good as restarting: wait.
                    Slot::Ready(i) if i.exited().is_none() => return Ok(i.enter()),
                    Slot::Ready(_) => {}
                    Slot::Closed => {
                        return Err(Error::unavailable(
                            Transport::Plugin,
                            format!("{what} on plugin {}", self.shared.name),
                            "the host was killed; start a new one",
                        ))
                    }
                    Slot::Down(reason) => {
                        return Err(Error::unavailable(
                            Transport::Plugin,
                            format!("{what} on plugin {}", self.shared.name),
                            reason.clone(),
                        ))
                    }
                    Slot::Starting => {}
                }
            }
            let restart_wait = self
                .shared
                .config
                .as_ref()
                .map_or(Duration::ZERO, |c| c.restart_wait);
            let limit = deadline.unwrap_or(started + restart_wait);
            if tokio::time::timeout_at(limit, rx.changed()).await.is_err() {
                return Err(Error::unavailable(
                    Transport::Plugin,
                    format!("{what} on plugin {}", self.shared.name),
                    format!(
                        "plugin is restarting and was not back within {:?}",
                        started.elapsed()
                    ),
                ));
            }
        }
    }

    /// Calls `tandem.v1.Call/Invoke` with the request's method, payload and metadata.
    ///
    /// # Errors
    ///
    /// The handler's error as sent by the plugin (`Remote`, `BadRequest`, …), `Timeout` when
    /// the deadline passes, `Unavailable` when the plugin is down or restarting past the
    /// deadline, `Protocol` when the reply is malformed.
    pub async fn call(&self, request: Request) -> Result<Response, Error> {
        let deadline = request.metadata().deadline.map(Instant::from_std);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let lease = self.acquire(deadline, request.method()).await?;
            match invoke(&lease, &request).await {
                Ok(r) => return Ok(r),
                // The plugin is dying and the call never reached it: safe to send to the next
                // instance. (Its socket can close a moment before the exit is reaped.)
                Err((e, true)) if attempts < 3 => {
                    let dying =
                        tokio::time::timeout(Duration::from_secs(1), lease.instance.wait_exit());
                    if dying.await.is_err() {
                        return Err(e);
                    }
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

/// Whether the RPC failed before its request left the host: while connecting (the plugin's
/// socket refused, vanished or reset during the TLS handshake), or queued on a connection that
/// closed before the request was written (hyper's "canceled").
fn never_sent(status: &tonic::Status) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = cur {
        if e.is::<super::conn::DialError>() {
            return true;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return h.is_canceled();
        }
        cur = e.source();
    }
    false
}

/// One attempt; the error comes with whether the request was never sent.
async fn invoke(lease: &Lease, request: &Request) -> Result<Response, (Error, bool)> {
    let inst = &lease.instance;
    let (method, payload, meta) = (request.method(), request.payload(), request.metadata());
    let target = format!("{method} on plugin {} (pid {})", inst.name, inst.pid);
    let started = Instant::now();
    let traceparent = meta.traceparent.clone();
    let mut req = tonic::Request::new(CallRequest {
        method: method.to_owned(),
        codec: payload.codec().as_str().to_owned(),
        payload: payload.bytes().to_vec(),
        metadata: meta
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        traceparent: traceparent.clone().unwrap_or_default(),
        idempotency_key: meta.idempotency_key.clone().unwrap_or_default(),
    });
    if let Some(deadline) = meta.deadline {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            let e = Error::Timeout {
                transport: Transport::Plugin,
                target,
                elapsed: Duration::ZERO,
            };
            return Err((e, false));
        }
        req.set_timeout(remaining);
    }
    if let Some(tp) = traceparent {
        if let Ok(value) = tp.parse() {
            req.metadata_mut().insert("traceparent", value);
        }
    }
    let mut client = CallClient::new(inst.channel.clone())
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let call = client.invoke(req);
    let reply = match meta.deadline {
        Some(d) => match tokio::time::timeout_at(Instant::from_std(d), call).await {
            Ok(r) => r,
            Err(_) => {
                let e = Error::Timeout {
                    transport: Transport::Plugin,
                    target,
                    elapsed: started.elapsed(),
                };
                return Err((e, false));
            }
        },
        None => call.await,
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(status) => {
            let passed = meta
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d);
            let not_sent = never_sent(&status);
            let e = classify(status, target, started.elapsed(), inst.exited(), passed);
            return Err((e, not_sent));
        }
    };
    decode_reply(reply, target).map_err(|e| (e, false))
}

/// Turns a `CallReply` into the call model.
fn decode_reply(
    reply: tonic::Response<crate::proto::call::CallReply>,
    target: String,
) -> Result<Response, Error> {
    match reply.into_inner().result {
        Some(call_reply::Result::Ok(p)) => {
            let codec = if p.codec.is_empty() {
                Codec::Raw
            } else {
                p.codec.parse::<Codec>().map_err(|_| {
                    Error::protocol(
                        Transport::Plugin,
                        &target,
                        format!(
                            "reply has unknown codec {:?} (expected json, msgpack or raw)",
                            p.codec
                        ),
                    )
                })?
            };
            Ok(Response::new(Payload::new(codec, p.data)))
        }
        Some(call_reply::Result::Error(e)) => Err(Error::from_wire(
            Transport::Plugin,
            target,
            &e.kind,
            &e.r#type,
            &e.message,
            &e.traceback,
        )),
        None => Err(Error::protocol(
            Transport::Plugin,
            target,
            "reply has neither ok nor error",
        )),
    }
}

/// Maps a tonic status from a plugin to the call model. The one place this happens.
///
/// The kind comes from the project's one status table,
/// [`classify_grpc_code`](crate::guard::classify_grpc_code), refined for plugins: a handler's
/// own errors come back inside the reply, never as a status, so `UNKNOWN` means the plugin
/// process or its connection failed (`Unavailable`, naming the exit when the plugin died) and
/// `INTERNAL` that it broke the protocol (`Protocol`). `deadline_passed` turns any status into
/// `Timeout`: tonic enforces the gRPC deadline itself and reports it as `Cancelled`
/// ("Timeout expired").
pub(crate) fn classify(
    status: tonic::Status,
    target: String,
    elapsed: Duration,
    exited: Option<String>,
    deadline_passed: bool,
) -> Error {
    use crate::call::ErrorKind;
    use tonic::Code;
    let detail = format!("{}: {}", status.code(), status.message());
    let kind = match status.code() {
        _ if deadline_passed => ErrorKind::Timeout,
        Code::Unknown => ErrorKind::Unavailable,
        Code::Internal => ErrorKind::Protocol,
        code => crate::guard::classify_grpc_code(code as i32).unwrap_or(ErrorKind::Protocol),
    };
    match kind {
        ErrorKind::Timeout => Error::Timeout {
            transport: Transport::Plugin,
            target,
            elapsed,
        },
        ErrorKind::BadRequest => Error::BadRequest {
            transport: Transport::Plugin,
            target,
            reason: if status.code() == Code::Unimplemented {
                format!("the plugin does not serve this method ({detail})")
            } else {
                detail
            },
        },
        ErrorKind::Overloaded => Error::Overloaded {
            transport: Transport::Plugin,
            target,
            limit: 0,
        },
        ErrorKind::Unavailable => Error::Unavailable {
            transport: Transport::Plugin,
            target,
            reason: match exited {
                Some(exit) => {
                    format!("plugin exited ({exit}) during the call; it is being restarted")
                }
                None => detail,
            },
            source: Some(Box::new(status)),
        },
        _ => Error::Protocol {
            transport: Transport::Plugin,
            target,
            reason: detail,
            source: Some(Box::new(status)),
        },
    }
}

impl tower::Service<Request> for Host {
    type Response = Response;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let host = self.clone();
        Box::pin(async move { host.call(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_maps_codes_to_kinds() {
        use crate::ErrorKind;
        let t = || "echo on plugin p".to_owned();
        let d = Duration::from_millis(5);
        assert_eq!(
            classify(tonic::Status::deadline_exceeded("x"), t(), d, None, false).kind(),
            ErrorKind::Timeout
        );
        assert_eq!(
            classify(tonic::Status::unimplemented("x"), t(), d, None, false).kind(),
            ErrorKind::BadRequest
        );
        assert_eq!(
            classify(tonic::Status::resource_exhausted("x"), t(), d, None, false).kind(),
            ErrorKind::Overloaded
        );
        assert_eq!(
            classify(tonic::Status::internal("x"), t(), d, None, false).kind(),
            ErrorKind::Protocol
        );
        let e = classify(
            tonic::Status::unavailable("x"),
            t(),
            d,
            Some("status 3".into()),
            false,
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("exited (status 3)"));
        let e = classify(
            tonic::Status::cancelled("Timeout expired"),
            t(),
            d,
            None,
            true,
        );
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }
}
