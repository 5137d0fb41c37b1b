//! Retries of idempotent calls that failed transiently, within a budget and the deadline.
//!
//! [`Retry`] runs a call again when its [`RetryPolicy`] allows it: the call is idempotent, the
//! error transient, attempts remain, the backoff fits before the request's deadline and the
//! [`RetryBudget`] has a token. Everything else goes straight to the inner service, without
//! cloning the request or boxing the future. Placed inside the [`Timeout`](super::Timeout),
//! one deadline covers all attempts (as gRFC A6 has it).
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use tandem::guard::{RetryLayer, RetryPolicy};
//! use tandem::{Error, Payload, Request, Response, Transport};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let calls = Arc::new(AtomicU32::new(0));
//! let seen = calls.clone();
//! let flaky = service_fn(move |_req: Request| {
//!     let n = seen.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         if n == 0 {
//!             Err(Error::unavailable(Transport::Pool, "quote", "worker restarting"))
//!         } else {
//!             Ok(Response::default())
//!         }
//!     }
//! });
//! let svc = RetryLayer::new(RetryPolicy::new("fx").idempotent(["quote"])).layer(flaky);
//! svc.oneshot(Request::new("quote", Payload::raw(""))).await.unwrap();
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! # }
//! ```

mod budget;
pub mod future;
mod layer;
mod policy;

pub use budget::RetryBudget;
pub use layer::RetryLayer;
pub use policy::{transient, RetryPolicy};

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Service, ServiceExt};

use self::future::ResponseFuture;
use super::observer::SharedObserver;
use crate::call::{Error, Request, Response};

/// Retries idempotent calls that failed transiently; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    policy: RetryPolicy,
    observer: SharedObserver,
}

impl Shared {
    pub(crate) fn new(policy: RetryPolicy, observer: SharedObserver) -> Arc<Self> {
        Arc::new(Shared { policy, observer })
    }

    /// Whether a call that failed with `error` after `attempt` attempts gets another one, and
    /// after which wait.
    fn next_attempt(
        &self,
        req: &Request,
        error: &Error,
        attempt: u32,
    ) -> Option<std::time::Duration> {
        let policy = &self.policy;
        if attempt >= policy.max_attempts.min(5) || !policy.retries(error) {
            return None;
        }
        let backoff = policy.backoff_after(attempt);
        if req
            .metadata()
            .remaining()
            .is_some_and(|left| left <= backoff)
        {
            return None;
        }
        if !policy.budget.withdraw() {
            tracing::debug!(retry = %policy.name, error = %error, "retry budget spent; not retrying");
            if let Some(o) = &self.observer {
                o.retry_budget_exhausted(&policy.name);
            }
            return None;
        }
        tracing::debug!(retry = %policy.name, attempt, error = %error, "retrying");
        if let Some(o) = &self.observer {
            o.retried(&policy.name, error.kind());
        }
        Some(backoff)
    }
}

// ===== impl Retry =====

impl<S> Retry<S> {
    /// Wraps `inner`, retrying as `policy` allows.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Retry {
            inner,
            shared: Shared::new(policy, None),
        }
    }

    pub(crate) fn with_shared(inner: S, shared: Arc<Shared>) -> Self {
        Retry { inner, shared }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.shared.policy
    }

    inner_accessors!();
}

impl<S> Service<Request> for Retry<S>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let policy = &self.shared.policy;
        policy.budget.deposit();
        if policy.max_attempts <= 1 || !policy.is_idempotent(&req) {
            return ResponseFuture::direct(self.inner.call(req));
        }
        // The ready service takes the first attempt; its clone stays for the next calls.
        let clone = self.inner.clone();
        let mut svc = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        ResponseFuture::retrying(Box::pin(async move {
            let mut attempt = 1;
            let mut result = svc.call(req.clone()).await;
            while let Err(error) = &result {
                let Some(backoff) = shared.next_attempt(&req, error, attempt) else {
                    break;
                };
                tokio::time::sleep(backoff).await;
                attempt += 1;
                result = match svc.ready().await {
                    Ok(ready) => ready.call(req.clone()).await,
                    Err(e) => Err(e),
                };
            }
            result
        }))
    }
}
