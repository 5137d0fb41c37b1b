//! The breaker's settings and their hystrix defaults.

use std::fmt;
use std::time::Duration;

use crate::guard::classify::{default_classifier, Classifier};
use crate::guard::clock::Clock;

/// Settings of a circuit breaker. `Default` gives hystrix's defaults: a 10 s window of 10
/// buckets, trips at ≥ 50 % errors once 20 requests are in the window, tries again after 5 s.
///
/// ```
/// use std::time::Duration;
/// use tandem::guard::BreakerConfig;
///
/// // The reference architecture's variant: trip once 10 requests are in the window.
/// let config = BreakerConfig::new("risk-score").request_volume_threshold(10);
/// assert_eq!(config.sleep_window, Duration::from_secs(5));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// The breaker's (command's) name: in `Error::BreakerOpen`, logs and metric labels.
    pub name: String,
    /// Length of the rolling window (default 10 s).
    pub window: Duration,
    /// Number of buckets the window is split into (default 10).
    pub buckets: usize,
    /// Requests the window must hold before the breaker may trip (default 20).
    pub request_volume_threshold: u64,
    /// Error percentage (rounded, 0–100) at or above which it trips (default 50).
    pub error_percent_threshold: u8,
    /// How long it stays open before one trial call is let through (default 5 s).
    pub sleep_window: Duration,
    /// Which errors count as failures (default [`default_classifier`]).
    pub classifier: Classifier,
    /// The time source (default tokio's clock).
    pub clock: Clock,
}

impl BreakerConfig {
    /// hystrix's defaults under `name`.
    pub fn new(name: impl Into<String>) -> Self {
        BreakerConfig {
            name: name.into(),
            window: Duration::from_secs(10),
            buckets: 10,
            request_volume_threshold: 20,
            error_percent_threshold: 50,
            sleep_window: Duration::from_secs(5),
            classifier: default_classifier,
            clock: Clock::default(),
        }
    }

    /// Sets the rolling window's length and bucket count.
    pub fn window(mut self, length: Duration, buckets: usize) -> Self {
        self.window = length;
        self.buckets = buckets.max(1);
        self
    }

    /// Sets the minimum number of requests in the window before it may trip.
    pub fn request_volume_threshold(mut self, requests: u64) -> Self {
        self.request_volume_threshold = requests;
        self
    }

    /// Sets the error percentage (clamped to 100) at or above which it trips.
    pub fn error_percent_threshold(mut self, percent: u8) -> Self {
        self.error_percent_threshold = percent.min(100);
        self
    }

    /// Sets how long it stays open before a trial call.
    pub fn sleep_window(mut self, sleep: Duration) -> Self {
        self.sleep_window = sleep;
        self
    }

    /// Sets which errors count as failures.
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// Sets the time source (a [`ManualClock`](crate::guard::ManualClock) in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn bucket_width(&self) -> Duration {
        self.window / u32::try_from(self.buckets.max(1)).unwrap_or(u32::MAX)
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig::new("default")
    }
}

impl fmt::Debug for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerConfig")
            .field("name", &self.name)
            .field("window", &self.window)
            .field("buckets", &self.buckets)
            .field("request_volume_threshold", &self.request_volume_threshold)
            .field("error_percent_threshold", &self.error_percent_threshold)
            .field("sleep_window", &self.sleep_window)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
