//! One running plugin process: start (spawn → handshake → connect → health), calls in flight,
//! and kill.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify, OnceCell};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::config::Config;
use super::handshake::{self, Handshake};
use super::process::{self, Child};
use super::stdio::Sinks;
use super::{conn, sys, tls};
use crate::proto::goplugin::{
    grpc_broker_client::GrpcBrokerClient, grpc_controller_client::GrpcControllerClient,
    grpc_stdio_client::GrpcStdioClient, stdio_data, ConnInfo, Empty,
};
use crate::{Error, Transport};

static SOCKET_DIRS: AtomicU64 = AtomicU64::new(0);

/// A started plugin.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) id: u64,
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) channel: Channel,
    pub(crate) handshake: Handshake,
    /// Whether this process is ours (a process group we made) or reattached.
    pub(crate) owned: bool,
    /// Reattached in test mode: never killed.
    pub(crate) test: bool,
    pub(crate) exit: watch::Receiver<Option<String>>,
    pub(crate) inflight: AtomicUsize,
    pub(crate) idle: Notify,
    pub(crate) killed: OnceCell<()>,
    pub(crate) detached: std::sync::atomic::AtomicBool,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) readers: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) socket_dir: Option<PathBuf>,
    pub(crate) kill_timeout: Duration,
    pub(crate) pipe_timeout: Duration,
}

/// Marks one call in flight on an instance; dropping it ends the call.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) instance: Arc<Instance>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.instance.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.instance.idle.notify_waiters();
        }
    }
}

impl Instance {
    /// Counts a call in; the caller must hold the slot's read lock so a swap cannot slip between.
    pub(crate) fn enter(self: &Arc<Self>) -> Lease {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        Lease {
            instance: Arc::clone(self),
        }
    }

    /// Gives the process up without killing it (detach for a later reattach).
    pub(crate) fn forget(&self) {
        self.detached.store(true, Ordering::Release);
        let _ = self.killed.set(());
    }

    /// Whether the process has exited.
    pub(crate) fn exited(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Resolves when the process exits.
    pub(crate) async fn wait_exit(&self) -> String {
        let mut rx = self.exit.clone();
        let exit = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => "exit watcher gone".to_owned(),
        };
        exit
    }

    /// Health check: `grpc.health.v1.Health/Check("plugin")` must answer SERVING.
    pub(crate) async fn ping(&self, timeout: Duration) -> Result<(), Error> {
        use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};
        let target = format!("plugin {} (pid {})", self.name, self.pid);
        let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
            service: "plugin".to_owned(),
        });
        req.set_timeout(timeout);
        let reply =
            tokio::time::timeout(timeout, HealthClient::new(self.channel.clone()).check(req))
                .await
                .map_err(|_| Error::Timeout {
                    transport: Transport::Plugin,
                    target: format!("health check of {target}"),
                    elapsed: timeout,
                })?
                .map_err(|s| Error::Unavailable {
                    transport: Transport::Plugin,
                    target: target.clone(),
                    reason: format!("health check failed: {}: {}", s.code(), s.message()),
                    source: Some(Box::new(s)),
                })?;
        let status = reply.into_inner().status;
        if status == ServingStatus::Serving as i32 {
            Ok(())
        } else {
            let name = ServingStatus::try_from(status).map_or("unknown", |s| s.as_str_name());
            Err(Error::unavailable(
                Transport::Plugin,
                target,
                format!("health check answered {name}, not SERVING"),
            ))
        }
    }

    /// Waits until no call is in flight, at most `limit`.
    pub(crate) async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            if self.inflight.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                tracing::warn!(plugin = %self.name, pid = self.pid,
                    inflight = self.inflight.load(Ordering::Acquire),
                    "drain timed out; killing the old plugin with calls in flight");
                return;
            }
        }
    }

    /// Shutdown RPC, a bounded wait, SIGKILL of the process group, reap, a bounded wait for the
    /// pipes, remove the socket dir. Idempotent; concurrent callers wait for the same kill.
    pub(crate) async fn kill(&self) {
        self.killed.get_or_init(|| self.kill_once()).await;
    }

    async fn kill_once(&self) {
        if self.test {
            self.abort_tasks();
            return;
        }
        if self.exited().is_none() {
            let mut ctl = GrpcControllerClient::new(self.channel.clone());
            let mut req = tonic::Request::new(Empty {});
            req.set_timeout(Duration::from_secs(1));
            let _ = tokio::time::timeout(Duration::from_secs(1), ctl.shutdown(req)).await;
        }
        self.abort_tasks();
        let mut exit = self.exit.clone();
        let graceful = process::wait_exit(&mut exit, self.kill_timeout).await;
        if graceful.is_none() {
            tracing::warn!(plugin = %self.name, pid = self.pid, "plugin failed to exit gracefully; sending SIGKILL");
        }
        if self.owned {
            // The group may outlive its leader (a plugin started through `sh -c`).
            if graceful.is_none() || sys::group_alive(self.pid) {
                sys::signal_group(self.pid, sys::SIGKILL);
            }
        } else if graceful.is_none() {
            sys::signal_pid(self.pid, sys::SIGKILL);
        }
        let status = process::wait_exit(&mut exit, Duration::from_secs(5)).await;
        tracing::debug!(plugin = %self.name, pid = self.pid, status = ?status, "plugin process exited");
        let readers = self
            .readers
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        process::wait_readers(readers, self.pipe_timeout).await;
        if let Some(dir) = &self.socket_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn abort_tasks(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.drain(..).for_each(|t| t.abort());
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.killed.get().is_none() && self.owned && !self.test && self.exited().is_none() {
            sys::signal_group(self.pid, sys::SIGKILL);
        }
        if self.detached.load(Ordering::Acquire) {
            return; // the plugin lives on, with its socket and output pipes
        }
        self.abort_tasks();
        if let Some(dir) = &self.socket_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Start failures carry go-plugin-style diagnostics.
fn start_error(
    config: &Config,
    what: &str,
    child: &Child,
    exit: Option<&str>,
    stdout: Option<&str>,
) -> String {
    let mut s = format!("{} {what}", config.command_line());
    if let Some(exit) = exit {
        s.push_str(&format!("; exited ({exit})"));
    }
    let tail = child.tail();
    if tail.is_empty() {
        s.push_str("; stderr was empty");
    } else {
        s.push_str(&format!("; last stderr: {:?}", tail.join("\n")));
    }
    if let Some(out) = stdout {
        s.push_str(&format!("; stdout before the handshake: {out:?}"));
    }
    s
}

fn check_checksum(config: &Config) -> Result<(), Error> {
    use sha2::Digest as _;
    let Some(want) = config.checksum else {
        return Ok(());
    };
    let target = config.command_line();
    let path = resolve(&config.program);
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::unavailable(
            Transport::Plugin,
            &target,
            format!("cannot read {} to check its checksum: {e}", path.display()),
        )
    })?;
    let got: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    // Constant-time comparison, as go-plugin's SecureConfig does.
    let diff = got
        .iter()
        .zip(want.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(Error::unavailable(
            Transport::Plugin,
            target,
            format!(
                "checksum mismatch for {}: sha256 is {}, expected {} (the executable changed; update the expected checksum if the change is legitimate)",
                path.display(),
                hex::encode(got),
                hex::encode(want)
            ),
        ));
    }
    Ok(())
}

/// Finds a bare program name on PATH, as exec would.
fn resolve(program: &std::path::Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_path_buf();
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| program.to_path_buf())
}

/// Removes a socket directory on drop unless disarmed (an abandoned start cleans up).
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn socket_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let n = SOCKET_DIRS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tandem-plugin-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Spawns, handshakes, connects and health-checks one plugin instance.
pub(crate) async fn start(config: &Config, id: u64) -> Result<Arc<Instance>, Error> {
    let deadline = Instant::now() + config.start_timeout;
    let target = config.command_line();
    check_checksum(config)?;
    let unavailable = |reason: String, source: Option<crate::BoxError>| Error::Unavailable {
        transport: Transport::Plugin,
        target: target.clone(),
        reason,
        source,
    };
    let dir = socket_dir().map_err(|e| {
        unavailable(
            format!("cannot create a socket directory: {e}"),
            Some(Box::new(e)),
        )
    })?;
    let mut dir_guard = DirGuard(Some(dir.clone()));
    let cert = if config.auto_mtls {
        Some(tls::HostCert::generate().map_err(|e| {
            unavailable(
                format!("cannot make the AutoMTLS certificate: {e}"),
                Some(Box::new(e)),
            )
        })?)
    } else {
        None
    };
    let versions = config
        .versions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut env = vec![
        (config.cookie_key.clone(), config.cookie_value.clone()),
        ("PLUGIN_PROTOCOL_VERSIONS".to_owned(), versions),
        ("PLUGIN_MIN_PORT".to_owned(), config.min_port.to_string()),
        ("PLUGIN_MAX_PORT".to_owned(), config.max_port.to_string()),
        (
            "PLUGIN_UNIX_SOCKET_DIR".to_owned(),
            dir.display().to_string(),
        ),
    ];
    if let Some(cert) = &cert {
        env.push(("PLUGIN_CLIENT_CERT".to_owned(), cert.pem.clone()));
    }
    let mut child = process::spawn(config, env).map_err(|e| {
        let _ = std::fs::remove_dir_all(&dir);
        unavailable(
            format!("cannot spawn {}: {e}", config.program.display()),
            Some(Box::new(e)),
        )
    })?;
    let pid = child.pid;
    // From here on, any failure must kill the group, reap it and remove the directory.
    let fail = |mut child: Child, reason: String, protocol: bool| {
        let dir = dir.clone();
        let target = target.clone();
        async move {
            sys::signal_group(child.pid, sys::SIGKILL);
            let mut exit = child.exit.clone();
            process::wait_exit(&mut exit, Duration::from_secs(5)).await;
            let readers = std::mem::take(&mut child.readers);
            process::wait_readers(readers, Duration::from_millis(500)).await;
            let _ = std::fs::remove_dir_all(&dir);
            if protocol {
                Error::protocol(Transport::Plugin, target, reason)
            } else {
                Error::unavailable(Transport::Plugin, target, reason)
            }
        }
    };

    let Some(first_line) = child.first_line.take() else {
        return Err(fail(child, "has no stdout pipe".to_owned(), false).await);
    };
    let mut exit = child.exit.clone();
    let line = tokio::select! {
        line = first_line => line.ok().flatten(),
        _ = tokio::time::sleep_until(deadline) => {
            let why = format!("did not print a handshake within {:?}", config.start_timeout);
            let reason = start_error(config, &why, &child, None, None);
            return Err(fail(child, reason, false).await);
        }
    };
    let Some(line) = line else {
        // stdout closed without a line: wait for the exit and the last stderr lines.
        let status = process::wait_exit(
            &mut exit,
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(500)),
        )
        .await;
        let readers = std::mem::take(&mut child.readers);
        process::wait_readers(readers, Duration::from_millis(500)).await;
        let what = if status.is_some() {
            "exited before the handshake"
        } else {
            "closed stdout without a handshake"
        };
        let reason = start_error(config, what, &child, status.as_deref(), None);
        return Err(fail(child, reason, false).await);
    };
    let line = String::from_utf8_lossy(&line).into_owned();
    let handshake = match handshake::parse(&line, &config.versions, config.auto_mtls) {
        Ok(h) => h,
        Err(e) => {
            let status = child.exit.borrow().clone();
            let reason = start_error(
                config,
                &format!("sent a bad handshake: {e}"),
                &child,
                status.as_deref(),
                Some(&handshake::clip(&line, 200)),
            );
            return Err(fail(child, reason, true).await);
        }
    };
    let tls_config = match (&cert, &handshake.server_cert) {
        (Some(cert), Some(der)) => match cert.client_config(der.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                let reason = format!("cannot build the TLS client config: {e}");
                return Err(fail(child, reason, false).await);
            }
        },
        _ => None,
    };
    let connect = conn::connect(handshake.address.clone(), tls_config);
    let channel = tokio::select! {
        r = tokio::time::timeout_at(deadline, connect) => match r {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let reason = start_error(config, &format!("printed a handshake but the connection to {} failed: {}", handshake.address, error_chain(&e)), &child, None, None);
                return Err(fail(child, reason, false).await);
            }
            Err(_) => {
                let reason = start_error(config, &format!("did not accept a connection on {} within {:?}", handshake.address, config.start_timeout), &child, None, None);
                return Err(fail(child, reason, false).await);
            }
        },
        status = process::wait_exit(&mut exit, config.start_timeout) => {
            let reason = start_error(config, "exited right after the handshake", &child, status.as_deref(), None);
            return Err(fail(child, reason, false).await);
        }
    };
    let tasks = open_streams(&channel, &config.name, &config.sinks);
    // The instance owns the process and the directory from here (its Drop cleans up).
    child.armed = false;
    dir_guard.0 = None;
    let instance = Arc::new(Instance {
        id,
        pid,
        name: config.name.clone(),
        channel,
        handshake,
        owned: true,
        test: false,
        exit: child.exit.clone(),
        inflight: AtomicUsize::new(0),
        idle: Notify::new(),
        killed: OnceCell::new(),
        detached: std::sync::atomic::AtomicBool::new(false),
        tasks: Mutex::new(tasks),
        readers: Mutex::new(std::mem::take(&mut child.readers)),
        socket_dir: Some(dir),
        kill_timeout: config.kill_timeout,
        pipe_timeout: config.pipe_timeout,
    });
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    if let Err(e) = instance.ping(remaining).await {
        instance.kill().await;
        return Err(unavailable(
            format!(
                "{} started but failed its health check: {e}",
                config.command_line()
            ),
            Some(Box::new(e)),
        ));
    }
    tracing::debug!(plugin = %config.name, pid, version = instance.handshake.app_version,
        address = %instance.handshake.address, tls = cert.is_some(), "plugin started");
    Ok(instance)
}

/// Opens GRPCStdio (drained into the sinks) and GRPCBroker (held open) right away.
fn open_streams(channel: &Channel, name: &str, sinks: &Sinks) -> Vec<JoinHandle<()>> {
    let mut stdio = GrpcStdioClient::new(channel.clone());
    let sinks = sinks.clone();
    let name_owned = name.to_owned();
    let stdio_task = tokio::spawn(async move {
        let mut stream = match stdio.stream_stdio(()).await {
            Ok(s) => s.into_inner(),
            Err(s) => {
                tracing::debug!(plugin = %name_owned, code = %s.code(), "plugin has no GRPCStdio: {}", s.message());
                return;
            }
        };
        while let Ok(Some(chunk)) = stream.message().await {
            if chunk.data.is_empty() {
                continue;
            }
            let channel = match stdio_data::Channel::try_from(chunk.channel) {
                Ok(stdio_data::Channel::Stderr) => super::stdio::Channel::Stderr,
                _ => super::stdio::Channel::Stdout,
            };
            sinks.emit_stdio(&name_owned, channel, &chunk.data);
        }
    });
    let mut broker = GrpcBrokerClient::new(channel.clone());
    let name_owned = name.to_owned();
    let broker_task = tokio::spawn(async move {
        match broker
            .start_stream(tokio_stream::pending::<ConnInfo>())
            .await
        {
            Ok(resp) => {
                let mut inbound = resp.into_inner();
                while let Ok(Some(info)) = inbound.message().await {
                    tracing::debug!(plugin = %name_owned, service_id = info.service_id,
                        "plugin offered a broker connection; tandem's host does not dial brokered services");
                }
            }
            Err(s) => {
                tracing::debug!(plugin = %name_owned, code = %s.code(), "plugin has no GRPCBroker")
            }
        }
    });
    vec![stdio_task, broker_task]
}

/// The error and its sources, joined with `: `.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}
