//! Dev-only helpers for tandem's integration tests (not published).
//!
//! [`RedisServer`] starts a private `redis-server` on a free loopback port with its own data
//! directory, and kills it on drop. The binary comes from `$TANDEM_REDIS_SERVER` (a path, e.g.
//! the Redis 8.6 that `scripts/setup-redis8.sh` builds under `.cache/`), else `redis-server`
//! on `PATH` (the apt Redis 7.0). `make test` runs the queue tests once with each.
//!
//! ```no_run
//! let dir = std::env::temp_dir().join("my-test-redis");
//! let redis = tandem_testkit::RedisServer::start(&dir);
//! let url = redis.url(); // redis://127.0.0.1:PORT
//! # let _ = url;
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the `redis-server` binary the tests use.
pub const SERVER_ENV: &str = "TANDEM_REDIS_SERVER";

/// A private redis-server (free port, own data dir, optional AOF); killed on drop.
///
/// The data directory is created if missing and left in place (the caller owns it).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    aof: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one without persistence and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When the binary is missing or the server does not answer within 10 s (the message
    /// names the binary and the log file).
    pub fn start(dir: impl AsRef<Path>) -> RedisServer {
        RedisServer::launch(dir.as_ref(), false)
    }

    /// Starts one with AOF on (`appendfsync always`), so [`RedisServer::restart`] keeps
    /// every acknowledged write.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    pub fn start_aof(dir: impl AsRef<Path>) -> RedisServer {
        RedisServer::launch(dir.as_ref(), true)
    }

    fn launch(dir: &Path, aof: bool) -> RedisServer {
        std::fs::create_dir_all(dir).expect("redis data dir");
        let mut server = RedisServer {
            port: free_port(),
            dir: dir.to_owned(),
            aof,
            child: None,
        };
        server.spawn();
        server
    }

    /// The binary used: `$TANDEM_REDIS_SERVER`, else `redis-server` on `PATH`.
    pub fn binary() -> PathBuf {
        std::env::var_os(SERVER_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
    }

    /// The binary's version `(major, minor, patch)` from `redis-server --version`
    /// (`(0, 0, 0)` when unreadable).
    pub fn version() -> (u32, u32, u32) {
        let out = Command::new(RedisServer::binary())
            .arg("--version")
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let v = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v="))
            .unwrap_or("0");
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }

    fn spawn(&mut self) {
        let binary = RedisServer::binary();
        let log = self.dir.join("redis.log");
        let mut cmd = Command::new(&binary);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): run scripts/setup-system.sh, or point ${SERVER_ENV} at a \
                 redis-server",
                binary.display()
            )
        });
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            if Instant::now() > end {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                panic!(
                    "{} did not answer PING on port {} within 10 s; {}:\n{tail}",
                    binary.display(),
                    self.port,
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills it (SIGKILL) and reaps it; [`RedisServer::restart`] starts it again.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it and starts it again on the same port and data dir (with AOF, nothing
    /// acknowledged is lost).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free at the time of the call.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_restarts_and_dies_on_drop() {
        let dir = std::env::temp_dir().join(format!("tandem-testkit-{}", std::process::id()));
        let mut r = RedisServer::start_aof(&dir);
        assert!(r.answers(), "PING on {}", r.url());
        let pid = r.pid().expect("running");
        r.restart();
        assert!(r.answers());
        assert_ne!(r.pid(), Some(pid));
        let pid = r.pid().expect("running");
        drop(r);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "redis {pid} survived drop"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
