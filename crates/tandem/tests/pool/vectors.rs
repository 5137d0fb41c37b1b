//! The shared wire vectors in `proto/vectors/pool/*.json`, also checked by
//! `python/tests/test_vectors.py`: each side decodes every valid frame to the same value and
//! re-encodes it to the same bytes, and reports the same error code for every invalid one.

use rmpv::Value;
use serde_json::json;
use tandem::process::frame::{
    empty_body, ok_body, read_ok, CallBody, ErrorBody, Frame, Hello, MessageType,
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
