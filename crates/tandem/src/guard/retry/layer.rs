use std::sync::Arc;

use tower::Layer;

use super::{Retry, RetryPolicy, Shared};
use crate::guard::observer::Observer;

/// Applies a [`Retry`]; every service it builds shares the policy and its budget.
#[derive(Clone, Debug)]
pub struct RetryLayer {
    shared: Arc<Shared>,
}

impl RetryLayer {
    /// Retries as `policy` allows.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            shared: Shared::new(policy, None),
        }
    }

    /// Like [`new`](Self::new), reporting retries and a spent budget to `observer`.
    pub fn with_observer(policy: RetryPolicy, observer: Arc<dyn Observer>) -> Self {
        RetryLayer {
            shared: Shared::new(policy, Some(observer)),
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::with_shared(inner, self.shared.clone())
    }
}
