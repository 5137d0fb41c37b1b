//! Feeds a metrics registry's queue gauges from [`Admin::stats`].

use crate::call::Error;
use crate::metrics::Registry;

use super::admin::{Admin, Stats};

fn entries(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Admin {
    /// Reads [`Admin::stats`] and sets `tandem_queue_lag`, `tandem_queue_pending` and
    /// `tandem_queue_dead_letters` for every consumer group of the stream; returns the stats.
    ///
    /// Call it on an interval (or before each scrape): the gauges hold the last observed
    /// values. A group whose lag Redis cannot report (Redis < 7, or a trimmed stream) keeps
    /// its previous lag.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tandem::Error> {
    /// use tandem::metrics::Registry;
    /// use tandem::queue::Admin;
    ///
    /// let registry = Registry::new();
    /// let admin = Admin::from_uri("redis://127.0.0.1:6379/0/jobs").await?;
    /// let stats = admin.observe(&registry).await?;
    /// println!("{} dead letters", stats.dead);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis is unreachable (the gauges keep their values).
    pub async fn observe(&self, registry: &Registry) -> Result<Stats, Error> {
        let stats = self.stats().await?;
        for group in &stats.groups {
            let metrics = registry.queue(&stats.stream, &group.name);
            if let Some(lag) = group.lag {
                metrics.set_lag(entries(lag));
            }
            metrics.set_pending(entries(group.pending));
            metrics.set_dead_letters(entries(stats.dead));
        }
        Ok(stats)
    }
}
