//! Prometheus metrics for every call into Python, and for the guard layers and transports.
//!
//! A [`Registry`] is created by the application and passed in: tandem keeps no global one.
//! Every call through a [`MetricsLayer`] (or a [`Policy`](crate::guard::Policy) given the
//! registry as its observer) is counted in
//!
//! - `python_call_duration_seconds{method,status,transport}` (histogram, buckets
//!   0.1 ms … 1 s: [`CALL_BUCKETS`]) and
//! - `python_call_total{method,status,transport}`,
//!
//! where `status` is `ok` or the error kind in snake_case (`timeout`, `unavailable`,
//! `overloaded`, `breaker_open`, `remote`, `bad_request`, `protocol`). The `method` label
//! keeps the first 100 distinct methods ([`Registry::with_method_limit`]); later ones are
//! counted as `other`, so a caller cannot blow up the series count.
//!
//! The guard layers report through the registry's [`Observer`](crate::guard::Observer)
//! implementation (breaker state and transitions, rejections, retries, fallbacks), and the
//! transports update typed handles: [`Registry::pool`], [`Registry::plugin`],
//! [`Registry::queue`], [`Registry::grpc`]. [`Registry::encode`] renders the OpenMetrics text
//! exposition and [`serve`] answers `GET /metrics` with it. `docs/observability.md` lists every
//! metric and ready PromQL queries.
//!
//! ```
//! use tandem::metrics::{MetricsLayer, Registry};
//! use tandem::{Payload, Request, Response, Transport};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let registry = Registry::new();
//! let python = service_fn(|_req: Request| async { Ok::<_, tandem::Error>(Response::default()) });
//! let svc = MetricsLayer::new(&registry, Transport::Pool).layer(python);
//! svc.oneshot(Request::new("score", Payload::raw(""))).await.unwrap();
//! assert!(registry
//!     .encode()
//!     .contains(r#"python_call_total{method="score",status="ok",transport="pool"} 1"#));
//! # }
//! ```

mod families;
mod handles;
mod layer;
mod observer;
mod serve;

pub use families::{BATCH_BUCKETS, CALL_BUCKETS};
pub use handles::{GrpcClientMetrics, GrpcMetrics, PluginMetrics, PoolMetrics, QueueMetrics};
pub use layer::MetricsLayer;
pub use serve::{serve, MetricsServer};

use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::{Metric, Registry as PromRegistry};

use self::families::{Families, MethodLabels};

/// The default cap on distinct `method` label values.
pub const DEFAULT_METHOD_LIMIT: usize = 100;

/// tandem's metrics and any the application adds; cheap to clone (clones share everything).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    prom: Mutex<PromRegistry>,
    families: Families,
    methods: MethodLabels,
}

impl Registry {
    /// A registry holding tandem's metric families, with the default method-label cap.
    pub fn new() -> Self {
        Self::with_method_limit(DEFAULT_METHOD_LIMIT)
    }

    /// A registry whose `method` label keeps at most `limit` distinct values.
    pub fn with_method_limit(limit: usize) -> Self {
        Self::from_prometheus(PromRegistry::default(), limit)
    }

    /// Adds tandem's families to an existing `prometheus_client` registry (e.g. one created
    /// with a prefix or constant labels) and takes it over.
    pub fn from_prometheus(mut prom: PromRegistry, method_limit: usize) -> Self {
        let families = Families::register(&mut prom);
        Registry {
            inner: Arc::new(Inner {
                prom: Mutex::new(prom),
                families,
                methods: MethodLabels::new(method_limit),
            }),
        }
    }

    /// Registers an application metric beside tandem's, exported by the same endpoint.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.prom().register(name, help, metric);
    }

    fn prom(&self) -> std::sync::MutexGuard<'_, PromRegistry> {
        self.inner.prom.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn families(&self) -> &Families {
        &self.inner.families
    }

    pub(crate) fn methods(&self) -> &MethodLabels {
        &self.inner.methods
    }

    /// This registry as a guard [`Observer`](crate::guard::Observer), for
    /// [`Policy::observer`](crate::guard::Policy::observer) and the layers' `with_observer`.
    pub fn observer(&self) -> Arc<dyn crate::guard::Observer> {
        Arc::new(self.clone())
    }

    /// The OpenMetrics text exposition of every metric (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.prom());
        out
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}
