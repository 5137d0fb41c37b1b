//! Draining a child's stdout and stderr into `tracing`, keeping the last stderr lines.
//!
//! Both pipes are always read to the end, whatever the child writes, so a child that writes
//! more than a pipe buffer (64 KiB) never blocks; very long lines are cut at [`MAX_LINE`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

/// Longest line kept (longer lines are cut and marked with `…`).
pub(crate) const MAX_LINE: usize = 8 * 1024;
/// How many stderr lines a worker keeps for error messages.
pub(crate) const TAIL_LINES: usize = 20;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// The last lines a child wrote to stderr.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        if let Ok(mut q) = self.0.lock() {
            if q.len() == TAIL_LINES {
                q.pop_front();
            }
            q.push_back(line);
        }
    }

    /// The last `n` lines joined with " | ", or "(empty)".
    pub(crate) fn render(&self, n: usize) -> String {
        let q = match self.0.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        };
        if q.is_empty() {
            return "(empty)".to_owned();
        }
        let skip = q.len().saturating_sub(n);
        q.iter()
            .skip(skip)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// Spawns a task that reads `pipe` line by line into `tracing` (target `tandem::process::worker`)
/// with the child's pid, and into `tail` for stderr.
pub(crate) fn drain<R>(pipe: R, pid: u32, stream: Stream, tail: Tail) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut pipe = pipe;
        let mut buf = vec![0u8; 16 * 1024];
        let mut line: Vec<u8> = Vec::new();
        let mut cut = false;
        loop {
            let n = match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                if b == b'\n' {
                    emit(&line, cut, pid, stream, &tail);
                    line.clear();
                    cut = false;
                } else if line.len() < MAX_LINE {
                    line.push(b);
                } else {
                    cut = true;
                }
            }
        }
        if !line.is_empty() {
            emit(&line, cut, pid, stream, &tail);
        }
    })
}

fn emit(line: &[u8], cut: bool, pid: u32, stream: Stream, tail: &Tail) {
    let mut text = String::from_utf8_lossy(line)
        .trim_end_matches('\r')
        .to_owned();
    if cut {
        text.push('…');
    }
    match stream {
        Stream::Stdout => {
            tracing::info!(target: "tandem::process::worker", pid, stream = "stdout", "{text}")
        }
        Stream::Stderr => {
            tracing::info!(target: "tandem::process::worker", pid, stream = "stderr", "{text}");
            tail.push(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_keeps_the_last_lines_and_cuts_long_ones() {
        let mut input = Vec::new();
        for i in 0..30 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        let tail = Tail::default();
        drain(std::io::Cursor::new(input), 1, Stream::Stderr, tail.clone())
            .await
            .unwrap();
        let text = tail.render(2);
        assert!(text.starts_with("line 29 | xxx"), "{}", &text[..20]);
        assert!(text.ends_with('…'));
        assert_eq!(Tail::default().render(3), "(empty)");
    }
}
