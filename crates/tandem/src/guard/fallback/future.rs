//! The [`Fallback`](super::Fallback)'s response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::Shared;
use crate::call::{Error, Request, Response};

pin_project! {
    /// The [`Fallback`](super::Fallback)'s response future: the inner call, replaced by the
    /// fallback's answer when it fails with a trigger kind.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        fallback: Option<(Request, Arc<Shared>)>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(future: F, fallback: Option<(Request, Arc<Shared>)>) -> Self {
        ResponseFuture { future, fallback }
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
        let Err(error) = result else {
            return Poll::Ready(result);
        };
        let answer = this
            .fallback
            .take()
            .and_then(|(req, shared)| shared.answer(&error, &req));
        Poll::Ready(answer.ok_or(error))
    }
}
