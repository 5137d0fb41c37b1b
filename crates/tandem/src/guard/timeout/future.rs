//! The [`Timeout`](super::Timeout)'s response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::call::{Error, Response, Transport};

pin_project! {
    /// The [`Timeout`](super::Timeout)'s response future: the inner call raced against the
    /// deadline.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F> {
        Expired { error: Option<Error> },
        Running {
            #[pin]
            future: F,
            #[pin]
            sleep: Sleep,
            budget: Duration,
            transport: Transport,
            target: String,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn running(
        future: F,
        deadline: std::time::Instant,
        budget: Duration,
        transport: Transport,
        target: String,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Running {
                future,
                sleep: tokio::time::sleep_until(Instant::from_std(deadline)),
                budget,
                transport,
                target,
            },
        }
    }

    pub(super) fn expired(error: Error) -> Self {
        ResponseFuture {
            kind: Kind::Expired { error: Some(error) },
        }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Expired { error } => crate::guard::take_rejection(error),
            KindProj::Running {
                future,
                sleep,
                budget,
                transport,
                target,
            } => {
                if let Poll::Ready(result) = future.poll(cx) {
                    return Poll::Ready(result);
                }
                if sleep.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // Dropping this future drops the inner call, which cancels the remote work.
                Poll::Ready(Err(Error::Timeout {
                    transport: *transport,
                    target: std::mem::take(target),
                    // The timer fired at the deadline: the call ran for its whole budget.
                    elapsed: *budget,
                }))
            }
        }
    }
}
