//! Feeds a metrics registry's plugin handle from the host's restart and reload counts.

use std::sync::atomic::Ordering;

use crate::metrics::PluginMetrics;

use super::client::{Host, Shared};

impl Host {
    /// Keeps `metrics` (`tandem_plugin_restarts_total` and `tandem_plugin_reloads_total`) up to
    /// date from now on: the supervisor updates it at each restart, and every reload (explicit,
    /// SIGHUP or file change) at the swap. Nothing to poll.
    ///
    /// ```no_run
    /// # async fn demo(host: tandem::plugin::Host) {
    /// let registry = tandem::metrics::Registry::new();
    /// host.instrument(registry.plugin("fx"));
    /// # }
    /// ```
    pub fn instrument(&self, metrics: PluginMetrics) {
        if let Ok(mut slot) = self.shared.metrics.lock() {
            *slot = Some(metrics);
        }
        self.shared.sync_metrics();
    }

    /// Brings `tandem_plugin_restarts_total` and `tandem_plugin_reloads_total` up to
    /// [`Host::restarts`] and [`Host::reloads`]; returns the restart count.
    ///
    /// For a handle not given to [`Host::instrument`]: call it on an interval or before each
    /// scrape; the counters only move forward, so observing twice counts each event once.
    pub fn observe(&self, metrics: &PluginMetrics) -> u64 {
        let restarts = self.restarts();
        metrics.set_restarts_total(restarts);
        metrics.set_reloads_total(self.reloads());
        restarts
    }
}

impl Shared {
    /// Brings the instrumented metrics up to the running counts.
    pub(crate) fn sync_metrics(&self) {
        if let Ok(slot) = self.metrics.lock() {
            if let Some(m) = slot.as_ref() {
                m.set_restarts_total(self.restarts.load(Ordering::Relaxed));
                m.set_reloads_total(self.reloads.load(Ordering::Relaxed));
            }
        }
    }
}
