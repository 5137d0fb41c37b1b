//! A real `python -m tandem serve` on a free port, killed and reaped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support;

/// The test app served by every server (`app:app`, models in `app:models`).
const APP: &str = include_str!("app.py");

/// One `python -m tandem serve` supervisor and its worker processes.
pub struct Server {
    child: Child,
    /// The TCP port every worker shares.
    pub port: u16,
    /// The supervisor's pid (its children are the workers).
    pub pid: u32,
    /// Where the app, logs and sockets live.
    pub dir: PathBuf,
}

impl Server {
    /// Starts a server with `workers` processes and extra `serve` flags, and waits until every
    /// worker serves. Waiting only for the processes to exist let a client connect while one
    /// worker was still starting: SO_REUSEPORT then put every connection on the other one.
    pub async fn start(name: &str, workers: usize, extra: &[&str]) -> Server {
        let dir = support::test_dir(name);
        support::write_file(&dir, "app.py", APP);
        let port = support::free_port();
        let log = std::fs::File::create(dir.join("server.log")).expect("log file");
        let mut cmd = Command::new(support::python());
        cmd.args(["-m", "tandem", "serve", "app:app", "--host", "127.0.0.1"])
            .args([
                "--port",
                &port.to_string(),
                "--workers",
                &workers.to_string(),
            ])
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("spawn python -m tandem serve");
        let pid = child.id();
        let server = Server {
            child,
            port,
            pid,
            dir,
        };
        server.wait_workers(workers).await;
        let serving = || server.log().matches(": serving models").count() >= workers;
        let ok = support::wait_until(Duration::from_secs(30), serving).await;
        assert!(
            ok,
            "{workers} workers did not serve; log:\n{}",
            server.log()
        );
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The worker pids now alive.
    pub fn worker_pids(&self) -> Vec<u32> {
        support::children(self.pid)
            .into_iter()
            .filter(|p| support::alive(*p))
            .collect()
    }

    /// Waits until `n` workers exist.
    pub async fn wait_workers(&self, n: usize) -> Vec<u32> {
        let ok =
            support::wait_until(Duration::from_secs(30), || self.worker_pids().len() >= n).await;
        assert!(ok, "{n} workers did not start; log:\n{}", self.log());
        self.worker_pids()
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Sends `signal` (e.g. `TERM`, `KILL`) to one process.
    pub fn signal(pid: u32, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {pid} failed");
    }

    /// SIGTERM to the supervisor; waits for it and its workers to exit.
    pub async fn stop(mut self) {
        let workers = self.worker_pids();
        Server::signal(self.pid, "TERM");
        let exited = support::wait_until(Duration::from_secs(30), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        })
        .await;
        assert!(
            exited,
            "server did not exit on SIGTERM; log:\n{}",
            self.log()
        );
        for w in workers {
            assert!(
                support::wait_until(Duration::from_secs(10), || !support::alive(w)).await,
                "worker {w} outlived its supervisor"
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.pid)])
            .status();
        let _ = self.child.wait();
    }
}
