//! The one place where tonic's `Status` becomes a [`tandem::Error`](crate::Error).

use std::error::Error as _;
use std::time::Duration;

use tonic::Code;

use crate::call::{Error, ErrorKind, Transport};
use crate::guard::classify_grpc_code;

/// Converts a failed gRPC call into the call model's error.
///
/// `target` names the method and the endpoint (`"score at http://127.0.0.1:50051"`);
/// `elapsed` is how long the call ran. The kind comes from the project's one status table,
/// [`classify_grpc_code`] (in `docs/resilience.md`), refined where the status says more:
///
/// | status | error |
/// |---|---|
/// | tonic's local `CANCELLED "Timeout expired"` | `Timeout` |
/// | `UNKNOWN` with a transport error as its source (a broken connection) | `Unavailable` |
/// | `RESOURCE_EXHAUSTED` / `OUT_OF_RANGE` "message larger than max" (grpcio's size limit) | `BadRequest` |
/// | `INTERNAL` "failed to decode" | `Protocol` |
/// | `UNKNOWN`, `INTERNAL` otherwise | `Remote` (`exc_type` = the gRPC code) |
pub(crate) fn classify(status: &tonic::Status, target: &str, elapsed: Duration) -> Error {
    let message = status.message();
    let detail = describe(status);
    let kind = match status.code() {
        Code::Cancelled if message.contains("Timeout expired") => ErrorKind::Timeout,
        // tonic reports a broken connection as UNKNOWN with a transport error as its source.
        Code::Unknown if is_transport_error(status) => ErrorKind::Unavailable,
        // grpcio answers an oversized message with RESOURCE_EXHAUSTED; it is the caller's to fix.
        Code::ResourceExhausted | Code::OutOfRange if is_size_limit(message) => {
            return Error::BadRequest {
                transport: Transport::Grpc,
                target: target.to_owned(),
                reason: format!("message too large: {detail}"),
            }
        }
        Code::Internal if message.contains("failed to decode") => ErrorKind::Protocol,
        code => classify_grpc_code(code as i32).unwrap_or(ErrorKind::Remote),
    };
    match kind {
        ErrorKind::Timeout => timeout(target, elapsed),
        ErrorKind::Unavailable => unavailable(status, target, detail),
        ErrorKind::Overloaded => Error::Overloaded {
            transport: Transport::Grpc,
            target: format!("{target} ({detail})"),
            limit: 0,
        },
        ErrorKind::BadRequest => Error::BadRequest {
            transport: Transport::Grpc,
            target: target.to_owned(),
            reason: format!("{}: {detail}", code_name(status.code())),
        },
        ErrorKind::Protocol => protocol(status, target, detail),
        _ => Error::Remote {
            transport: Transport::Grpc,
            target: target.to_owned(),
            exc_type: code_name(status.code()).to_owned(),
            message: detail,
            traceback: String::new(),
        },
    }
}

/// Whether the error is one a retry on another connection may fix.
pub(crate) fn is_connection_failure(err: &Error) -> bool {
    matches!(err, Error::Unavailable { .. })
}

fn timeout(target: &str, elapsed: Duration) -> Error {
    Error::Timeout {
        transport: Transport::Grpc,
        target: target.to_owned(),
        elapsed,
    }
}

fn unavailable(status: &tonic::Status, target: &str, detail: String) -> Error {
    Error::Unavailable {
        transport: Transport::Grpc,
        target: target.to_owned(),
        reason: detail,
        source: Some(Box::new(status.clone())),
    }
}

fn protocol(status: &tonic::Status, target: &str, detail: String) -> Error {
    Error::Protocol {
        transport: Transport::Grpc,
        target: target.to_owned(),
        reason: detail,
        source: Some(Box::new(status.clone())),
    }
}

fn is_size_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("larger than max") || m.contains("message length too large")
}

fn is_transport_error(status: &tonic::Status) -> bool {
    let mut source = status.source();
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>() || err.is::<std::io::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The status message followed by its source chain (where tonic keeps the io error).
fn describe(status: &tonic::Status) -> String {
    let mut out = status.message().to_owned();
    let mut source = status.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !text.is_empty() && !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        source = err.source();
    }
    if out.is_empty() {
        out = code_name(status.code()).to_owned();
    }
    out
}

/// The gRPC code's canonical upper-case name.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: Code, msg: &str) -> ErrorKind {
        classify(&tonic::Status::new(code, msg), "m at e", Duration::ZERO).kind()
    }

    #[test]
    fn codes_map_to_the_call_model() {
        assert_eq!(kind(Code::DeadlineExceeded, ""), ErrorKind::Timeout);
        assert_eq!(kind(Code::Cancelled, "Timeout expired"), ErrorKind::Timeout);
        assert_eq!(
            kind(Code::Unavailable, "conn refused"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(Code::ResourceExhausted, "Concurrent RPC limit exceeded!"),
            ErrorKind::Overloaded
        );
        assert_eq!(
            kind(
                Code::ResourceExhausted,
                "Received message larger than max (5 vs. 4)"
            ),
            ErrorKind::BadRequest
        );
        assert_eq!(kind(Code::InvalidArgument, "x"), ErrorKind::BadRequest);
        assert_eq!(kind(Code::NotFound, "x"), ErrorKind::BadRequest);
        assert_eq!(kind(Code::Internal, "boom"), ErrorKind::Remote);
        assert_eq!(kind(Code::DataLoss, "x"), ErrorKind::Protocol);
        assert_eq!(
            kind(Code::Cancelled, "server going away"),
            ErrorKind::Unavailable
        );
        assert_eq!(kind(Code::Aborted, "conflict"), ErrorKind::Unavailable);
        assert_eq!(kind(Code::Unknown, "boom"), ErrorKind::Remote);
    }

    #[test]
    fn without_a_refinement_every_code_follows_the_one_table() {
        for n in 1..=16 {
            let code = Code::from_i32(n);
            assert_eq!(
                Some(kind(code, "plain message")),
                classify_grpc_code(n),
                "{}",
                code_name(code)
            );
        }
    }

    #[test]
    fn target_and_detail_are_in_the_message() {
        let e = classify(
            &tonic::Status::not_found("unknown model 'nope'"),
            "Predict at http://127.0.0.1:1",
            Duration::ZERO,
        );
        let text = e.to_string();
        assert!(text.contains("Predict at http://127.0.0.1:1"), "{text}");
        assert!(text.contains("NOT_FOUND: unknown model 'nope'"), "{text}");
    }
}
