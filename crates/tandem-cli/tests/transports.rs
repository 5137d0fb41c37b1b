//! The real `tandem` binary over the network transports: a real `python -m tandem serve`
//! (grpc://), a private redis-server with a real `python -m tandem consume` (redis:// and
//! `tandem queue`), and a real `python -m tandem plugin` (plugin:).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{free_port, processes_with, python, tandem, text, wait_for_port, wait_until, Peer};

/// A fresh directory holding the echo service as `wiresvc`.
fn fixture(name: &str) -> PathBuf {
    support::fixture(&format!("wire-{name}"), &["wiresvc"])
}

/// stdout as JSON lines.
fn json_lines(out: &std::process::Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `tandem call` answers `{"a": 1}` for echo, and `boom` exits 1 with the remote error.
fn check_call_echo_and_boom(dir: &Path, endpoint: &str, extra: &[&str]) {
    let mut args = vec!["call", endpoint, "echo", r#"{"a": [1, 2]}"#];
    args.extend_from_slice(extra);
    let out = tandem(dir, &args);
    assert_exit(&out, 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"a": [1, 2]}));

    let mut args = vec!["call", endpoint, "boom", "1", "--timeout", "20s"];
    args.extend_from_slice(extra);
    let out = tandem(dir, &args);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(err.starts_with("tandem: "), "{err}");
    assert!(err.contains("boom went the handler"), "{err}");
    assert!(err.contains("hint: "), "{err}");
}

/// `tandem bench --json` makes the calls with no errors and names the transport.
fn check_bench_json(dir: &Path, endpoint: &str, transport: &str, extra: &[&str]) {
    let mut args = vec![
        "bench", endpoint, "-m", "echo", "--calls", "40", "--warmup", "5", "-c", "4", "--json",
    ];
    args.extend_from_slice(extra);
    let out = tandem(dir, &args);
    assert_exit(&out, 0);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let r = &lines[0];
    assert_eq!(r["transport"], transport, "{r}");
    assert_eq!(
        (r["calls"].as_u64(), r["errors"].as_u64()),
        (Some(40), Some(0)),
        "{r}"
    );
    assert!(r["p50_us"].as_f64().unwrap() > 0.0, "{r}");
}

#[test]
fn grpc_call_and_bench_against_a_real_server() {
    let dir = fixture("grpc");
    let port = free_port();
    let p = port.to_string();
    let _server = Peer::start(
        "serve",
        &dir,
        &python(),
        &[
            "-m",
            "tandem",
            "serve",
            "wiresvc:app",
            "--host",
            "127.0.0.1",
            "--port",
            &p,
        ],
    );
    wait_for_port(port, "the gRPC server");
    let endpoint = format!("grpc://127.0.0.1:{port}");
    check_call_echo_and_boom(&dir, &endpoint, &[]);
    check_bench_json(&dir, &endpoint, "grpc", &[]);
}

#[test]
fn grpc_without_a_server_exits_2_with_a_hint() {
    let dir = fixture("grpc_down");
    let endpoint = format!("grpc://127.0.0.1:{}", free_port());
    let out = tandem(&dir, &["call", &endpoint, "echo", "--timeout", "1s"]);
    assert_exit(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.starts_with("tandem: ") && err.contains("unavailable"),
        "{err}"
    );
    assert!(
        err.contains("hint: start the server (python -m tandem serve"),
        "{err}"
    );
}

fn queue(dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = tandem(dir, args);
    assert_exit(&out, 0);
    json_lines(&out)
}

#[test]
fn redis_call_bench_and_queue_admin_against_a_real_consumer() {
    let dir = fixture("redis");
    let redis = tandem_testkit::RedisServer::start(dir.join("redis"));
    let url = redis.url();
    let _consumer = Peer::start(
        "consume",
        &dir,
        &python(),
        &[
            "-m",
            "tandem",
            "consume",
            "wiresvc:app",
            "--redis",
            &url,
            "--stream",
            "jobs",
            "--group",
            "workers",
            "--max-deliveries",
            "1",
        ],
    );
    let endpoint = format!("{url}/jobs");
    wait_until(Duration::from_secs(30), "the consumer group", || {
        let out = tandem(&dir, &["queue", "stats", &endpoint, "--json"]);
        out.status.success() && text(&out.stdout).contains(r#""group":"workers""#)
    });

    // call and bench go end to end: publish, the consumer runs the handler, the reply returns.
    check_call_echo_and_boom(&dir, &endpoint, &[]);
    check_bench_json(&dir, &endpoint, "queue", &[]);

    // The failed task is a dead letter (max deliveries 1).
    let dead_of = |dir: &Path| queue(dir, &["queue", "dead", &endpoint, "--json"]);
    wait_until(Duration::from_secs(20), "the dead letter", || {
        !dead_of(&dir).is_empty()
    });
    let dead = dead_of(&dir);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let d = &dead[0];
    assert_eq!(
        (d["type"].as_str(), d["method"].as_str()),
        (Some("dead"), Some("boom")),
        "{d}"
    );
    assert_eq!(d["reason"], "failed", "{d}");
    assert_eq!(d["error_type"], "ValueError", "{d}");
    assert!(
        d["error_message"].as_str().unwrap().contains("boom went"),
        "{d}"
    );
    for key in ["stream", "id", "task_id", "error_kind", "attempts"] {
        assert!(d.get(key).is_some(), "no {key} in {d}");
    }
    let table = tandem(&dir, &["queue", "dead", &endpoint]);
    assert_exit(&table, 0);
    assert!(
        text(&table.stdout).contains("ValueError"),
        "{}",
        text(&table.stdout)
    );

    // stats: one stream line, a group line, a line per consumer; all flat.
    let stats = queue(&dir, &["queue", "stats", &endpoint, "--json"]);
    let stream = &stats[0];
    assert_eq!(stream["type"], "stream", "{stats:?}");
    assert_eq!(stream["stream"], "jobs");
    assert_eq!(
        (stream["dead"].as_u64(), stream["groups"].as_u64()),
        (Some(1), Some(1))
    );
    for key in ["length", "delayed"] {
        assert!(stream[key].is_u64(), "no {key} in {stream}");
    }
    let group = stats.iter().find(|l| l["type"] == "group").unwrap();
    assert_eq!(group["group"], "workers");
    for key in ["lag", "pending", "oldest_pending_age_ms", "consumers"] {
        assert!(group.get(key).is_some(), "no {key} in {group}");
    }
    for line in &stats {
        assert_eq!(line["schema"], 1, "{line}");
        let flat = line
            .as_object()
            .unwrap()
            .values()
            .all(|v| !v.is_object() && !v.is_array());
        assert!(flat, "not flat: {line}");
    }
    assert!(
        queue(
            &dir,
            &["queue", "stats", &endpoint, "--group", "workers", "--json"]
        )
        .len()
            >= 2
    );
    let out = tandem(&dir, &["queue", "stats", &endpoint, "--group", "nobody"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("no consumer group \"nobody\""),
        "{}",
        text(&out.stderr)
    );

    // pending lists the group's unacknowledged entries (none now).
    assert!(queue(&dir, &["queue", "pending", &endpoint, "--json"]).is_empty());

    // replay puts the dead letter back; the consumer fails it again, so it dies again.
    let r = queue(&dir, &["queue", "replay", &endpoint, "--json"]);
    assert_eq!(
        (r[0]["type"].as_str(), r[0]["replayed"].as_u64()),
        (Some("replay"), Some(1))
    );
    wait_until(
        Duration::from_secs(20),
        "the replayed task to die again",
        || {
            let d = dead_of(&dir);
            d.len() == 1 && d[0]["id"] != dead[0]["id"]
        },
    );

    let p = queue(&dir, &["queue", "purge-dead", &endpoint, "--json"]);
    assert_eq!(
        (p[0]["type"].as_str(), p[0]["purged"].as_u64()),
        (Some("purge"), Some(1))
    );
    assert!(dead_of(&dir).is_empty());
}

#[test]
fn queue_and_call_without_redis_exit_2_with_a_hint() {
    let dir = fixture("queue_down");
    let endpoint = format!("redis://127.0.0.1:{}/jobs", free_port());
    let out = tandem(&dir, &["queue", "stats", &endpoint]);
    assert_exit(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.starts_with("tandem: ") && err.contains("hint: "),
        "{err}"
    );
}

fn plugin_endpoint(module: &str) -> String {
    format!(
        "plugin:'{}' -m tandem plugin {module}:app",
        python().display()
    )
}

#[test]
fn plugin_call_and_bench_against_a_real_python_plugin() {
    let dir = fixture("plugin");
    // A module name of its own, so the leftover check sees only this test's plugins.
    std::fs::copy(dir.join("wiresvc.py"), dir.join("plugsvc.py")).unwrap();
    let endpoint = plugin_endpoint("plugsvc");
    check_call_echo_and_boom(&dir, &endpoint, &[]);
    check_call_echo_and_boom(&dir, &endpoint, &["--tls"]);
    check_bench_json(&dir, &endpoint, "plugin", &[]);
    let left = processes_with("tandem plugin plugsvc:app");
    assert!(left.is_empty(), "plugin processes left behind: {left:?}");
}

#[test]
fn plugin_with_the_wrong_cookie_exits_2() {
    let dir = fixture("plugin_cookie");
    let out = tandem(
        &dir,
        &[
            "call",
            &plugin_endpoint("wiresvc"),
            "echo",
            "--cookie",
            "OTHER_PLUGIN=nope",
            "-t",
            "10s",
        ],
    );
    assert_exit(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.starts_with("tandem: plugin unavailable") && err.contains("hint: check the plugin"),
        "{err}"
    );
}
