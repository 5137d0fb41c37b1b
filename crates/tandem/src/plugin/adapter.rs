//! A typed client of `adapter.ExternalAdapter` over the same plugin connection.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::client::{classify, Host};
use crate::proto::adapter::{external_adapter_client::ExternalAdapterClient, CallRequest, Empty};
use crate::{Error, Transport};

/// Header names whose values never appear in `Debug` output or logs.
const SENSITIVE: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "apikey",
    "cookie",
    "set-cookie",
    "x-auth-token",
];

/// Whether a header's value must be redacted: the names above, and any name containing
/// `token`, `secret`, `password` or `key`.
pub fn is_sensitive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SENSITIVE.contains(&lower.as_str())
        || ["token", "secret", "password", "key", "session"]
            .iter()
            .any(|w| lower.contains(w))
}

/// One `ExternalAdapter.Call`: which external API method and endpoint, the payload, headers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdapterRequest {
    /// The adapter method (e.g. `charge`).
    pub method: String,
    /// The external endpoint (e.g. a URL path).
    pub endpoint: String,
    /// The request body.
    pub payload: Vec<u8>,
    /// Headers for the external API (credentials included; redacted in `Debug`).
    pub headers: BTreeMap<String, String>,
    /// How long the call may take (default: no deadline).
    pub timeout: Option<Duration>,
}

impl fmt::Debug for AdapterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterRequest")
            .field("method", &self.method)
            .field("endpoint", &self.endpoint)
            .field("payload_len", &self.payload.len())
            .field("headers", &Redacted(&self.headers))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Shows headers with sensitive values replaced by `<redacted>`.
pub struct Redacted<'a>(pub &'a BTreeMap<String, String>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown: &str = if is_sensitive(k) { "<redacted>" } else { v };
                (k, shown)
            }))
            .finish()
    }
}

/// The adapter's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterResponse {
    /// The external API's status code.
    pub status_code: i32,
    /// The response body.
    pub data: Vec<u8>,
    /// The adapter's error text, empty on success.
    pub error: String,
}

/// A typed `ExternalAdapter` client over a [`Host`]'s connection (it follows restarts and
/// reloads).
#[derive(Debug, Clone)]
pub struct AdapterClient {
    host: Host,
}

impl Host {
    /// A typed `ExternalAdapter` client over this plugin.
    pub fn adapter(&self) -> AdapterClient {
        AdapterClient { host: self.clone() }
    }
}

impl AdapterClient {
    /// Calls `ExternalAdapter.Call`.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the plugin is down, `Timeout` past the request's timeout, and the
    /// other kinds as [`Host::call`] maps gRPC statuses.
    pub async fn call(&self, request: AdapterRequest) -> Result<AdapterResponse, Error> {
        let deadline = request.timeout.map(|t| Instant::now() + t);
        let lease = self.host.acquire(deadline, &request.method).await?;
        let inst = &lease.instance;
        let target = format!(
            "adapter {} {} on plugin {} (pid {})",
            request.method, request.endpoint, inst.name, inst.pid
        );
        tracing::debug!(plugin = %inst.name, request = ?request, "adapter call");
        let started = Instant::now();
        let mut req = tonic::Request::new(CallRequest {
            method: request.method,
            endpoint: request.endpoint,
            payload: request.payload,
            headers: request.headers.into_iter().collect(),
        });
        if let Some(t) = request.timeout {
            req.set_timeout(t);
        }
        let mut client = ExternalAdapterClient::new(inst.channel.clone());
        let call = client.call(req);
        let reply = match deadline {
            Some(d) => tokio::time::timeout_at(d, call)
                .await
                .map_err(|_| Error::Timeout {
                    transport: Transport::Plugin,
                    target: target.clone(),
                    elapsed: started.elapsed(),
                })?,
            None => call.await,
        };
        let r = reply
            .map_err(|s| {
                let passed = deadline.is_some_and(|d| Instant::now() >= d);
                classify(s, target, started.elapsed(), inst.exited(), passed)
            })?
            .into_inner();
        Ok(AdapterResponse {
            status_code: r.status_code,
            data: r.data,
            error: r.error,
        })
    }

    /// Calls `ExternalAdapter.HealthCheck`; returns `(healthy, message)`.
    ///
    /// # Errors
    ///
    /// As [`AdapterClient::call`].
    pub async fn health_check(&self) -> Result<(bool, String), Error> {
        let lease = self.host.acquire(None, "HealthCheck").await?;
        let inst = &lease.instance;
        let started = Instant::now();
        let target = format!(
            "adapter health check on plugin {} (pid {})",
            inst.name, inst.pid
        );
        let r = ExternalAdapterClient::new(inst.channel.clone())
            .health_check(Empty {})
            .await
            .map_err(|s| classify(s, target, started.elapsed(), inst.exited(), false))?
            .into_inner();
        Ok((r.healthy, r.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_credentials() {
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".to_owned(), "Bearer s3cr3t-token".to_owned());
        headers.insert("X-Api-Key".to_owned(), "k-123456".to_owned());
        headers.insert("X-Session-Id".to_owned(), "sess-9".to_owned());
        headers.insert("Accept".to_owned(), "application/json".to_owned());
        let req = AdapterRequest {
            method: "charge".into(),
            endpoint: "/v1/charges".into(),
            payload: b"{}".to_vec(),
            headers,
            timeout: None,
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("k-123456"), "{shown}");
        assert!(!shown.contains("sess-9"), "{shown}");
        assert!(shown.contains("application/json"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
