//! Dialing a plugin: a tonic channel over a unix socket or TCP, with or without TLS.

use std::io;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint, Uri};

use super::handshake::Address;

/// A failure to (re)connect to the plugin: no request bytes were sent on that connection.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the plugin: {0}")]
pub(crate) struct DialError(#[source] pub(crate) io::Error);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn dial(
    address: &Address,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> io::Result<Box<dyn Io>> {
    let stream: Box<dyn Io> = match address {
        Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        Address::Tcp(addr) => {
            let s = tokio::net::TcpStream::connect(addr.as_str()).await?;
            s.set_nodelay(true)?;
            Box::new(s)
        }
    };
    match tls {
        None => Ok(stream),
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from("localhost")
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Ok(Box::new(tls.connect(name, stream).await?))
        }
    }
}

/// Connects (eagerly) and returns a channel that redials the same address on reconnect.
pub(crate) async fn connect(
    address: Address,
    tls: Option<rustls::ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let tls = tls.map(|c| tokio_rustls::TlsConnector::from(Arc::new(c)));
    let address = Arc::new(address);
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let address = Arc::clone(&address);
            let tls = tls.clone();
            async move {
                dial(&address, tls.as_ref())
                    .await
                    .map(TokioIo::new)
                    .map_err(DialError)
            }
        }))
        .await
}

/// A channel that connects on first use (for reattach, where the plugin may be gone).
pub(crate) fn connect_lazy(address: Address) -> Channel {
    let address = Arc::new(address);
    Endpoint::from_static("http://localhost").connect_with_connector_lazy(tower::service_fn(
        move |_: Uri| {
            let address = Arc::clone(&address);
            async move {
                dial(&address, None)
                    .await
                    .map(TokioIo::new)
                    .map_err(DialError)
            }
        },
    ))
}
