//! Health watching: one background task per connection follows `grpc.health.v1` and ejects
//! the connection while its server process is NOT_SERVING or unreachable.
//!
//! The watch runs on the connection itself, so behind `SO_REUSEPORT` it sees the very process
//! the connection is pinned to. It uses `Watch` and falls back to polling `Check` when the
//! server does not implement `Watch` (Triton, for one).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::balance::{backoff, Conn, Health};
use super::classify::code_name;

/// What a health task needs besides its connection.
#[derive(Debug, Clone)]
pub(crate) struct Watcher {
    pub(crate) service: String,
    pub(crate) interval: Duration,
    /// Closes when the client is dropped: the task ends.
    pub(crate) shutdown: watch::Receiver<()>,
}

/// Starts the health task of `conn` on the current tokio runtime.
pub(crate) fn spawn(handle: &tokio::runtime::Handle, conn: Arc<Conn>, watcher: Watcher) {
    handle.spawn(run(conn, watcher));
}

/// What one watch attempt ended with.
enum Outcome {
    /// The server does not implement Watch: poll Check instead.
    Unimplemented,
    /// The watch failed or ended; re-check after a backoff.
    Failed,
    /// A call saw the connection fail: re-check at once.
    Recheck,
    /// The client is gone.
    Shutdown,
}

async fn run(conn: Arc<Conn>, mut w: Watcher) {
    let mut failures = 0u32;
    let mut polling = false;
    loop {
        let outcome = if polling {
            check_once(&conn, &w).await
        } else {
            watch_once(&conn, &mut w).await
        };
        let pause = match outcome {
            Outcome::Shutdown => return,
            Outcome::Unimplemented => {
                polling = true;
                continue;
            }
            Outcome::Recheck => {
                failures = 0;
                continue;
            }
            Outcome::Failed if polling && matches!(current(&conn), Health::Serving) => {
                failures = 0;
                w.interval
            }
            Outcome::Failed => {
                failures = failures.saturating_add(1);
                backoff(failures, w.interval)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = conn.recheck.notified() => {}
            _ = w.shutdown.changed() => return,
        }
    }
}

fn current(conn: &Conn) -> Health {
    conn.health_snapshot()
}

fn request(service: &str, timeout: Option<Duration>) -> tonic::Request<HealthCheckRequest> {
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    if let Some(t) = timeout {
        req.set_timeout(t);
    }
    req
}

fn apply(conn: &Conn, service: &str, status: i32) {
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Serving) => conn.set_health(Health::Serving),
        Ok(other) => conn.set_health(Health::Ejected(format!(
            "health of {:?} is {}",
            service,
            other.as_str_name()
        ))),
        Err(_) => conn.set_health(Health::Ejected(format!(
            "health of {service:?} is the unknown status {status}"
        ))),
    }
}

fn status_reason(status: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut reason = format!("{}: {}", code_name(status.code()), status.message());
    let mut source = status.source();
    while let Some(e) = source {
        reason.push_str(": ");
        reason.push_str(&e.to_string());
        source = e.source();
    }
    reason
}

/// A health client that also reads gzip answers (a `serve --gzip` server compresses them).
fn health_client(conn: &Conn) -> HealthClient<tonic::transport::Channel> {
    HealthClient::new(conn.channel.clone())
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
}

async fn watch_once(conn: &Conn, w: &mut Watcher) -> Outcome {
    let mut client = health_client(conn);
    let opened = tokio::select! {
        r = client.watch(request(&w.service, None)) => r,
        _ = w.shutdown.changed() => return Outcome::Shutdown,
    };
    let mut stream = match opened {
        Ok(resp) => resp.into_inner(),
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            return Outcome::Unimplemented
        }
        Err(status) => {
            conn.set_health(Health::Ejected(status_reason(&status)));
            return Outcome::Failed;
        }
    };
    loop {
        tokio::select! {
            msg = stream.message() => match msg {
                Ok(Some(resp)) => apply(conn, &w.service, resp.status),
                Ok(None) => {
                    // A draining tandem server sends NOT_SERVING and then ends the watch:
                    // keep that reason.
                    if !matches!(conn.health_snapshot(), Health::Ejected(_)) {
                        conn.set_health(Health::Ejected("health watch ended by the server".to_owned()));
                    }
                    return Outcome::Failed;
                }
                Err(status) => {
                    conn.set_health(Health::Ejected(status_reason(&status)));
                    return Outcome::Failed;
                }
            },
            _ = conn.recheck.notified() => return Outcome::Recheck,
            _ = w.shutdown.changed() => return Outcome::Shutdown,
        }
    }
}

async fn check_once(conn: &Conn, w: &Watcher) -> Outcome {
    let mut client = health_client(conn);
    let timeout = w.interval.max(Duration::from_millis(200));
    match tokio::time::timeout(timeout, client.check(request(&w.service, Some(timeout)))).await {
        Ok(Ok(resp)) => apply(conn, &w.service, resp.into_inner().status),
        Ok(Err(status)) => conn.set_health(Health::Ejected(status_reason(&status))),
        Err(_) => conn.set_health(Health::Ejected(format!(
            "health check timed out after {timeout:?}"
        ))),
    }
    Outcome::Failed
}
