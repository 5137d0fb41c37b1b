//! The plugin's output: stderr log lines (hclog JSON or plain text) and GRPCStdio data.
//!
//! Stderr is parsed line by line as go-plugin's host does (`logStderr`, `parseJSON`): a JSON
//! object with string `@level`, `@message` and `@timestamp` (exactly six fractional digits)
//! becomes a structured record; `[TRACE]`…`[ERROR]` prefixes set the level of a plain line;
//! `panic:` and `fatal error:` switch every later plain line to error; anything else is debug.
//! Odd input (non-string `@` keys, arrays, invalid UTF-8, overlong lines) never fails: it is
//! logged verbatim at debug.

use std::fmt;
use std::sync::Arc;

/// Longest stderr line parsed as one record; longer lines are split (go-plugin: 64 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// A log level, as hclog names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// One parsed stderr line of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The level.
    pub level: Level,
    /// The message (the whole line for plain text).
    pub message: String,
    /// Other key/value pairs of a JSON record (`@module` included), values as JSON text.
    pub fields: Vec<(String, String)>,
}

/// The stream a GRPCStdio chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The plugin's stdout (after the handshake).
    Stdout,
    /// The plugin's stderr as redirected by go-plugin (after the handshake).
    Stderr,
}

/// A callback receiving parsed stderr log records.
pub type LogCallback = Arc<dyn Fn(&LogRecord) + Send + Sync>;
/// A callback receiving GRPCStdio chunks.
pub type StdioCallback = Arc<dyn Fn(Channel, &[u8]) + Send + Sync>;

/// Where a plugin's output goes: to `tracing` (the default) or to callbacks.
#[derive(Clone, Default)]
pub struct Sinks {
    pub(crate) log: Option<LogCallback>,
    pub(crate) stdio: Option<StdioCallback>,
}

impl fmt::Debug for Sinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sinks")
            .field(
                "log",
                &if self.log.is_some() {
                    "callback"
                } else {
                    "tracing"
                },
            )
            .field(
                "stdio",
                &if self.stdio.is_some() {
                    "callback"
                } else {
                    "tracing"
                },
            )
            .finish()
    }
}

impl Sinks {
    pub(crate) fn emit_log(&self, plugin: &str, record: &LogRecord) {
        match &self.log {
            Some(f) => f(record),
            None => trace_record(plugin, record),
        }
    }

    pub(crate) fn emit_stdio(&self, plugin: &str, channel: Channel, data: &[u8]) {
        match &self.stdio {
            Some(f) => f(channel, data),
            None => {
                let text = String::from_utf8_lossy(data);
                let text = text.trim_end();
                match channel {
                    Channel::Stdout => {
                        tracing::info!(target: "tandem::plugin::stdout", plugin, "{text}")
                    }
                    Channel::Stderr => {
                        tracing::info!(target: "tandem::plugin::stderr", plugin, "{text}")
                    }
                }
            }
        }
    }
}

fn trace_record(plugin: &str, r: &LogRecord) {
    let fields = r
        .fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let msg = &r.message;
    match r.level {
        Level::Trace => tracing::trace!(target: "tandem::plugin::log", plugin, %fields, "{msg}"),
        Level::Debug => tracing::debug!(target: "tandem::plugin::log", plugin, %fields, "{msg}"),
        Level::Info => tracing::info!(target: "tandem::plugin::log", plugin, %fields, "{msg}"),
        Level::Warn => tracing::warn!(target: "tandem::plugin::log", plugin, %fields, "{msg}"),
        Level::Error => tracing::error!(target: "tandem::plugin::log", plugin, %fields, "{msg}"),
    }
}

/// Parses stderr lines with go-plugin's rules; it remembers whether a panic started.
#[derive(Debug, Default)]
pub struct LogParser {
    in_panic: bool,
}

impl LogParser {
    /// A parser in its initial (no panic seen) state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one line (without its newline). Never fails.
    pub fn parse(&mut self, line: &[u8]) -> LogRecord {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if let Some(record) = parse_json(text) {
            return record;
        }
        if text.starts_with("panic: ") || text.starts_with("fatal error: ") {
            self.in_panic = true;
        }
        let level = if self.in_panic {
            Level::Error
        } else {
            [
                ("[TRACE]", Level::Trace),
                ("[DEBUG]", Level::Debug),
                ("[INFO]", Level::Info),
                ("[WARN]", Level::Warn),
                ("[ERROR]", Level::Error),
            ]
            .iter()
            .find(|(p, _)| text.starts_with(p))
            .map_or(Level::Debug, |(_, l)| *l)
        };
        LogRecord {
            level,
            message: text.to_owned(),
            fields: Vec::new(),
        }
    }
}

fn parse_json(text: &str) -> Option<LogRecord> {
    let serde_json::Value::Object(map) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let message = map.get("@message")?.as_str()?.to_owned();
    let level = Level::parse(map.get("@level")?.as_str()?)?;
    if let Some(ts) = map.get("@timestamp") {
        if !valid_timestamp(ts.as_str()?) {
            return None;
        }
    }
    let fields = map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "@message" | "@level" | "@timestamp"))
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            (k.clone(), v)
        })
        .collect();
    Some(LogRecord {
        level,
        message,
        fields,
    })
}

/// Checks Go's layout `2006-01-02T15:04:05.000000Z07:00`.
fn valid_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let head = b.len() >= 27
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26);
    if !head {
        return false;
    }
    match &b[26..] {
        b"Z" => true,
        [s, _, _, b':', _, _] if *s == b'+' || *s == b'-' => digits(27..29) && digits(30..32),
        _ => false,
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; calls `out` for every complete (or overlong) line.
    pub(crate) fn feed(&mut self, data: &[u8], mut out: impl FnMut(&[u8])) {
        for &byte in data {
            if byte == b'\n' {
                out(&self.buf);
                self.buf.clear();
            } else {
                self.buf.push(byte);
                if self.buf.len() >= MAX_LINE {
                    out(&self.buf);
                    self.buf.clear();
                }
            }
        }
    }

    /// Flushes an unterminated last line.
    pub(crate) fn finish(&mut self, mut out: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            out(&self.buf);
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> LogRecord {
        LogParser::new().parse(line.as_bytes())
    }

    #[test]
    fn hclog_json_becomes_a_structured_record() {
        let r = p(
            r#"{"@level":"debug","@message":"plugin address","@timestamp":"2026-11-23T19:05:09.878618Z","address":"/tmp/p","network":"unix","@module":"echo","n":3}"#,
        );
        assert_eq!(r.level, Level::Debug);
        assert_eq!(r.message, "plugin address");
        assert!(r.fields.contains(&("@module".into(), "echo".into())));
        assert!(r.fields.contains(&("n".into(), "3".into())));
        let r = p(
            r#"{"@level":"WARN","@message":"m","@timestamp":"2026-11-23T19:05:09.878618+01:00"}"#,
        );
        assert_eq!(r.level, Level::Warn);
    }

    #[test]
    fn odd_json_is_logged_verbatim_at_debug() {
        for line in [
            r#"{"@level":"info","@message":"m","@timestamp":"2026-11-23T19:05:09.00Z"}"#,
            r#"{"@level":"bogus","@message":"m"}"#,
            r#"{"@level":3,"@message":"m"}"#,
            r#"{"@level":"info","@message":["a"]}"#,
            r#"{"@level":"info","@message":"m","@timestamp":17}"#,
            r#"[1,2,3]"#,
            r#"42"#,
            r#"{"@level":"info""#,
            "",
        ] {
            let r = p(line);
            assert_eq!(r.level, Level::Debug, "{line}");
            assert_eq!(r.message, line);
        }
    }

    #[test]
    fn plain_text_levels_and_sticky_panic() {
        let mut parser = LogParser::new();
        assert_eq!(parser.parse(b"[WARN] careful").level, Level::Warn);
        assert_eq!(parser.parse(b"[ERROR] bad").level, Level::Error);
        assert_eq!(parser.parse(b"[TRACE] x").level, Level::Trace);
        assert_eq!(parser.parse(b"[INFO] x").level, Level::Info);
        assert_eq!(parser.parse(b"something").level, Level::Debug);
        assert_eq!(parser.parse(b"panic: boom").level, Level::Error);
        assert_eq!(parser.parse(b"goroutine 1 [running]:").level, Level::Error);
        let json = parser.parse(br#"{"@level":"info","@message":"still json"}"#);
        assert_eq!(json.level, Level::Info);
        let mut parser = LogParser::new();
        assert_eq!(
            parser
                .parse(b"fatal error: all goroutines are asleep")
                .level,
            Level::Error
        );
        assert_eq!(parser.parse(&[0xff, 0xfe, b'x']).level, Level::Error);
    }

    #[test]
    fn invalid_utf8_never_fails() {
        let r = p(std::str::from_utf8(b"ok").unwrap());
        assert_eq!(r.level, Level::Debug);
        let r = LogParser::new().parse(&[0xc3, 0x28, b'[', b'x']);
        assert_eq!(r.level, Level::Debug);
    }

    #[test]
    fn splitter_caps_long_lines() {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        let long = vec![b'a'; MAX_LINE + 10];
        s.feed(&long, |l| lines.push(l.len()));
        s.feed(b"\nshort\npartial", |l| lines.push(l.len()));
        s.finish(|l| lines.push(l.len()));
        assert_eq!(lines, vec![MAX_LINE, 10, 5, 7]);
    }
}
