//! The typed `inference.InferenceService` client, on the balanced connections of a
//! [`Client`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prost::Message as _;
use tokio_stream::Stream;

use crate::call::{Error, Transport};
use crate::proto::inference::inference_service_client::InferenceServiceClient;
use crate::proto::inference::{BatchPredictRequest, PredictRequest};
pub use crate::proto::inference::{PredictChunk, PredictResponse};

use super::balance::InFlight;
use super::classify::classify;
use super::client::{check_size, configure, grpc_request, Client, Plan};

const PREDICT: &str = "inference.InferenceService/Predict";
const BATCH_PREDICT: &str = "inference.InferenceService/BatchPredict";
const STREAM_PREDICT: &str = "inference.InferenceService/StreamPredict";

/// The typed `InferenceService` client: `Predict`, `BatchPredict`, `StreamPredict`.
///
/// Made by [`Client::inference`]; it shares the client's connections, health, deadlines,
/// compression and retry budget.
///
/// ```no_run
/// # async fn demo(client: tandem::grpc::Client) -> Result<(), tandem::Error> {
/// use std::time::Duration;
/// use tokio_stream::StreamExt;
///
/// let infer = client.inference().with_timeout(Duration::from_millis(300));
/// let out = infer.predict("sentiment", b"great product".to_vec(), Default::default()).await?;
/// println!("{:?} ({})", out.output_data, out.confidence);
///
/// let mut chunks = infer.stream_predict("llm", b"hello".to_vec(), Default::default());
/// while let Some(chunk) = chunks.next().await {
///     let chunk = chunk?;
///     if chunk.is_final { break }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Inference {
    client: Client,
    timeout: Option<Duration>,
    traceparent: Option<String>,
    idempotent: bool,
}

impl Client {
    /// The typed `InferenceService` client on this client's connections.
    pub fn inference(&self) -> Inference {
        Inference {
            client: self.clone(),
            timeout: None,
            traceparent: None,
            idempotent: false,
        }
    }
}

impl Inference {
    /// Sets the deadline of each call (default: the client's default timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends this W3C `traceparent` as gRPC metadata with each call.
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// Marks predictions as idempotent, so `Predict` and `BatchPredict` are retried on
    /// transient errors (default off; a stream is never retried once it has started).
    pub fn idempotent(mut self, on: bool) -> Self {
        self.idempotent = on;
        self
    }

    fn plan<'a>(&self, method: &'a str) -> Plan<'a> {
        let timeout = self
            .timeout
            .unwrap_or(self.client.inner.settings.default_timeout);
        Plan {
            method,
            deadline: Instant::now() + timeout,
            idempotent: self.idempotent,
        }
    }

    fn grpc(
        &self,
        channel: &tonic::transport::Channel,
    ) -> InferenceServiceClient<tonic::transport::Channel> {
        configure!(
            InferenceServiceClient::new(channel.clone()),
            &self.client.inner.settings
        )
    }

    /// Runs `model` on one input.
    ///
    /// # Errors
    ///
    /// As [`Client::invoke`]; a response with `success = false` becomes `Remote` with the
    /// server's `error` text.
    pub async fn predict(
        &self,
        model: &str,
        input: Vec<u8>,
        parameters: HashMap<String, String>,
    ) -> Result<PredictResponse, Error> {
        let message = PredictRequest {
            model_name: model.to_owned(),
            input_data: input,
            parameters,
        };
        check_size(message.encoded_len(), &self.client.inner.settings, PREDICT)?;
        let plan = self.plan(PREDICT);
        let (resp, guard) = self
            .client
            .run(&plan, |conn, remaining| {
                let mut grpc = self.grpc(&conn.channel);
                let req = grpc_request(message.clone(), remaining, self.traceparent.as_deref());
                async move { Ok(grpc.predict(req).await?.into_inner()) }
            })
            .await?;
        checked(resp, model, &guard)
    }

    /// Runs `model` on several inputs in one call; one response per input, in order.
    ///
    /// # Errors
    ///
    /// As [`Inference::predict`]; a count of results different from the count of inputs is a
    /// `Protocol` error. Individual results may carry `success = false`.
    pub async fn batch_predict(
        &self,
        model: &str,
        inputs: Vec<Vec<u8>>,
    ) -> Result<Vec<PredictResponse>, Error> {
        let count = inputs.len();
        let message = BatchPredictRequest {
            model_name: model.to_owned(),
            inputs,
        };
        check_size(
            message.encoded_len(),
            &self.client.inner.settings,
            BATCH_PREDICT,
        )?;
        let plan = self.plan(BATCH_PREDICT);
        let (resp, guard) = self
            .client
            .run(&plan, |conn, remaining| {
                let mut grpc = self.grpc(&conn.channel);
                let req = grpc_request(message.clone(), remaining, self.traceparent.as_deref());
                async move { Ok(grpc.batch_predict(req).await?.into_inner()) }
            })
            .await?;
        if resp.results.len() != count {
            return Err(Error::protocol(
                Transport::Grpc,
                format!("{BATCH_PREDICT} of {model} at {}", guard.0.endpoint),
                format!("{} results for {count} inputs", resp.results.len()),
            ));
        }
        Ok(resp.results)
    }

    /// Runs `model` and streams its output chunks; the stream ends after the chunk marked
    /// `is_final` (or when the server closes it).
    ///
    /// The stream opens on first poll. Its items are errors as in [`Inference::predict`]; once
    /// the deadline passes it yields a `Timeout` and ends. Dropping it cancels the call.
    pub fn stream_predict(
        &self,
        model: &str,
        input: Vec<u8>,
        parameters: HashMap<String, String>,
    ) -> PredictStream {
        let this = self.clone();
        let message = PredictRequest {
            model_name: model.to_owned(),
            input_data: input,
            parameters,
        };
        let deadline = self.plan(STREAM_PREDICT).deadline;
        let open = async move {
            check_size(
                message.encoded_len(),
                &this.client.inner.settings,
                STREAM_PREDICT,
            )?;
            let mut plan = this.plan(STREAM_PREDICT);
            plan.deadline = deadline;
            this.client
                .run(&plan, |conn, remaining| {
                    let mut grpc = this.grpc(&conn.channel);
                    let req = grpc_request(message.clone(), remaining, this.traceparent.as_deref());
                    async move { Ok(grpc.stream_predict(req).await?.into_inner()) }
                })
                .await
        };
        PredictStream {
            state: State::Opening(Box::pin(open)),
            deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
            started: Instant::now(),
        }
    }
}

fn checked(resp: PredictResponse, model: &str, guard: &InFlight) -> Result<PredictResponse, Error> {
    if resp.success {
        return Ok(resp);
    }
    Err(Error::Remote {
        transport: Transport::Grpc,
        target: format!("{PREDICT} of {model} at {}", guard.0.endpoint),
        exc_type: "PredictionFailed".to_owned(),
        message: resp.error,
        traceback: String::new(),
    })
}

type Opening =
    Pin<Box<dyn Future<Output = Result<(tonic::Streaming<PredictChunk>, InFlight), Error>> + Send>>;

enum State {
    Opening(Opening),
    Open(Box<tonic::Streaming<PredictChunk>>, InFlight),
    Done,
}

/// The chunks of a `StreamPredict` call: a `Stream` of `Result<PredictChunk, Error>`.
pub struct PredictStream {
    state: State,
    deadline: Pin<Box<tokio::time::Sleep>>,
    started: Instant,
}

impl fmt::Debug for PredictStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Opening(_) => "opening",
            State::Open(..) => "open",
            State::Done => "done",
        };
        f.debug_struct("PredictStream")
            .field("state", &state)
            .finish()
    }
}

impl Stream for PredictStream {
    type Item = Result<PredictChunk, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if !matches!(this.state, State::Done) && this.deadline.as_mut().poll(cx).is_ready() {
                let target = match &this.state {
                    State::Open(_, guard) => format!("{STREAM_PREDICT} at {}", guard.0.endpoint),
                    _ => STREAM_PREDICT.to_owned(),
                };
                this.state = State::Done;
                return Poll::Ready(Some(Err(Error::Timeout {
                    transport: Transport::Grpc,
                    target,
                    elapsed: this.started.elapsed(),
                })));
            }
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Opening(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok((stream, guard))) => {
                        this.state = State::Open(Box::new(stream), guard)
                    }
                    Poll::Ready(Err(e)) => {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                State::Open(stream, guard) => {
                    return match Pin::new(&mut **stream).poll_next(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(Some(Ok(chunk))) => {
                            if chunk.is_final {
                                this.state = State::Done;
                            }
                            Poll::Ready(Some(Ok(chunk)))
                        }
                        Poll::Ready(Some(Err(status))) => {
                            let target = format!("{STREAM_PREDICT} at {}", guard.0.endpoint);
                            let err = classify(&status, &target, this.started.elapsed());
                            this.state = State::Done;
                            Poll::Ready(Some(Err(err)))
                        }
                        Poll::Ready(None) => {
                            this.state = State::Done;
                            Poll::Ready(None)
                        }
                    };
                }
            }
        }
    }
}
