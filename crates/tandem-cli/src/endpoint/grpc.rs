//! `grpc://HOST:PORT[,HOST2:PORT2…]`: `python -m tandem serve` gRPC servers.

use std::time::Duration;

use tandem::grpc::Client;
use tower::util::BoxCloneService;

use super::{absent_or_start, host_port, ConnectError, Connection, Options};

/// The server addresses (calls are balanced over all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) addrs: Vec<(String, u16)>,
}

impl Target {
    /// The endpoint as `tandem::grpc::Client::from_uri` takes it.
    fn uri(&self) -> String {
        let parts: Vec<String> = self
            .addrs
            .iter()
            .map(|(h, p)| format!("grpc://{h}:{p}"))
            .collect();
        parts.join(",")
    }
}

const FORM: &str = "grpc://HOST:PORT[,HOST:PORT…]";

pub(super) fn parse(rest: &str) -> Result<Target, String> {
    let addrs = rest
        .split(',')
        .map(|a| {
            host_port(
                a.trim().trim_start_matches("grpc://").trim_end_matches('/'),
                FORM,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Target { addrs })
}

/// How long `connect` waits for a server to pass its health check.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn connect(t: &Target, opts: &Options) -> Result<Connection, ConnectError> {
    let client = Client::builder()
        .endpoints(t.addrs.iter().map(|(h, p)| format!("grpc://{h}:{p}")))
        .default_timeout(opts.timeout)
        .build()
        .map_err(ConnectError::Start)?;
    client
        .wait_ready(READY_TIMEOUT.min(opts.timeout))
        .await
        .map_err(|e| absent_or_start(e, || hint(t)))?;
    tracing::debug!(endpoint = %t.uri(), "grpc client ready");
    Ok(Connection::new("grpc", BoxCloneService::new(client)))
}

/// What to do when no server answers.
fn hint(t: &Target) -> String {
    let port = t.addrs.first().map_or(50051, |a| a.1);
    format!(
        "start the server (python -m tandem serve MODULE:APP --port {port}) and check the \
         address, or raise --timeout if it is slow to become healthy"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn takes_host_and_port() {
        assert_eq!(
            parse("localhost:50051").unwrap().addrs,
            vec![("localhost".to_owned(), 50051)]
        );
        assert!(parse("localhost").unwrap_err().contains("grpc://HOST:PORT"));
    }

    #[test]
    fn takes_several_servers() {
        let t = parse("a:1,grpc://b:2").unwrap();
        assert_eq!(t.addrs.len(), 2);
        assert_eq!(t.uri(), "grpc://a:1,grpc://b:2");
        assert!(parse("a:1,b").unwrap_err().contains("missing port"));
    }
}
