//! The shared wire vectors in proto/vectors/queue/, also read by Python's
//! test_queue_vectors.py.

use std::collections::BTreeMap;

use serde_json::Value;
use tandem::queue::fields::Task;

use crate::support;

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        Value::Object(o) => hex(o["hex"].as_str().unwrap()),
        other => panic!("field value must be a string or {{hex}}: {other}"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn task_vectors_decode_and_encode_the_same_on_both_sides() {
    let path = support::repo_root().join("proto/vectors/queue/task.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let fields: BTreeMap<String, Vec<u8>> = case["fields"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), bytes(v)))
            .collect();
        let decoded = Task::from_fields(&fields);
        if let Some(expect) = case.get("error") {
            let e = decoded.expect_err(name);
            assert!(
                e.reason.contains(expect.as_str().unwrap()),
                "{name}: {} does not contain {expect}",
                e.reason
            );
            continue;
        }
        let task = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = &case["task"];
        assert_eq!(task.id, t["id"], "{name}");
        assert_eq!(task.method, t["method"], "{name}");
        assert_eq!(task.payload.codec().as_str(), t["codec"], "{name}");
        assert_eq!(
            task.payload.bytes().to_vec(),
            hex(t["payload_hex"].as_str().unwrap())
        );
        assert_eq!(u64::from(task.attempt), t["attempt"].as_u64().unwrap());
        assert_eq!(task.enq_ms, t["enq_ms"].as_u64().unwrap());
        assert_eq!(task.deadline_ms, t["deadline_ms"].as_u64(), "{name}");
        assert_eq!(task.traceparent.as_deref(), t["traceparent"].as_str());
        assert_eq!(
            task.idempotency_key.as_deref(),
            t["idempotency_key"].as_str()
        );
        assert_eq!(task.reply_to.as_deref(), t["reply_to"].as_str());
        let headers: BTreeMap<String, String> = t["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(task.headers, headers, "{name}");
        let encoded: BTreeMap<String, Vec<u8>> = task.to_fields().into_iter().collect();
        assert_eq!(encoded, fields, "{name}: encoding differs from the vector");
    }
}
