//! Crash supervision: notice an exit at once, restart with backoff.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::client::{Host, Shared, Slot};
use super::instance;

/// Starts the supervisor task of `host`.
pub(crate) fn spawn(host: &Host) {
    let weak = Arc::downgrade(&host.shared);
    let task = tokio::spawn(supervise(weak));
    if let Ok(mut tasks) = host.shared.tasks.lock() {
        tasks.push(task);
    }
}

async fn supervise(weak: Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let mut rx = shared.slot.subscribe();
        let current = match &*rx.borrow_and_update() {
            Slot::Ready(i) => Some(Arc::clone(i)),
            Slot::Closed => return,
            _ => None,
        };
        drop(shared);
        let Some(inst) = current else {
            // Starting or Down: wait for the next change.
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        let id = inst.id;
        let exit = tokio::select! {
            exit = inst.wait_exit() => exit,
            changed = rx.wait_for(|s| !matches!(s, Slot::Ready(i) if i.id == id)) => {
                if changed.is_err() { return; }
                continue;
            }
        };
        let Some(shared) = weak.upgrade() else { return };
        let restart = shared.config.as_ref().is_some_and(|c| c.restart);
        let replaced = shared.slot.send_if_modified(|s| {
            if matches!(s, Slot::Ready(i) if i.id == id) {
                *s = if restart {
                    Slot::Starting
                } else {
                    Slot::Down(format!("plugin exited ({exit}) and restarts are off"))
                };
                true
            } else {
                false
            }
        });
        if !replaced {
            continue;
        }
        tracing::warn!(plugin = %shared.name, pid = inst.pid, %exit, restart, "plugin exited unexpectedly");
        inst.kill().await;
        drop(inst);
        if restart {
            restart_with_backoff(&shared).await;
        }
    }
}

async fn restart_with_backoff(shared: &Arc<Shared>) {
    let Some(config) = shared.config.clone() else {
        return;
    };
    let mut delay = config.backoff_min;
    loop {
        tokio::time::sleep(delay).await;
        let _guard = shared.reload_lock.lock().await;
        if !matches!(&*shared.slot.borrow(), Slot::Starting) {
            return; // killed or reloaded meanwhile
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        match instance::start(&config, id).await {
            Ok(inst) => {
                shared.restarted();
                tracing::info!(plugin = %config.name, pid = inst.pid, "plugin restarted");
                let stale = shared.slot.send_if_modified(|s| {
                    if matches!(s, Slot::Starting) {
                        *s = Slot::Ready(Arc::clone(&inst));
                        true
                    } else {
                        false
                    }
                });
                if !stale {
                    inst.kill().await;
                }
                return;
            }
            Err(e) => {
                tracing::error!(plugin = %config.name, error = %e, retry_in = ?delay, "plugin restart failed");
                delay = (delay * 2).min(config.backoff_max);
            }
        }
    }
}
