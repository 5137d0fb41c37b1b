//! A retry budget: retries may be at most a share of recent calls, plus a small floor.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::guard::clock::Clock;
use crate::guard::window::RollingWindow;

/// Caps retries to `ratio` × the calls of the last `window`, plus `min_per_sec` × the window's
/// seconds so that a quiet service can still retry (tower's `TpsBudget`, Envoy's retry budget).
/// Defaults: a 10 s window, 10 retries per second floor, 20 % of calls.
///
/// A budget keeps a retry storm from multiplying the load on a dependency that is already
/// failing: once spent, failed calls fail instead of retrying.
///
/// ```
/// use std::time::Duration;
/// use tandem::guard::RetryBudget;
///
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5);
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.withdraw()); // 1 retry for 2 calls is 50 %
/// assert!(!budget.withdraw());
/// ```
pub struct RetryBudget {
    window: Duration,
    min_per_sec: u32,
    ratio: f64,
    clock: Clock,
    /// `requests` counts calls and retries; `errors` counts the retries among them.
    counts: Mutex<RollingWindow>,
}

impl RetryBudget {
    /// A budget over `window` with a floor of `min_per_sec` retries per second and `ratio`
    /// (0.0–10.0) retries per call.
    pub fn new(window: Duration, min_per_sec: u32, ratio: f64) -> Self {
        Self::with_clock(window, min_per_sec, ratio, Clock::default())
    }

    /// Like [`new`](Self::new), reading time from `clock`.
    pub fn with_clock(window: Duration, min_per_sec: u32, ratio: f64, clock: Clock) -> Self {
        let window = window.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let counts = RollingWindow::new(clock.now(), window / 10, 10);
        RetryBudget {
            window,
            min_per_sec,
            ratio: if ratio.is_finite() {
                ratio.clamp(0.0, 10.0)
            } else {
                0.0
            },
            clock,
            counts: Mutex::new(counts),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RollingWindow> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a call (every first attempt deposits).
    pub fn deposit(&self) {
        self.lock().record(self.clock.now(), false);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn withdraw(&self) -> bool {
        let now = self.clock.now();
        let mut counts = self.lock();
        let sum = counts.sum(now);
        let retries = sum.errors;
        let calls = sum.requests - retries;
        let allowed =
            f64::from(self.min_per_sec) * self.window.as_secs_f64() + self.ratio * calls as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        counts.record(now, true);
        true
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(Duration::from_secs(10), 10, 0.2)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("window", &self.window)
            .field("min_per_sec", &self.min_per_sec)
            .field("ratio", &self.ratio)
            .finish_non_exhaustive()
    }
}
