//! A named, hystrix-style command: every guard layer configured once, stacked in order.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::util::{option_layer, Either};
use tower::Layer;

use super::breaker::{Breaker, BreakerConfig, BreakerLayer};
use super::bulkhead::{Bulkhead, BulkheadLayer};
use super::fallback::{Fallback, FallbackFn, FallbackLayer, Triggers};
use super::observe::{Observe, ObserveLayer};
use super::observer::Observer;
use super::retry::{Retry, RetryLayer, RetryPolicy};
use super::timeout::{Timeout, TimeoutLayer};
use crate::call::{Error, Request, Response, Transport};

/// The guard settings of one Python dependency, like `hystrix.ConfigureCommand`.
///
/// `Policy::new` starts from the reference architecture's defaults: a 1 s timeout, at most
/// 100 concurrent calls, a breaker with hystrix's defaults (trips at ≥ 50 % errors once 20
/// requests are in its 10 s window, lets a trial through after 5 s), retries of idempotent
/// calls within a budget, and no fallback until one is given. [`layer`](Self::layer) builds
/// the stack, outermost first:
///
/// **fallback → observe (metrics) → breaker → bulkhead → timeout → retry → transport**
///
/// `docs/resilience.md` explains the order. Each piece can be switched off (`no_…`).
///
/// The inner service must be `Clone + Send + 'static` with a `Send` future: the retry layer
/// clones it for each further attempt (transport clients are cheap handles, so this holds).
///
/// ```
/// use std::time::Duration;
/// use tandem::guard::{BreakerConfig, Policy};
/// use tandem::{Error, Payload, Request, Response, Transport};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let policy = Policy::new("risk-score", Transport::Grpc)
///     .timeout(Duration::from_millis(200))
///     // the design's variant: trip once 10 requests are in the window
///     .breaker(BreakerConfig::new("risk-score").request_volume_threshold(10))
///     .fallback(|_err, _req| Some(Response::new(Payload::raw("0.5"))));
/// let python = service_fn(|_req: Request| async {
///     Err::<Response, _>(Error::unavailable(Transport::Grpc, "score", "no endpoint"))
/// });
/// let svc = policy.layer().layer(python);
/// let resp = svc.oneshot(Request::new("score", Payload::raw("{}"))).await.unwrap();
/// assert_eq!(resp.payload().bytes().as_ref(), b"0.5");
/// # }
/// ```
#[derive(Clone)]
pub struct Policy {
    name: String,
    transport: Transport,
    timeout: Option<Duration>,
    max_concurrent: Option<usize>,
    breaker: Option<BreakerConfig>,
    retry: Option<RetryPolicy>,
    fallback: Option<FallbackFn>,
    triggers: Triggers,
    observer: Option<Arc<dyn Observer>>,
}

/// The service [`Policy::layer`] builds over `S`.
pub type Guarded<S> = Fallback<Opt<Observe<B<S>>, B<S>>>;
/// A layer that may be switched off.
type Opt<On, Off> = Either<On, Off>;
type R<S> = Opt<Retry<S>, S>;
type T<S> = Opt<Timeout<R<S>>, R<S>>;
type K<S> = Opt<Bulkhead<T<S>>, T<S>>;
type B<S> = Opt<Breaker<K<S>>, K<S>>;

impl Policy {
    /// The reference defaults for the dependency `name`, reached through `transport`.
    pub fn new(name: impl Into<String>, transport: Transport) -> Self {
        let name = name.into();
        Policy {
            breaker: Some(BreakerConfig::new(name.clone())),
            retry: Some(RetryPolicy::new(name.clone())),
            name,
            transport,
            timeout: Some(Duration::from_secs(1)),
            max_concurrent: Some(100),
            fallback: None,
            triggers: Triggers::default(),
            observer: None,
        }
    }

    /// Sets the per-call timeout (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Removes the timeout layer (the transport's own deadline handling remains).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Sets the bulkhead's limit (default 100 concurrent calls).
    pub fn max_concurrent(mut self, limit: usize) -> Self {
        self.max_concurrent = Some(limit);
        self
    }

    /// Removes the bulkhead.
    pub fn no_bulkhead(mut self) -> Self {
        self.max_concurrent = None;
        self
    }

    /// Sets the breaker's settings (default hystrix's, named after the policy).
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Some(config);
        self
    }

    /// Removes the breaker.
    pub fn no_breaker(mut self) -> Self {
        self.breaker = None;
        self
    }

    /// Sets the retry policy (default: idempotency-keyed calls only, 3 attempts, a budget).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Removes retries.
    pub fn no_retry(mut self) -> Self {
        self.retry = None;
        self
    }

    /// Answers failed calls with `function` (see [`Fallback`]).
    pub fn fallback<F>(mut self, function: F) -> Self
    where
        F: Fn(&Error, &Request) -> Option<Response> + Send + Sync + 'static,
    {
        self.fallback = Some(Arc::new(function));
        self
    }

    /// Sets which error kinds trigger the fallback (default all but `BadRequest`).
    pub fn fallback_on(mut self, triggers: Triggers) -> Self {
        self.triggers = triggers;
        self
    }

    /// Reports calls, breaker transitions, rejections, retries and fallbacks to `observer`
    /// (e.g. `Arc::new(tandem::metrics::Registry)`).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Builds the layer. Services built by one `PolicyLayer` share their breaker, bulkhead and
    /// retry budget; call `layer()` again for an independent set.
    pub fn layer(&self) -> PolicyLayer {
        let observer = self.observer.clone();
        PolicyLayer {
            fallback: FallbackLayer::from_parts(
                self.name.clone(),
                self.fallback.clone(),
                self.triggers,
                observer.clone(),
            ),
            observe: observer
                .clone()
                .map(|o| ObserveLayer::new(o, self.transport)),
            breaker: self.breaker.clone().map(|config| match &observer {
                Some(o) => BreakerLayer::with_observer(config, o.clone()),
                None => BreakerLayer::new(config),
            }),
            bulkhead: self.max_concurrent.map(|limit| match &observer {
                Some(o) => BulkheadLayer::with_observer(
                    self.name.clone(),
                    self.transport,
                    limit,
                    o.clone(),
                ),
                None => BulkheadLayer::new(self.name.clone(), self.transport, limit),
            }),
            timeout: self.timeout.map(|t| TimeoutLayer::new(self.transport, t)),
            retry: self.retry.clone().map(|policy| match &observer {
                Some(o) => RetryLayer::with_observer(policy, o.clone()),
                None => RetryLayer::new(policy),
            }),
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("transport", &self.transport)
            .field("timeout", &self.timeout)
            .field("max_concurrent", &self.max_concurrent)
            .field("breaker", &self.breaker)
            .field("retry", &self.retry)
            .field("fallback", &self.fallback.is_some())
            .field("triggers", &self.triggers)
            .field("observer", &self.observer)
            .finish()
    }
}

/// The layer built by [`Policy::layer`]: the whole guard stack in the documented order.
#[derive(Clone, Debug)]
pub struct PolicyLayer {
    fallback: FallbackLayer,
    observe: Option<ObserveLayer>,
    breaker: Option<BreakerLayer>,
    bulkhead: Option<BulkheadLayer>,
    timeout: Option<TimeoutLayer>,
    retry: Option<RetryLayer>,
}

impl PolicyLayer {
    /// A view of the breaker's state, if the policy has a breaker.
    pub fn breaker(&self) -> Option<super::BreakerHandle> {
        self.breaker.as_ref().map(BreakerLayer::handle)
    }
}

impl<S> Layer<S> for PolicyLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let s = option_layer(self.retry.clone()).layer(inner);
        let s = option_layer(self.timeout).layer(s);
        let s = option_layer(self.bulkhead.clone()).layer(s);
        let s = option_layer(self.breaker.clone()).layer(s);
        let s = option_layer(self.observe.clone()).layer(s);
        self.fallback.layer(s)
    }
}
