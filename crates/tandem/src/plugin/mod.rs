//! The plugin transport: a host for HashiCorp go-plugin plugins, with supervision and hot
//! reload.
//!
//! [`Host`] starts a plugin (a Go plugin built with go-plugin, or a Python one served by
//! `python -m tandem plugin module:app`), validates its handshake line exactly as go-plugin
//! does, connects over its unix socket or TCP port (AutoMTLS by default), drains its output
//! into `tracing` or callbacks, and calls `tandem.v1.Call/Invoke` on it as a
//! `tower::Service<Request>`. Beyond go-plugin it restarts a crashed plugin with backoff and
//! swaps in a new instance on [`Host::reload`] (or SIGHUP, or a changed executable) without
//! failing calls. Choose it for plugins, external API adapters and hot-swappable rules; see
//! `docs/choosing.md`. The wire protocol is described in `docs/internals/plugin.md`.
//!
//! # Examples
//!
//! ```no_run
//! # async fn run() -> Result<(), tandem::Error> {
//! use std::time::Duration;
//! use tandem::plugin::Host;
//! use tandem::{Payload, Request};
//!
//! let host = Host::builder("./plugins/echo")
//!     .start_timeout(Duration::from_secs(5))
//!     .start()
//!     .await?;
//! host.ping().await?;
//! let reply = host
//!     .call(Request::new("echo", Payload::raw(&b"hi"[..])).with_timeout(Duration::from_secs(1)))
//!     .await?;
//! assert_eq!(&reply.payload().bytes()[..], b"hi");
//! host.reload().await?; // zero failed calls
//! host.kill().await;
//! # Ok(()) }
//! ```
//!
//! # Caveats
//!
//! - **Child lifetime.** Each plugin runs in its own process group. `kill` sends the Shutdown
//!   RPC, waits up to 2 s, then SIGKILLs the whole group (so a plugin started through `sh -c`
//!   without `exec` is cleaned up too) and reaps it. Dropping the last `Host` clone SIGKILLs
//!   the group without the Shutdown RPC. A group member that moved to another group (setsid)
//!   escapes.
//! - **TLS guarantee.** With AutoMTLS the host trusts exactly the certificate the plugin printed
//!   on its stdout (pinned byte for byte) and checks that the TLS handshake was signed by its
//!   key (P-521 included). No CA path or name checks are done: the pin is the trust anchor,
//!   and the stdout pipe, private to host and plugin, is what makes it trustworthy.
//! - **Cancellation.** Dropping a call future abandons the RPC (gRPC cancels it on the plugin).
//!   A plugin that crashes mid-call fails that call with `Unavailable`; only a call that never
//!   left the host (dial failed while the plugin was dying) is sent again to the next instance.
//! - **Ordering.** Calls are concurrent HTTP/2 streams; no ordering between them.
//! - **Reattach** attaches without the handshake: no TLS, no logs, no restarts.

mod adapter;
mod client;
mod config;
mod conn;
mod handshake;
mod instance;
#[cfg(feature = "metrics")]
mod observe;
mod process;
mod reattach;
mod reload;
mod stdio;
mod supervisor;
mod sys;
mod tls;

pub use adapter::{is_sensitive, AdapterClient, AdapterRequest, AdapterResponse, Redacted};
pub use client::Host;
pub use config::{Builder, DEFAULT_COOKIE_KEY, DEFAULT_COOKIE_VALUE};
pub use handshake::{
    parse as parse_handshake, Address, Handshake, HandshakeError, CORE_PROTOCOL_VERSION,
};
pub use reattach::ReattachConfig;
pub use stdio::{
    Channel, Level, LogCallback, LogParser, LogRecord, Sinks, StdioCallback, MAX_LINE,
};
