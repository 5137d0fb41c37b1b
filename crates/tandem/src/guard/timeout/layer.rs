use std::time::Duration;

use tower::Layer;

use super::Timeout;
use crate::call::Transport;

/// Applies a [`Timeout`].
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    timeout: Duration,
    transport: Transport,
}

impl TimeoutLayer {
    /// Calls through `transport` get at most `timeout` each.
    pub fn new(transport: Transport, timeout: Duration) -> Self {
        TimeoutLayer { timeout, transport }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout::new(inner, self.transport, self.timeout)
    }
}
