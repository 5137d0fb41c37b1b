//! Reattaching to a plugin that is already running (go-plugin's `ReattachConfig`).

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify, OnceCell};

use super::handshake::{self, Handshake};
use super::instance::Instance;
use super::{conn, sys};
use crate::{Error, Transport};

/// How to reach a plugin started by someone else (go-plugin's `ReattachConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReattachConfig {
    /// Where it listens.
    pub address: handshake::Address,
    /// Its process id.
    pub pid: u32,
    /// The app protocol version it speaks.
    pub protocol_version: u32,
    /// Test mode: `kill` closes the connection but never signals the process.
    pub test: bool,
}

/// The private socket directory a tandem host made for this plugin, if the address is in one
/// (removed when the reattached plugin is killed; never in test mode).
fn own_socket_dir(config: &ReattachConfig) -> Option<PathBuf> {
    let handshake::Address::Unix(path) = &config.address else {
        return None;
    };
    let dir = path.parent()?;
    let ours = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("tandem-plugin-"));
    (ours && !config.test).then(|| dir.to_path_buf())
}

/// Attaches to a running plugin: no handshake, no TLS, no stdio or logs; exit is noticed by
/// polling the pid.
pub(crate) async fn reattach(
    config: &ReattachConfig,
    id: u64,
    name: String,
) -> Result<Arc<Instance>, Error> {
    let target = format!("plugin at {} (pid {})", config.address, config.pid);
    if !sys::pid_alive(config.pid) {
        return Err(Error::unavailable(
            Transport::Plugin,
            target,
            "process not found (check the pid; the plugin may have exited)",
        ));
    }
    let channel = conn::connect_lazy(config.address.clone());
    let (exit_tx, exit) = watch::channel(None);
    let pid = config.pid;
    let poller = tokio::spawn(async move {
        while sys::pid_alive(pid) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let _ = exit_tx.send(Some("exited (reattached; status unknown)".to_owned()));
    });
    let instance = Arc::new(Instance {
        id,
        pid,
        name,
        channel,
        handshake: Handshake {
            app_version: config.protocol_version,
            address: config.address.clone(),
            server_cert: None,
            multiplex: None,
        },
        owned: false,
        test: config.test,
        exit,
        inflight: AtomicUsize::new(0),
        idle: Notify::new(),
        killed: OnceCell::new(),
        detached: std::sync::atomic::AtomicBool::new(false),
        tasks: Mutex::new(vec![poller]),
        readers: Mutex::new(Vec::new()),
        socket_dir: own_socket_dir(config),
        kill_timeout: Duration::from_secs(2),
        pipe_timeout: Duration::ZERO,
    });
    instance
        .ping(Duration::from_secs(5))
        .await
        .map_err(|e| Error::Unavailable {
            transport: Transport::Plugin,
            target,
            reason: format!("reattach failed: {e}"),
            source: Some(Box::new(e)),
        })?;
    Ok(instance)
}
