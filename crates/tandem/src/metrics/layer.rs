use std::sync::Arc;

use tower::Layer;

use super::Registry;
use crate::call::Transport;
use crate::guard::Observe;

/// Counts and times every call through `transport` in a [`Registry`]
/// (`python_call_total`, `python_call_duration_seconds`).
///
/// The service it builds is [`guard::Observe`](crate::guard::Observe) with the registry as
/// the observer.
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    registry: Registry,
    transport: Transport,
}

impl MetricsLayer {
    /// Records calls through `transport` in `registry`.
    pub fn new(registry: &Registry, transport: Transport) -> Self {
        MetricsLayer {
            registry: registry.clone(),
            transport,
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe::new(inner, Arc::new(self.registry.clone()), self.transport)
    }
}
