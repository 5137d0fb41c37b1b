//! The [`Bulkhead`](super::Bulkhead)'s response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::Ticket;
use crate::call::{Error, Response};

pin_project! {
    /// The [`Bulkhead`](super::Bulkhead)'s response future: a rejection, or the inner call
    /// holding its permit until it finishes or is dropped.
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
        Rejected { error: Option<Error> },
        Admitted { #[pin] future: F, ticket: Option<Ticket> },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn admitted(future: F, ticket: Ticket) -> Self {
        ResponseFuture {
            kind: Kind::Admitted {
                future,
                ticket: Some(ticket),
            },
        }
    }

    pub(super) fn rejected(error: Error) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { error: Some(error) },
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
            KindProj::Rejected { error } => crate::guard::take_rejection(error),
            KindProj::Admitted { future, ticket } => {
                let result = ready!(future.poll(cx));
                // Return the permit as soon as the answer is in, not when the future is dropped.
                drop(ticket.take());
                Poll::Ready(result)
            }
        }
    }
}
