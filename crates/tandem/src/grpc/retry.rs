//! When a failed call is tried again: idempotent calls only, transient errors only, inside the
//! deadline, and within a retry budget so retries cannot multiply load during an outage.

use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

use crate::call::{Error, ErrorKind};

use super::config::RetrySettings;

/// The retry policy of one client, shared by its clones.
#[derive(Debug)]
pub(crate) struct Retry {
    settings: RetrySettings,
    budget: TpsBudget,
}

impl Retry {
    pub(crate) fn new(settings: RetrySettings) -> Self {
        let budget = TpsBudget::new(
            settings.budget_ttl,
            settings.budget_min_per_sec,
            settings.budget_ratio,
        );
        Self { settings, budget }
    }

    /// Records a first attempt (it earns retry budget).
    pub(crate) fn first_attempt(&self) {
        self.budget.deposit();
    }

    /// Whether attempt number `attempt` (1-based, just failed with `err`) may be followed by
    /// another, with `remaining` time left before the deadline. Takes budget when it says yes.
    pub(crate) fn should_retry(
        &self,
        idempotent: bool,
        attempt: u32,
        err: &Error,
        remaining: Duration,
    ) -> bool {
        let transient = match err.kind() {
            ErrorKind::Unavailable => true,
            ErrorKind::Overloaded => self.settings.retry_overloaded,
            _ => false,
        };
        idempotent
            && transient
            && attempt < self.settings.max_attempts
            && remaining > Duration::from_millis(1)
            && self.budget.withdraw()
    }

    /// The pause before attempt `attempt + 1`: jittered exponential (gRFC A6), capped by
    /// half the time left.
    pub(crate) fn backoff(&self, attempt: u32, remaining: Duration, jitter: f64) -> Duration {
        let ceiling = Duration::from_millis(10).saturating_mul(1 << attempt.min(6));
        ceiling.mul_f64(jitter.clamp(0.0, 1.0)).min(remaining / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Transport;

    fn retry(ratio: f32, min_per_sec: u32) -> Retry {
        Retry::new(RetrySettings {
            max_attempts: 3,
            retry_overloaded: false,
            budget_ttl: Duration::from_secs(10),
            budget_min_per_sec: min_per_sec,
            budget_ratio: ratio,
        })
    }

    #[test]
    fn only_idempotent_transient_calls_retry() {
        let r = retry(0.2, 10);
        let down = Error::unavailable(Transport::Grpc, "m", "refused");
        let bad = Error::bad_request(Transport::Grpc, "m", "nope");
        let long = Duration::from_secs(1);
        assert!(r.should_retry(true, 1, &down, long));
        assert!(!r.should_retry(false, 1, &down, long));
        assert!(!r.should_retry(true, 1, &bad, long));
        assert!(!r.should_retry(true, 3, &down, long));
        assert!(!r.should_retry(true, 1, &down, Duration::ZERO));
    }

    #[test]
    fn budget_caps_retries() {
        let r = retry(0.2, 0);
        let down = Error::unavailable(Transport::Grpc, "m", "refused");
        for _ in 0..100 {
            r.first_attempt();
        }
        let granted = (0..100)
            .filter(|_| r.should_retry(true, 1, &down, Duration::from_secs(1)))
            .count();
        assert!((15..=25).contains(&granted), "granted {granted}");
    }
}
