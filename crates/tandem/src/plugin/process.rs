//! Spawning a plugin process in its own group, and watching its pipes and exit.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::config::Config;
use super::stdio::{LineSplitter, LogParser};

/// How many stderr lines a failed start quotes.
const STDERR_TAIL: usize = 20;

/// A running child: its pid (= its process group), exit watch, pipe readers.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: u32,
    pub(crate) exit: watch::Receiver<Option<String>>,
    pub(crate) first_line: Option<oneshot::Receiver<Option<Vec<u8>>>>,
    pub(crate) stderr_tail: Arc<Mutex<VecDeque<String>>>,
    pub(crate) readers: Vec<JoinHandle<()>>,
    /// While armed, dropping this kills the group: a start abandoned half-way (its future
    /// dropped, e.g. by a caller's timeout or `kill`) leaves no process behind.
    pub(crate) armed: bool,
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.armed {
            super::sys::signal_group(self.pid, super::sys::SIGKILL);
        }
    }
}

/// How a process ended, in words: `status 1` or `signal 9`.
pub(crate) fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "unknown status".to_owned(),
    }
}

/// Spawns the plugin command with `env` added, stdout and stderr piped, stdin closed, in a new
/// process group.
pub(crate) fn spawn(config: &Config, env: Vec<(String, String)>) -> std::io::Result<Child> {
    let mut cmd = tokio::process::Command::new(&config.program);
    cmd.args(&config.args);
    if config.clear_env {
        cmd.env_clear();
    }
    cmd.envs(config.env.iter().map(|(k, v)| (k, v)));
    cmd.envs(env);
    if let Some(dir) = &config.current_dir {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or(0);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let (exit_tx, exit) = watch::channel(None);
    tokio::spawn(async move {
        let text = match child.wait().await {
            Ok(status) => describe(&status),
            Err(e) => format!("wait failed: {e}"),
        };
        let _ = exit_tx.send(Some(text));
    });

    let mut readers = Vec::new();
    let (line_tx, first_line) = oneshot::channel();
    if let Some(mut out) = stdout {
        let name = config.name.clone();
        readers.push(tokio::spawn(async move {
            let mut line_tx = Some(line_tx);
            let mut splitter = LineSplitter::default();
            let mut buf = vec![0u8; 8192];
            loop {
                let n = match out.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                splitter.feed(&buf[..n], |line| match line_tx.take() {
                    Some(tx) => {
                        let _ = tx.send(Some(line.to_vec()));
                    }
                    None => tracing::debug!(target: "tandem::plugin::stdout", plugin = %name,
                        "{}", String::from_utf8_lossy(line)),
                });
            }
            splitter.finish(|line| {
                if let Some(tx) = line_tx.take() {
                    let _ = tx.send(Some(line.to_vec()));
                }
            });
            if let Some(tx) = line_tx.take() {
                let _ = tx.send(None);
            }
        }));
    }
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(mut err) = stderr {
        let tail = Arc::clone(&stderr_tail);
        let sinks = config.sinks.clone();
        let name = config.name.clone();
        readers.push(tokio::spawn(async move {
            let mut parser = LogParser::new();
            let mut splitter = LineSplitter::default();
            let mut buf = vec![0u8; 8192];
            let mut handle = |line: &[u8]| {
                let record = parser.parse(line);
                if let Ok(mut t) = tail.lock() {
                    if t.len() == STDERR_TAIL {
                        t.pop_front();
                    }
                    t.push_back(super::handshake::clip(&record.message, 300));
                }
                sinks.emit_log(&name, &record);
            };
            loop {
                let n = match err.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                splitter.feed(&buf[..n], &mut handle);
            }
            splitter.finish(&mut handle);
        }));
    }
    Ok(Child {
        pid,
        exit,
        first_line: Some(first_line),
        stderr_tail,
        readers,
        armed: true,
    })
}

impl Child {
    /// The last stderr lines, oldest first.
    pub(crate) fn tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Waits until `exit` reports an exit, at most `limit`. Returns the exit text if it came.
pub(crate) async fn wait_exit(
    exit: &mut watch::Receiver<Option<String>>,
    limit: Duration,
) -> Option<String> {
    let waited = match tokio::time::timeout(limit, exit.wait_for(Option::is_some)).await {
        Ok(Ok(v)) => v.clone(),
        _ => None,
    };
    waited.or_else(|| exit.borrow().clone())
}

/// Waits for the pipe readers to reach EOF, at most `limit` (a grandchild may hold the pipes).
/// Readers still running then are aborted.
pub(crate) async fn wait_readers(readers: Vec<JoinHandle<()>>, limit: Duration) {
    let aborts: Vec<_> = readers.iter().map(JoinHandle::abort_handle).collect();
    let all = async {
        for r in readers {
            let _ = r.await;
        }
    };
    if tokio::time::timeout(limit, all).await.is_err() {
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
    }
}
