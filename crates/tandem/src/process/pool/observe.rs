//! Feeds a metrics registry's pool handle from [`Pool::stats`].

use crate::metrics::PoolMetrics;

use super::{Pool, PoolStats};

impl Pool {
    /// Keeps `metrics` (`tandem_pool_workers{state="busy"|"idle"}` and
    /// `tandem_pool_worker_restarts_total`) up to date from now on: the pool updates it when a
    /// worker takes or finishes a call, starts, or is replaced. Nothing to poll.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tandem::Error> {
    /// let registry = tandem::metrics::Registry::new();
    /// let pool = tandem::process::Pool::builder("service:app").build().await?;
    /// pool.instrument(registry.pool("score"));
    /// # Ok(()) }
    /// ```
    pub fn instrument(&self, metrics: PoolMetrics) {
        let shared = &self.inner.shared;
        if let Ok(mut slot) = shared.metrics.lock() {
            *slot = Some(metrics);
        }
        shared.publish();
    }

    /// Sets `tandem_pool_workers{state="busy"|"idle"}` from [`Pool::stats`] and brings
    /// `tandem_pool_worker_restarts_total` up to the pool's restart count; returns the stats.
    ///
    /// For a handle not given to [`Pool::instrument`]: call it on an interval (or before each
    /// scrape) with one handle per pool
    /// (`registry.pool("name")`); the counter only moves forward, so observing twice counts
    /// each restart once.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tandem::Error> {
    /// use tandem::metrics::Registry;
    /// use tandem::process::Pool;
    ///
    /// let registry = Registry::new();
    /// let pool = Pool::builder("service:app").workers(2).build().await?;
    /// let metrics = registry.pool("score");
    /// pool.observe(&metrics);
    /// # Ok(()) }
    /// ```
    pub fn observe(&self, metrics: &PoolMetrics) -> PoolStats {
        let stats = self.stats();
        metrics.set_busy(stats.busy);
        metrics.set_idle(stats.idle);
        metrics.set_restarts_total(stats.restarts);
        stats
    }
}
