//! The go-plugin handshake line: `CORE|APPVER|NETWORK|ADDR|PROTOCOL|SERVERCERT[|MUX]`.
//!
//! Parsed exactly as go-plugin's `Client.Start` does (trim, split on `|`, at least four fields),
//! but stricter where go-plugin panics or guesses: a certificate nobody asked for, and `netrpc`,
//! are clear errors.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;

/// The only core protocol version go-plugin has ever had.
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// Where the plugin listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A unix domain socket path.
    Unix(PathBuf),
    /// A TCP address, `host:port` (go-plugin prints `127.0.0.1:PORT`).
    Tcp(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// A validated handshake line.
#[derive(Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The negotiated application protocol version (one of those the host offered).
    pub app_version: u32,
    /// Where to connect.
    pub address: Address,
    /// The plugin's DER certificate (AutoMTLS), if it printed one.
    pub server_cert: Option<Vec<u8>>,
    /// The optional 7th field (gRPC broker multiplexing), if present.
    pub multiplex: Option<bool>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("app_version", &self.app_version)
            .field("address", &self.address)
            .field("server_cert_len", &self.server_cert.as_ref().map(Vec::len))
            .field("multiplex", &self.multiplex)
            .finish()
    }
}

/// Why a handshake line was refused. The `Display` text says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Fewer than four `|`-separated fields: not a handshake at all.
    #[error("unrecognized remote plugin message: {line:?} (a plugin prints `1|VERSION|unix|PATH|grpc|` first on stdout; make sure nothing else writes to stdout before it)")]
    Unrecognized {
        /// The offending line.
        line: String,
    },
    /// The core protocol version is not 1.
    #[error("incompatible core API version with plugin: plugin version {got:?}, core version 1 (the plugin usually only needs to be rebuilt with a current go-plugin)")]
    CoreVersion {
        /// What the plugin sent.
        got: String,
    },
    /// The app protocol version is not one the host offered.
    #[error("incompatible API version with plugin: plugin version {got:?}, host versions {offered:?} (update the plugin or the host so they share a version)")]
    AppVersion {
        /// What the plugin sent.
        got: String,
        /// What the host offered.
        offered: Vec<u32>,
    },
    /// A network other than `unix` or `tcp`.
    #[error("unknown address type {network:?} in handshake (go-plugin only uses unix or tcp)")]
    Network {
        /// What the plugin sent.
        network: String,
    },
    /// A protocol other than `grpc` (including the Go-only `netrpc`).
    #[error("unsupported plugin protocol {protocol:?}: supported [grpc] (netrpc is Go's net/rpc and only Go hosts speak it; serve the plugin with GRPCServer)")]
    Protocol {
        /// What the plugin sent (`netrpc` when the field is missing).
        protocol: String,
    },
    /// The certificate field is not base64 of a DER certificate.
    #[error("invalid server certificate in handshake: {reason}")]
    Certificate {
        /// What was wrong.
        reason: String,
    },
    /// The plugin printed a certificate although the host did not ask for TLS.
    #[error("plugin printed a TLS certificate although AutoMTLS is off (enable auto_mtls on the host, or make the plugin emit a certificate only when PLUGIN_CLIENT_CERT is set)")]
    UnexpectedCertificate,
    /// AutoMTLS is on but the plugin printed no certificate.
    #[error("AutoMTLS is on but the plugin printed no certificate (the plugin must serve TLS when PLUGIN_CLIENT_CERT is set, or turn auto_mtls off on the host)")]
    MissingCertificate,
}

/// Parses and validates one handshake line against what the host offered.
///
/// # Errors
///
/// A [`HandshakeError`] for each rule go-plugin enforces, plus a certificate that was not asked
/// for (go-plugin's host panics on it) and a missing one when AutoMTLS is on.
pub fn parse(line: &str, offered: &[u32], auto_mtls: bool) -> Result<Handshake, HandshakeError> {
    let trimmed = line.trim();
    let parts: Vec<&str> = trimmed.split('|').collect();
    if parts.len() < 4 {
        return Err(HandshakeError::Unrecognized {
            line: clip(trimmed, 200),
        });
    }
    if parts[0].parse::<u32>().ok() != Some(CORE_PROTOCOL_VERSION) {
        return Err(HandshakeError::CoreVersion {
            got: parts[0].to_owned(),
        });
    }
    let app_version = parts[1]
        .parse::<u32>()
        .ok()
        .filter(|v| offered.contains(v))
        .ok_or_else(|| HandshakeError::AppVersion {
            got: parts[1].to_owned(),
            offered: offered.to_vec(),
        })?;
    let address = match parts[2] {
        "unix" => Address::Unix(PathBuf::from(parts[3])),
        "tcp" => Address::Tcp(parts[3].to_owned()),
        other => {
            return Err(HandshakeError::Network {
                network: other.to_owned(),
            })
        }
    };
    let protocol = parts.get(4).copied().unwrap_or("netrpc");
    if protocol != "grpc" {
        return Err(HandshakeError::Protocol {
            protocol: protocol.to_owned(),
        });
    }
    let cert_field = parts.get(5).copied().unwrap_or("");
    let server_cert = match (cert_field.is_empty(), auto_mtls) {
        (true, false) => None,
        (true, true) => return Err(HandshakeError::MissingCertificate),
        (false, false) => return Err(HandshakeError::UnexpectedCertificate),
        (false, true) => Some(decode_cert(cert_field)?),
    };
    let multiplex = parts
        .get(6)
        .map(|f| matches!(*f, "true" | "1" | "t" | "T" | "TRUE" | "True"));
    Ok(Handshake {
        app_version,
        address,
        server_cert,
        multiplex,
    })
}

/// Decodes the certificate field: standard base64 with or without `=` padding, then checks
/// that the bytes are one X.509 certificate.
fn decode_cert(field: &str) -> Result<Vec<u8>, HandshakeError> {
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(field.trim_end_matches('='))
        .map_err(|e| HandshakeError::Certificate {
            reason: format!("not base64 ({e})"),
        })?;
    x509_parser::parse_x509_certificate(&der).map_err(|e| HandshakeError::Certificate {
        reason: format!("not a DER X.509 certificate ({e})"),
    })?;
    Ok(der)
}

/// Shortens `s` to at most `max` characters for error messages.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_plugin_line_without_tls() {
        let h = parse("1|1|unix|/tmp/plugin951979109|grpc|\n", &[1], false).unwrap();
        assert_eq!(h.app_version, 1);
        assert_eq!(h.address, Address::Unix("/tmp/plugin951979109".into()));
        assert_eq!(h.server_cert, None);
        assert_eq!(h.multiplex, None);
    }

    #[test]
    fn five_field_tcp_line_and_crlf() {
        let h = parse("1|3|tcp|127.0.0.1:1234|grpc\r\n", &[1, 3], false).unwrap();
        assert_eq!(h.app_version, 3);
        assert_eq!(h.address, Address::Tcp("127.0.0.1:1234".into()));
    }

    #[test]
    fn seventh_field_is_read() {
        let h = parse("1|1|unix|/s|grpc||true", &[1], false).unwrap();
        assert_eq!(h.multiplex, Some(true));
        let h = parse("1|1|unix|/s|grpc||false", &[1], false).unwrap();
        assert_eq!(h.multiplex, Some(false));
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = parse("hello world", &[1], false).unwrap_err();
        assert!(e.to_string().contains("unrecognized remote plugin message"));
        let e = parse("2|1|unix|/s|grpc|", &[1], false).unwrap_err();
        assert!(matches!(e, HandshakeError::CoreVersion { .. }));
        let e = parse("1|4|unix|/s|grpc|", &[1, 2], false).unwrap_err();
        assert!(e.to_string().contains("host versions [1, 2]"));
        let e = parse("1|1|pipe|/s|grpc|", &[1], false).unwrap_err();
        assert!(matches!(e, HandshakeError::Network { .. }));
        let e = parse("1|1|unix|/s|netrpc|", &[1], false).unwrap_err();
        assert!(e.to_string().contains("netrpc"));
        let e = parse("1|1|unix|/s", &[1], false).unwrap_err();
        assert!(
            matches!(e, HandshakeError::Protocol { .. }),
            "missing protocol means netrpc"
        );
        let e = parse("1|1|unix|/s|grpc|QUJD", &[1], false).unwrap_err();
        assert_eq!(e, HandshakeError::UnexpectedCertificate);
        let e = parse("1|1|unix|/s|grpc|", &[1], true).unwrap_err();
        assert_eq!(e, HandshakeError::MissingCertificate);
        let e = parse("1|1|unix|/s|grpc|!!!", &[1], true).unwrap_err();
        assert!(e.to_string().contains("not base64"));
        let e = parse("1|1|unix|/s|grpc|QUJD", &[1], true).unwrap_err();
        assert!(e.to_string().contains("not a DER X.509"));
    }

    #[test]
    fn certificate_with_and_without_padding() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = cert.cert.der().to_vec();
        let padded = base64::engine::general_purpose::STANDARD.encode(&der);
        let unpadded = padded.trim_end_matches('=').to_owned();
        for field in [padded, unpadded] {
            let h = parse(&format!("1|1|unix|/s|grpc|{field}"), &[1], true).unwrap();
            assert_eq!(h.server_cert.as_deref(), Some(der.as_slice()));
        }
    }
}
