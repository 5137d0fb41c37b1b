//! Which calls are retried, how often, and how long to wait between attempts.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::budget::RetryBudget;
use crate::call::{Error, ErrorKind, Request};

/// Settings of the [`Retry`](super::Retry) layer.
///
/// A call is retried only when all hold: it is **idempotent** (it carries an idempotency key,
/// or its method was marked with [`idempotent`](Self::idempotent)); it failed with a
/// **transient** kind (`Timeout`, `Unavailable` or `Overloaded` by default); it has attempts
/// left (3 in all by default, never more than 5, as gRFC A6 caps them); the jittered backoff
/// still fits **before its deadline**; and the [`RetryBudget`] has a token.
///
/// ```
/// use tandem::guard::RetryPolicy;
///
/// let policy = RetryPolicy::new("risk").idempotent(["score", "quote"]).max_attempts(2);
/// assert_eq!(policy.max_attempts, 2);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The name in logs and metric labels.
    pub name: String,
    /// Attempts in all, the first included (default 3, capped at 5).
    pub max_attempts: u32,
    /// Upper bound of the first backoff (default 10 ms); it doubles per attempt.
    pub initial_backoff: Duration,
    /// Upper bound of any backoff (default 200 ms).
    pub max_backoff: Duration,
    /// Methods that are safe to run twice.
    pub idempotent_methods: HashSet<String>,
    /// Which error kinds are worth another attempt.
    pub retry_on: fn(ErrorKind) -> bool,
    /// The budget shared by every call of this policy.
    pub budget: Arc<RetryBudget>,
}

/// The default `retry_on`: `Timeout`, `Unavailable`, `Overloaded`.
pub fn transient(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout | ErrorKind::Unavailable | ErrorKind::Overloaded
    )
}

impl RetryPolicy {
    /// The defaults under `name`; no method is idempotent until marked.
    pub fn new(name: impl Into<String>) -> Self {
        RetryPolicy {
            name: name.into(),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            idempotent_methods: HashSet::new(),
            retry_on: transient,
            budget: Arc::new(RetryBudget::default()),
        }
    }

    /// Marks `methods` as idempotent: their calls may be retried without an idempotency key.
    pub fn idempotent<I, M>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<String>,
    {
        self.idempotent_methods
            .extend(methods.into_iter().map(Into::into));
        self
    }

    /// Sets the number of attempts, the first included (1 disables retries; capped at 5).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.clamp(1, 5);
        self
    }

    /// Sets the backoff bounds: attempt n waits a random time up to
    /// `min(initial × 2^(n-1), max)`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets the budget (share one `Arc` between policies to share the budget).
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Sets which error kinds are retried.
    pub fn retry_on(mut self, retry_on: fn(ErrorKind) -> bool) -> Self {
        self.retry_on = retry_on;
        self
    }

    /// Whether `req` may run more than once.
    pub fn is_idempotent(&self, req: &Request) -> bool {
        req.metadata().idempotency_key.is_some() || self.idempotent_methods.contains(req.method())
    }

    /// Whether `error` is worth another attempt (ignoring budget and deadline).
    pub fn retries(&self, error: &Error) -> bool {
        (self.retry_on)(error.kind())
    }

    /// The wait before attempt `attempt + 1` (full jitter).
    pub(crate) fn backoff_after(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(crate::trace::random_u64() % (nanos + 1))
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("name", &self.name)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("idempotent_methods", &self.idempotent_methods)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}
