//! Hot reload: start a new instance, check its health, switch new calls to it, drain the old
//! one, kill it. Triggered by [`Host::reload`], SIGHUP (opt-in) or a changed executable
//! (opt-in polling).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use super::client::{Host, Shared, Slot};
use super::instance;
use crate::{Error, Transport};

impl Host {
    /// Replaces the running plugin with a freshly started one, without failing calls: new calls
    /// go to the new instance as soon as it is healthy, calls in flight finish on the old one
    /// (up to the drain timeout), then the old one is killed.
    ///
    /// # Errors
    ///
    /// The start error of the new instance (the old one keeps serving), or `Unavailable` for a
    /// killed or reattached host.
    pub async fn reload(&self) -> Result<(), Error> {
        reload(&self.shared).await
    }
}

async fn reload(shared: &Arc<Shared>) -> Result<(), Error> {
    let target = format!("reload of plugin {}", shared.name);
    let Some(config) = shared.config.clone() else {
        return Err(Error::unavailable(
            Transport::Plugin,
            target,
            "a reattached plugin cannot be reloaded: the host did not start it",
        ));
    };
    let _guard = shared.reload_lock.lock().await;
    if matches!(&*shared.slot.borrow(), Slot::Closed) {
        return Err(Error::unavailable(
            Transport::Plugin,
            target,
            "the host was killed",
        ));
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let fresh = instance::start(&config, id).await?;
    let pid = fresh.pid;
    let old = shared.slot.send_replace(Slot::Ready(fresh));
    shared.reloaded();
    tracing::info!(plugin = %config.name, pid, "plugin reloaded; draining the old instance");
    if let Slot::Ready(old) = old {
        old.drain(config.drain_timeout).await;
        old.kill().await;
    }
    Ok(())
}

/// Starts the opt-in reload triggers (SIGHUP, file watch).
pub(crate) fn spawn_triggers(host: &Host) {
    let Some(config) = &host.shared.config else {
        return;
    };
    let mut tasks = Vec::new();
    if config.reload_on_sighup {
        let weak = Arc::downgrade(&host.shared);
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut signals) => tasks.push(tokio::spawn(async move {
                while signals.recv().await.is_some() {
                    let Some(shared) = weak.upgrade() else { return };
                    tracing::info!(plugin = %shared.name, "SIGHUP: reloading plugin");
                    if let Err(e) = reload(&shared).await {
                        tracing::error!(plugin = %shared.name, error = %e, "reload on SIGHUP failed");
                    }
                }
            })),
            Err(e) => tracing::error!(error = %e, "cannot install the SIGHUP handler; reload on SIGHUP is off"),
        }
    }
    if let Some(interval) = config.watch_interval {
        let weak = Arc::downgrade(&host.shared);
        let path = config.program.clone();
        tasks.push(tokio::spawn(watch_file(weak, path, interval)));
    }
    if let Ok(mut all) = host.shared.tasks.lock() {
        all.extend(tasks);
    }
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

async fn watch_file(weak: Weak<Shared>, path: std::path::PathBuf, interval: Duration) {
    let mut last = stamp(&path);
    loop {
        tokio::time::sleep(interval).await;
        let now = stamp(&path);
        if now == last || now.is_none() {
            continue;
        }
        // Wait for the writer to finish: the stamp must hold still for one interval.
        tokio::time::sleep(interval).await;
        if stamp(&path) != now {
            continue;
        }
        last = now;
        let Some(shared) = weak.upgrade() else { return };
        tracing::info!(plugin = %shared.name, path = %path.display(), "plugin file changed; reloading");
        if let Err(e) = reload(&shared).await {
            tracing::error!(plugin = %shared.name, error = %e, "reload after file change failed");
        }
    }
}
