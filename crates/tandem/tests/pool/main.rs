//! Integration tests of `tandem::process::Pool` against real Python workers.
//!
//! Each file is one scenario; `apps.rs` holds the Python apps (including "evil" ones that
//! break the wire) and helpers. Every test has a deadline and ends with no zombie children.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

#[path = "../support/mod.rs"]
mod support;

mod apps;
mod bad_frames;
mod codecs;
mod crashes;
mod errors;
mod handshake;
mod lifecycle;
mod logs;
#[cfg(feature = "metrics")]
mod observe;
mod parent_death;
mod payloads;
mod pipelining;
mod policy;
mod recycle;
mod scheduling;
mod timeout;
mod vectors;
