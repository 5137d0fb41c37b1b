use std::sync::Arc;

use tower::Layer;

use super::Observe;
use crate::call::Transport;
use crate::guard::observer::Observer;

/// Applies [`Observe`].
#[derive(Clone, Debug)]
pub struct ObserveLayer {
    observer: Arc<dyn Observer>,
    transport: Transport,
}

impl ObserveLayer {
    /// Reports calls through `transport` to `observer`.
    pub fn new(observer: Arc<dyn Observer>, transport: Transport) -> Self {
        ObserveLayer {
            observer,
            transport,
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe::new(inner, self.observer.clone(), self.transport)
    }
}
