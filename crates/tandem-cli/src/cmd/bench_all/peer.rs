//! The processes `bench --all` starts itself (the gRPC server, the consumer, redis-server):
//! each leads its own process group, logs to a file, and is stopped (SIGTERM to the group, then
//! SIGKILL) when dropped, so nothing outlives the command, also on errors and on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long a peer may take to exit after SIGTERM before it gets SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// A started process; stopped with its whole group on drop.
#[derive(Debug)]
pub(super) struct Peer {
    child: Child,
    /// What it is, for messages (`the gRPC server`).
    what: &'static str,
    log: PathBuf,
}

impl Peer {
    /// Starts `program ARGS` in `cwd` as the leader of a new process group, its output going to
    /// `log`.
    pub(super) fn start(
        what: &'static str,
        program: &Path,
        args: &[String],
        cwd: &Path,
        log: PathBuf,
    ) -> anyhow::Result<Peer> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {what} ({})", program.display()))?;
        tracing::debug!(what, pid = child.id(), "started");
        Ok(Peer { child, what, log })
    }

    /// Its exit status, if it has exited.
    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// "the gRPC server exited (exit status: 2) …" with the last lines of its log.
    pub(super) fn died(&self, status: ExitStatus) -> anyhow::Error {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n  ");
        anyhow::anyhow!(
            "{} exited ({status}) before it answered; last lines of {}:\n  {tail}\n\
             check the app spec (MODULE:APP), --cwd and --python",
            self.what,
            self.log.display()
        )
    }

    fn signal_group(&self, signal: &str) {
        // `kill -SIG -- -PGID` signals the group without unsafe code in this crate.
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.signal_group("-TERM");
            let deadline = Instant::now() + GRACE;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.exited().is_none() {
                tracing::warn!(what = self.what, "ignored SIGTERM; killing its group");
            }
        }
        // Helpers of an exited leader may remain in its group: Linux keeps the pgid while any
        // member lives, so this cannot hit a stranger.
        self.signal_group("-KILL");
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free loopback TCP port (bound, then released for the peer to take).
pub(super) fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `name` found in one of `$PATH`'s directories.
pub(super) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
