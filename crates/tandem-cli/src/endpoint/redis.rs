//! `redis://HOST:PORT/STREAM`: a Redis stream consumed by `python -m tandem consume`.

use tandem::queue::Producer;
use tower::util::BoxCloneService;

use super::{absent_or_start, host_port, ConnectError, Connection, Options};

/// The Redis server and stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) stream: String,
}

const FORM: &str = "redis://HOST:PORT/STREAM";

pub(crate) fn parse(rest: &str) -> Result<Target, String> {
    let (addr, stream) = rest
        .split_once('/')
        .ok_or_else(|| format!("missing stream in \"redis://{rest}\" (format is {FORM})"))?;
    if stream.is_empty() {
        return Err(format!(
            "missing stream in \"redis://{rest}\" (format is {FORM})"
        ));
    }
    let (host, port) = host_port(addr, FORM)?;
    Ok(Target {
        host,
        port,
        stream: stream.to_owned(),
    })
}

impl Target {
    /// The Redis server URL, without the stream.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}:{}", self.host, self.port)
    }

    /// What to do when Redis does not answer.
    pub(crate) fn hint(&self) -> String {
        format!(
            "start Redis at {}:{} (e.g. redis-server --port {}) or fix the address in redis://HOST:PORT/STREAM",
            self.host, self.port, self.port
        )
    }
}

/// Publishes each call and waits for its result (`Producer`'s `Service` is publish-and-wait).
pub(super) async fn connect(t: &Target, opts: &Options) -> Result<Connection, ConnectError> {
    let producer = Producer::builder(t.url(), t.stream.clone())
        .wait_timeout(opts.timeout)
        .build()
        .await
        .map_err(|e| absent_or_start(e, || t.hint()))?;
    Ok(Connection::new("queue", BoxCloneService::new(producer)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn takes_host_port_and_stream() {
        let t = parse("127.0.0.1:6379/jobs").unwrap();
        assert_eq!((t.port, t.stream.as_str()), (6379, "jobs"));
        assert!(parse("127.0.0.1:6379")
            .unwrap_err()
            .contains("missing stream"));
        assert!(parse("127.0.0.1:6379/")
            .unwrap_err()
            .contains("missing stream"));
    }
}
