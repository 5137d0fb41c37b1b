//! Feeds a metrics registry's queue gauges from [`Admin::stats`]: once ([`Admin::observe`]) or
//! on an interval in the background ([`Admin::collect`]).

use std::time::Duration;

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

/// A background task that keeps a stream's queue gauges up to date ([`Admin::collect`]); it
/// stops when dropped.
#[derive(Debug)]
#[must_use = "the collector stops when dropped"]
pub struct Collector(tokio::task::JoinHandle<()>);

impl Drop for Collector {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Admin {
    /// Runs [`Admin::observe`] every `interval` in a background task until the returned
    /// [`Collector`] is dropped: lag, pending and dead letters live in Redis, so they are read,
    /// not pushed. A failed read is logged and the gauges keep their last values.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tandem::Error> {
    /// let registry = tandem::metrics::Registry::new();
    /// let admin = tandem::queue::Admin::from_uri("redis://127.0.0.1:6379/0/jobs").await?;
    /// let _collector = admin.collect(&registry, std::time::Duration::from_secs(5));
    /// # Ok(()) }
    /// ```
    pub fn collect(&self, registry: &Registry, interval: Duration) -> Collector {
        let (admin, registry) = (self.clone(), registry.clone());
        Collector(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                if let Err(e) = admin.observe(&registry).await {
                    tracing::warn!("queue metrics not updated: {e}");
                }
            }
        }))
    }
}
