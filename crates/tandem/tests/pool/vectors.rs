//! The shared wire vectors in `proto/vectors/pool/*.json`, also checked by
//! `python/tests/test_vectors.py`: each side decodes every valid frame to the same value and
//! re-encodes it to the same bytes, and reports the same error code for every invalid one.

use bytes::Bytes;
use rmpv::Value;
use serde_json::json;
use std::collections::BTreeMap;
use tandem::process::frame::{
    empty_body, ok_body, read_ok, read_ok_answer, CallBody, ErrorBody, Frame, Hello, MessageType,
};

use crate::support;

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => json!(b),
        Value::Integer(i) => i
            .as_u64()
            .map(|u| json!(u))
            .or_else(|| i.as_i64().map(|s| json!(s)))
            .unwrap(),
        Value::F32(f) => json!(f),
        Value::F64(f) => json!(f),
        Value::String(s) => json!(s.as_str().unwrap()),
        Value::Binary(b) => json!({"$bytes": hex(b)}),
        Value::Array(a) => a.iter().map(to_json).collect(),
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_owned(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Ext(..) => panic!("no ext values on this wire"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Re-encodes a body through the typed reader and writer of its message type.
fn canonical(frame: &Frame) -> Value {
    match frame.ty {
        MessageType::Hello => Hello::from_value(&frame.body).unwrap().to_value(),
        MessageType::Call => CallBody::from_value(&frame.body).unwrap().to_value(),
        MessageType::Ok => {
            let (codec, payload) = read_ok(&frame.body).unwrap();
            ok_body(&codec, &payload)
        }
        MessageType::Error => ErrorBody::from_value(&frame.body).unwrap().to_value(),
        MessageType::Ping | MessageType::Pong | MessageType::Shutdown => empty_body(),
    }
}

#[test]
fn pool_wire_matches_the_shared_vectors() {
    let dir = support::repo_root().join("proto/vectors/pool");
    let mut checked = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in files {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            let name = v["name"].as_str().unwrap();
            let bytes = unhex(v["hex"].as_str().unwrap());
            let max = v["max_frame"].as_u64().unwrap_or(1 << 20) as usize;
            let decoded = Frame::decode(&bytes, max);
            if let Some(code) = v["error"].as_str() {
                let err = decoded.expect_err(name);
                assert_eq!(err.code(), code, "{name}: {err}");
            } else {
                let frame = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
                let want = &v["frame"];
                assert_eq!(frame.ty.as_str(), want["type"], "{name}");
                assert_eq!(frame.id, want["id"].as_u64().unwrap(), "{name}");
                assert_eq!(to_json(&frame.body), want["body"], "{name}");
                let again = Frame::new(frame.ty, frame.id, canonical(&frame)).encode();
                assert_eq!(hex(&again), v["hex"].as_str().unwrap(), "{name} re-encoded");
                check_fast_paths(name, &frame, &bytes);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} vectors found in {}",
        dir.display()
    );
}

/// The pool's hot paths (the direct call encoder, the answer reader without a value tree)
/// agree with the general ones on a vector.
fn check_fast_paths(name: &str, frame: &Frame, bytes: &[u8]) {
    match frame.ty {
        MessageType::Call => {
            let call = CallBody::from_value(&frame.body).unwrap();
            assert_eq!(
                hex(&call.encode_frame(frame.id)),
                hex(bytes),
                "{name} direct"
            );
        }
        MessageType::Ok => {
            let after_prefix = Bytes::copy_from_slice(&bytes[4..]);
            let (codec, payload) = read_ok(&frame.body).unwrap();
            assert_eq!(
                read_ok_answer(&after_prefix, frame.id),
                Some((codec, payload)),
                "{name} fast"
            );
            assert_eq!(
                read_ok_answer(&after_prefix, frame.id + 1),
                None,
                "{name} id"
            );
        }
        _ => {
            let after_prefix = Bytes::copy_from_slice(&bytes[4..]);
            assert_eq!(
                read_ok_answer(&after_prefix, frame.id),
                None,
                "{name} not ok"
            );
        }
    }
}

#[test]
fn the_direct_call_encoder_writes_the_general_encoders_bytes_at_every_size_boundary() {
    for size in [0usize, 1, 31, 32, 255, 256, 65535, 65536, 70000] {
        let text = "m".repeat(size.min(300));
        let mut headers = BTreeMap::new();
        if size % 2 == 0 {
            headers.insert("k".repeat(size.min(40)), "v".repeat(size.min(300)));
            headers.insert("a".into(), String::new());
        }
        let call = CallBody {
            method: text.clone(),
            codec: "json".into(),
            payload: Bytes::from(vec![7u8; size]),
            timeout_ms: (size % 3 != 0).then_some(size as u64 * 1000),
            traceparent: (size % 2 == 1).then(|| text.clone()),
            idempotency_key: Some("key".into()),
            headers,
            spin_us: size as u64 % 4 * 50,
            deadline_ns: (size % 5 != 0).then_some(size as u64 * 1_000_003),
        };
        let general = Frame::new(MessageType::Call, size as u64, call.to_value()).encode();
        assert_eq!(call.encode_frame(size as u64), general, "size {size}");
    }
}

#[test]
fn the_fast_answer_reader_takes_exactly_the_canonical_ok_frame() {
    for size in [0usize, 1, 255, 256, 65535, 65536, 70000] {
        let payload = vec![9u8; size];
        for codec in ["json", "msgpack", &"c".repeat(40), &"d".repeat(300)] {
            let frame = Frame::new(MessageType::Ok, 5, ok_body(codec, &payload)).encode();
            let got = read_ok_answer(&Bytes::copy_from_slice(&frame[4..]), 5);
            assert_eq!(got, Some((codec.to_owned(), Bytes::from(payload.clone()))));
        }
    }
    let body = |pairs: Vec<(&str, Value)>| {
        let v = Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        );
        let frame = Frame::new(MessageType::Ok, 1, v).encode();
        Bytes::copy_from_slice(&frame[4..])
    };
    let bin = || Value::Binary(b"x".to_vec());
    let reordered = body(vec![("payload", bin()), ("codec", Value::from("json"))]);
    let extra = body(vec![
        ("codec", Value::from("json")),
        ("payload", bin()),
        ("x", Value::Nil),
    ]);
    let str_payload = body(vec![
        ("codec", Value::from("json")),
        ("payload", Value::from("x")),
    ]);
    for (what, b) in [
        ("reordered", reordered),
        ("extra key", extra),
        ("str payload", str_payload),
    ] {
        assert_eq!(
            read_ok_answer(&b, 1),
            None,
            "{what}: left to the full reader"
        );
        assert!(Frame::decode(
            &[&((b.len() as u32).to_be_bytes())[..], &b].concat(),
            1 << 20
        )
        .is_ok());
    }
    let good = Frame::new(MessageType::Ok, 1, ok_body("json", b"x")).encode();
    let mut trailing = good[4..].to_vec();
    trailing.push(0xc0);
    assert_eq!(
        read_ok_answer(&Bytes::from(trailing), 1),
        None,
        "trailing byte"
    );
    let mut bad_utf8 = good[4..].to_vec();
    bad_utf8[14 + 8] = 0xff; // inside "json"
    assert_eq!(
        read_ok_answer(&Bytes::from(bad_utf8), 1),
        None,
        "codec not UTF-8"
    );
}
