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

/// N Python processes speaking newline-delimited JSON, round-robin, a lock per worker.
#[derive(Clone)]
pub(crate) struct Naive {
    workers: Arc<Vec<Mutex<Pipe>>>,
    next: Arc<AtomicUsize>,
}

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
        Self {
            workers: Arc::new(workers),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }
}

service!(Naive);

impl Naive {
    fn call(&self, req: Request) -> BoxFut {
        let workers = self.workers.clone();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % workers.len();
        Box::pin(async move {
            let mut p = workers[i].lock().await;
            let mut line = format!("{{\"method\":{:?},\"payload\":", req.method()).into_bytes();
            line.extend_from_slice(req.payload().bytes());
            line.extend_from_slice(b"}\n");
            p.stdin
                .write_all(&line)
                .await
                .map_err(|e| io_err("naive", e))?;
            let mut reply = String::new();
            p.stdout
                .read_line(&mut reply)
                .await
                .map_err(|e| io_err("naive", e))?;
            let v: serde_json::Value = serde_json::from_str(&reply)
                .map_err(|e| Error::protocol(Transport::Pool, "naive", e.to_string()))?;
            let result = v
                .get("result")
                .ok_or_else(|| Error::protocol(Transport::Pool, "naive", reply.clone()))?;
            Ok(Response::new(Payload::json(result).map_err(|e| {
                Error::protocol(Transport::Pool, "naive", e.to_string())
            })?))
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
