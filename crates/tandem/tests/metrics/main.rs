//! The metrics layer and registry: exact values after a known sequence of calls through the
//! guard stack over a scripted stub (the metrics logic is under test, not a transport), and
//! the `/metrics` endpoint served over real HTTP on loopback, read back by two real
//! Prometheus text parsers (the `prometheus-parse` crate and Python's `prometheus_client`).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

mod exposition;
mod values;
