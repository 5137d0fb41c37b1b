//! Feeds a metrics registry's plugin handle from the supervisor's restart count.

use crate::metrics::PluginMetrics;

use super::client::Host;

impl Host {
    /// Brings `tandem_plugin_restarts_total` up to [`Host::restarts`]; returns that count.
    ///
    /// Call it on an interval (or before each scrape) with one handle per plugin
    /// (`registry.plugin("name")`); the counter only moves forward, so observing twice counts
    /// each restart once. Count reloads with [`PluginMetrics::reloaded`] after
    /// [`Host::reload`] succeeds.
    pub fn observe(&self, metrics: &PluginMetrics) -> u64 {
        let restarts = self.restarts();
        metrics.set_restarts_total(restarts);
        restarts
    }
}
