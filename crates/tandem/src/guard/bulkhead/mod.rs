//! A bulkhead: at most N calls at once, and the next one is rejected at once, never queued.
//!
//! [`Bulkhead`] takes a permit in `call` with `try_acquire`; when none is left the call fails
//! immediately with [`Error::Overloaded`] (hystrix's `max concurrency`), so a slow Python
//! dependency cannot pile up waiting requests in the core. The permit is held by the response
//! future and returned when the call finishes or the future is dropped. `poll_ready` only
//! forwards to the inner service: the bulkhead never applies backpressure by waiting.
//!
//! All services built by one [`BulkheadLayer`] (and all clones of one [`Bulkhead`]) share the
//! same permits.
//!
//! ```
//! use tandem::guard::BulkheadLayer;
//! use tandem::{Error, Payload, Request, Response, Transport};
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let never = service_fn(|_req: Request| std::future::pending::<Result<Response, Error>>());
//! let mut svc = BulkheadLayer::new("inference", Transport::Grpc, 1).layer(never);
//! let _running = svc.ready().await.unwrap().call(Request::new("predict", Payload::raw("")));
//! let err = svc.ready().await.unwrap().call(Request::new("predict", Payload::raw(""))).await;
//! assert!(matches!(err, Err(Error::Overloaded { limit: 1, .. })));
//! # }
//! ```

pub mod future;
mod layer;

pub use layer::BulkheadLayer;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

use self::future::ResponseFuture;
use super::observer::SharedObserver;
use crate::call::{Error, Request, Response, Transport};

/// Limits concurrent calls, rejecting the excess; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Bulkhead<S> {
    inner: S,
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    name: String,
    transport: Transport,
    limit: usize,
    semaphore: Arc<Semaphore>,
    observer: SharedObserver,
}

/// A permit held while a call runs; returns itself (and reports) when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    permit: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
}

// ===== impl Shared =====

impl Shared {
    pub(crate) fn new(
        name: String,
        transport: Transport,
        limit: usize,
        observer: SharedObserver,
    ) -> Arc<Self> {
        Arc::new(Shared {
            name,
            transport,
            limit,
            semaphore: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))),
            observer,
        })
    }

    fn in_flight(&self) -> usize {
        self.limit - self.semaphore.available_permits().min(self.limit)
    }

    fn try_enter(self: &Arc<Self>) -> Result<Ticket, Error> {
        match self.semaphore.clone().try_acquire_owned() {
            Ok(permit) => {
                if let Some(o) = &self.observer {
                    o.bulkhead_in_flight(&self.name, self.in_flight());
                }
                Ok(Ticket {
                    permit: Some(permit),
                    shared: self.clone(),
                })
            }
            Err(_) => {
                if let Some(o) = &self.observer {
                    o.bulkhead_rejected(&self.name);
                }
                Err(Error::Overloaded {
                    transport: self.transport,
                    target: format!("bulkhead {}", self.name),
                    limit: self.limit,
                })
            }
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        drop(self.permit.take());
        if let Some(o) = &self.shared.observer {
            o.bulkhead_in_flight(&self.shared.name, self.shared.in_flight());
        }
    }
}

// ===== impl Bulkhead =====

impl<S> Bulkhead<S> {
    /// Wraps `inner` with a bulkhead `name` of `limit` concurrent calls through `transport`.
    pub fn new(inner: S, name: impl Into<String>, transport: Transport, limit: usize) -> Self {
        Bulkhead {
            inner,
            shared: Shared::new(name.into(), transport, limit, None),
        }
    }

    pub(crate) fn with_shared(inner: S, shared: Arc<Shared>) -> Self {
        Bulkhead { inner, shared }
    }

    /// How many calls run now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    inner_accessors!();
}

impl<S> Service<Request> for Bulkhead<S>
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
        match self.shared.try_enter() {
            Ok(ticket) => ResponseFuture::admitted(self.inner.call(req), ticket),
            Err(e) => ResponseFuture::rejected(e),
        }
    }
}
