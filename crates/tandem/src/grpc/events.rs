//! Counts of a client's retries and ejections, shared by its connections, and mirrored into the
//! metrics handle given to [`Client::instrument`](super::Client::instrument).

use std::sync::atomic::{AtomicU64, Ordering};

/// Running counts of one client's events.
#[derive(Debug, Default)]
pub(crate) struct Events {
    retries: AtomicU64,
    ejections: AtomicU64,
    #[cfg(feature = "metrics")]
    metrics: std::sync::Mutex<Option<crate::metrics::GrpcClientMetrics>>,
}

impl Events {
    /// Counts an attempt made again after a transient failure.
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.sync();
    }

    /// Counts a healthy connection taken out of rotation.
    pub(crate) fn ejected(&self) {
        self.ejections.fetch_add(1, Ordering::Relaxed);
        self.sync();
    }

    /// `(retries, ejections)` so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.retries.load(Ordering::Relaxed),
            self.ejections.load(Ordering::Relaxed),
        )
    }

    /// Mirrors the counts into `metrics` from now on.
    #[cfg(feature = "metrics")]
    pub(crate) fn instrument(&self, metrics: crate::metrics::GrpcClientMetrics) {
        if let Ok(mut slot) = self.metrics.lock() {
            *slot = Some(metrics);
        }
        self.sync();
    }

    #[cfg(feature = "metrics")]
    fn sync(&self) {
        if let Ok(slot) = self.metrics.lock() {
            if let Some(m) = slot.as_ref() {
                let (retries, ejections) = self.counts();
                m.set_retries_total(retries);
                m.set_ejections_total(ejections);
            }
        }
    }

    #[cfg(not(feature = "metrics"))]
    fn sync(&self) {}
}
