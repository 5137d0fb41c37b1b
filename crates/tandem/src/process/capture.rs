//! Bounded capture of a child's output: stdout up to a cap, the tail of stderr.
//!
//! Both pipes are always drained to the end, so a child never blocks on a full pipe buffer.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt};

/// How many trailing stderr bytes are kept for error messages.
const STDERR_KEEP: usize = 8 * 1024;
/// How many trailing stderr lines an error message quotes.
const STDERR_LINES: usize = 10;

/// Stdout as captured: all of it, or the news that it passed the cap.
#[derive(Debug)]
pub(crate) enum Captured {
    /// Everything, up to the end of the stream.
    Bytes(Vec<u8>),
    /// More than the cap arrived; reading stopped.
    Overflow,
    /// The pipe failed.
    Failed(std::io::Error),
}

/// Reads all of `r`, failing once more than `max` bytes arrive.
pub(crate) async fn read_capped(mut r: impl AsyncRead + Unpin, max: usize) -> Captured {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) => return Captured::Bytes(buf),
            Ok(n) if buf.len() + n > max => return Captured::Overflow,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Captured::Failed(e),
        }
    }
}

/// Reads all of `r` (so the child never blocks on a full pipe), keeping the last bytes.
pub(crate) async fn read_tail(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut keep: VecDeque<u8> = VecDeque::with_capacity(STDERR_KEEP);
    let mut chunk = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        keep.extend(&chunk[..n]);
        let excess = keep.len().saturating_sub(STDERR_KEEP);
        keep.drain(..excess);
    }
    keep.into()
}

/// The last lines of stderr, joined with `\n`.
pub(crate) fn stderr_tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(STDERR_LINES);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_last_lines() {
        let text: String = (0..30).map(|i| format!("line {i}\n")).collect();
        let tail = stderr_tail(text.as_bytes());
        assert!(tail.starts_with("line 20"));
        assert!(tail.ends_with("line 29"));
    }
}
