//! tandem lets a Rust core service call Python safely and fast.
//!
//! Four transports sit behind one call model ([`Request`] → [`Response`] or [`Error`]), and
//! every transport client is a `tower::Service` of that model, so the same guard and metrics
//! layers wrap all of them and one Python `tandem.App` answers any of them:
//!
//! | feature | module | Python side | fits |
//! |---|---|---|---|
//! | `process` | `process` | `python -m tandem worker` / `@tandem.script` | scripts, hot small calls |
//! | `plugin` | `plugin` | `python -m tandem plugin` | adapters, hot-swappable rules |
//! | `grpc` | `grpc` | `python -m tandem serve` | AI inference, real-time calls |
//! | `queue` | `queue` | `python -m tandem consume` | reports, batch jobs, anything async |
//! | `metrics` | `metrics` | `prometheus_client` | Prometheus metrics for every call |
//!
//! `full` turns them all on; the default turns none on. The guard layers (`guard`: breaker,
//! timeout, bulkhead, fallback, retry, `guard::Policy`) and W3C trace context (`trace`) need no
//! feature.
//!
//! See `docs/choosing.md` in the repository for which transport to pick.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod bench;
pub mod call;
pub mod codec;
pub mod guard;
pub mod trace;

pub use call::{BoxError, Error, ErrorKind, Metadata, Request, Response, Transport};
pub use codec::{Codec, CodecError, Payload};

#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;

#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;

#[cfg(feature = "process")]
#[cfg_attr(docsrs, doc(cfg(feature = "process")))]
pub mod process;

#[cfg(feature = "grpc-core")]
#[cfg_attr(docsrs, doc(cfg(any(feature = "grpc", feature = "plugin"))))]
pub mod proto;

#[cfg(feature = "queue")]
#[cfg_attr(docsrs, doc(cfg(feature = "queue")))]
pub mod queue;

#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;

#[cfg(feature = "plugin")]
#[cfg_attr(docsrs, doc(cfg(feature = "plugin")))]
pub mod plugin;
