//! The [`Observe`](super::Observe) layer's response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

use crate::call::{Error, Response, Transport};
use crate::guard::observer::Observer;

pin_project! {
    /// The [`Observe`](super::Observe) layer's response future: reports the call when it ends.
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        observer: Arc<dyn Observer>,
        transport: Transport,
        method: String,
        started: Instant,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        future: F,
        observer: Arc<dyn Observer>,
        transport: Transport,
        method: String,
        started: Instant,
    ) -> Self {
        ResponseFuture {
            future,
            observer,
            transport,
            method,
            started,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("observe::ResponseFuture")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        this.observer.call(
            *this.transport,
            this.method,
            result.as_ref().map(|_| ()).map_err(Error::kind),
            this.started.elapsed(),
        );
        Poll::Ready(result)
    }
}
