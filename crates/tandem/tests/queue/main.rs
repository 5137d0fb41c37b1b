//! Queue transport tests against a real redis-server and real Python consumers.
//!
//! `harness.rs` starts the peers; one file per concern: `results.rs` (publish_and_wait,
//! errors, reply stream), `overload.rs` (backpressure), `crash.rs` (kill -9, Redis restart,
//! SIGTERM), `admin.rs` (stats, dead letters, replay), `vectors.rs` (shared wire vectors).

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod crash;
mod harness;
#[cfg(feature = "metrics")]
mod observe;
mod overload;
mod policy;
mod redis8;
mod results;
mod vectors;
