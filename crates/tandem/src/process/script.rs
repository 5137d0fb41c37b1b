//! One-shot scripts: start a process per call, payload on stdin, result on stdout.
//!
//! A [`Script`] runs `python script.py` (or any command) once per call. The payload is written
//! to the child's stdin with the script's codec, the encoded result is read from its stdout, and
//! its stderr is kept (the last lines) for error messages. Python scripts use the
//! `@tandem.script` helper, which speaks this contract for them:
//!
//! | channel | direction | content |
//! |---|---|---|
//! | stdin | Rust → script | the payload, encoded with `TANDEM_CODEC` |
//! | stdout, exit 0 | script → Rust | the result, encoded with `TANDEM_CODEC` |
//! | stdout, exit ≠ 0 | script → Rust | optionally `{"error": {"kind","type","message","traceback"}}` (always JSON) |
//! | stderr | script → Rust | logs and stray prints; the tail goes into errors |
//! | env `TANDEM_CODEC` | Rust → script | `json`, `msgpack` or `raw` |
//! | env `TANDEM_METHOD` | Rust → script | the call's method name |
//! | env `TANDEM_TIMEOUT_S` | Rust → script | seconds left before the deadline, when there is one |
//! | env `TRACEPARENT` | Rust → script | the caller's W3C trace context, when set |
//!
//! Each call costs a process start (tens of milliseconds for Python, more per import): route
//! anything hot to a [`Pool`](super) instead. See `docs/guide-process.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tandem::Error> {
//! use std::time::Duration;
//! use tandem::process::Script;
//! use tandem::Payload;
//!
//! let script = Script::builder("python3")
//!     .python_script("scripts/report.py")
//!     .timeout(Duration::from_secs(10))
//!     .build();
//! let answer = script.run(Payload::json(&serde_json::json!({"day": "2026-11-23"})).unwrap()).await?;
//! let value: serde_json::Value = answer.decode().unwrap();
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! | what happened | error |
//! |---|---|
//! | the timeout (or the request's deadline) passed | [`Error::Timeout`]; the whole process group was killed |
//! | the script reported a structured error (`@tandem.script` does on an exception) | [`Error::Remote`] (or the reported kind, e.g. `BadRequest`) |
//! | the program could not start, exited non-zero without a structured error, or died of a signal | [`Error::Unavailable`], with the exit status and the last stderr lines |
//! | stdout was larger than `max_output`, or not valid for the codec | [`Error::Protocol`] |
//!
//! # Caveats
//!
//! * **Process groups.** Each run leads its own process group. On timeout the group gets SIGTERM,
//!   then SIGKILL after the grace period, and the leader is reaped. When the leader exits, any
//!   member still running (a forgotten background helper) is killed too. A grandchild that calls
//!   `setsid()` escapes the group.
//! * **Cancellation.** Dropping the future of a running call kills the group with SIGKILL; tokio
//!   reaps the leader in the background (best-effort, like `kill_on_drop`).

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::capture::{read_capped, read_tail, stderr_tail, Captured};
use super::group::{own_group, stop_group, GroupGuard};
use crate::call::{Error, Request, Response, Transport};
use crate::codec::{Codec, Payload};

/// Default per-call timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on captured stdout.
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// Default time between SIGTERM and SIGKILL on timeout.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(500);

/// A one-shot script: one process per call. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Script {
    inner: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_clear: bool,
    cwd: Option<PathBuf>,
    timeout: Duration,
    grace: Duration,
    max_output: usize,
    codec: Codec,
}

/// Builds a [`Script`]; see [`Script::builder`].
#[derive(Debug, Clone)]
pub struct ScriptBuilder {
    config: Config,
}

impl Script {
    /// A builder for a script run as `program`. Add arguments with [`ScriptBuilder::args`], or
    /// use [`Script::python`] for a Python file.
    pub fn builder(program: impl Into<PathBuf>) -> ScriptBuilder {
        ScriptBuilder {
            config: Config {
                program: program.into(),
                args: Vec::new(),
                env: Vec::new(),
                env_clear: false,
                cwd: None,
                timeout: DEFAULT_TIMEOUT,
                grace: DEFAULT_GRACE,
                max_output: DEFAULT_MAX_OUTPUT,
                codec: Codec::Json,
            },
        }
    }

    /// A builder for `default_python() path`: a Python file run by tandem's default interpreter.
    pub fn python(path: impl Into<PathBuf>) -> ScriptBuilder {
        Script::builder(super::default_python()).python_script(path)
    }

    /// The command line, for messages: program and arguments.
    pub fn command_line(&self) -> String {
        let mut s = self.inner.program.display().to_string();
        for a in &self.inner.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// The codec payloads are sent and results read with.
    pub fn codec(&self) -> Codec {
        self.inner.codec
    }

    /// Runs the script once with `payload` (method `main`, no deadline beyond the timeout).
    ///
    /// # Errors
    ///
    /// See the [module docs](self): `Timeout`, `Remote`, `Unavailable` or `Protocol`.
    pub async fn run(&self, payload: Payload) -> Result<Payload, Error> {
        self.call_request(Request::new("main", payload))
            .await
            .map(Response::into_payload)
    }

    /// Runs the script once for `req`: its method goes in `TANDEM_METHOD`, its traceparent in
    /// `TRACEPARENT`, and its deadline (if earlier) shortens the timeout.
    ///
    /// # Errors
    ///
    /// See the [module docs](self).
    pub async fn call_request(&self, req: Request) -> Result<Response, Error> {
        run_once(self.inner.clone(), req).await
    }
}

impl ScriptBuilder {
    /// Appends arguments to the command line.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.config
            .args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs the Python file `path` with [`default_python()`](super::default_python) (replacing
    /// the program given to `builder`, which is kept only if it already names an interpreter).
    pub fn python_script(mut self, path: impl Into<PathBuf>) -> Self {
        let program = self.config.program.to_string_lossy().to_string();
        let looks_like_python = std::path::Path::new(&program)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("python"));
        if !looks_like_python {
            self.config.program = super::default_python();
        }
        self.config.args.push(path.into().into_os_string());
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.config
            .env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Starts the child with an empty environment (plus what [`env`](Self::env) sets and the
    /// `TANDEM_*` variables).
    pub fn env_clear(mut self) -> Self {
        self.config.env_clear = true;
        self
    }

    /// Runs the child in `dir` (default: the caller's working directory).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cwd = Some(dir.into());
        self
    }

    /// Per-call timeout (default 30 s); a request's earlier deadline wins.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Time between SIGTERM and SIGKILL when a call times out (default 500 ms).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.config.grace = grace;
        self
    }

    /// Cap on the captured stdout in bytes (default 16 MiB); past it the call fails.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.config.max_output = bytes;
        self
    }

    /// The codec of stdin and stdout (default json). Payloads in another codec are transcoded.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.config.codec = codec;
        self
    }

    /// Builds the script. Nothing is started until a call.
    pub fn build(self) -> Script {
        Script {
            inner: Arc::new(self.config),
        }
    }
}

// ===== impl Service =====

impl tower::Service<Request> for Script {
    type Response = Response;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        Box::pin(run_once(self.inner.clone(), req))
    }
}

// ===== one run =====

fn command(cfg: &Config, req: &Request, timeout: Duration) -> Command {
    let mut cmd = Command::new(&cfg.program);
    cmd.args(&cfg.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if cfg.env_clear {
        cmd.env_clear();
    }
    cmd.envs(cfg.env.iter().map(|(k, v)| (k, v)));
    cmd.env("TANDEM_CODEC", cfg.codec.as_str())
        .env("TANDEM_METHOD", req.method())
        .env("TANDEM_TIMEOUT_S", format!("{:.3}", timeout.as_secs_f64()));
    match &req.metadata().traceparent {
        Some(tp) => cmd.env("TRACEPARENT", tp),
        None => cmd.env_remove("TRACEPARENT"),
    };
    if let Some(dir) = &cfg.cwd {
        cmd.current_dir(dir);
    }
    own_group(&mut cmd);
    cmd
}

async fn run_once(cfg: Arc<Config>, req: Request) -> Result<Response, Error> {
    let started = Instant::now();
    let timeout = req
        .metadata()
        .remaining()
        .map_or(cfg.timeout, |left| left.min(cfg.timeout));
    let target = format!(
        "{} ({})",
        req.method(),
        Script { inner: cfg.clone() }.command_line()
    );
    let input = match req.payload().codec() {
        c if c == cfg.codec => req.payload().bytes().clone(),
        _ => req
            .payload()
            .transcode(cfg.codec)
            .map_err(|e| Error::bad_request(Transport::Script, &target, e.to_string()))?
            .into_bytes(),
    };

    let mut child = command(&cfg, &req, timeout)
        .spawn()
        .map_err(|e| Error::Unavailable {
            transport: Transport::Script,
            target: target.clone(),
            reason: format!("cannot start {}: {e}", cfg.program.display()),
            source: Some(Box::new(e)),
        })?;
    let mut guard = GroupGuard::new(child.id());
    let pid = child.id().unwrap_or(0);
    let target = format!("{target} pid {pid}");

    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::unavailable(
            Transport::Script,
            target,
            "stdio pipes missing",
        ));
    };
    let writer = async move {
        // A script that does not read its input closes the pipe: that is its business.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
    };
    let max = cfg.max_output;
    let out_fut = read_capped(stdout, max);
    let err_fut = read_tail(stderr);
    tokio::pin!(writer, out_fut, err_fut);
    let mut written = false;
    let mut out: Option<Captured> = None;
    let mut err: Option<Vec<u8>> = None;

    // Wait for the leader to exit within the timeout, draining all three pipes meanwhile (a child
    // blocked on a full stderr pipe would otherwise never exit); stop early past the output cap.
    let outcome = tokio::time::timeout(timeout, async {
        loop {
            tokio::select! {
                status = child.wait() => break Outcome::Exited(status),
                () = &mut writer, if !written => written = true,
                c = &mut out_fut, if out.is_none() => {
                    let overflowed = matches!(c, Captured::Overflow);
                    out = Some(c);
                    if overflowed {
                        break Outcome::Overflow;
                    }
                }
                e = &mut err_fut, if err.is_none() => err = Some(e),
            }
        }
    })
    .await
    .unwrap_or(Outcome::TimedOut);

    // Whatever happened, no member of the group may outlive the call: stop it (TERM, grace,
    // KILL) or, if the leader exited, kill leftovers so the pipes close.
    stop_group(&mut child, pid, cfg.grace).await;
    guard.disarm();
    // The pipes close once the group is gone; a process that left the group (setsid) and keeps
    // them open must not hang the call, so the drain is bounded too.
    let drain = async {
        let out = match out.take() {
            Some(c) => c,
            None => out_fut.await,
        };
        let err = match err.take() {
            Some(e) => e,
            None => err_fut.await,
        };
        (out, err)
    };
    let (out, err) = tokio::time::timeout(cfg.grace.max(Duration::from_millis(100)), drain)
        .await
        .unwrap_or_else(|_| {
            (
                Captured::Failed(std::io::Error::other(
                    "stdout stayed open after the process group was killed (a child that left \
                     the group with setsid still holds it)",
                )),
                Vec::new(),
            )
        });
    let tail = stderr_tail(&err);

    match outcome {
        Outcome::TimedOut => Err(Error::Timeout {
            transport: Transport::Script,
            target,
            elapsed: started.elapsed(),
        }),
        Outcome::Overflow => Err(overflow(target, max, &tail)),
        Outcome::Exited(Err(e)) => Err(Error::Unavailable {
            transport: Transport::Script,
            target,
            reason: format!("cannot wait for the process: {e}"),
            source: Some(Box::new(e)),
        }),
        Outcome::Exited(Ok(status)) => match out {
            Captured::Overflow => Err(overflow(target, max, &tail)),
            Captured::Failed(e) => Err(Error::Unavailable {
                transport: Transport::Script,
                target,
                reason: format!("cannot read stdout: {e}"),
                source: Some(Box::new(e)),
            }),
            Captured::Bytes(bytes) => finish(&cfg, target, status, bytes, &tail),
        },
    }
}

enum Outcome {
    Exited(std::io::Result<ExitStatus>),
    Overflow,
    TimedOut,
}

/// Turns an exited script's status and stdout into the call's result.
fn finish(
    cfg: &Config,
    target: String,
    status: ExitStatus,
    bytes: Vec<u8>,
    tail: &str,
) -> Result<Response, Error> {
    if status.success() {
        if let Err(e) = validate(cfg.codec, &bytes) {
            return Err(Error::protocol(
                Transport::Script,
                target,
                format!(
                    "stdout is not valid {} ({e}); print logs to stderr, not stdout{}",
                    cfg.codec,
                    quote_tail(tail)
                ),
            ));
        }
        return Ok(Response::new(Payload::new(cfg.codec, bytes)).with_header("exit_status", "0"));
    }
    if let Some(err) = structured_error(&target, &bytes) {
        return Err(err);
    }
    Err(Error::unavailable(
        Transport::Script,
        target,
        format!("{}{}", describe_status(status), quote_tail(tail)),
    ))
}

/// Checks that the bytes are one well-formed value of `codec` (raw is anything).
fn validate(codec: Codec, bytes: &[u8]) -> Result<(), String> {
    match codec {
        Codec::Raw => Ok(()),
        Codec::Json if bytes.iter().all(u8::is_ascii_whitespace) => Err("empty output".to_owned()),
        Codec::Msgpack if bytes.is_empty() => Err("empty output".to_owned()),
        c => c
            .decode::<serde::de::IgnoredAny>(bytes)
            .map(|_| ())
            .map_err(|e| e.detail().to_owned()),
    }
}

/// Reads `{"error": {"kind","type","message","traceback"}}` from a failed script's stdout.
fn structured_error(target: &str, bytes: &[u8]) -> Option<Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let err = value.get("error")?.as_object()?;
    let field = |k: &str| err.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let kind = match field("kind") {
        "" => "remote",
        k => k,
    };
    Some(Error::from_wire(
        Transport::Script,
        target,
        kind,
        field("type"),
        field("message"),
        field("traceback"),
    ))
}

/// "exited with status 3" or "killed by signal 9 (SIGKILL)".
fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with status {code} without reporting an error");
    }
    match status.signal() {
        Some(sig) => format!("killed by signal {sig}{}", signal_name(sig)),
        None => format!("ended with {status}"),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => " (SIGKILL: out of memory?)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGSEGV => " (SIGSEGV: a crash in native code)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGINT => " (SIGINT)",
        _ => "",
    }
}

fn overflow(target: String, max: usize, tail: &str) -> Error {
    Error::protocol(
        Transport::Script,
        target,
        format!(
            "stdout exceeded max_output of {max} bytes; the script was killed (raise \
             ScriptBuilder::max_output or write less){}",
            quote_tail(tail)
        ),
    )
}

fn quote_tail(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last stderr: {tail:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_errors_keep_their_fields() {
        let out = br#"{"error": {"kind": "remote", "type": "ValueError", "message": "bad", "traceback": "tb"}}"#;
        match structured_error("m", out) {
            Some(Error::Remote {
                exc_type,
                message,
                traceback,
                ..
            }) => assert_eq!(
                (&*exc_type, &*message, &*traceback),
                ("ValueError", "bad", "tb")
            ),
            other => panic!("unexpected {other:?}"),
        }
        assert!(structured_error("m", b"not json").is_none());
        assert!(structured_error("m", b"{\"ok\": 1}").is_none());
    }

    #[test]
    fn validation_rejects_garbage_and_empty_output() {
        assert!(validate(Codec::Json, b"{\"a\": 1}\n").is_ok());
        assert!(validate(Codec::Json, b"hello {").is_err());
        assert!(validate(Codec::Json, b"  \n").is_err());
        assert!(validate(Codec::Raw, b"").is_ok());
        assert!(validate(Codec::Msgpack, &[0x81, 0xa1, b'a', 0x01]).is_ok());
        assert!(validate(Codec::Msgpack, &[0xc1]).is_err());
    }
}
