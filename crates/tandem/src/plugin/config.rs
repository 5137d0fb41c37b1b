//! The host's builder and its defaults.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::stdio::{Channel, LogRecord, Sinks};
use super::Host;
use crate::Error;

/// tandem's default magic cookie key (shared with the Python SDK and the Go interop programs).
pub const DEFAULT_COOKIE_KEY: &str = "TANDEM_PLUGIN";
/// tandem's default magic cookie value.
pub const DEFAULT_COOKIE_VALUE: &str = "5f0b7c2e-tandem-go-plugin";

/// Everything a [`Host`] needs to start and supervise one plugin.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) clear_env: bool,
    pub(crate) current_dir: Option<PathBuf>,
    pub(crate) name: String,
    pub(crate) cookie_key: String,
    pub(crate) cookie_value: String,
    pub(crate) versions: Vec<u32>,
    pub(crate) auto_mtls: bool,
    pub(crate) min_port: u16,
    pub(crate) max_port: u16,
    pub(crate) start_timeout: Duration,
    pub(crate) kill_timeout: Duration,
    pub(crate) pipe_timeout: Duration,
    pub(crate) checksum: Option<[u8; 32]>,
    pub(crate) sinks: Sinks,
    pub(crate) restart: bool,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) restart_wait: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) watch_interval: Option<Duration>,
    pub(crate) reload_on_sighup: bool,
}

/// Environment values may hold credentials: `Debug` shows their names only.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<_> = self.env.iter().map(|(k, _)| k).collect();
        f.debug_struct("Config")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env_names", &env)
            .field("name", &self.name)
            .field("cookie_key", &self.cookie_key)
            .field("versions", &self.versions)
            .field("auto_mtls", &self.auto_mtls)
            .field("start_timeout", &self.start_timeout)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The command as a person would type it, for error messages.
    pub(crate) fn command_line(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// Builds a [`Host`]. Every option has a documented default.
///
/// | option | default |
/// |---|---|
/// | handshake cookie | `TANDEM_PLUGIN=5f0b7c2e-tandem-go-plugin` |
/// | app protocol versions offered | `[1]` |
/// | AutoMTLS | on |
/// | start timeout (spawn → healthy) | 10 s |
/// | kill: wait after Shutdown before SIGKILL of the group | 2 s |
/// | kill: wait for the stdout/stderr pipes | 2 s |
/// | restart on crash | on, backoff 100 ms doubling to 5 s |
/// | how long a call waits for a restart without a deadline | 10 s |
/// | reload: how long the old instance may drain | 30 s |
/// | output | `tracing` (targets `tandem::plugin::log`, `…::stdout`, `…::stderr`) |
#[derive(Debug)]
#[must_use]
pub struct Builder {
    pub(crate) config: Config,
}

impl Builder {
    pub(crate) fn new(program: impl Into<PathBuf>) -> Self {
        let program = program.into();
        let name = program
            .file_name()
            .map_or_else(|| "plugin".to_owned(), |n| n.to_string_lossy().into_owned());
        Builder {
            config: Config {
                program,
                args: Vec::new(),
                env: Vec::new(),
                clear_env: false,
                current_dir: None,
                name,
                cookie_key: DEFAULT_COOKIE_KEY.to_owned(),
                cookie_value: DEFAULT_COOKIE_VALUE.to_owned(),
                versions: vec![1],
                auto_mtls: true,
                min_port: 10000,
                max_port: 25000,
                start_timeout: Duration::from_secs(10),
                kill_timeout: Duration::from_secs(2),
                pipe_timeout: Duration::from_secs(2),
                checksum: None,
                sinks: Sinks::default(),
                restart: true,
                backoff_min: Duration::from_millis(100),
                backoff_max: Duration::from_secs(5),
                restart_wait: Duration::from_secs(10),
                drain_timeout: Duration::from_secs(30),
                watch_interval: None,
                reload_on_sighup: false,
            },
        }
    }

    /// Adds one argument to the plugin command.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.config.args.push(arg.into());
        self
    }

    /// Adds arguments to the plugin command.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.config.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the plugin (the host's environment is inherited too).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.config.env.push((key.into(), value.into()));
        self
    }

    /// Does not pass the host's environment on (go-plugin's `SkipHostEnv`).
    pub fn env_clear(mut self) -> Self {
        self.config.clear_env = true;
        self
    }

    /// Runs the plugin in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.current_dir = Some(dir.into());
        self
    }

    /// The name used in logs and errors (default: the program's file name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// The magic cookie the plugin checks (`key=value` in its environment).
    pub fn handshake(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.cookie_key = key.into();
        self.config.cookie_value = value.into();
        self
    }

    /// The app protocol versions offered (`PLUGIN_PROTOCOL_VERSIONS`); the plugin picks one.
    pub fn versions(mut self, versions: impl IntoIterator<Item = u32>) -> Self {
        self.config.versions = versions.into_iter().collect();
        self
    }

    /// Turns AutoMTLS on or off (`PLUGIN_CLIENT_CERT`; on by default).
    pub fn auto_mtls(mut self, on: bool) -> Self {
        self.config.auto_mtls = on;
        self
    }

    /// The TCP port range a plugin may listen on (`PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`).
    pub fn ports(mut self, min: u16, max: u16) -> Self {
        self.config.min_port = min;
        self.config.max_port = max;
        self
    }

    /// How long a start (spawn, handshake, connect, health check) may take.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.config.start_timeout = timeout;
        self
    }

    /// How long `kill` waits after the Shutdown RPC before SIGKILL of the process group.
    pub fn kill_timeout(mut self, timeout: Duration) -> Self {
        self.config.kill_timeout = timeout;
        self
    }

    /// Checks the SHA-256 of the plugin executable before every launch.
    pub fn checksum_sha256(mut self, sum: [u8; 32]) -> Self {
        self.config.checksum = Some(sum);
        self
    }

    /// Sends parsed stderr log records to `f` instead of `tracing`.
    pub fn on_log(mut self, f: impl Fn(&LogRecord) + Send + Sync + 'static) -> Self {
        self.config.sinks.log = Some(Arc::new(f));
        self
    }

    /// Sends GRPCStdio output (the plugin's stdout/stderr after the handshake) to `f`.
    pub fn on_stdio(mut self, f: impl Fn(Channel, &[u8]) + Send + Sync + 'static) -> Self {
        self.config.sinks.stdio = Some(Arc::new(f));
        self
    }

    /// Restarts a crashed plugin (default on).
    pub fn restart(mut self, on: bool) -> Self {
        self.config.restart = on;
        self
    }

    /// Restart backoff: the first delay, doubled after each failed start up to `max`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min;
        self.config.backoff_max = max.max(min);
        self
    }

    /// How long a call without a deadline waits for a restarting plugin.
    pub fn restart_wait(mut self, wait: Duration) -> Self {
        self.config.restart_wait = wait;
        self
    }

    /// How long a reload lets the old instance finish its in-flight calls.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// Reloads when the plugin executable's mtime or size changes, polling every `interval`.
    pub fn watch_file(mut self, interval: Duration) -> Self {
        self.config.watch_interval = Some(interval);
        self
    }

    /// Reloads on SIGHUP. This installs a process-wide signal handler, so it is opt-in.
    pub fn reload_on_sighup(mut self, on: bool) -> Self {
        self.config.reload_on_sighup = on;
        self
    }

    /// Starts the plugin and returns once it answers its health check.
    ///
    /// Dropping the returned future before it resolves kills the half-started plugin's process
    /// group and removes its socket directory.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the process cannot start, exits, hangs past the start timeout, fails
    /// its checksum or its health check (with the command, exit status, last stderr lines and
    /// any stdout line); `Protocol` when its handshake line is invalid.
    pub async fn start(self) -> Result<Host, Error> {
        Host::start(self.config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_environment_values() {
        let b = Builder::new("plugin").env("API_TOKEN", "s3cr3t");
        let shown = format!("{b:?}");
        assert!(shown.contains("API_TOKEN"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
