use std::sync::Arc;

use tower::Layer;

use super::{Bulkhead, Shared};
use crate::call::Transport;
use crate::guard::observer::Observer;

/// Applies a [`Bulkhead`]; every service it builds shares the same permits.
#[derive(Clone, Debug)]
pub struct BulkheadLayer {
    shared: Arc<Shared>,
}

impl BulkheadLayer {
    /// A bulkhead `name` admitting `limit` concurrent calls through `transport`.
    pub fn new(name: impl Into<String>, transport: Transport, limit: usize) -> Self {
        BulkheadLayer {
            shared: Shared::new(name.into(), transport, limit, None),
        }
    }

    /// Like [`new`](Self::new), reporting rejections and in-flight counts to `observer`.
    pub fn with_observer(
        name: impl Into<String>,
        transport: Transport,
        limit: usize,
        observer: Arc<dyn Observer>,
    ) -> Self {
        BulkheadLayer {
            shared: Shared::new(name.into(), transport, limit, Some(observer)),
        }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = Bulkhead<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bulkhead::with_shared(inner, self.shared.clone())
    }
}
