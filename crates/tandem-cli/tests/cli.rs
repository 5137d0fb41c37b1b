//! The real `tandem` binary against real Python: a pool and a one-shot script.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{processes_with, python, tandem, text};

/// A fresh directory holding the echo service (`clisvc`) and a `@tandem.script` file.
fn fixture(name: &str) -> PathBuf {
    let dir = support::fixture(name, &["clisvc"]);
    std::fs::write(
        dir.join("script.py"),
        r#"
import tandem

@tandem.script
def main(data, ctx):
    if ctx.method == "boom":
        raise ValueError("boom went the script")
    return {"echo": data, "method": ctx.method}
"#,
    )
    .unwrap();
    dir
}

#[test]
fn call_pool_prints_the_result_as_json() {
    let dir = fixture("call_pool");
    let out = tandem(
        &dir,
        &[
            "call",
            "pool:clisvc:app",
            "echo",
            r#"{"a": [1, 2]}"#,
            "--workers",
            "1",
            "--cwd",
            ".",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"a": [1, 2]}));
}

#[test]
fn call_leaves_no_pool_workers_behind() {
    let dir = fixture("no_orphans");
    std::fs::copy(dir.join("clisvc.py"), dir.join("orphancheck.py")).unwrap();
    let out = tandem(
        &dir,
        &[
            "call",
            "pool:orphancheck:app",
            "echo",
            "1",
            "--workers",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with("orphancheck:app").is_empty() {
        assert!(
            Instant::now() < deadline,
            "pool workers outlived the tandem command"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pool_remote_error_exits_1_with_hint() {
    let dir = fixture("pool_remote");
    let out = tandem(
        &dir,
        &["call", "pool:clisvc:app", "boom", "{}", "--workers", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("tandem: python handler raised ValueError"),
        "{err}"
    );
    assert!(err.contains("boom went the handler"), "{err}");
    assert!(err.contains("\nhint: fix the handler"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn pool_that_cannot_start_exits_2() {
    let dir = fixture("pool_no_module");
    let out = tandem(
        &dir,
        &["call", "pool:no_such_module:app", "echo", "--workers", "1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.starts_with("tandem: "), "{err}");
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn bench_pool_json_counts_calls() {
    let dir = fixture("bench_pool");
    let out = tandem(
        &dir,
        &[
            "bench",
            "pool:clisvc:app",
            "--method",
            "echo",
            "--calls",
            "200",
            "--concurrency",
            "4",
            "--workers",
            "2",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["transport"], "pool");
    assert_eq!(v["calls"], 200);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["concurrency"], 4);
    assert!(v["p50_us"].as_f64().unwrap() > 0.0);
}

#[test]
fn call_script_prints_the_result_as_json() {
    let dir = fixture("call_script");
    let out = tandem(&dir, &["call", "script:script.py", "hello", r#"{"n": 1}"#]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"echo": {"n": 1}, "method": "hello"}));
}

#[test]
fn call_script_reads_payload_files_and_msgpack() {
    let dir = fixture("call_file");
    std::fs::write(dir.join("in.json"), "[1, 2, 3]").unwrap();
    let out = tandem(
        &dir,
        &[
            "call",
            "script:script.py",
            "m",
            "@in.json",
            "--codec",
            "msgpack",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["echo"], serde_json::json!([1, 2, 3]));
}

#[test]
fn script_remote_error_exits_1_with_hint() {
    let dir = fixture("script_remote");
    let out = tandem(&dir, &["call", "script:script.py", "boom"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("tandem: python handler raised ValueError"),
        "{err}"
    );
    assert!(err.contains("boom went the script"), "{err}");
    assert!(err.contains("\nhint: fix the handler"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn script_timeout_exits_1() {
    let dir = fixture("script_timeout");
    std::fs::write(dir.join("slow.py"), "import time\ntime.sleep(60)\n").unwrap();
    let out = tandem(&dir, &["call", "script:slow.py", "m", "--timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("timed out"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_usage_exits_2() {
    let dir = fixture("bad_usage");
    for args in [
        vec!["call", "ftp://x", "m"],
        vec!["call", "script:script.py", "m", "{not json"],
        vec!["call", "script:script.py", "m", "--timeout", "soon"],
        vec!["call", "grpc://127.0.0.1:1", "m"],
        vec!["bench", "script:script.py"],
        vec!["frobnicate"],
    ] {
        let out = tandem(&dir, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn bench_json_has_the_documented_fields() {
    let dir = fixture("bench_json");
    let out = tandem(
        &dir,
        &[
            "bench",
            "script:script.py",
            "--method",
            "echo",
            "--calls",
            "3",
            "--warmup",
            "0",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "schema",
        "transport",
        "method",
        "payload_bytes",
        "concurrency",
        "calls",
        "errors",
        "p50_us",
        "p99_us",
        "throughput_per_s",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {v}");
    }
    assert_eq!(v["transport"], "script");
    assert_eq!(v["calls"], 3);
    assert_eq!(v["errors"], 0);
}

#[test]
fn broken_pipe_exits_0_quietly() {
    let dir = fixture("broken_pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["call", "script:script.py", "m", "[1]"])
        .current_dir(&dir)
        .env("TANDEM_PYTHON", python())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader went away, like `| head -0`
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}
