//! A rolling window of time buckets counting requests and errors (hystrix's `rolling.Number`).

use std::time::{Duration, Instant};

/// Counts of one bucket, or of the whole window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Every recorded event.
    pub(crate) requests: u64,
    /// The events that were errors.
    pub(crate) errors: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket-width interval since the window's origin this bucket holds.
    index: u64,
    counts: Counts,
}

/// `buckets` buckets of `width` each; a bucket older than the window is reused, so memory
/// stays fixed and nothing runs in the background.
#[derive(Debug, Clone)]
pub(crate) struct RollingWindow {
    origin: Instant,
    width: Duration,
    buckets: Vec<Bucket>,
}

impl RollingWindow {
    /// A window of `buckets` × `width` starting at `origin`.
    pub(crate) fn new(origin: Instant, width: Duration, buckets: usize) -> Self {
        let buckets = buckets.max(1);
        let width = width.max(Duration::from_millis(1));
        RollingWindow {
            origin,
            width,
            // index u64::MAX marks a never-used bucket (it is never "in the window").
            buckets: vec![
                Bucket {
                    index: u64::MAX,
                    counts: Counts::default(),
                };
                buckets
            ],
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / self.width.as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Records one request (an error if `error`) at `now`.
    pub(crate) fn record(&mut self, now: Instant, error: bool) {
        let index = self.index(now);
        let len = self.buckets.len() as u64;
        let slot = &mut self.buckets[(index % len) as usize];
        if slot.index != index {
            *slot = Bucket {
                index,
                counts: Counts::default(),
            };
        }
        slot.counts.requests += 1;
        slot.counts.errors += u64::from(error);
    }

    /// The sum of the buckets still inside the window at `now`.
    pub(crate) fn sum(&self, now: Instant) -> Counts {
        let index = self.index(now);
        let len = self.buckets.len() as u64;
        self.buckets
            .iter()
            .filter(|b| b.index != u64::MAX && b.index <= index && index - b.index < len)
            .fold(Counts::default(), |acc, b| Counts {
                requests: acc.requests + b.counts.requests,
                errors: acc.errors + b.counts.errors,
            })
    }

    /// Forgets every count (hystrix resets its metrics when the circuit closes).
    pub(crate) fn reset(&mut self) {
        for b in &mut self.buckets {
            b.index = u64::MAX;
            b.counts = Counts::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_buckets_leave_the_window() {
        let t0 = Instant::now();
        let mut w = RollingWindow::new(t0, Duration::from_secs(1), 10);
        w.record(t0, true);
        w.record(t0 + Duration::from_millis(500), false);
        w.record(t0 + Duration::from_secs(5), false);
        assert_eq!(
            w.sum(t0 + Duration::from_secs(9)),
            Counts {
                requests: 3,
                errors: 1
            }
        );
        // At 10 s the first bucket (0..1 s) has rolled out.
        assert_eq!(
            w.sum(t0 + Duration::from_secs(10)),
            Counts {
                requests: 1,
                errors: 0
            }
        );
        assert_eq!(w.sum(t0 + Duration::from_secs(15)), Counts::default());
        // A reused slot starts from zero.
        w.record(t0 + Duration::from_secs(20), true);
        assert_eq!(
            w.sum(t0 + Duration::from_secs(20)),
            Counts {
                requests: 1,
                errors: 1
            }
        );
        w.reset();
        assert_eq!(w.sum(t0 + Duration::from_secs(20)), Counts::default());
    }
}
