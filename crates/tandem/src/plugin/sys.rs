//! The two libc calls the host needs: signalling a process group and probing a pid.
//!
//! This is the plugin module's only unsafe code. `kill(2)` has no memory-safety preconditions;
//! it is unsafe only because every libc function is.
#![allow(unsafe_code)]

/// Sends `signal` to every process in group `pgid`. Returns whether any process got it.
pub(crate) fn signal_group(pgid: u32, signal: i32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// Sends `signal` to process `pid`. Returns whether it was delivered.
pub(crate) fn signal_pid(pid: u32, signal: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 1 {
        return false;
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether a process group still has members.
pub(crate) fn group_alive(pgid: u32) -> bool {
    signal_group(pgid, 0)
}

/// Whether process `pid` exists (a zombie counts).
pub(crate) fn pid_alive(pid: u32) -> bool {
    signal_pid(pid, 0)
}

pub(crate) use libc::SIGKILL;
