//! The Python apps the pool tests run, and shared helpers.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Mutex, Once};
use std::time::Duration;

use tandem::process::{Pool, PoolBuilder};
use tandem::{Error, Payload, Request};

use crate::support;

/// An app with one handler per behaviour the tests need.
pub const SVC: &str = r#"
import asyncio, os, signal, sys, time
import tandem

app = tandem.App("svc")

@app.handler("echo")
def echo(p, ctx):
    return p

@app.handler("aecho")
async def aecho(p, ctx):
    await asyncio.sleep(0)
    return p

@app.handler("ctx")
def ctx_info(p, ctx):
    return {
        "traceparent": ctx.traceparent,
        "idempotency_key": ctx.idempotency_key,
        "metadata": dict(ctx.metadata),
        "remaining": ctx.remaining(),
        "transport": ctx.transport,
    }

@app.handler("pid")
def pid(p):
    return os.getpid()

@app.handler("spawn_child")
def spawn_child(p):
    import subprocess
    child = subprocess.Popen(["sleep", "300"])
    with open(p["path"], "w") as f:
        f.write(str(child.pid))
    if p["then"] == "exit":
        os._exit(1)
    time.sleep(300)

@app.handler("stray_write")
def stray_write(p):
    import threading
    def later():
        time.sleep(0.2)
        os.write(3, b"STRAY BYTES FROM A BACKGROUND THREAD")
    threading.Thread(target=later, daemon=True).start()
    return "returned"

@app.handler("fds")
def fds(p):
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return out

@app.handler("boom")
def boom(p):
    raise ValueError("boom: " + str(p))

@app.handler("print")
def stray_print(p):
    print("stray print from the handler", p)
    return "printed"

@app.handler("spew")
def spew(p):
    line = "e" * 199 + "\n"
    for _ in range(2000):  # 400 KB, far over a 64 KiB pipe buffer
        sys.stderr.write(line)
    sys.stderr.flush()
    return "spewed"

@app.handler("sleep")
def sleep(p):
    time.sleep(p)
    return p

@app.handler("gate")
def gate(path):
    while not os.path.exists(path):
        time.sleep(0.01)
    return "opened"

@app.handler("touch")
def touch(path):
    with open(path, "w") as f:
        f.write("ran")
    return "touched"

@app.handler("blob")
def blob(n):
    return b"x" * n

@app.handler("exit")
def exit_(code):
    sys.stderr.write("about to exit on purpose\n")
    sys.stderr.flush()
    os._exit(code)

@app.handler("signal")
def signal_(signum):
    sys.stderr.write("about to die by signal on purpose\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signum)
    time.sleep(10)

@app.handler("garbage")
def garbage(p):
    # A plausible length, then bytes that are not a tandem header.
    os.write(3, (24).to_bytes(4, "big") + b"NOT A TANDEM FRAME AT ALL")
    time.sleep(30)

@app.handler("huge_length")
def huge_length(p):
    os.write(3, b"GARBAGE!GARBAGE!")
    time.sleep(30)

@app.handler("truncated")
def truncated(p):
    os.write(3, (100).to_bytes(4, "big") + b"TD\x01\x03")
    os._exit(0)
"#;

static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

struct Capture;

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(format!("{} ", event.metadata().target()));
        event.record(&mut f);
        if std::env::var_os("TANDEM_TEST_LOG").is_some() {
            eprintln!("{}", f.0);
        }
        LOGS.lock().unwrap().push(f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Installs the log-capturing subscriber (once per test binary).
pub fn capture_logs() {
    INSTALL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Capture);
    });
}

/// Whether a captured log line contains all of `needles`.
pub fn logged(needles: &[&str]) -> bool {
    LOGS.lock()
        .unwrap()
        .iter()
        .any(|l| needles.iter().all(|n| l.contains(n)))
}

/// A test directory holding `svc.py`.
pub fn svc_dir(test: &str) -> PathBuf {
    capture_logs();
    let dir = support::test_dir(test);
    support::write_file(&dir, "svc.py", SVC);
    dir
}

/// A builder for `svc:app` in `dir` with the test interpreter.
pub fn builder(dir: &std::path::Path) -> PoolBuilder {
    Pool::builder("svc:app")
        .python(support::python())
        .cwd(dir.to_path_buf())
        .workers(1)
        .start_timeout(Duration::from_secs(20))
}

/// Runs `fut` with a deadline, failing the test when it passes.
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("test deadline passed")
}

/// A JSON request.
pub fn json(method: &str, value: serde_json::Value) -> Request {
    Request::new(method, Payload::json(&value).unwrap())
}

/// Calls `method` with a JSON value and decodes the JSON answer.
pub async fn call_json(
    pool: &Pool,
    method: &str,
    value: serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let resp = pool.call(json(method, value)).await?;
    Ok(resp.payload().to_json_value().unwrap())
}

/// Shuts the pool down and checks that no zombie is left.
pub async fn finish(pool: Pool) {
    within(30, pool.shutdown()).await;
    drop(pool);
    support::assert_no_zombies().await;
}

/// Polls until the pool replaced a worker and is back to `n` ready workers.
pub async fn back_to_size(pool: &Pool, n: usize) {
    assert!(
        support::wait_until(Duration::from_secs(20), || {
            let s = pool.stats();
            s.workers == n && s.restarts >= 1
        })
        .await,
        "pool did not return to {n} workers: {:?}",
        pool.stats()
    );
}

/// Asserts that `text` contains every one of `needles`.
pub fn assert_contains(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{text:?} does not contain {n:?}");
    }
}
