//! The pool's wire format: length-prefixed frames with a fixed header and a msgpack body.
//!
//! ```text
//! offset size field
//! 0      4    length   u32 BE: bytes after this field (header + body), 14 ..= max_frame
//! 4      2    magic    "TD" (0x54 0x44)
//! 6      1    version  1
//! 7      1    type     1 hello · 2 call · 3 ok · 4 error · 5 ping · 6 pong · 7 shutdown
//! 8      2    flags    u16 BE, must be 0 (no flags are defined in version 1)
//! 10     8    id       u64 BE request id (0 for hello and shutdown)
//! 18     …    body     one msgpack map (length - 12 bytes)
//! ```
//!
//! `docs/internals/process.md` documents every field and body key; `proto/vectors/pool/*.json`
//! holds the shared test vectors that the Rust and Python sides both check.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use rmpv::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The frame magic, "TD".
pub const MAGIC: [u8; 2] = *b"TD";
/// The protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Bytes of the fixed header after the length prefix.
pub const HEADER_LEN: usize = 14;
/// Room a frame needs beyond its payload for the header, method, metadata and headers.
pub const FRAME_OVERHEAD: usize = 64 * 1024;

/// The message a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Worker → parent, once, after the app imported: protocol, pid, app, methods.
    Hello = 1,
    /// Parent → worker: run one call.
    Call = 2,
    /// Worker → parent: the call's encoded answer.
    Ok = 3,
    /// Worker → parent: the call failed (kind, type, message, traceback).
    Error = 4,
    /// Either way: are you alive?
    Ping = 5,
    /// The answer to a ping, echoing its id.
    Pong = 6,
    /// Parent → worker: finish and exit.
    Shutdown = 7,
}

impl MessageType {
    /// The type with the given wire byte, if any.
    pub fn from_u8(b: u8) -> Option<Self> {
        use MessageType::*;
        [Hello, Call, Ok, Error, Ping, Pong, Shutdown]
            .into_iter()
            .find(|t| *t as u8 == b)
    }

    /// The lowercase name used in docs, vectors and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Hello => "hello",
            MessageType::Call => "call",
            MessageType::Ok => "ok",
            MessageType::Error => "error",
            MessageType::Ping => "ping",
            MessageType::Pong => "pong",
            MessageType::Shutdown => "shutdown",
        }
    }
}

/// Why bytes are not a valid frame. [`FrameError::code`] is the name the test vectors use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is above the limit (checked before allocating).
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The length prefix is below the header size.
    #[error("frame length {0} is shorter than the {HEADER_LEN}-byte header")]
    TooShort(u32),
    /// The stream ended inside a frame.
    #[error("truncated frame: stream ended after {got} of {want} bytes")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes announced.
        want: usize,
    },
    /// The magic is not "TD".
    #[error("bad magic {0:02x?} (expected 54 44, \"TD\"): the peer is not speaking the tandem pool protocol")]
    Magic([u8; 2]),
    /// An unsupported protocol version.
    #[error("unsupported protocol version {0} (this side speaks {VERSION})")]
    Version(u8),
    /// An unknown message type.
    #[error("unknown message type {0} (known: 1 hello .. 7 shutdown)")]
    Type(u8),
    /// Flags set that version 1 does not define.
    #[error("unknown flags {0:#06x} (version 1 defines none)")]
    Flags(u16),
    /// The body is not a msgpack map with the keys its type requires.
    #[error("bad {ty} body: {detail}")]
    Body {
        /// The message type.
        ty: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl FrameError {
    /// The short name of the error, as used in `proto/vectors/pool/*.json`.
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::TooLarge { .. } => "too_large",
            FrameError::TooShort(_) => "too_short",
            FrameError::Truncated { .. } => "truncated",
            FrameError::Magic(_) => "magic",
            FrameError::Version(_) => "version",
            FrameError::Type(_) => "type",
            FrameError::Flags(_) => "flags",
            FrameError::Body { .. } => "body",
        }
    }

    fn body(ty: MessageType, detail: impl Into<String>) -> Self {
        FrameError::Body {
            ty: ty.as_str(),
            detail: detail.into(),
        }
    }
}

/// One decoded frame: its type, id and msgpack body.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The message type.
    pub ty: MessageType,
    /// The request id.
    pub id: u64,
    /// The body, a msgpack map.
    pub body: Value,
}

impl Frame {
    /// A frame of `ty` with `id` and `body`.
    pub fn new(ty: MessageType, id: u64, body: Value) -> Self {
        Self { ty, id, body }
    }

    /// Encodes the frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = rmpv::encode::write_value(&mut body, &self.body);
        let mut out = Vec::with_capacity(4 + HEADER_LEN + body.len());
        out.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_be_bytes());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.ty as u8);
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes one complete frame (length prefix included) from `bytes`.
    ///
    /// # Errors
    ///
    /// A [`FrameError`] naming what is wrong; trailing bytes after the frame are an error.
    pub fn decode(bytes: &[u8], max_frame: usize) -> Result<Frame, FrameError> {
        let Some(prefix) = bytes.get(..4) else {
            return Err(FrameError::Truncated {
                got: bytes.len(),
                want: 4,
            });
        };
        let len = check_len(prefix_u32(prefix), max_frame)?;
        let rest = &bytes[4..];
        if rest.len() < len {
            return Err(FrameError::Truncated {
                got: rest.len(),
                want: len,
            });
        }
        if rest.len() > len {
            return Err(FrameError::Body {
                ty: "frame",
                detail: format!("{} trailing bytes after the frame", rest.len() - len),
            });
        }
        decode_after_prefix(rest)
    }
}

fn prefix_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Validates a length prefix against the header size and `max_frame`, before any allocation.
pub fn check_len(len: u32, max_frame: usize) -> Result<usize, FrameError> {
    if (len as usize) < HEADER_LEN {
        return Err(FrameError::TooShort(len));
    }
    if len as usize > max_frame {
        return Err(FrameError::TooLarge {
            len: len.into(),
            max: max_frame,
        });
    }
    Ok(len as usize)
}

/// Decodes header and body (everything after the length prefix).
pub fn decode_after_prefix(rest: &[u8]) -> Result<Frame, FrameError> {
    let h = &rest[..HEADER_LEN];
    let magic = [h[0], h[1]];
    if magic != MAGIC {
        return Err(FrameError::Magic(magic));
    }
    if h[2] != VERSION {
        return Err(FrameError::Version(h[2]));
    }
    let ty = MessageType::from_u8(h[3]).ok_or(FrameError::Type(h[3]))?;
    let flags = u16::from_be_bytes([h[4], h[5]]);
    if flags != 0 {
        return Err(FrameError::Flags(flags));
    }
    let mut idb = [0u8; 8];
    idb.copy_from_slice(&h[6..14]);
    let id = u64::from_be_bytes(idb);
    let mut body = &rest[HEADER_LEN..];
    let value = rmpv::decode::read_value(&mut body)
        .map_err(|e| FrameError::body(ty, format!("not msgpack: {e}")))?;
    if !body.is_empty() {
        return Err(FrameError::body(
            ty,
            format!("{} bytes after the msgpack map", body.len()),
        ));
    }
    if !value.is_map() {
        return Err(FrameError::body(ty, "not a msgpack map"));
    }
    Ok(Frame {
        ty,
        id,
        body: value,
    })
}

/// What reading a frame from a stream gave.
#[derive(Debug)]
pub enum ReadError {
    /// The stream ended cleanly between frames (the peer closed or died).
    Eof,
    /// An io error.
    Io(std::io::Error),
    /// Bytes that are not a frame.
    Frame(FrameError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Eof => f.write_str("end of stream"),
            ReadError::Io(e) => write!(f, "read failed: {e}"),
            ReadError::Frame(e) => e.fmt(f),
        }
    }
}

/// Reads one frame, rejecting a length above `max_frame` before allocating its buffer.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max_frame: usize,
) -> Result<Frame, ReadError> {
    let buf = read_frame_bytes(r, max_frame).await?;
    decode_after_prefix(&buf).map_err(ReadError::Frame)
}

/// The `ok` answer to call `id` in `frame` (the bytes after the length prefix), read
/// without a value tree when header and body are exactly as a worker writes them, the payload
/// a slice of `frame`; `None` for any other frame, which [`decode_after_prefix`] then reads in
/// full (and names any defect).
pub fn read_ok_answer(frame: &Bytes, id: u64) -> Option<(String, Bytes)> {
    let mut header = [0u8; HEADER_LEN];
    header[..2].copy_from_slice(&MAGIC);
    header[2] = VERSION;
    header[3] = MessageType::Ok as u8;
    header[6..].copy_from_slice(&id.to_be_bytes());
    if frame.get(..HEADER_LEN)? != header {
        return None;
    }
    read_canonical_ok(&frame.slice(HEADER_LEN..))
}

/// Reads one frame's bytes after the length prefix (header and body, not checked), rejecting
/// a length above `max_frame` before allocating its buffer.
pub async fn read_frame_bytes<R: AsyncRead + Unpin>(
    r: &mut R,
    max_frame: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut prefix[got..]).await {
            Ok(0) if got == 0 => return Err(ReadError::Eof),
            Ok(0) => return Err(ReadError::Frame(FrameError::Truncated { got, want: 4 })),
            Ok(n) => got += n,
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    let len = check_len(u32::from_be_bytes(prefix), max_frame).map_err(ReadError::Frame)?;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match r.read(&mut buf[got..]).await {
            Ok(0) => return Err(ReadError::Frame(FrameError::Truncated { got, want: len })),
            Ok(n) => got += n,
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(buf)
}

// ----- bodies ----------------------------------------------------------------------------

/// The worker's ready handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the worker speaks.
    pub protocol: u64,
    /// The worker's pid.
    pub pid: u32,
    /// The app's name.
    pub app: String,
    /// The app's registered methods.
    pub methods: Vec<String>,
    /// The largest frame the worker accepts.
    pub max_frame: u64,
    /// The largest wire message the worker receives whole; 0 when absent (a worker from before
    /// the seqpacket wire, which the pool refuses).
    pub message_max: u64,
}

/// A call as it travels to the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallBody {
    /// The method name.
    pub method: String,
    /// The payload's codec name.
    pub codec: String,
    /// The encoded payload.
    pub payload: Bytes,
    /// Milliseconds left before the deadline.
    pub timeout_ms: Option<u64>,
    /// W3C traceparent.
    pub traceparent: Option<String>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Free headers.
    pub headers: BTreeMap<String, String>,
    /// Microseconds the worker may poll for the next call after answering this one before it
    /// sleeps (`PoolBuilder::spin`; the caller polls as long for the answer); written only
    /// when non-zero, absent means 0.
    pub spin_us: u64,
    /// The deadline on the host's `CLOCK_MONOTONIC`, in nanoseconds: parent and worker share
    /// that clock, so a call that waited written behind another still gets its true deadline
    /// (`timeout_ms` is the time left when it was encoded). Written only when set.
    pub deadline_ns: Option<u64>,
}

/// An error reply's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// Error kind name (`remote`, `bad_request`, ...).
    pub kind: String,
    /// Exception type.
    pub exc_type: String,
    /// Message.
    pub message: String,
    /// Formatted traceback.
    pub traceback: String,
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn opt_s(v: &Option<String>) -> Value {
    v.as_deref().map_or(Value::Nil, Value::from)
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
}

/// An empty map body (ping, pong, shutdown).
pub fn empty_body() -> Value {
    Value::Map(Vec::new())
}

impl Hello {
    /// The body, keys in canonical order.
    pub fn to_value(&self) -> Value {
        map(vec![
            ("protocol", Value::from(self.protocol)),
            ("pid", Value::from(self.pid)),
            ("app", s(&self.app)),
            (
                "methods",
                Value::Array(self.methods.iter().map(|m| s(m)).collect()),
            ),
            ("max_frame", Value::from(self.max_frame)),
            ("message_max", Value::from(self.message_max)),
        ])
    }

    /// Reads a hello body.
    ///
    /// # Errors
    ///
    /// [`FrameError::Body`] when a key is missing or has the wrong type.
    pub fn from_value(v: &Value) -> Result<Self, FrameError> {
        let f = Fields::new(MessageType::Hello, v)?;
        let methods = match f.get("methods") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|m| {
                    m.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| f.err("methods must be strings"))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(f.err("missing array \"methods\"")),
        };
        Ok(Hello {
            protocol: f.uint("protocol")?,
            pid: u32::try_from(f.uint("pid")?).map_err(|_| f.err("pid out of range"))?,
            app: f.string("app")?,
            methods,
            max_frame: f.uint("max_frame")?,
            message_max: f.opt_uint("message_max")?.unwrap_or(0),
        })
    }
}

impl CallBody {
    /// The whole call frame with request id `id`, length prefix included: the bytes
    /// `Frame::new(MessageType::Call, id, self.to_value()).encode()` gives, written directly
    /// (no value tree, the payload copied once). This is the pool's hot path.
    pub fn encode_frame(&self, id: u64) -> Vec<u8> {
        use rmp::encode as mp;
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum();
        let strings = self.method.len() + self.codec.len() + headers;
        let mut out = Vec::with_capacity(4 + HEADER_LEN + 128 + strings + self.payload.len());
        out.extend_from_slice(&[0; 4]); // the length, written last
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(MessageType::Call as u8);
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        let w = &mut out;
        let opt_str = |w: &mut Vec<u8>, v: &Option<String>| match v {
            Some(v) => mp::write_str(w, v).map_err(drop),
            None => mp::write_nil(w).map_err(drop),
        };
        // Writing into a Vec cannot fail.
        let _ = (|| -> Result<(), ()> {
            let extra = u32::from(self.spin_us > 0) + u32::from(self.deadline_ns.is_some());
            mp::write_map_len(w, 7 + extra).map_err(drop)?;
            mp::write_str(w, "method").map_err(drop)?;
            mp::write_str(w, &self.method).map_err(drop)?;
            mp::write_str(w, "codec").map_err(drop)?;
            mp::write_str(w, &self.codec).map_err(drop)?;
            mp::write_str(w, "payload").map_err(drop)?;
            mp::write_bin(w, &self.payload).map_err(drop)?;
            mp::write_str(w, "timeout_ms").map_err(drop)?;
            match self.timeout_ms {
                Some(ms) => mp::write_uint(w, ms).map(drop).map_err(drop)?,
                None => mp::write_nil(w).map_err(drop)?,
            }
            mp::write_str(w, "traceparent").map_err(drop)?;
            opt_str(w, &self.traceparent)?;
            mp::write_str(w, "idempotency_key").map_err(drop)?;
            opt_str(w, &self.idempotency_key)?;
            mp::write_str(w, "headers").map_err(drop)?;
            let n = u32::try_from(self.headers.len()).map_err(drop)?;
            mp::write_map_len(w, n).map_err(drop)?;
            for (k, v) in &self.headers {
                mp::write_str(w, k).map_err(drop)?;
                mp::write_str(w, v).map_err(drop)?;
            }
            if self.spin_us > 0 {
                mp::write_str(w, "spin_us").map_err(drop)?;
                mp::write_uint(w, self.spin_us).map_err(drop)?;
            }
            if let Some(ns) = self.deadline_ns {
                mp::write_str(w, "deadline_ns").map_err(drop)?;
                mp::write_uint(w, ns).map_err(drop)?;
            }
            Ok(())
        })();
        let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
        out[..4].copy_from_slice(&len.to_be_bytes());
        out
    }

    /// The body, keys in canonical order.
    pub fn to_value(&self) -> Value {
        let mut pairs = vec![
            ("method", s(&self.method)),
            ("codec", s(&self.codec)),
            ("payload", Value::Binary(self.payload.to_vec())),
            (
                "timeout_ms",
                self.timeout_ms.map_or(Value::Nil, Value::from),
            ),
            ("traceparent", opt_s(&self.traceparent)),
            ("idempotency_key", opt_s(&self.idempotency_key)),
            (
                "headers",
                Value::Map(self.headers.iter().map(|(k, v)| (s(k), s(v))).collect()),
            ),
        ];
        if self.spin_us > 0 {
            pairs.push(("spin_us", Value::from(self.spin_us)));
        }
        if let Some(ns) = self.deadline_ns {
            pairs.push(("deadline_ns", Value::from(ns)));
        }
        map(pairs)
    }

    /// Reads a call body.
    ///
    /// # Errors
    ///
    /// [`FrameError::Body`] when a key is missing or has the wrong type.
    pub fn from_value(v: &Value) -> Result<Self, FrameError> {
        let f = Fields::new(MessageType::Call, v)?;
        let mut headers = BTreeMap::new();
        match f.get("headers") {
            Some(Value::Map(m)) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_str()) {
                        (Some(k), Some(v)) => {
                            headers.insert(k.to_owned(), v.to_owned());
                        }
                        _ => return Err(f.err("headers must map strings to strings")),
                    }
                }
            }
            None | Some(Value::Nil) => {}
            _ => return Err(f.err("\"headers\" must be a map")),
        }
        Ok(CallBody {
            method: f.string("method")?,
            codec: f.string("codec")?,
            payload: f.bin("payload")?,
            timeout_ms: f.opt_uint("timeout_ms")?,
            traceparent: f.opt_string("traceparent")?,
            idempotency_key: f.opt_string("idempotency_key")?,
            headers,
            spin_us: f.opt_uint("spin_us")?.unwrap_or(0),
            deadline_ns: f.opt_uint("deadline_ns")?,
        })
    }
}

/// The body of an ok reply.
pub fn ok_body(codec: &str, payload: &[u8]) -> Value {
    map(vec![
        ("codec", s(codec)),
        ("payload", Value::Binary(payload.to_vec())),
    ])
}

/// Reads an ok body written the canonical way (`{"codec": str, "payload": bin}`, as the
/// worker writes it) straight from the bytes after the header, the payload a slice of them;
/// `None` for anything else, which [`read_ok`] then reads in full (and names any defect).
pub fn read_canonical_ok(body: &Bytes) -> Option<(String, Bytes)> {
    let rest = body.strip_prefix(b"\x82\xa5codec")?;
    let (codec, rest) = split_str(rest)?;
    let rest = rest.strip_prefix(b"\xa7payload")?;
    let (len, head) = match *rest.first()? {
        0xc4 => (usize::from(*rest.get(1)?), 2),
        0xc5 => (
            usize::from(u16::from_be_bytes([*rest.get(1)?, *rest.get(2)?])),
            3,
        ),
        0xc6 => (
            usize::try_from(u32::from_be_bytes(rest.get(1..5)?.try_into().ok()?)).ok()?,
            5,
        ),
        _ => return None,
    };
    if rest.len() != head + len {
        return None;
    }
    let start = body.len() - len;
    Some((codec.to_owned(), body.slice(start..)))
}

/// A msgpack string at the start of `b`, and the bytes after it.
fn split_str(b: &[u8]) -> Option<(&str, &[u8])> {
    let (len, head) = match *b.first()? {
        m @ 0xa0..=0xbf => (usize::from(m & 0x1f), 1),
        0xd9 => (usize::from(*b.get(1)?), 2),
        0xda => (usize::from(u16::from_be_bytes([*b.get(1)?, *b.get(2)?])), 3),
        0xdb => (
            usize::try_from(u32::from_be_bytes(b.get(1..5)?.try_into().ok()?)).ok()?,
            5,
        ),
        _ => return None,
    };
    let s = std::str::from_utf8(b.get(head..head + len)?).ok()?;
    Some((s, &b[head + len..]))
}

/// Reads an ok body: the codec name and the payload.
///
/// # Errors
///
/// [`FrameError::Body`] when a key is missing or has the wrong type.
pub fn read_ok(v: &Value) -> Result<(String, Bytes), FrameError> {
    let f = Fields::new(MessageType::Ok, v)?;
    Ok((f.string("codec")?, f.bin("payload")?))
}

impl ErrorBody {
    /// The body, keys in canonical order.
    pub fn to_value(&self) -> Value {
        map(vec![
            ("kind", s(&self.kind)),
            ("type", s(&self.exc_type)),
            ("message", s(&self.message)),
            ("traceback", s(&self.traceback)),
        ])
    }

    /// Reads an error body.
    ///
    /// # Errors
    ///
    /// [`FrameError::Body`] when a key is missing or has the wrong type.
    pub fn from_value(v: &Value) -> Result<Self, FrameError> {
        let f = Fields::new(MessageType::Error, v)?;
        Ok(ErrorBody {
            kind: f.string("kind")?,
            exc_type: f.opt_string("type")?.unwrap_or_default(),
            message: f.string("message")?,
            traceback: f.opt_string("traceback")?.unwrap_or_default(),
        })
    }
}

struct Fields<'a> {
    ty: MessageType,
    map: &'a [(Value, Value)],
}

impl<'a> Fields<'a> {
    fn new(ty: MessageType, v: &'a Value) -> Result<Self, FrameError> {
        match v {
            Value::Map(map) => Ok(Self { ty, map }),
            _ => Err(FrameError::body(ty, "not a msgpack map")),
        }
    }

    fn err(&self, detail: impl Into<String>) -> FrameError {
        FrameError::body(self.ty, detail)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    fn string(&self, key: &str) -> Result<String, FrameError> {
        self.opt_string(key)?
            .ok_or_else(|| self.err(format!("missing string {key:?}")))
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>, FrameError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| self.err(format!("{key:?} must be a string"))),
        }
    }

    fn uint(&self, key: &str) -> Result<u64, FrameError> {
        self.opt_uint(key)?
            .ok_or_else(|| self.err(format!("missing integer {key:?}")))
    }

    fn opt_uint(&self, key: &str) -> Result<Option<u64>, FrameError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key:?} must be a non-negative integer"))),
        }
    }

    fn bin(&self, key: &str) -> Result<Bytes, FrameError> {
        match self.get(key) {
            Some(Value::Binary(b)) => Ok(Bytes::copy_from_slice(b)),
            _ => Err(self.err(format!("missing binary {key:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_round_trips() {
        let call = CallBody {
            method: "score".into(),
            codec: "json".into(),
            payload: Bytes::from_static(b"{}"),
            timeout_ms: Some(250),
            traceparent: None,
            idempotency_key: Some("k".into()),
            headers: [("a".to_owned(), "b".to_owned())].into(),
            spin_us: 50,
            deadline_ns: Some(123_456_789_000),
        };
        let bytes = Frame::new(MessageType::Call, 9, call.to_value()).encode();
        let frame = Frame::decode(&bytes, 1 << 20).unwrap();
        assert_eq!(frame.id, 9);
        assert_eq!(CallBody::from_value(&frame.body).unwrap(), call);
    }

    #[test]
    fn oversized_is_rejected_before_reading_the_body() {
        let err = Frame::decode(&[0xff, 0xff, 0xff, 0xff], 1024).unwrap_err();
        assert_eq!(err.code(), "too_large");
    }
}
