//! A scripted inner service: the method name says what it does.
//!
//! - `ok` answers at once; `bad` fails with `BadRequest`; `down` with `Unavailable`;
//!   `raise` with `Remote`; `busy` with `Overloaded`;
//! - `gate` waits until the test opens one permit of the gate, then answers `ok`;
//! - `hang` never answers;
//! - `flaky` fails with `Unavailable` the first `flaky_failures` times, then answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_like::BoxFuture;
use tandem::{Error, Payload, Request, Response, Transport};
use tokio::sync::Semaphore;
use tower::Service;

mod futures_like {
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

#[derive(Clone)]
pub struct Stub {
    pub calls: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Request>>>,
    pub gate: Arc<Semaphore>,
    pub flaky_failures: Arc<AtomicUsize>,
}

impl Stub {
    pub fn new() -> Self {
        Stub {
            calls: Arc::default(),
            seen: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
            flaky_failures: Arc::default(),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn last_seen(&self) -> Request {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a call reached the stub")
    }
}

pub fn req(method: &str) -> Request {
    Request::new(method, Payload::raw("{}"))
}

impl Service<Request> for Stub {
    type Response = Response;
    type Error = Error;
    type Future = BoxFuture<Result<Response, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(req.clone());
        let method = req.method().to_owned();
        let gate = self.gate.clone();
        let flaky = self.flaky_failures.clone();
        Box::pin(async move {
            match method.as_str() {
                "ok" => Ok(Response::new(Payload::raw("ok"))),
                "bad" => Err(Error::bad_request(Transport::Pool, "bad", "unknown method")),
                "down" => Err(Error::unavailable(Transport::Pool, "down", "worker exited")),
                "busy" => Err(Error::Overloaded {
                    transport: Transport::Pool,
                    target: "busy".into(),
                    limit: 1,
                }),
                "raise" => Err(Error::Remote {
                    transport: Transport::Pool,
                    target: "raise".into(),
                    exc_type: "ValueError".into(),
                    message: "boom".into(),
                    traceback: String::new(),
                }),
                "gate" => {
                    gate.acquire().await.expect("gate open").forget();
                    Ok(Response::new(Payload::raw("ok")))
                }
                "hang" => std::future::pending().await,
                "flaky" => {
                    let left = flaky.load(Ordering::SeqCst);
                    if left > 0 {
                        flaky.store(left - 1, Ordering::SeqCst);
                        Err(Error::unavailable(Transport::Pool, "flaky", "restarting"))
                    } else {
                        Ok(Response::new(Payload::raw("ok")))
                    }
                }
                other => Err(Error::bad_request(
                    Transport::Pool,
                    other,
                    "stub has no such method",
                )),
            }
        })
    }
}
