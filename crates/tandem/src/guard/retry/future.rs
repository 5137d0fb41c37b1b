//! The [`Retry`](super::Retry)'s response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::call::{Error, Response};

type Boxed = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

pin_project! {
    /// The [`Retry`](super::Retry)'s response future: the inner call as is when it may not be
    /// retried, or the boxed attempt loop.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Direct { #[pin] future: F },
        Retrying { future: Boxed },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn direct(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Direct { future },
        }
    }

    pub(super) fn retrying(future: Boxed) -> Self {
        ResponseFuture {
            kind: Kind::Retrying { future },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("retry::ResponseFuture")
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Direct { future } => future.poll(cx),
            KindProj::Retrying { future } => future.as_mut().poll(cx),
        }
    }
}
