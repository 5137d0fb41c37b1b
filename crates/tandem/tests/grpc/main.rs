//! Integration tests of `tandem::grpc` against a real multi-process `python -m tandem serve`.
//!
//! Every test starts its own server(s) on a free port and stops them at the end; `Drop` kills
//! the whole process group if a test fails halfway.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

mod server;

mod calls;
mod failover;
mod inference;
#[cfg(feature = "metrics")]
mod policy;

use std::time::Duration;

use tandem::{Payload, Request};

/// A client of `uris` with test-friendly health timings.
pub fn client(uris: &[String], connections: usize) -> tandem::grpc::Client {
    tandem::grpc::Client::builder()
        .endpoints(uris.iter().cloned())
        .connections_per_endpoint(connections)
        .health_interval(Duration::from_millis(200))
        .default_timeout(Duration::from_secs(10))
        .build()
        .expect("build client")
}

/// A JSON request.
pub fn json(method: &str, value: serde_json::Value) -> Request {
    Request::new(method, Payload::json(&value).unwrap())
}

/// The `pid` a handler or model answered with.
pub fn pid_of(value: &serde_json::Value) -> u32 {
    value["pid"].as_u64().expect("pid in the answer") as u32
}
