//! Typed handles through which the transports update their metrics.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::families::{ClientLabel, PluginLabel, PoolLabel, PoolLabels, QueueLabels, TargetLabel};
use super::Registry;

/// Raises a counter that mirrors a running count kept elsewhere.
fn raise_to(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A worker pool's metrics: `tandem_pool_workers{pool,state}` and
/// `tandem_pool_worker_restarts_total{pool}`.
#[derive(Clone, Debug)]
pub struct PoolMetrics {
    busy: Gauge,
    idle: Gauge,
    restarts: Counter,
}

impl PoolMetrics {
    /// Sets how many workers are running a call.
    pub fn set_busy(&self, workers: usize) {
        self.busy.set(gauge_value(workers));
    }

    /// Sets how many workers wait for a call.
    pub fn set_idle(&self, workers: usize) {
        self.idle.set(gauge_value(workers));
    }

    /// Counts one worker restart.
    pub fn worker_restarted(&self) {
        self.restarts.inc();
    }

    /// Raises the restart counter to `total` (a pool's own running count); never lowers it.
    pub fn set_restarts_total(&self, total: u64) {
        raise_to(&self.restarts, total);
    }
}

/// A plugin's metrics: `tandem_plugin_restarts_total{plugin}` and
/// `tandem_plugin_reloads_total{plugin}`.
#[derive(Clone, Debug)]
pub struct PluginMetrics {
    restarts: Counter,
    reloads: Counter,
}

impl PluginMetrics {
    /// Counts one restart of the plugin process.
    pub fn restarted(&self) {
        self.restarts.inc();
    }

    /// Raises the restart counter to `total` (the host's own running count); never lowers it.
    pub fn set_restarts_total(&self, total: u64) {
        raise_to(&self.restarts, total);
    }

    /// Counts one reload (swap) of the plugin.
    pub fn reloaded(&self) {
        self.reloads.inc();
    }

    /// Raises the reload counter to `total` (the host's own running count); never lowers it.
    pub fn set_reloads_total(&self, total: u64) {
        raise_to(&self.reloads, total);
    }
}

/// A stream and consumer group's metrics: `tandem_queue_lag`, `tandem_queue_pending` and
/// `tandem_queue_dead_letters`, labelled `{stream,group}`.
#[derive(Clone, Debug)]
pub struct QueueMetrics {
    lag: Gauge,
    pending: Gauge,
    dead_letters: Gauge,
}

impl QueueMetrics {
    /// Sets the entries not yet delivered to the group.
    pub fn set_lag(&self, entries: usize) {
        self.lag.set(gauge_value(entries));
    }

    /// Sets the entries delivered but not acknowledged.
    pub fn set_pending(&self, entries: usize) {
        self.pending.set(gauge_value(entries));
    }

    /// Sets the entries in the dead-letter stream.
    pub fn set_dead_letters(&self, entries: usize) {
        self.dead_letters.set(gauge_value(entries));
    }
}

/// A gRPC target's batching metrics: `tandem_grpc_batch_size{target}` and
/// `tandem_grpc_queue_seconds{target}`.
#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    batch_size: Histogram,
    queue_time: Histogram,
}

impl GrpcMetrics {
    /// Records one batch of `requests` requests.
    pub fn observe_batch(&self, requests: usize) {
        self.batch_size.observe(requests as f64);
    }

    /// Records how long one request waited for its batch.
    pub fn observe_queue_time(&self, waited: Duration) {
        self.queue_time.observe(waited.as_secs_f64());
    }
}

/// A gRPC client's metrics: `tandem_grpc_client_retries_total{client}` and
/// `tandem_grpc_client_ejections_total{client}`; give it to `tandem::grpc::Client::instrument`.
#[derive(Clone, Debug)]
pub struct GrpcClientMetrics {
    retries: Counter,
    ejections: Counter,
}

impl GrpcClientMetrics {
    /// Raises the retry counter to `total` (the client's own running count); never lowers it.
    pub fn set_retries_total(&self, total: u64) {
        raise_to(&self.retries, total);
    }

    /// Raises the ejection counter to `total` (the client's own running count); never lowers
    /// it.
    pub fn set_ejections_total(&self, total: u64) {
        raise_to(&self.ejections, total);
    }
}

impl Registry {
    /// The metrics of the gRPC client `client` (a name of the caller's choosing).
    pub fn grpc_client(&self, client: &str) -> GrpcClientMetrics {
        let f = self.families();
        let label = ClientLabel {
            client: client.to_owned(),
        };
        GrpcClientMetrics {
            retries: f.grpc_client_retries.get_or_create_owned(&label),
            ejections: f.grpc_client_ejections.get_or_create_owned(&label),
        }
    }

    /// The metrics of the worker pool `pool`.
    pub fn pool(&self, pool: &str) -> PoolMetrics {
        let f = self.families();
        let state = |state| PoolLabels {
            pool: pool.to_owned(),
            state,
        };
        PoolMetrics {
            busy: f.pool_workers.get_or_create_owned(&state("busy")),
            idle: f.pool_workers.get_or_create_owned(&state("idle")),
            restarts: f.pool_restarts.get_or_create_owned(&PoolLabel {
                pool: pool.to_owned(),
            }),
        }
    }

    /// The metrics of the plugin `plugin`.
    pub fn plugin(&self, plugin: &str) -> PluginMetrics {
        let f = self.families();
        let label = PluginLabel {
            plugin: plugin.to_owned(),
        };
        PluginMetrics {
            restarts: f.plugin_restarts.get_or_create_owned(&label),
            reloads: f.plugin_reloads.get_or_create_owned(&label),
        }
    }

    /// The metrics of the consumer group `group` on `stream`.
    pub fn queue(&self, stream: &str, group: &str) -> QueueMetrics {
        let f = self.families();
        let label = QueueLabels {
            stream: stream.to_owned(),
            group: group.to_owned(),
        };
        QueueMetrics {
            lag: f.queue_lag.get_or_create_owned(&label),
            pending: f.queue_pending.get_or_create_owned(&label),
            dead_letters: f.queue_dead_letters.get_or_create_owned(&label),
        }
    }

    /// The batching metrics of the gRPC target `target`.
    pub fn grpc(&self, target: &str) -> GrpcMetrics {
        let f = self.families();
        let label = TargetLabel {
            target: target.to_owned(),
        };
        GrpcMetrics {
            batch_size: f.grpc_batch_size.get_or_create_owned(&label),
            queue_time: f.grpc_queue_time.get_or_create_owned(&label),
        }
    }
}
