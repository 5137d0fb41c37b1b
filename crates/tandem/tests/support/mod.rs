//! Shared helpers for the integration tests: the repository, the Python interpreter, per-test
//! directories, and process checks (no orphans, no zombies). Each test binary includes it with
//! `mod support;` and may use only part of it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The Python interpreter with the SDK installed: `$TANDEM_PYTHON`, else `<repo>/.venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TANDEM_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    assert!(
        venv.is_file(),
        "no Python with tandem installed: run `make setup` or set TANDEM_PYTHON"
    );
    venv
}

/// A fresh, empty directory named after the test, under the target directory.
pub fn test_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("tandem-tests/{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// Writes `source` to `dir/name` and returns the path (for Python apps and scripts made by a test).
pub fn write_file(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write test file");
    path
}

/// Whether a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The state letter of a process (`R`, `S`, `Z`, ...), or `None` if it is gone.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// The pids of the direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// Zombie children of this test process (there should be none after a test).
pub fn zombie_children() -> Vec<u32> {
    children(std::process::id())
        .into_iter()
        .filter(|&p| state(p) == Some('Z'))
        .collect()
}

/// Asserts that no child of this test process stays a zombie: each zombie seen now must be
/// reaped within 5 s. The tests of one binary run in parallel, so another test's child can be
/// a zombie for the instant between its exit and its parent's wait; a leaked one stays.
pub async fn assert_no_zombies() {
    let seen = zombie_children();
    let lasting = || -> Vec<u32> {
        seen.iter()
            .copied()
            .filter(|&p| state(p) == Some('Z'))
            .collect()
    };
    let reaped = wait_until(Duration::from_secs(5), || lasting().is_empty()).await;
    assert!(reaped, "zombie children left: {:?}", lasting());
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `pid` is gone (or a zombie), failing the test after `timeout`.
pub async fn assert_exits(pid: u32, timeout: Duration) {
    assert!(
        wait_until(timeout, || !alive(pid)).await,
        "process {pid} still running after {timeout:?}"
    );
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
