//! Output and exit codes: results on stdout, `tandem: <error>` and `hint: <hint>` on stderr.

use std::io::Write;

/// The call failed with a tandem error (the peer answered with an error, or did not answer).
pub(crate) const EXIT_CALL: i32 = 1;
/// Bad usage, bad configuration, or an internal failure.
pub(crate) const EXIT_USAGE: i32 = 2;

/// Why a verb failed, which decides the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The call itself failed: exit 1.
    Call(tandem::Error),
    /// The endpoint could not be set up, e.g. the pool did not start: exit 2.
    Setup(tandem::Error),
    /// As `Setup`, with a hint that knows the endpoint (what to start, and how): exit 2.
    SetupHint(Box<tandem::Error>, String),
    /// Bad input from the user (payload, file, endpoint): exit 2.
    Usage(anyhow::Error),
    /// Something in the CLI itself failed: exit 2.
    Internal(anyhow::Error),
    /// Ctrl-C: everything started was stopped; exit 130.
    Interrupted,
}

/// Stopped by Ctrl-C (128 + SIGINT).
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// Prints the failure on stderr and returns its exit code.
pub(crate) fn report(f: &Failure) -> i32 {
    let mut err = std::io::stderr().lock();
    let _ = match f {
        Failure::Call(e) | Failure::Setup(e) => {
            let _ = writeln!(err, "tandem: {e}");
            if let tandem::Error::Remote { traceback, .. } = e {
                if !traceback.is_empty() {
                    let _ = writeln!(err, "{}", traceback.trim_end());
                }
            }
            writeln!(err, "hint: {}", e.hint())
        }
        Failure::SetupHint(e, hint) => {
            let _ = writeln!(err, "tandem: {e}");
            writeln!(err, "hint: {hint}")
        }
        Failure::Usage(e) | Failure::Internal(e) => writeln!(err, "tandem: {e:#}"),
        Failure::Interrupted => writeln!(err, "tandem: interrupted; stopped what it had started"),
    };
    match f {
        Failure::Call(_) => EXIT_CALL,
        Failure::Interrupted => EXIT_INTERRUPTED,
        _ => EXIT_USAGE,
    }
}

/// Writes `text` and a newline to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print_line(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Internal(
            anyhow::Error::new(e).context("cannot write to stdout"),
        )),
    }
}
