//! Reports every call's method, outcome and duration to an [`Observer`] (metrics, logs).
//!
//! `tandem::metrics::MetricsLayer` builds this layer over a metrics registry; any other
//! [`Observer`] works the same way.

pub mod future;
mod layer;

pub use layer::ObserveLayer;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::Service;

use self::future::ResponseFuture;
use super::observer::Observer;
use crate::call::{Error, Request, Response, Transport};

/// Tells an [`Observer`] about every call; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
    observer: Arc<dyn Observer>,
    transport: Transport,
}

impl<S> Observe<S> {
    /// Wraps `inner`, reporting its calls through `transport` to `observer`.
    pub fn new(inner: S, observer: Arc<dyn Observer>, transport: Transport) -> Self {
        Observe {
            inner,
            observer,
            transport,
        }
    }

    inner_accessors!();
}

impl<S> Service<Request> for Observe<S>
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
        let method = req.method().to_owned();
        ResponseFuture::new(
            self.inner.call(req),
            self.observer.clone(),
            self.transport,
            method,
            Instant::now(),
        )
    }
}
