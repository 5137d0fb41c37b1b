use std::time::Duration;

use serde_json::json;
use tandem::{Codec, Payload, Request};
use tower::ServiceExt;

use crate::{py_script, support};

const ECHO: &str = r#"
import os
import tandem

@tandem.script
def main(data, ctx):
    print("stray print goes to stderr")
    return {"echo": data, "method": ctx.method, "traceparent": ctx.traceparent,
            "cwd": os.getcwd(), "greeting": os.environ.get("GREETING"),
            "has_deadline": ctx.deadline is not None}
"#;

#[tokio::test]
async fn script_round_trips_json_and_msgpack() {
    let dir = support::test_dir("script_round_trips");
    let value = json!({"values": [1, 2.5, "x", null], "nested": {"k": true}});
    for codec in [Codec::Json, Codec::Msgpack] {
        let script = py_script(&dir, ECHO).codec(codec).build();
        let input = Payload::json(&value).unwrap();
        let out = script.run(input).await.unwrap();
        assert_eq!(out.codec(), codec);
        let got: serde_json::Value = out.decode().unwrap();
        assert_eq!(got["echo"], value, "codec {codec}");
        assert_eq!(got["method"], "main");
    }
    support::assert_no_zombies().await;
}

#[tokio::test]
async fn script_honours_env_cwd_method_and_traceparent() {
    let dir = support::test_dir("script_env_cwd");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let script = py_script(&dir, ECHO)
        .env("GREETING", "hello")
        .cwd(&work)
        .timeout(Duration::from_secs(20))
        .build();
    let req = Request::new("score", Payload::json(&json!(1)).unwrap())
        .with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let resp = script.oneshot(req).await.unwrap();
    let got: serde_json::Value = resp.decode().unwrap();
    assert_eq!(got["method"], "score");
    assert_eq!(got["greeting"], "hello");
    assert_eq!(got["has_deadline"], true);
    assert_eq!(
        got["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
    assert_eq!(
        std::path::PathBuf::from(got["cwd"].as_str().unwrap()),
        work.canonicalize().unwrap()
    );
}

#[tokio::test]
async fn script_env_clear_drops_the_parent_environment() {
    let dir = support::test_dir("script_env_clear");
    std::env::set_var("TANDEM_TEST_LEAK", "leaked");
    let src = r#"
import os, sys, json
sys.stdout.write(json.dumps({"leak": os.environ.get("TANDEM_TEST_LEAK"), "mine": os.environ.get("MINE")}))
"#;
    let script = py_script(&dir, src).env_clear().env("MINE", "1").build();
    let out = script
        .run(Payload::json(&json!(null)).unwrap())
        .await
        .unwrap();
    let got: serde_json::Value = out.decode().unwrap();
    assert_eq!(got, json!({"leak": null, "mine": "1"}));
}

#[tokio::test]
async fn a_script_flooding_stderr_does_not_block() {
    let dir = support::test_dir("script_stderr_flood");
    // 1 MiB of logs, far past a pipe buffer, before the answer: the parent must drain stderr.
    let src = r#"
import sys, tandem

@tandem.script
def main(data):
    for _ in range(1024):
        sys.stderr.write("x" * 1023 + "\n")
    return {"ok": data}
"#;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        py_script(&dir, src)
            .build()
            .run(Payload::json(&json!(7)).unwrap()),
    )
    .await
    .expect("no deadlock on a full stderr pipe")
    .unwrap();
    assert_eq!(out.decode::<serde_json::Value>().unwrap(), json!({"ok": 7}));
}
