//! `grpc://HOST:PORT`: a `python -m tandem serve` gRPC server.

use super::{host_port, unsupported, ConnectError, Connection, Options};

/// The server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
}

pub(super) fn parse(rest: &str) -> Result<Target, String> {
    let (host, port) = host_port(rest.trim_end_matches('/'), "grpc://HOST:PORT")?;
    Ok(Target { host, port })
}

pub(super) fn connect(t: &Target, _opts: &Options) -> Result<Connection, ConnectError> {
    Err(unsupported("grpc", format!("grpc://{}:{}", t.host, t.port)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn takes_host_and_port() {
        assert_eq!(parse("localhost:50051").unwrap().port, 50051);
        assert!(parse("localhost").unwrap_err().contains("grpc://HOST:PORT"));
    }
}
