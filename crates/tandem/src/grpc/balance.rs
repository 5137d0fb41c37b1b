//! The endpoint set: several HTTP/2 connections per endpoint, their health, and picking one.
//!
//! Each connection is its own tonic `Channel` (one HTTP/2 connection), so `SO_REUSEPORT` on the
//! server spreads them over its processes. A call goes to the less loaded of two random healthy
//! connections (power of two choices on the in-flight count).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::call::{Error, Transport};

use super::config::Settings;
use super::events::Events;

/// Where a connection stands, as its health watch last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// Not checked yet.
    Unknown,
    /// The server answered SERVING.
    Serving,
    /// Ejected, with the reason (NOT_SERVING, connection refused, ...).
    Ejected(String),
}

/// One HTTP/2 connection to one endpoint.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Index in the balancer.
    pub(crate) id: usize,
    /// The endpoint as the user gave it.
    pub(crate) endpoint: Arc<str>,
    /// The connection.
    pub(crate) channel: Channel,
    in_flight: AtomicUsize,
    health: Mutex<Health>,
    /// Has been healthy at least once: an ejected connection that never was is still
    /// connecting (its server may be starting), one that was has lost its server.
    served: AtomicBool,
    /// Wakes the health watch to re-check at once (after a call saw the connection fail).
    pub(crate) recheck: Notify,
    changed: Arc<Notify>,
    events: Arc<Events>,
}

impl Conn {
    /// Records the health and wakes the callers waiting for a healthy connection.
    pub(crate) fn set_health(&self, health: Health) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if *h != health {
            match &health {
                Health::Serving => {
                    self.served.store(true, Ordering::Relaxed);
                    tracing::info!(endpoint = %self.endpoint, conn = self.id, "grpc connection healthy")
                }
                Health::Ejected(reason) => {
                    if *h == Health::Serving {
                        self.events.ejected();
                    }
                    tracing::warn!(endpoint = %self.endpoint, conn = self.id, %reason, "grpc connection ejected")
                }
                Health::Unknown => {}
            }
            *h = health;
            drop(h);
            self.changed.notify_waiters();
        }
    }

    /// Ejects the connection after a call failed on it, and asks the watch to re-check.
    pub(crate) fn eject(&self, reason: String) {
        self.set_health(Health::Ejected(reason));
        self.recheck.notify_one();
    }

    pub(crate) fn health_snapshot(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a call in flight until the guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A call in flight on a connection; dropping it ends the count.
#[derive(Debug)]
pub(crate) struct InFlight(pub(crate) Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All connections of a client.
#[derive(Debug)]
pub(crate) struct Balancer {
    pub(crate) conns: Vec<Arc<Conn>>,
    pub(crate) events: Arc<Events>,
    changed: Arc<Notify>,
    rng: AtomicU64,
}

impl Balancer {
    /// Opens (lazily) `connections_per_endpoint` connections to every endpoint.
    pub(crate) fn new(settings: &Settings) -> Result<Self, Error> {
        let changed = Arc::new(Notify::new());
        let events = Arc::new(Events::default());
        let mut conns = Vec::new();
        for endpoint in &settings.endpoints {
            for _ in 0..settings.connections_per_endpoint {
                let channel = connect_lazy(endpoint, settings)?;
                conns.push(Arc::new(Conn {
                    id: conns.len(),
                    endpoint: Arc::from(endpoint.as_str()),
                    channel,
                    in_flight: AtomicUsize::new(0),
                    health: Mutex::new(Health::Unknown),
                    served: AtomicBool::new(false),
                    recheck: Notify::new(),
                    changed: changed.clone(),
                    events: events.clone(),
                }));
            }
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ 0x9e37_79b9_7f4a_7c15;
        Ok(Self {
            conns,
            events,
            changed,
            rng: AtomicU64::new(seed | 1),
        })
    }

    fn random(&self, n: usize) -> usize {
        // xorshift64*: good enough to pick two connections, no dependency.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    /// A random number in `[0, 1)`, for retry jitter.
    pub(crate) fn jitter(&self) -> f64 {
        self.random(1 << 20) as f64 / f64::from(1u32 << 20)
    }

    /// The less loaded of two random healthy connections, preferring ones not in `avoid`.
    pub(crate) fn pick(&self, avoid: &[usize]) -> Option<Arc<Conn>> {
        let healthy: Vec<&Arc<Conn>> = self
            .conns
            .iter()
            .filter(|c| c.health_snapshot() == Health::Serving)
            .collect();
        let fresh: Vec<&Arc<Conn>> = healthy
            .iter()
            .copied()
            .filter(|c| !avoid.contains(&c.id))
            .collect();
        // Prefer another endpoint than the ones already tried, then another connection.
        let avoided_endpoints: Vec<&str> = avoid
            .iter()
            .filter_map(|&i| self.conns.get(i).map(|c| &*c.endpoint))
            .collect();
        let other_endpoint: Vec<&Arc<Conn>> = fresh
            .iter()
            .copied()
            .filter(|c| !avoided_endpoints.contains(&&*c.endpoint))
            .collect();
        let set = [other_endpoint, fresh, healthy]
            .into_iter()
            .find(|s| !s.is_empty())?;
        let a = set[self.random(set.len())];
        let b = set[self.random(set.len())];
        let pick = if b.in_flight.load(Ordering::Relaxed) < a.in_flight.load(Ordering::Relaxed) {
            b
        } else {
            a
        };
        Some(pick.clone())
    }

    /// Waits (until `deadline`) for a healthy connection.
    ///
    /// With `fail_fast`, it stops waiting as soon as every connection has lost a server it was
    /// healthy with (the servers went down or NOT_SERVING): a call then fails at once instead
    /// of holding its caller until the deadline (gRPC's default "fail fast" for a channel in
    /// TRANSIENT_FAILURE). It still waits while some connection has never been healthy: the
    /// client or the server may just be starting, as gRPC waits while CONNECTING.
    ///
    /// # Errors
    ///
    /// `Unavailable` naming every endpoint's state when none becomes healthy in time.
    pub(crate) async fn pick_until(
        &self,
        avoid: &[usize],
        deadline: Instant,
        target: &str,
        fail_fast: bool,
    ) -> Result<Arc<Conn>, Error> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(conn) = self.pick(avoid) {
                return Ok(conn);
            }
            let all_lost = || {
                self.conns.iter().all(|c| {
                    c.served.load(Ordering::Relaxed)
                        && matches!(c.health_snapshot(), Health::Ejected(_))
                })
            };
            if (fail_fast && all_lost())
                || tokio::time::timeout_at(deadline.into(), notified)
                    .await
                    .is_err()
            {
                return Err(Error::unavailable(
                    Transport::Grpc,
                    target,
                    format!("no healthy endpoint: {}", self.summary()),
                ));
            }
        }
    }

    /// One line per endpoint: how many connections are healthy and why the others are not.
    pub(crate) fn summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut endpoints: Vec<&str> = self.conns.iter().map(|c| &*c.endpoint).collect();
        endpoints.dedup();
        for endpoint in endpoints {
            let conns: Vec<&Arc<Conn>> = self
                .conns
                .iter()
                .filter(|c| &*c.endpoint == endpoint)
                .collect();
            let healthy = conns
                .iter()
                .filter(|c| c.health_snapshot() == Health::Serving)
                .count();
            let mut reasons: Vec<String> = conns
                .iter()
                .map(|c| match c.health_snapshot() {
                    Health::Ejected(r) => r,
                    Health::Unknown => "not checked yet".to_owned(),
                    Health::Serving => String::new(),
                })
                .filter(|r| !r.is_empty())
                .collect();
            reasons.dedup();
            parts.push(format!(
                "{endpoint} {healthy}/{} connections healthy{}",
                conns.len(),
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join("; "))
                }
            ));
        }
        parts.join(", ")
    }
}

/// Opens one lazily connected channel to `endpoint`.
fn connect_lazy(endpoint: &str, settings: &Settings) -> Result<Channel, Error> {
    let bad = |why: String| {
        Error::bad_request(
            Transport::Grpc,
            endpoint,
            format!("{why}; use http://HOST:PORT, grpc://HOST:PORT or unix:///path/to.sock"),
        )
    };
    let (uri, unix_path) = if let Some(path) = endpoint.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad("empty unix socket path".to_owned()));
        }
        ("http://localhost".to_owned(), Some(path.to_owned()))
    } else if let Some(rest) = endpoint.strip_prefix("grpc://") {
        (format!("http://{rest}"), None)
    } else if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        (endpoint.to_owned(), None)
    } else {
        return Err(bad("unsupported endpoint scheme".to_owned()));
    };
    let uri: Uri = uri.parse().map_err(|e| bad(format!("invalid uri: {e}")))?;
    let mut ep = Endpoint::from(uri)
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .tcp_keepalive(settings.tcp_keepalive)
        .keep_alive_while_idle(false);
    if let Some(interval) = settings.http2_keepalive {
        ep = ep
            .http2_keep_alive_interval(interval)
            .keep_alive_timeout(settings.keepalive_timeout);
    }
    Ok(match unix_path {
        Some(path) => ep.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        })),
        None => ep.connect_lazy(),
    })
}

/// How long to wait before re-checking a connection after `failures` failed checks.
pub(crate) fn backoff(failures: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(50).saturating_mul(1 << failures.min(10));
    base.min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::Client;

    fn balancer(endpoints: &[&str], per: usize) -> Balancer {
        let mut settings = Client::builder()
            .endpoints(endpoints.iter().copied())
            .connections_per_endpoint(per)
            .into_settings();
        settings.connect_timeout = Duration::from_millis(100);
        Balancer::new(&settings).unwrap()
    }

    #[tokio::test]
    async fn picks_only_healthy_and_prefers_untried_endpoints() {
        let b = balancer(&["http://127.0.0.1:1", "http://127.0.0.1:2"], 2);
        assert!(
            b.pick(&[]).is_none(),
            "nothing is healthy before its health check"
        );
        for c in &b.conns {
            c.set_health(Health::Serving);
        }
        b.conns[1].eject("NOT_SERVING".to_owned());
        for _ in 0..50 {
            let c = b.pick(&[0]).unwrap();
            assert_eq!(
                &*c.endpoint, "http://127.0.0.1:2",
                "a retry goes to another endpoint"
            );
            assert_ne!(c.id, 1);
        }
        // Every healthy connection already tried: one of them is reused rather than none.
        assert!(b.pick(&[0, 2, 3]).is_some());
    }

    #[tokio::test]
    async fn two_choices_prefer_the_less_loaded() {
        let b = balancer(&["http://127.0.0.1:1"], 2);
        for c in &b.conns {
            c.set_health(Health::Serving);
        }
        let busy: Vec<InFlight> = (0..10).map(|_| b.conns[0].begin()).collect();
        let picks = (0..200).filter(|_| b.pick(&[]).unwrap().id == 1).count();
        assert!(picks > 100, "the idle connection got {picks} of 200");
        drop(busy);
    }

    #[tokio::test]
    async fn no_healthy_connection_says_why() {
        let b = balancer(&["http://127.0.0.1:1"], 2);
        b.conns[0].eject("health of \"\" is NOT_SERVING".to_owned());
        let err = b
            .pick_until(
                &[],
                Instant::now() + Duration::from_millis(50),
                "echo",
                true,
            )
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("no healthy endpoint"), "{text}");
        assert!(
            text.contains("http://127.0.0.1:1 0/2 connections healthy"),
            "{text}"
        );
        assert!(
            text.contains("NOT_SERVING") && text.contains("not checked yet"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn every_connection_lost_fails_at_once_unless_asked_to_wait() {
        let b = balancer(&["http://127.0.0.1:1"], 2);
        for c in &b.conns {
            c.set_health(Health::Serving);
            c.eject("connection refused".to_owned());
        }
        let far = Instant::now() + Duration::from_secs(600);
        // The test's own deadline: a fail-fast pick must not wait for the 600 s one.
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            b.pick_until(&[], far, "echo", true),
        )
        .await
        .expect("fails at once")
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("0/2 connections healthy (connection refused)"),
            "{err}"
        );
        // wait_ready's way: keeps waiting, and takes a connection that comes back.
        let waiting = b.pick_until(&[], far, "echo", false);
        tokio::pin!(waiting);
        assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        b.conns[1].set_health(Health::Serving);
        let conn = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("wakes up")
            .expect("a connection");
        assert_eq!(conn.id, 1);
    }

    #[tokio::test]
    async fn connections_never_healthy_are_still_connecting_and_waited_for() {
        let b = balancer(&["http://127.0.0.1:1"], 2);
        for c in &b.conns {
            c.eject("connection refused".to_owned());
        }
        let soon = Instant::now() + Duration::from_millis(50);
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            b.pick_until(&[], soon, "echo", true),
        )
        .await
        .expect("gives up at its deadline")
        .unwrap_err();
        assert!(err.to_string().contains("no healthy endpoint"), "{err}");
        let waiting = b.pick_until(&[], Instant::now() + Duration::from_secs(600), "echo", true);
        tokio::pin!(waiting);
        assert!(
            futures_poll_once(waiting.as_mut()).await.is_none(),
            "waits for a start"
        );
    }

    /// Polls `f` once; `None` if it is still pending.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }

    #[test]
    fn endpoints_are_validated() {
        let settings = Client::builder().endpoint("ftp://x").into_settings();
        let err = Balancer::new(&settings).unwrap_err();
        assert!(
            err.to_string().contains("unsupported endpoint scheme"),
            "{err}"
        );
    }
}
