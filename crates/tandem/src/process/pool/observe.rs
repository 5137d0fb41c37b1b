//! Feeds a metrics registry's pool handle from [`Pool::stats`].

use crate::metrics::PoolMetrics;

use super::{Pool, PoolStats};

impl Pool {
    /// Sets `tandem_pool_workers{state="busy"|"idle"}` from [`Pool::stats`] and brings
    /// `tandem_pool_worker_restarts_total` up to the pool's restart count; returns the stats.
    ///
    /// Call it on an interval (or before each scrape) with one handle per pool
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
