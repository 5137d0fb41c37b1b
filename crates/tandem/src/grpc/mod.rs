//! The gRPC transport: a balanced, health-aware client for `python -m tandem serve`.
//!
//! Choose it for AI inference and real-time calls above ~100 calls/s with a latency budget
//! under ~100 ms (see `docs/choosing.md`). The Python side runs N processes behind one port
//! with `SO_REUSEPORT`; [`Client`] keeps several HTTP/2 connections per endpoint so all of them
//! get work, watches `grpc.health.v1` on every connection, sends each call to the less loaded
//! of two healthy connections, propagates the deadline as `grpc-timeout`, and retries
//! idempotent calls within a budget. [`Client`] is a `tower::Service<tandem::Request>` for the
//! generic call (`tandem.v1.Call/Invoke`); [`Inference`] is the typed `InferenceService` client.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tandem::Error> {
//! use std::time::Duration;
//! use tandem::{Payload, Request};
//!
//! let client = tandem::grpc::Client::from_uri("grpc://127.0.0.1:50051")?;
//! let resp = client
//!     .invoke(Request::new("echo", Payload::raw("hi")).with_timeout(Duration::from_millis(50)))
//!     .await?;
//! assert_eq!(resp.payload().bytes().as_ref(), b"hi");
//! # Ok(()) }
//! ```
//!
//! # Caveats
//!
//! - **Cancellation**: dropping a call's future (or a [`PredictStream`]) resets the HTTP/2
//!   stream; the server sees CANCELLED, and its handler keeps running unless it checks
//!   `ctx`/`context.is_active()`.
//! - **Connections pin to processes**: with fewer connections than server processes some
//!   processes get no calls; a killed process fails only the calls in flight on its
//!   connections, which are then ejected until their health watch reconnects.
//! - **No healthy connection**: a call waits for one until its deadline while some connection
//!   has never been healthy (the client or the server is starting), and fails at once with
//!   `Unavailable` once every connection has lost the server it was healthy with, so a caller
//!   with a fallback does not spend its deadline on a server that is gone.
//! - **Keepalive**: HTTP/2 pings are off by default because grpcio answers pings more frequent
//!   than its `grpc.http2.min_ping_interval_without_data_ms` (5 min) with GOAWAY
//!   `too_many_pings`; see [`Builder::http2_keepalive`].
//! - **Retries** only happen for idempotent calls (an idempotency key, or
//!   [`Builder::idempotent_method`]); a non-idempotent call that fails mid-flight is not
//!   repeated, because the handler may have run.

mod balance;
mod classify;
mod client;
mod config;
mod events;
mod health;
mod inference;
mod retry;

pub use client::{Client, ResponseFuture};
pub use config::{
    Builder, DEFAULT_CONNECTIONS_PER_ENDPOINT, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_TIMEOUT,
};
pub use inference::{Inference, PredictChunk, PredictResponse, PredictStream};
