//! Which errors count against a dependency, and how gRPC status codes map onto [`ErrorKind`].

use crate::call::{Error, ErrorKind};

/// How the breaker counts one finished call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The dependency answered: counts as a request, not an error (and closes a half-open breaker).
    Success,
    /// The dependency failed: counts as a request and an error (and re-opens a half-open breaker).
    Failure,
    /// Says nothing about the dependency (e.g. a nested breaker's rejection): not counted.
    Ignored,
}

/// Decides the [`Outcome`] of a failed call; successful calls are always [`Outcome::Success`].
pub type Classifier = fn(&Error) -> Outcome;

/// The default [`Classifier`]: `Timeout`, `Unavailable`, `Overloaded`, `Remote` and `Protocol`
/// are failures; `BadRequest` is a success (the dependency answered, the caller was wrong);
/// `BreakerOpen` (from a breaker further in) is ignored.
///
/// ```
/// use tandem::guard::{default_classifier, Outcome};
/// use tandem::{Error, Transport};
///
/// let bad = Error::bad_request(Transport::Grpc, "score", "unknown method");
/// assert_eq!(default_classifier(&bad), Outcome::Success);
/// let gone = Error::unavailable(Transport::Pool, "score", "worker exited");
/// assert_eq!(default_classifier(&gone), Outcome::Failure);
/// ```
pub fn default_classifier(error: &Error) -> Outcome {
    match error.kind() {
        ErrorKind::BadRequest => Outcome::Success,
        ErrorKind::BreakerOpen => Outcome::Ignored,
        _ => Outcome::Failure,
    }
}

/// The [`ErrorKind`] for a gRPC status code (`tonic::Code as i32`), `None` for `OK` (0).
///
/// The one status table of the project: the grpc and plugin transports build their errors on
/// it in their `classify` function, refining it only where a status message or the transport
/// knows more (tonic's local `CANCELLED "Timeout expired"` is a `Timeout`; see
/// `docs/resilience.md`). `CANCELLED` is `Unavailable`: a caller that gives up drops its future
/// and never sees a status, so a `CANCELLED` that arrives came from the server or the
/// connection. Codes outside 0–16 are a peer breaking the protocol.
///
/// ```
/// use tandem::guard::classify_grpc_code;
/// use tandem::ErrorKind;
///
/// assert_eq!(classify_grpc_code(4), Some(ErrorKind::Timeout)); // DEADLINE_EXCEEDED
/// assert_eq!(classify_grpc_code(14), Some(ErrorKind::Unavailable));
/// assert_eq!(classify_grpc_code(3), Some(ErrorKind::BadRequest)); // INVALID_ARGUMENT
/// assert_eq!(classify_grpc_code(0), None);
/// ```
pub fn classify_grpc_code(code: i32) -> Option<ErrorKind> {
    Some(match code {
        0 => return None,
        // DEADLINE_EXCEEDED
        4 => ErrorKind::Timeout,
        // UNKNOWN, INTERNAL: the server failed while handling the call.
        2 | 13 => ErrorKind::Remote,
        // INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION,
        // OUT_OF_RANGE, UNIMPLEMENTED, UNAUTHENTICATED: the caller's mistake.
        3 | 5 | 6 | 7 | 9 | 11 | 12 | 16 => ErrorKind::BadRequest,
        // RESOURCE_EXHAUSTED: the server shed the call.
        8 => ErrorKind::Overloaded,
        // CANCELLED (by the server or the connection), ABORTED (a conflict worth retrying
        // later), UNAVAILABLE.
        1 | 10 | 14 => ErrorKind::Unavailable,
        // DATA_LOSS (corrupt data on the wire or at rest), and codes gRPC does not define.
        _ => ErrorKind::Protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Transport;
    use std::time::Duration;

    #[test]
    fn every_grpc_code_has_a_kind() {
        let expected = [
            (1, ErrorKind::Unavailable),
            (2, ErrorKind::Remote),
            (3, ErrorKind::BadRequest),
            (4, ErrorKind::Timeout),
            (5, ErrorKind::BadRequest),
            (6, ErrorKind::BadRequest),
            (7, ErrorKind::BadRequest),
            (8, ErrorKind::Overloaded),
            (9, ErrorKind::BadRequest),
            (10, ErrorKind::Unavailable),
            (11, ErrorKind::BadRequest),
            (12, ErrorKind::BadRequest),
            (13, ErrorKind::Remote),
            (14, ErrorKind::Unavailable),
            (15, ErrorKind::Protocol),
            (16, ErrorKind::BadRequest),
            (17, ErrorKind::Protocol),
            (-1, ErrorKind::Protocol),
        ];
        for (code, kind) in expected {
            assert_eq!(classify_grpc_code(code), Some(kind), "code {code}");
        }
    }

    #[test]
    fn breaker_rejections_are_ignored() {
        let e = Error::BreakerOpen {
            name: "x".into(),
            retry_in: Duration::ZERO,
        };
        assert_eq!(default_classifier(&e), Outcome::Ignored);
        let e = Error::Timeout {
            transport: Transport::Grpc,
            target: "m".into(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(default_classifier(&e), Outcome::Failure);
    }
}
