//! The [`Breaker`](super::Breaker)'s response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::Shared;
use crate::call::{Error, Response};

pin_project! {
    /// The [`Breaker`](super::Breaker)'s response future: a rejection, or the inner call
    /// whose outcome is recorded when it finishes.
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
        Called { #[pin] future: F, permit: Option<Permit> },
    }
}

/// The right to report one allowed call's outcome; reports "abandoned" if dropped unused.
#[derive(Debug)]
struct Permit {
    shared: Arc<Shared>,
    trial: bool,
    generation: u64,
    reported: bool,
}

impl Permit {
    fn finish(mut self, result: Result<(), &Error>) {
        self.reported = true;
        self.shared.finish(self.trial, self.generation, result);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.reported {
            self.shared.abandon(self.trial, self.generation);
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn called(future: F, shared: Arc<Shared>, trial: bool, generation: u64) -> Self {
        ResponseFuture {
            kind: Kind::Called {
                future,
                permit: Some(Permit {
                    shared,
                    trial,
                    generation,
                    reported: false,
                }),
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
            KindProj::Called { future, permit } => {
                let result = ready!(future.poll(cx));
                if let Some(p) = permit.take() {
                    p.finish(result.as_ref().map(|_| ()));
                }
                Poll::Ready(result)
            }
        }
    }
}
