//! Payload codecs: json, msgpack and raw bytes, carried with each call.
//!
//! A [`Payload`] is bytes plus the [`Codec`] that wrote them, so the peer knows how to read them
//! without a side agreement. Python sees the decoded value (`dict`, `list`, ...) for `json` and
//! `msgpack`, and `bytes` for `raw`.
//!
//! ```
//! use tandem::{Codec, Payload};
//!
//! let p = Payload::json(&serde_json::json!({"amount": 12})).unwrap();
//! assert_eq!(p.codec(), Codec::Json);
//! let back: serde_json::Value = p.decode().unwrap();
//! assert_eq!(back["amount"], 12);
//! ```

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How a payload's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// UTF-8 JSON. Readable, slow for large or binary data.
    Json,
    /// MessagePack. Compact and fast; the default.
    #[default]
    Msgpack,
    /// Opaque bytes, passed to the handler as `bytes`.
    Raw,
}

impl Codec {
    /// All codecs, in wire-id order.
    pub const ALL: [Codec; 3] = [Codec::Json, Codec::Msgpack, Codec::Raw];

    /// The codec's name on every wire (`json`, `msgpack`, `raw`).
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::Msgpack => "msgpack",
            Codec::Raw => "raw",
        }
    }

    /// The codec's one-byte id in binary frames (json 1, msgpack 2, raw 3).
    pub fn id(self) -> u8 {
        match self {
            Codec::Json => 1,
            Codec::Msgpack => 2,
            Codec::Raw => 3,
        }
    }

    /// The codec with the given one-byte id, if any.
    pub fn from_id(id: u8) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.id() == id)
    }

    /// Encodes a value with this codec.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the value cannot be represented, or with [`Codec::Raw`], which
    /// carries bytes only (use [`Payload::raw`]).
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, CodecError> {
        match self {
            Codec::Json => serde_json::to_vec(value)
                .map(Bytes::from)
                .map_err(|e| CodecError::new(self, e.to_string())),
            Codec::Msgpack => rmp_serde::to_vec_named(value)
                .map(Bytes::from)
                .map_err(|e| CodecError::new(self, e.to_string())),
            Codec::Raw => Err(CodecError::new(
                self,
                "raw payloads carry bytes, not values: build them with Payload::raw",
            )),
        }
    }

    /// Decodes bytes written by this codec.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the bytes are not valid for this codec or do not fit `T`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Codec::Json => {
                serde_json::from_slice(bytes).map_err(|e| CodecError::new(self, e.to_string()))
            }
            Codec::Msgpack => {
                rmp_serde::from_slice(bytes).map_err(|e| CodecError::new(self, e.to_string()))
            }
            Codec::Raw => Err(CodecError::new(
                self,
                "raw payloads carry bytes, not values: read them with Payload::bytes",
            )),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Codec {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Codec::Json),
            "msgpack" | "mp" => Ok(Codec::Msgpack),
            "raw" | "bytes" => Ok(Codec::Raw),
            other => Err(CodecError::new(
                Codec::Raw,
                format!("unknown codec {other:?} (accepted: json, msgpack, raw)"),
            )),
        }
    }
}

/// A value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec} codec: {detail}")]
pub struct CodecError {
    codec: Codec,
    detail: String,
}

impl CodecError {
    pub(crate) fn new(codec: Codec, detail: impl Into<String>) -> Self {
        Self {
            codec,
            detail: detail.into(),
        }
    }

    /// The codec that failed.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// What went wrong.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// Encoded bytes plus the codec that wrote them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Payload {
    codec: Codec,
    bytes: Bytes,
}

impl Payload {
    /// A payload from bytes already encoded with `codec`.
    pub fn new(codec: Codec, bytes: impl Into<Bytes>) -> Self {
        Self {
            codec,
            bytes: bytes.into(),
        }
    }

    /// Encodes `value` as JSON.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the value is not representable in JSON (e.g. a map with non-string keys).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, CodecError> {
        Ok(Self::new(Codec::Json, Codec::Json.encode(value)?))
    }

    /// Encodes `value` as MessagePack (maps keep their field names).
    ///
    /// # Errors
    ///
    /// [`CodecError`] when serialization fails.
    pub fn msgpack<T: Serialize + ?Sized>(value: &T) -> Result<Self, CodecError> {
        Ok(Self::new(Codec::Msgpack, Codec::Msgpack.encode(value)?))
    }

    /// Opaque bytes, handed to the Python handler as `bytes`.
    pub fn raw(bytes: impl Into<Bytes>) -> Self {
        Self::new(Codec::Raw, bytes)
    }

    /// The codec that wrote the bytes.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Consumes the payload, returning its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The encoded size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the payload has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes the payload into `T` with its own codec.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the bytes do not decode into `T`, or the payload is raw.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.codec.decode(&self.bytes)
    }

    /// Decodes the payload into a JSON value, whatever its codec: raw bytes become a string when
    /// they are UTF-8, else an array of numbers. Used by the CLI to print any answer.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when json or msgpack bytes are invalid.
    pub fn to_json_value(&self) -> Result<serde_json::Value, CodecError> {
        match self.codec {
            Codec::Raw => Ok(match std::str::from_utf8(&self.bytes) {
                Ok(s) => serde_json::Value::String(s.to_owned()),
                Err(_) => serde_json::Value::from(self.bytes.to_vec()),
            }),
            codec => codec.decode(&self.bytes),
        }
    }

    /// Re-encodes the payload with another codec (raw is never a target).
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the payload cannot be decoded or `codec` is raw.
    pub fn transcode(&self, codec: Codec) -> Result<Payload, CodecError> {
        if codec == self.codec {
            return Ok(self.clone());
        }
        let value: rmpv::Value = match self.codec {
            Codec::Raw => rmpv::Value::Binary(self.bytes.to_vec()),
            c => c.decode(&self.bytes)?,
        };
        Ok(Payload::new(codec, codec.encode(&value)?))
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("codec", &self.codec)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_ids_round_trip() {
        for c in Codec::ALL {
            assert_eq!(Codec::from_id(c.id()), Some(c));
            assert_eq!(c.as_str().parse::<Codec>().ok(), Some(c));
        }
        assert_eq!(Codec::from_id(0), None);
        let err = "yaml".parse::<Codec>().unwrap_err();
        assert!(err.to_string().contains("accepted: json, msgpack, raw"));
    }

    #[test]
    fn json_and_msgpack_round_trip_values() {
        let v = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {"c": -3}});
        for p in [Payload::json(&v).unwrap(), Payload::msgpack(&v).unwrap()] {
            let back: serde_json::Value = p.decode().unwrap();
            assert_eq!(back, v);
            assert_eq!(p.to_json_value().unwrap(), v);
        }
    }

    #[test]
    fn raw_is_bytes_only() {
        let p = Payload::raw(vec![0u8, 159, 146, 150]);
        assert!(p.decode::<serde_json::Value>().is_err());
        assert_eq!(
            p.to_json_value().unwrap(),
            serde_json::json!([0, 159, 146, 150])
        );
        assert_eq!(Payload::raw("hi").to_json_value().unwrap(), "hi");
        assert!(Codec::Raw.encode(&1).is_err());
    }

    #[test]
    fn transcode_between_codecs() {
        let v = serde_json::json!({"k": [1, 2]});
        let j = Payload::json(&v).unwrap();
        let m = j.transcode(Codec::Msgpack).unwrap();
        assert_eq!(m.codec(), Codec::Msgpack);
        assert_eq!(m.decode::<serde_json::Value>().unwrap(), v);
    }

    #[test]
    fn invalid_bytes_are_a_codec_error() {
        let err = Payload::new(Codec::Json, "{not json").decode::<serde_json::Value>();
        let err = err.unwrap_err();
        assert_eq!(err.codec(), Codec::Json);
        assert!(err.to_string().starts_with("json codec:"));
    }
}
