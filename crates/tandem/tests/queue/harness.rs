//! Real peers for the queue tests: a private redis-server and `python -m tandem consume`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command};

use std::time::Instant;
use tandem_testkit::RedisServer;

use crate::support;

/// The Python app every test consumes with.
pub const SERVICE: &str = r#"
import os, time, asyncio
import redis
import tandem

app = tandem.App("qtest")
_r = {}

def r():
    pid = os.getpid()
    if pid not in _r:
        _r.clear()
        _r[pid] = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _r[pid]

@app.handler("record")
def record(p, ctx):
    c = r()
    c.sadd("handled", p["n"])
    c.incr("calls")
    return {"n": p["n"]}

@app.handler("add")
def add(p, ctx):
    return {"sum": p["a"] + p["b"], "attempt": ctx.attempt, "tp": ctx.traceparent,
            "left": ctx.remaining()}

@app.handler("boom")
def boom(p):
    raise ValueError("boom " + str(p["n"]))

@app.handler("slow")
def slow(p, ctx):
    r().incr("slow_calls")
    time.sleep(p["s"])
    r().sadd("handled", p["n"])
    return {"slept": p["s"]}
"#;

/// A private redis-server (`tandem_testkit::RedisServer`: `$TANDEM_REDIS_SERVER` or the apt
/// one) with its own data dir, removed on drop.
pub struct Redis {
    pub port: u16,
    pub dir: PathBuf,
    server: RedisServer,
}

impl Redis {
    pub fn start(name: &str, aof: bool) -> Redis {
        let dir = support::test_dir(&format!("redis-{name}"));
        let server = if aof {
            RedisServer::start_aof(&dir)
        } else {
            RedisServer::start(&dir)
        };
        Redis {
            port: server.port(),
            dir,
            server,
        }
    }

    /// Kills it (SIGKILL) and starts it again on the same port and data dir.
    pub fn restart(&mut self) {
        self.server.restart();
    }

    pub fn kill(&mut self) {
        self.server.kill();
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("redis connection")
    }

    pub fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        cmd.query(&mut self.conn()).expect("redis query")
    }

    /// What the server supports (its `INFO server`).
    pub fn features(&self) -> tandem::queue::Features {
        let info: String = self.query(redis::cmd("INFO").arg("server"));
        tandem::queue::Features::from_info(&info)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.server.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `python -m tandem consume service:app` as a real subprocess; killed (with its children)
/// on drop.
pub struct Consumer {
    pub child: Child,
    pub log: PathBuf,
}

impl Consumer {
    pub fn start(dir: &std::path::Path, redis: &Redis, stream: &str, args: &[&str]) -> Consumer {
        support::write_file(dir, "service.py", SERVICE);
        let log = dir.join(format!(
            "consumer-{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(support::python())
            .args(["-m", "tandem", "consume", "service:app", "--redis"])
            .arg(redis.url())
            .args(["--stream", stream, "--group", "g"])
            .args(args)
            .current_dir(dir)
            .env("PYTHONPATH", dir)
            .env("REDIS_URL", redis.url())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("python -m tandem consume");
        Consumer { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The consumer processes under the supervising parent.
    pub fn workers(&self) -> Vec<u32> {
        support::children(self.pid())
            .into_iter()
            .filter(|p| support::alive(*p))
            .collect()
    }

    pub fn signal(&self, sig: &str, pid: u32) {
        let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        for w in self.workers() {
            self.signal("-KILL", w);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.kill();
    }
}
