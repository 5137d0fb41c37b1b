use std::sync::Arc;

use tower::Layer;

use super::{Breaker, BreakerConfig, BreakerHandle, Shared};
use crate::guard::observer::Observer;

/// Applies a [`Breaker`]; every service it builds shares one breaker state.
#[derive(Clone, Debug)]
pub struct BreakerLayer {
    shared: Arc<Shared>,
}

impl BreakerLayer {
    /// A breaker configured by `config`.
    pub fn new(config: BreakerConfig) -> Self {
        BreakerLayer {
            shared: Shared::new(config, None),
        }
    }

    /// A breaker that reports its transitions and rejections to `observer` (e.g. a
    /// `tandem::metrics::Registry`).
    pub fn with_observer(config: BreakerConfig, observer: Arc<dyn Observer>) -> Self {
        BreakerLayer {
            shared: Shared::new(config, Some(observer)),
        }
    }

    /// A view of the breaker's state.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = Breaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Breaker::with_shared(inner, self.shared.clone())
    }
}
