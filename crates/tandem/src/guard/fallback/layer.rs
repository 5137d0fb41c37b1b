use std::sync::Arc;

use tower::Layer;

use super::{Fallback, FallbackFn, Shared, Triggers};
use crate::call::{Error, Request, Response};
use crate::guard::observer::Observer;

/// Applies a [`Fallback`].
#[derive(Clone, Debug)]
pub struct FallbackLayer {
    shared: Arc<Shared>,
}

impl FallbackLayer {
    /// A fallback `name` answering failures of the default trigger kinds with `function`.
    pub fn new<F>(name: impl Into<String>, function: F) -> Self
    where
        F: Fn(&Error, &Request) -> Option<Response> + Send + Sync + 'static,
    {
        Self::from_parts(
            name.into(),
            Some(Arc::new(function)),
            Triggers::default(),
            None,
        )
    }

    /// A fallback with every part given: the function (`None` disables the layer), the
    /// kinds that trigger it, and an observer told each time it answers.
    pub fn from_parts(
        name: String,
        function: Option<FallbackFn>,
        triggers: Triggers,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        FallbackLayer {
            shared: Shared::new(name, function, triggers, observer),
        }
    }
}

impl<S> Layer<S> for FallbackLayer {
    type Service = Fallback<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback::with_shared(inner, self.shared.clone())
    }
}
