//! Process groups: start a child as the leader of its own group, and signal the whole group.
//!
//! A one-shot script may start helpers of its own (a shell pipeline, a `multiprocessing` pool).
//! Killing only the direct child leaves those grandchildren running, holding the output pipes
//! open. Every child tandem starts therefore leads a new process group (its pgid is its pid), and
//! tandem signals the group, never just the pid.
//!
//! # Caveats
//!
//! A grandchild that calls `setsid()` or `setpgid()` itself leaves the group and escapes these
//! signals; only a cgroup would hold it.

use std::time::Duration;

use tokio::process::{Child, Command};

/// Makes `cmd` start its child as the leader of a new process group.
pub(crate) fn own_group(cmd: &mut Command) {
    // `process_group(0)` runs setpgid(0, 0) in the child between fork and exec (tokio and std do
    // it with posix_spawn attributes or a pre-exec hook), so no `unsafe` is needed here.
    cmd.process_group(0);
}

/// Sends `signal` to every process of the group led by `pgid`.
///
/// Never signals groups 0 and 1 (the caller's own group and init's). Signal the group only while
/// its leader is an unreaped child of ours, or right after reaping it while other members may
/// remain: Linux keeps a pgid allocated as long as any member lives, so the number cannot be
/// reused under us.
pub(crate) fn signal_group(pgid: u32, signal: libc::c_int) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: killpg has no memory-safety preconditions; the pgid is checked above so that we
    // never signal our own group (0) or init's (1).
    #[allow(unsafe_code)]
    let rc = unsafe { libc::killpg(pgid, signal) };
    rc == 0
}

/// Stops the group `pgid` led by `child`: if the leader still runs, SIGTERM to the group, up to
/// `grace` for the leader to exit, then SIGKILL, and the leader is reaped. Members left over
/// (grandchildren that ignored SIGTERM, or background helpers of a leader that already exited)
/// get SIGKILL.
pub(crate) async fn stop_group(child: &mut Child, pgid: u32, grace: Duration) {
    if child.id().is_some() {
        signal_group(pgid, libc::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            signal_group(pgid, libc::SIGKILL);
            let _ = child.wait().await;
        }
    }
    // Safe after reaping the leader: Linux keeps the pgid allocated while any member lives.
    signal_group(pgid, libc::SIGKILL);
}

/// Kills a process group with SIGKILL when dropped, unless disarmed: a dropped (cancelled) call
/// leaves no grandchildren behind. tokio's `kill_on_drop` only kills (and reaps) the leader.
#[derive(Debug)]
pub(crate) struct GroupGuard {
    pgid: Option<u32>,
}

impl GroupGuard {
    /// A guard over the group led by `pgid`.
    pub(crate) fn new(pgid: Option<u32>) -> Self {
        Self { pgid }
    }

    /// The group is stopped and reaped: nothing to do on drop.
    pub(crate) fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, libc::SIGKILL);
        }
    }
}
