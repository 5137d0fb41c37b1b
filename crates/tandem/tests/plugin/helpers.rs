//! Builds the Go plugins once per run, and captures plugin output.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tandem::plugin::{Builder, Channel, Host, LogRecord};

use crate::support;

/// The path of a Go plugin from `interop/go/plugins/<name>`, built once per test run.
pub fn go_plugin(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = support::test_dir("go-plugins");
        let src = support::repo_root().join("interop/go");
        for plugin in ["echo", "misbehave"] {
            let status = std::process::Command::new("go")
                .args(["build", "-o"])
                .arg(dir.join(plugin))
                .arg(format!("./plugins/{plugin}"))
                .current_dir(&src)
                .status()
                .expect("run `go build` (is Go installed?)");
            assert!(status.success(), "go build ./plugins/{plugin} failed");
        }
        dir
    });
    dir.join(name)
}

/// Output a plugin sent, captured through the host's sinks.
#[derive(Clone, Default)]
pub struct Captured {
    pub logs: Arc<Mutex<Vec<LogRecord>>>,
    pub stdio: Arc<Mutex<Vec<(Channel, String)>>>,
}

impl Captured {
    pub fn attach(&self, builder: Builder) -> Builder {
        let logs = Arc::clone(&self.logs);
        let stdio = Arc::clone(&self.stdio);
        builder
            .on_log(move |r| logs.lock().unwrap().push(r.clone()))
            .on_stdio(move |c, d| {
                stdio
                    .lock()
                    .unwrap()
                    .push((c, String::from_utf8_lossy(d).into_owned()))
            })
    }

    pub fn has_stdio(&self, channel: Channel, text: &str) -> bool {
        self.stdio
            .lock()
            .unwrap()
            .iter()
            .any(|(c, d)| *c == channel && d.contains(text))
    }

    pub fn has_log(&self, pred: impl Fn(&LogRecord) -> bool) -> bool {
        self.logs.lock().unwrap().iter().any(pred)
    }
}

/// The echo plugin's builder with test-friendly timeouts.
pub fn echo() -> Builder {
    Host::builder(go_plugin("echo"))
        .start_timeout(Duration::from_secs(20))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// The misbehaving plugin in `mode`, writing its pid to `<dir>/pid`.
pub fn misbehave(mode: &str, dir: &std::path::Path) -> Builder {
    Host::builder(go_plugin("misbehave"))
        .env("MISBEHAVE_MODE", mode)
        .env("MISBEHAVE_PIDFILE", dir.join("pid"))
        .auto_mtls(false)
        .start_timeout(Duration::from_secs(2))
}

/// Reads the pid a misbehaving plugin wrote.
pub fn read_pid(dir: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Asserts the process is gone and reaped (no zombie left).
pub async fn assert_gone(pid: u32) {
    assert!(
        support::wait_until(Duration::from_secs(10), || support::state(pid).is_none()).await,
        "process {pid} still exists (state {:?})",
        support::state(pid)
    );
}
