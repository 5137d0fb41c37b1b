//! The baselines the pool is measured against, as `tower::Service`s so `tandem::bench::run`
//! drives them exactly like the pool.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tandem::{Error, Payload, Request, Response, Transport};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

type BoxFut = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

/// Implements `tower::Service<Request>` for a baseline with an inherent `call(&self, req)`.
macro_rules! service {
    ($t:ty) => {
        impl tower::Service<Request> for $t {
            type Response = Response;
            type Error = Error;
            type Future = BoxFut;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: Request) -> BoxFut {
                <$t>::call(self, req)
            }
        }
    };
}

fn spawn(python: &Path, script: &Path) -> (Child, ChildStdin, ChildStdout) {
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baseline worker starts");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    (child, stdin, stdout)
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::unavailable(Transport::Pool, what, e.to_string())
}

struct Pipe {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

// ===== floor =====

/// One Python process echoing `u32 length + body` frames.
#[derive(Clone)]
pub(crate) struct Floor {
    pipe: Arc<Mutex<Pipe>>,
}

impl Floor {
    pub(crate) async fn start(python: &Path, script: &Path) -> Self {
        let (child, stdin, stdout) = spawn(python, script);
        Self {
            pipe: Arc::new(Mutex::new(Pipe {
                _child: child,
                stdin,
                stdout: BufReader::new(stdout),
            })),
        }
    }
}

service!(Floor);

impl Floor {
    fn call(&self, req: Request) -> BoxFut {
        let pipe = self.pipe.clone();
        Box::pin(async move {
            let mut p = pipe.lock().await;
            let body = req.payload().bytes();
            let mut frame = Vec::with_capacity(4 + body.len());
            frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
            frame.extend_from_slice(body);
            p.stdin
                .write_all(&frame)
                .await
                .map_err(|e| io_err("floor", e))?;
            let n = p.stdout.read_u32().await.map_err(|e| io_err("floor", e))?;
            let mut out = vec![0u8; n as usize];
            p.stdout
                .read_exact(&mut out)
                .await
                .map_err(|e| io_err("floor", e))?;
            Ok(Response::new(Payload::new(req.payload().codec(), out)))
        })
    }
}

// ===== naive =====

/// Workers taken in turn, whether busy or not.
struct RoundRobin<T> {
    workers: Arc<Vec<T>>,
    next: Arc<AtomicUsize>,
}

impl<T> Clone for RoundRobin<T> {
    fn clone(&self) -> Self {
        Self {
            workers: self.workers.clone(),
            next: self.next.clone(),
        }
    }
}

impl<T> RoundRobin<T> {
    fn new(workers: Vec<T>) -> Self {
        Self {
            workers: Arc::new(workers),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// All the workers, and the index of the next one's turn.
    fn next(&self) -> (Arc<Vec<T>>, usize) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        (self.workers.clone(), i)
    }
}

/// N Python processes speaking newline-delimited JSON, round-robin, a lock per worker.
#[derive(Clone)]
pub(crate) struct Naive(RoundRobin<Mutex<Pipe>>);

impl Naive {
    pub(crate) async fn start(python: &Path, script: &Path, n: usize) -> Self {
        let workers = (0..n)
            .map(|_| {
                let (child, stdin, stdout) = spawn(python, script);
                Mutex::new(Pipe {
                    _child: child,
                    stdin,
                    stdout: BufReader::new(stdout),
                })
            })
            .collect();
        Self(RoundRobin::new(workers))
    }
}

service!(Naive);

impl Naive {
    fn call(&self, req: Request) -> BoxFut {
        let (workers, i) = self.0.next();
        Box::pin(async move {
            let mut p = workers[i].lock().await;
            p.stdin
                .write_all(&naive_line(&req))
                .await
                .map_err(|e| io_err("naive", e))?;
            let mut reply = String::new();
            p.stdout
                .read_line(&mut reply)
                .await
                .map_err(|e| io_err("naive", e))?;
            naive_reply(&reply)
        })
    }
}

/// A call as the naive worker reads it: one JSON line.
fn naive_line(req: &Request) -> Vec<u8> {
    let mut line = format!("{{\"method\":{:?},\"payload\":", req.method()).into_bytes();
    line.extend_from_slice(req.payload().bytes());
    line.extend_from_slice(b"}\n");
    line
}

/// The naive worker's answer line, `{"result": ...}`, as a response.
fn naive_reply(reply: &str) -> Result<Response, Error> {
    let bad = |detail: String| Error::protocol(Transport::Pool, "naive", detail);
    let v: serde_json::Value = serde_json::from_str(reply).map_err(|e| bad(e.to_string()))?;
    let result = v.get("result").ok_or_else(|| bad(reply.to_owned()))?;
    Ok(Response::new(
        Payload::json(result).map_err(|e| bad(e.to_string()))?,
    ))
}

// ===== naive, threaded =====

/// The naive design as threaded code writes it: each call on its own (blocking-pool) thread,
/// round-robin, and a `std::sync::Mutex` per worker. That lock is unfair: a thread that has
/// just released it may take it again before a waiter wakes, so one caller can wait many turns.
#[derive(Clone)]
pub(crate) struct NaiveThreads(RoundRobin<std::sync::Mutex<SyncPipe>>);

struct SyncPipe {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Drop for SyncPipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NaiveThreads {
    pub(crate) fn start(python: &Path, script: &Path, n: usize) -> Self {
        let workers = (0..n)
            .map(|_| {
                let mut child = std::process::Command::new(python)
                    .arg(script)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("baseline worker starts");
                let stdin = child.stdin.take().expect("stdin");
                let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
                std::sync::Mutex::new(SyncPipe {
                    child,
                    stdin,
                    stdout,
                })
            })
            .collect();
        Self(RoundRobin::new(workers))
    }
}

service!(NaiveThreads);

impl NaiveThreads {
    fn call(&self, req: Request) -> BoxFut {
        use std::io::{BufRead, Write};

        let (workers, i) = self.0.next();
        Box::pin(async move {
            let reply = tokio::task::spawn_blocking(move || {
                let mut p = workers[i].lock().unwrap_or_else(|e| e.into_inner());
                p.stdin.write_all(&naive_line(&req))?;
                let mut reply = String::new();
                p.stdout.read_line(&mut reply)?;
                Ok::<_, std::io::Error>(reply)
            })
            .await
            .map_err(|e| Error::unavailable(Transport::Pool, "naive-threads", e.to_string()))?
            .map_err(|e| io_err("naive-threads", e))?;
            naive_reply(&reply)
        })
    }
}

// ===== bare spawn =====

/// `python3 script.py` per call, stdin in, stdout out, nothing else.
#[derive(Clone)]
pub(crate) struct BareSpawn {
    python: PathBuf,
    script: PathBuf,
}

impl BareSpawn {
    pub(crate) fn new(python: &Path, script: &Path) -> Self {
        Self {
            python: python.to_owned(),
            script: script.to_owned(),
        }
    }
}

service!(BareSpawn);

impl BareSpawn {
    fn call(&self, req: Request) -> BoxFut {
        let (python, script) = (self.python.clone(), self.script.clone());
        Box::pin(async move {
            let (mut child, mut stdin, mut stdout) = spawn(&python, &script);
            stdin
                .write_all(req.payload().bytes())
                .await
                .map_err(|e| io_err("bare", e))?;
            drop(stdin);
            let mut out = Vec::new();
            stdout
                .read_to_end(&mut out)
                .await
                .map_err(|e| io_err("bare", e))?;
            child.wait().await.map_err(|e| io_err("bare", e))?;
            Ok(Response::new(Payload::new(req.payload().codec(), out)))
        })
    }
}
