//! The time source of the breaker and the retry budget, injectable for deterministic tests.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the breaker's rolling window and sleep window read the time.
///
/// The default reads tokio's clock, which is the system clock unless a test paused it
/// (`#[tokio::test(start_paused = true)]`), so paused-time tests drive the breaker too.
/// [`ManualClock`] moves only when told to.
///
/// ```
/// use std::time::Duration;
/// use tandem::guard::ManualClock;
///
/// let manual = ManualClock::new();
/// let clock = manual.clock();
/// let t0 = clock.now();
/// manual.advance(Duration::from_secs(5));
/// assert_eq!(clock.now() - t0, Duration::from_secs(5));
/// ```
#[derive(Clone, Default)]
pub struct Clock(Source);

#[derive(Clone, Default)]
enum Source {
    #[default]
    Tokio,
    System,
    Manual(Arc<ManualInner>),
}

struct ManualInner {
    base: Instant,
    offset_nanos: AtomicU64,
}

impl Clock {
    /// tokio's clock (the default): the system clock, or the paused test clock.
    pub fn tokio() -> Self {
        Clock(Source::Tokio)
    }

    /// The system's monotonic clock, ignoring tokio's paused time.
    pub fn system() -> Self {
        Clock(Source::System)
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        match &self.0 {
            Source::Tokio => tokio::time::Instant::now().into_std(),
            Source::System => Instant::now(),
            Source::Manual(m) => {
                m.base + Duration::from_nanos(m.offset_nanos.load(Ordering::Acquire))
            }
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Tokio => f.write_str("Clock::tokio"),
            Source::System => f.write_str("Clock::system"),
            Source::Manual(_) => f.write_str("Clock::manual"),
        }
    }
}

/// A clock that moves only when [`advance`](ManualClock::advance) is called.
#[derive(Clone)]
pub struct ManualClock(Arc<ManualInner>);

impl ManualClock {
    /// A manual clock starting at the current instant.
    pub fn new() -> Self {
        ManualClock(Arc::new(ManualInner {
            base: Instant::now(),
            offset_nanos: AtomicU64::new(0),
        }))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.offset_nanos.fetch_add(nanos, Ordering::AcqRel);
    }

    /// A [`Clock`] reading this manual clock, to give to a breaker or a retry budget.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.0.clone()))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field(
                "offset",
                &Duration::from_nanos(self.0.offset_nanos.load(Ordering::Acquire)),
            )
            .finish()
    }
}
