//! A circuit breaker with hystrix's semantics: stop calling a failing dependency for a while.
//!
//! Outcomes are counted in a rolling window (10 buckets of 1 s by default). Once the window
//! holds at least `request_volume_threshold` requests (20) and the rounded error percentage is
//! at least `error_percent_threshold` (50), the breaker **opens**: calls fail at once with
//! [`Error::BreakerOpen`] without reaching the dependency. After `sleep_window` (5 s) exactly
//! one call is let through as a **trial** (half-open; every other call is still rejected). A
//! trial that succeeds closes the breaker and clears the window; one that fails opens it for
//! another sleep window. Which errors count as failures is the [`Classifier`](super::Classifier)'s
//! call ([`default_classifier`](super::default_classifier): not `BadRequest`, not `BreakerOpen`).
//!
//! All services built by one [`BreakerLayer`] (and all clones of one [`Breaker`]) share one
//! state: a breaker guards a dependency, not a connection.
//!
//! ```
//! use std::time::Duration;
//! use tandem::guard::{BreakerConfig, BreakerLayer, BreakerState};
//! use tandem::{Error, Payload, Request, Response, Transport};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let layer = BreakerLayer::new(BreakerConfig::new("fx").request_volume_threshold(2));
//! let failing = service_fn(|_req: Request| async {
//!     Err::<Response, _>(Error::unavailable(Transport::Plugin, "fx", "plugin exited"))
//! });
//! let svc = layer.layer(failing);
//! for _ in 0..2 {
//!     let _ = svc.clone().oneshot(Request::new("rate", Payload::raw("EUR"))).await;
//! }
//! assert_eq!(layer.handle().state(), BreakerState::Open);
//! let err = svc.oneshot(Request::new("rate", Payload::raw("EUR"))).await.unwrap_err();
//! assert!(matches!(err, Error::BreakerOpen { .. }));
//! # }
//! ```
//!
//! # Caveats
//!
//! Calls already running when the breaker opens finish normally; their outcomes are not
//! counted (they belong to the closed period that ended). A trial whose future is dropped
//! before it finishes counts as inconclusive: the breaker re-opens and the next trial may start
//! one sleep window after the dropped one started.

mod config;
pub mod future;
mod layer;
mod state;

pub use config::BreakerConfig;
pub use layer::BreakerLayer;
pub use state::BreakerState;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tower::Service;

use self::future::ResponseFuture;
use self::state::{Admission, Machine, Transition};
use super::classify::Outcome;
use super::observer::SharedObserver;
use crate::call::{Error, Request, Response};

/// Wraps a service with a circuit breaker; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Breaker<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// A read-only view of a breaker's state, shared with every service of the breaker.
#[derive(Clone, Debug)]
pub struct BreakerHandle {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    config: BreakerConfig,
    machine: Mutex<Machine>,
    observer: SharedObserver,
}

// ===== impl Shared =====

impl Shared {
    pub(crate) fn new(config: BreakerConfig, observer: SharedObserver) -> Arc<Self> {
        let machine = Mutex::new(Machine::new(config.clock.now(), &config));
        if let Some(o) = &observer {
            o.breaker_transition(&config.name, BreakerState::Closed, BreakerState::Closed);
        }
        Arc::new(Shared {
            config,
            machine,
            observer,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // The machine holds only counters: a panic elsewhere cannot leave it inconsistent.
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit(&self) -> Admission {
        let (admission, transition) = self.lock().admit(&self.config);
        self.report(transition);
        if matches!(admission, Admission::Rejected { .. }) {
            if let Some(o) = &self.observer {
                o.breaker_rejected(&self.config.name);
            }
        }
        admission
    }

    pub(crate) fn finish(&self, trial: bool, generation: u64, result: Result<(), &Error>) {
        let outcome = match result {
            Ok(()) => Outcome::Success,
            Err(e) => (self.config.classifier)(e),
        };
        let now = self.config.clock.now();
        let transition = self
            .lock()
            .record(now, &self.config, trial, generation, outcome);
        self.report(transition);
    }

    pub(crate) fn abandon(&self, trial: bool, generation: u64) {
        let transition = self.lock().abandon(trial, generation);
        self.report(transition);
    }

    fn report(&self, transition: Option<Transition>) {
        let Some((from, to)) = transition else { return };
        let name = &self.config.name;
        match to {
            BreakerState::Open => {
                tracing::warn!(breaker = %name, from = from.as_str(), "circuit breaker opened")
            }
            BreakerState::HalfOpen => {
                tracing::info!(breaker = %name, "circuit breaker half-open: letting one trial call through")
            }
            BreakerState::Closed => tracing::info!(breaker = %name, "circuit breaker closed"),
        }
        if let Some(o) = &self.observer {
            o.breaker_transition(name, from, to);
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("state", &self.lock().state())
            .finish_non_exhaustive()
    }
}

// ===== impl BreakerHandle =====

impl BreakerHandle {
    /// The breaker's current state.
    pub fn state(&self) -> BreakerState {
        self.shared.lock().state()
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }
}

// ===== impl Breaker =====

impl<S> Breaker<S> {
    /// Wraps `inner` with a new breaker configured by `config`.
    pub fn new(inner: S, config: BreakerConfig) -> Self {
        Breaker {
            inner,
            shared: Shared::new(config, None),
        }
    }

    pub(crate) fn with_shared(inner: S, shared: Arc<Shared>) -> Self {
        Breaker { inner, shared }
    }

    /// A view of this breaker's state.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle {
            shared: self.shared.clone(),
        }
    }

    inner_accessors!();
}

impl<S> Service<Request> for Breaker<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match self.shared.admit() {
            Admission::Allowed { trial, generation } => {
                ResponseFuture::called(self.inner.call(req), self.shared.clone(), trial, generation)
            }
            Admission::Rejected { retry_in } => ResponseFuture::rejected(Error::BreakerOpen {
                name: self.shared.config.name.clone(),
                retry_in,
            }),
        }
    }
}
