//! The metric families tandem registers, their labels and buckets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry as PromRegistry, Unit};

/// Buckets of `python_call_duration_seconds`: the reference buckets (1 ms … 1 s) plus finer
/// ones below 1 ms, where in-process pool calls land.
pub const CALL_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Buckets of `tandem_grpc_batch_size`.
pub const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

fn call_histogram() -> Histogram {
    Histogram::new(CALL_BUCKETS)
}

fn batch_histogram() -> Histogram {
    Histogram::new(BATCH_BUCKETS)
}

/// Labels of the per-call metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallLabels {
    pub(crate) method: Arc<str>,
    pub(crate) status: &'static str,
    pub(crate) transport: &'static str,
}

/// The one label of a guard layer's metrics: its name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct NameLabel {
    pub(crate) name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TransitionLabels {
    pub(crate) name: String,
    pub(crate) from: &'static str,
    pub(crate) to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabels {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PoolLabels {
    pub(crate) pool: String,
    pub(crate) state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PoolLabel {
    pub(crate) pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PluginLabel {
    pub(crate) plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct QueueLabels {
    pub(crate) stream: String,
    pub(crate) group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ClientLabel {
    pub(crate) client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetLabel {
    pub(crate) target: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every family tandem exports, registered once per [`Registry`](super::Registry).
#[derive(Debug)]
pub(crate) struct Families {
    pub(crate) call_duration: HistogramFamily<CallLabels>,
    pub(crate) call_total: Family<CallLabels, Counter>,
    pub(crate) breaker_state: Family<NameLabel, Gauge>,
    pub(crate) breaker_transitions: Family<TransitionLabels, Counter>,
    pub(crate) breaker_rejected: Family<NameLabel, Counter>,
    pub(crate) bulkhead_in_flight: Family<NameLabel, Gauge>,
    pub(crate) bulkhead_rejected: Family<NameLabel, Counter>,
    pub(crate) retries: Family<KindLabels, Counter>,
    pub(crate) retry_budget_exhausted: Family<NameLabel, Counter>,
    pub(crate) fallbacks: Family<KindLabels, Counter>,
    pub(crate) pool_workers: Family<PoolLabels, Gauge>,
    pub(crate) pool_restarts: Family<PoolLabel, Counter>,
    pub(crate) plugin_restarts: Family<PluginLabel, Counter>,
    pub(crate) plugin_reloads: Family<PluginLabel, Counter>,
    pub(crate) queue_lag: Family<QueueLabels, Gauge>,
    pub(crate) queue_pending: Family<QueueLabels, Gauge>,
    pub(crate) queue_dead_letters: Family<QueueLabels, Gauge>,
    pub(crate) grpc_batch_size: HistogramFamily<TargetLabel>,
    pub(crate) grpc_queue_time: HistogramFamily<TargetLabel>,
    pub(crate) grpc_client_retries: Family<ClientLabel, Counter>,
    pub(crate) grpc_client_ejections: Family<ClientLabel, Counter>,
    /// Handles looked up by a guard layer's name on the request path, without allocating.
    pub(crate) in_flight_by_name: NameCache<Gauge>,
}

impl Families {
    pub(crate) fn register(r: &mut PromRegistry) -> Self {
        let f = Families {
            call_duration: Family::new_with_constructor(call_histogram),
            call_total: Family::default(),
            breaker_state: Family::default(),
            breaker_transitions: Family::default(),
            breaker_rejected: Family::default(),
            bulkhead_in_flight: Family::default(),
            bulkhead_rejected: Family::default(),
            retries: Family::default(),
            retry_budget_exhausted: Family::default(),
            fallbacks: Family::default(),
            pool_workers: Family::default(),
            pool_restarts: Family::default(),
            plugin_restarts: Family::default(),
            plugin_reloads: Family::default(),
            queue_lag: Family::default(),
            queue_pending: Family::default(),
            queue_dead_letters: Family::default(),
            grpc_batch_size: Family::new_with_constructor(batch_histogram),
            grpc_queue_time: Family::new_with_constructor(call_histogram),
            grpc_client_retries: Family::default(),
            grpc_client_ejections: Family::default(),
            in_flight_by_name: NameCache::default(),
        };
        r.register_with_unit(
            "python_call_duration",
            "Duration of calls into Python, by method, status and transport",
            Unit::Seconds,
            f.call_duration.clone(),
        );
        r.register(
            "python_call",
            "Calls into Python, by method, status (ok or the error kind) and transport",
            f.call_total.clone(),
        );
        r.register(
            "tandem_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            f.breaker_state.clone(),
        );
        r.register(
            "tandem_breaker_transitions",
            "Circuit breaker state changes, by from and to state",
            f.breaker_transitions.clone(),
        );
        r.register(
            "tandem_breaker_rejected",
            "Calls rejected by an open circuit breaker",
            f.breaker_rejected.clone(),
        );
        r.register(
            "tandem_bulkhead_in_flight",
            "Calls running inside a bulkhead",
            f.bulkhead_in_flight.clone(),
        );
        r.register(
            "tandem_bulkhead_rejected",
            "Calls rejected by a full bulkhead",
            f.bulkhead_rejected.clone(),
        );
        r.register(
            "tandem_retries",
            "Retries, by the error kind that caused them",
            f.retries.clone(),
        );
        r.register(
            "tandem_retry_budget_exhausted",
            "Retries skipped because the retry budget was spent",
            f.retry_budget_exhausted.clone(),
        );
        r.register(
            "tandem_fallbacks",
            "Calls answered by a fallback, by the error kind that triggered it",
            f.fallbacks.clone(),
        );
        r.register(
            "tandem_pool_workers",
            "Pool workers by state (busy, idle)",
            f.pool_workers.clone(),
        );
        r.register(
            "tandem_pool_worker_restarts",
            "Pool workers restarted after a crash, hang or recycle",
            f.pool_restarts.clone(),
        );
        r.register(
            "tandem_plugin_restarts",
            "Plugin processes restarted",
            f.plugin_restarts.clone(),
        );
        r.register(
            "tandem_plugin_reloads",
            "Plugins reloaded (swapped without restarting the core)",
            f.plugin_reloads.clone(),
        );
        r.register(
            "tandem_queue_lag",
            "Stream entries not yet delivered to the consumer group",
            f.queue_lag.clone(),
        );
        r.register(
            "tandem_queue_pending",
            "Entries delivered but not acknowledged (the group's pending list)",
            f.queue_pending.clone(),
        );
        r.register(
            "tandem_queue_dead_letters",
            "Entries in the dead-letter stream",
            f.queue_dead_letters.clone(),
        );
        r.register(
            "tandem_grpc_batch_size",
            "Requests per batch sent to the Python gRPC server",
            f.grpc_batch_size.clone(),
        );
        r.register_with_unit(
            "tandem_grpc_queue",
            "Time a request waited for its batch",
            Unit::Seconds,
            f.grpc_queue_time.clone(),
        );
        r.register(
            "tandem_grpc_client_retries",
            "Attempts a gRPC client made again after a transient failure",
            f.grpc_client_retries.clone(),
        );
        r.register(
            "tandem_grpc_client_ejections",
            "Healthy gRPC connections taken out of rotation (NOT_SERVING, connection lost)",
            f.grpc_client_ejections.clone(),
        );
        f
    }
}

/// Metric handles by a name, read without allocating once created.
#[derive(Debug)]
pub(crate) struct NameCache<M> {
    map: RwLock<HashMap<String, M>>,
}

impl<M> Default for NameCache<M> {
    fn default() -> Self {
        NameCache {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<M: Clone> NameCache<M> {
    /// The handle for `name`, made by `make` the first time.
    pub(crate) fn get(&self, name: &str, make: impl FnOnce() -> M) -> M {
        if let Some(m) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(name) {
            return m.clone();
        }
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_insert_with(make)
            .clone()
    }
}

/// Bounds the `method` label: the first `limit` distinct methods keep their name, later
/// ones are counted as `other`.
#[derive(Debug)]
pub(crate) struct MethodLabels {
    limit: usize,
    known: RwLock<HashMap<String, Arc<str>>>,
    other: Arc<str>,
    warned: AtomicBool,
}

impl MethodLabels {
    pub(crate) fn new(limit: usize) -> Self {
        MethodLabels {
            limit,
            known: RwLock::new(HashMap::new()),
            other: Arc::from("other"),
            warned: AtomicBool::new(false),
        }
    }

    /// The label value for `method`.
    pub(crate) fn intern(&self, method: &str) -> Arc<str> {
        if let Some(v) = self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(method)
        {
            return v.clone();
        }
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = known.get(method) {
            return v.clone();
        }
        if known.len() >= self.limit {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit = self.limit,
                    method,
                    "more distinct methods than the metrics label limit; counting the rest as \"other\""
                );
            }
            return self.other.clone();
        }
        let v: Arc<str> = Arc::from(method);
        known.insert(method.to_owned(), v.clone());
        v
    }
}
