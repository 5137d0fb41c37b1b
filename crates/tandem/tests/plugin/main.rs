//! Integration tests of the go-plugin host against real plugins: Go plugins built with
//! hashicorp/go-plugin v1.7.0 from `interop/go/plugins`, and the Python SDK's plugin.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod bad_start;
mod lifecycle;
#[cfg(feature = "metrics")]
mod observe;
mod python;
mod supervision;
mod versions;
