//! Endpoints on the command line: `pool:MODULE:APP`, `script:PATH`, `plugin:COMMAND…`,
//! `grpc://HOST:PORT[,HOST:PORT…]` and `redis://HOST:PORT/STREAM`.
//!
//! Each kind lives in its own file with a `parse` and a `connect`; adding a transport is one
//! file and one match arm here. `connect` turns an endpoint into a boxed
//! `tower::Service<Request>`, so the verbs never know which transport they talk to.

mod grpc;
mod plugin;
mod pool;
pub(crate) mod redis;
mod script;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use tandem::{Codec, Error, Request, Response};
use tower::util::BoxCloneService;

/// Any transport client, boxed: what the verbs call.
pub(crate) type CallService = BoxCloneService<Request, Response, Error>;

/// The accepted forms, for error messages.
const FORMS: &str =
    "pool:MODULE:APP, script:PATH, plugin:COMMAND, grpc://HOST:PORT or redis://HOST:PORT/STREAM";

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A pool of `python -m tandem worker MODULE:APP` workers.
    Pool(pool::Target),
    /// A one-shot `@tandem.script` file.
    Script(script::Target),
    /// A go-plugin plugin started with this command line.
    Plugin(plugin::Target),
    /// A `python -m tandem serve` gRPC server.
    Grpc(grpc::Target),
    /// A Redis Streams stream served by `python -m tandem consume`.
    Redis(redis::Target),
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("pool:") {
            pool::parse(rest).map(Endpoint::Pool)
        } else if let Some(rest) = s.strip_prefix("script:") {
            script::parse(rest).map(Endpoint::Script)
        } else if let Some(rest) = s.strip_prefix("plugin:") {
            plugin::parse(rest).map(Endpoint::Plugin)
        } else if let Some(rest) = s.strip_prefix("grpc://") {
            grpc::parse(rest).map(Endpoint::Grpc)
        } else if let Some(rest) = s.strip_prefix("redis://") {
            redis::parse(rest).map(Endpoint::Redis)
        } else {
            Err(format!("unknown endpoint {s:?} (accepted: {FORMS})"))
        }
    }
}

impl Endpoint {
    /// `pool:APP`: a pool of `python -m tandem worker APP`.
    pub(crate) fn pool(app: &str) -> Self {
        Endpoint::Pool(pool::Target {
            app: app.to_owned(),
        })
    }

    /// One process per call: `python -m tandem run APP` (the method comes from the request).
    pub(crate) fn app_script(app: &str) -> Self {
        let args = ["-m", "tandem", "run", app].map(str::to_owned);
        Endpoint::Script(script::Target {
            args: args.to_vec(),
        })
    }

    /// A go-plugin plugin started with `command`.
    pub(crate) fn plugin(command: Vec<String>) -> Self {
        Endpoint::Plugin(plugin::Target { command })
    }

    /// A gRPC server at `host:port`.
    pub(crate) fn grpc(host: &str, port: u16) -> Self {
        Endpoint::Grpc(grpc::Target {
            addrs: vec![(host.to_owned(), port)],
        })
    }
}

/// Settings from the command line that endpoints may use.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Pool size.
    pub(crate) workers: usize,
    /// The interpreter (default: `tandem::process::default_python()`).
    pub(crate) python: PathBuf,
    /// Working directory of started processes.
    pub(crate) cwd: Option<PathBuf>,
    /// Per-call timeout.
    pub(crate) timeout: Duration,
    /// Payload codec.
    pub(crate) codec: Codec,
    /// Calls a pool may queue (bench sets it to its concurrency so callers queue rather than
    /// being answered `Overloaded`); `None` keeps the pool's default.
    pub(crate) max_queue: Option<usize>,
    /// Plugin handshake cookie (`None`: tandem's default).
    pub(crate) cookie: Option<(String, String)>,
    /// Plugin app protocol version offered (`None`: 1).
    pub(crate) version: Option<u32>,
    /// Plugin AutoMTLS.
    pub(crate) tls: bool,
}

/// An open endpoint: the service to call, and how to close it.
pub(crate) struct Connection {
    /// The transport's name (`pool`, `script`, ...).
    pub(crate) transport: &'static str,
    /// The client.
    pub(crate) service: CallService,
    closer: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(transport: &'static str, service: CallService) -> Self {
        Self {
            transport,
            service,
            closer: None,
        }
    }

    fn with_closer(mut self, closer: impl Future<Output = ()> + Send + 'static) -> Self {
        self.closer = Some(Box::pin(closer));
        self
    }

    /// Shuts the endpoint down (stops pool workers) and waits for it.
    pub(crate) async fn close(self) {
        if let Some(c) = self.closer {
            c.await;
        }
    }
}

/// Why an endpoint could not be opened.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The transport failed to start (e.g. workers did not come up).
    Start(Error),
    /// The peer is not there: the error, and what to start (a hint naming the endpoint).
    Absent(Box<Error>, String),
}

/// `Absent` with `hint` when `e` says the peer is unreachable, else `Start`.
fn absent_or_start(e: Error, hint: impl FnOnce() -> String) -> ConnectError {
    if matches!(e, Error::Unavailable { .. } | Error::Timeout { .. }) {
        ConnectError::Absent(Box::new(e), hint())
    } else {
        ConnectError::Start(e)
    }
}

/// Opens `endpoint`.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    opts: &Options,
) -> Result<Connection, ConnectError> {
    match endpoint {
        Endpoint::Pool(t) => pool::connect(t, opts).await,
        Endpoint::Script(t) => script::connect(t, opts),
        Endpoint::Plugin(t) => plugin::connect(t, opts).await,
        Endpoint::Grpc(t) => grpc::connect(t, opts).await,
        Endpoint::Redis(t) => redis::connect(t, opts).await,
    }
}

/// Splits `HOST:PORT` and checks the port.
fn host_port(s: &str, form: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("missing port in {s:?} (format is {form})"))?;
    if host.is_empty() {
        return Err(format!("missing host in {s:?} (format is {form})"));
    }
    let port = port
        .parse()
        .map_err(|_| format!("invalid port {port:?} (format is {form}, port 1-65535)"))?;
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert!(matches!("pool:svc.mod:app".parse(), Ok(Endpoint::Pool(_))));
        assert!(matches!("script:./s.py".parse(), Ok(Endpoint::Script(_))));
        assert!(matches!(
            "plugin:./adapter --flag".parse(),
            Ok(Endpoint::Plugin(_))
        ));
        assert!(matches!(
            "grpc://127.0.0.1:50051".parse(),
            Ok(Endpoint::Grpc(_))
        ));
        assert!(matches!(
            "redis://127.0.0.1:6379/jobs".parse(),
            Ok(Endpoint::Redis(_))
        ));
    }

    #[test]
    fn unknown_scheme_lists_the_accepted_forms() {
        let err = "http://x".parse::<Endpoint>().unwrap_err();
        assert!(err.contains("unknown endpoint \"http://x\""), "{err}");
        assert!(err.contains("pool:MODULE:APP, script:PATH"), "{err}");
    }

    #[test]
    fn host_port_says_what_is_wrong() {
        assert_eq!(host_port("h:1", "F").unwrap(), ("h".to_owned(), 1));
        assert!(host_port("h", "F").unwrap_err().contains("missing port"));
        assert!(host_port(":1", "F").unwrap_err().contains("missing host"));
        assert!(host_port("h:99999", "F")
            .unwrap_err()
            .contains("invalid port"));
    }
}
