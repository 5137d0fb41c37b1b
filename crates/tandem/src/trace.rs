//! W3C trace context: parse, format and generate `traceparent`, and a layer that puts one on
//! every call.
//!
//! A `traceparent` is `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase,
//! with neither id all zeros (W3C Trace Context, level 1). Each transport carries
//! `Metadata.traceparent` to Python, where `ctx.traceparent` and the handler's log records
//! show it, so one trace id links the core's logs with the Python side's.
//!
//! ```
//! use tandem::trace::TraceParent;
//!
//! let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
//! assert!(tp.sampled());
//! let child = tp.child();
//! assert_eq!(child.trace_id(), tp.trace_id());
//! assert_ne!(child.parent_id(), tp.parent_id());
//! assert!("00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
//! ```

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::Instrument;

use crate::call::{Error, Request, Response};

/// A parsed W3C `traceparent` (version 00).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

/// Why a `traceparent` string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid traceparent {value:?}: {reason} (expected 00-<32 hex>-<16 hex>-<2 hex>, lowercase, ids not all zero)")]
pub struct TraceParentError {
    value: String,
    reason: &'static str,
}

impl TraceParentError {
    fn new(value: &str, reason: &'static str) -> Self {
        let mut value = value.to_owned();
        value.truncate(80);
        TraceParentError { value, reason }
    }

    /// What was wrong with it.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

fn hex_into(src: &str, out: &mut [u8]) -> bool {
    let bytes = src.as_bytes();
    if bytes.len() != out.len() * 2 {
        return false;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        match (nibble(bytes[2 * i]), nibble(bytes[2 * i + 1])) {
            (Some(h), Some(l)) => *o = h << 4 | l,
            _ => return false,
        }
    }
    true
}

/// A random u64 (SipHash of a counter under per-process random keys); not for cryptography.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static KEYS: RandomState = RandomState::new();
    }
    KEYS.with(|keys| {
        let mut h = keys.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.finish()
    })
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    loop {
        for chunk in out.chunks_mut(8) {
            let r = random_u64().to_be_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        if out.iter().any(|b| *b != 0) {
            return out;
        }
    }
}

impl TraceParent {
    /// A new trace: random trace and parent ids, sampled.
    pub fn generate() -> Self {
        TraceParent {
            trace_id: random_nonzero(),
            parent_id: random_nonzero(),
            flags: 0x01,
        }
    }

    /// The same trace with a new parent id: the context to send for a call made inside this span.
    pub fn child(&self) -> Self {
        TraceParent {
            parent_id: random_nonzero(),
            ..*self
        }
    }

    /// Parses `s`, following the W3C rules (a later version's extra fields are ignored).
    ///
    /// # Errors
    ///
    /// [`TraceParentError`] when `s` is not a valid `traceparent`.
    pub fn parse(s: &str) -> Result<Self, TraceParentError> {
        let s = s.trim();
        let version = s
            .get(..2)
            .ok_or_else(|| TraceParentError::new(s, "too short"))?;
        let mut v = [0u8; 1];
        if !hex_into(version, &mut v) {
            return Err(TraceParentError::new(
                s,
                "version is not 2 lowercase hex digits",
            ));
        }
        if v[0] == 0xff {
            return Err(TraceParentError::new(s, "version ff is forbidden"));
        }
        let fixed = match (v[0], s.len()) {
            (0, 55) => s,
            (0, _) => return Err(TraceParentError::new(s, "version 00 must be 55 characters")),
            (_, n) if n == 55 || (n > 55 && s.as_bytes()[55] == b'-') => &s[..55],
            _ => {
                return Err(TraceParentError::new(
                    s,
                    "too short or no '-' after the flags",
                ))
            }
        };
        let parts: Vec<&str> = fixed.split('-').collect();
        let [_, trace, parent, flags] = parts[..] else {
            return Err(TraceParentError::new(
                s,
                "expected 4 fields separated by '-'",
            ));
        };
        let mut tp = TraceParent {
            trace_id: [0; 16],
            parent_id: [0; 8],
            flags: 0,
        };
        let mut f = [0u8; 1];
        if !hex_into(trace, &mut tp.trace_id) {
            return Err(TraceParentError::new(
                s,
                "trace id is not 32 lowercase hex digits",
            ));
        }
        if !hex_into(parent, &mut tp.parent_id) {
            return Err(TraceParentError::new(
                s,
                "parent id is not 16 lowercase hex digits",
            ));
        }
        if !hex_into(flags, &mut f) {
            return Err(TraceParentError::new(
                s,
                "flags are not 2 lowercase hex digits",
            ));
        }
        tp.flags = f[0];
        if tp.trace_id == [0; 16] {
            return Err(TraceParentError::new(s, "trace id is all zeros"));
        }
        if tp.parent_id == [0; 8] {
            return Err(TraceParentError::new(s, "parent id is all zeros"));
        }
        Ok(tp)
    }

    /// The 16-byte trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The 8-byte parent (span) id.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The trace flags byte.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the sampled flag (bit 0) is set.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent id as 16 lowercase hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex(&self.parent_id)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

impl TraceParent {
    /// The header value, `00-<trace id>-<parent id>-<flags>` (what `to_string` gives, faster).
    pub fn header_value(&self) -> String {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.parent_id);
        s.push('-');
        push_hex(&mut s, &[self.flags]);
        s
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header_value())
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceParent::parse(s)
    }
}

tokio::task_local! {
    static CURRENT: TraceParent;
}

/// The trace context of the running task, set by [`scope`].
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(|tp| *tp).ok()
}

/// Runs `future` with `traceparent` as the current trace context (e.g. the one an incoming
/// HTTP request carried), so calls made inside it join that trace.
pub async fn scope<F: Future>(traceparent: TraceParent, future: F) -> F::Output {
    CURRENT.scope(traceparent, future).await
}

/// Puts a `traceparent` on every call and runs it in a `tandem.call` tracing span carrying
/// the trace id.
///
/// The traceparent sent is a child of, in order: the request's own valid `traceparent`, the
/// task's [`current`] context, or a new trace. An invalid `traceparent` on the request is
/// replaced (and logged at debug level).
///
/// ```
/// use tandem::trace::{TraceLayer, TraceParent};
/// use tandem::{Error, Payload, Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let echo = service_fn(|req: Request| async move {
///     let tp = req.metadata().traceparent.clone().unwrap();
///     Ok::<_, Error>(Response::new(tandem::Payload::raw(tp)))
/// });
/// let resp = TraceLayer::new().layer(echo).oneshot(Request::new("m", Payload::raw(""))).await.unwrap();
/// let sent = std::str::from_utf8(resp.payload().bytes()).unwrap();
/// assert!(sent.parse::<TraceParent>().is_ok());
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer {
    _private: (),
}

impl TraceLayer {
    /// The layer.
    pub fn new() -> Self {
        TraceLayer { _private: () }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace { inner }
    }
}

/// The service built by [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Trace<S> {
    crate::guard::inner_accessors!();
}

/// The context a call sent from here belongs to: the request's own valid `traceparent`, else
/// the task's [`current`] one, else none (a new trace).
pub(crate) fn parent(req: &Request) -> Option<TraceParent> {
    if let Some(raw) = &req.metadata().traceparent {
        match TraceParent::parse(raw) {
            Ok(tp) => return Some(tp),
            Err(e) => tracing::debug!(error = %e, "replacing the request's invalid traceparent"),
        }
    }
    current()
}

/// The context a call sent from here should carry.
fn outgoing(req: &Request) -> TraceParent {
    parent(req).map_or_else(TraceParent::generate, |tp| tp.child())
}

impl<S> Service<Request> for Trace<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let tp = outgoing(&req);
        let header = tp.header_value();
        // The ids are slices of the header: no formatting unless a subscriber records the span.
        let span = tracing::info_span!(
            "tandem.call",
            method = req.method(),
            trace_id = &header[3..35],
            span_id = &header[36..52],
        );
        req.metadata_mut().traceparent = Some(header);
        self.inner.call(req).instrument(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_values() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(s).unwrap();
        assert_eq!(tp.to_string(), s);
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id_hex(), "00f067aa0ba902b7");
        let future = format!("cc-{}-what-the-future-holds", &s[3..]);
        assert_eq!(
            TraceParent::parse(&future).unwrap().trace_id(),
            tp.trace_id()
        );
        for (bad, reason) in [
            ("", "too short"),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "ff is forbidden",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "parent id is all zeros",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                "55 characters",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
                "4 fields",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
                "flags",
            ),
            (
                "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version",
            ),
        ] {
            let err = TraceParent::parse(bad).unwrap_err();
            assert!(err.to_string().contains(reason), "{bad}: {err}");
        }
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = TraceParent::generate();
        let b = TraceParent::generate();
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceParent::parse(&a.to_string()).unwrap(), a);
        assert!(a.sampled());
    }
}
