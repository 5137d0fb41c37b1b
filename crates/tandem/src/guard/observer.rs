//! Hooks through which the guard layers report what they do (the `metrics` feature fills them).

use std::fmt;
use std::time::Duration;

use crate::call::{ErrorKind, Transport};

use super::breaker::BreakerState;

/// Receives the guard layers' events. Every method has an empty default, so an observer
/// implements only what it needs; `tandem::metrics::Registry` implements all of them.
///
/// Observers are called on the request path, after the layer's own lock is released: keep
/// them cheap and non-blocking.
pub trait Observer: Send + Sync + fmt::Debug {
    /// A call finished (the [`Observe`](super::Observe) layer): `Ok(())` or the error's kind.
    fn call(
        &self,
        transport: Transport,
        method: &str,
        result: Result<(), ErrorKind>,
        elapsed: Duration,
    ) {
        let _ = (transport, method, result, elapsed);
    }

    /// The breaker `name` moved from `from` to `to` (also called once at creation, from
    /// `Closed` to `Closed`, so a gauge starts at its real value).
    fn breaker_transition(&self, name: &str, from: BreakerState, to: BreakerState) {
        let _ = (name, from, to);
    }

    /// The breaker `name` rejected a call without running it.
    fn breaker_rejected(&self, name: &str) {
        let _ = name;
    }

    /// The bulkhead `name` now runs `in_flight` calls.
    fn bulkhead_in_flight(&self, name: &str, in_flight: usize) {
        let _ = (name, in_flight);
    }

    /// The bulkhead `name` was full and rejected a call.
    fn bulkhead_rejected(&self, name: &str) {
        let _ = name;
    }

    /// The retry layer `name` retries a call that failed with `kind`.
    fn retried(&self, name: &str, kind: ErrorKind) {
        let _ = (name, kind);
    }

    /// The retry layer `name` wanted to retry but its budget was spent.
    fn retry_budget_exhausted(&self, name: &str) {
        let _ = name;
    }

    /// The fallback `name` answered in place of a call that failed with `trigger`.
    fn fallback_used(&self, name: &str, trigger: ErrorKind) {
        let _ = (name, trigger);
    }
}

/// A shared, optional observer as the layers hold it.
pub(crate) type SharedObserver = Option<std::sync::Arc<dyn Observer>>;
