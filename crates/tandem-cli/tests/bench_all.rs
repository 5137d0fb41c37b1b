//! `tandem bench --all` against a real echo app: real pool workers, `python -m tandem run`,
//! a real Python plugin, `python -m tandem serve`, a private redis-server with
//! `python -m tandem consume`; and its bad inputs. Small call counts: the numbers are not
//! checked, only that every row was measured and everything started is gone after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use serde_json::Value;
use support::{fixture, processes_with, tandem, tandem_with, text};

/// A short `bench --all --json` of `app` with `extra` flags; returns the object.
fn bench_all(dir: &Path, module: &str, extra: &[&str]) -> Value {
    let app = format!("{module}:app");
    let mut args = vec![
        "bench", "--all", "--app", &app, "-m", "echo", "--calls", "20", "-c", "1,4", "--warmup",
        "2", "--json",
    ];
    args.extend_from_slice(extra);
    let out = tandem(dir, &args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object: {lines:?}");
    serde_json::from_str(lines[0]).unwrap()
}

/// Nothing `bench --all` started for `module` is still running.
fn assert_nothing_left(module: &str) {
    let left = processes_with(&format!("{module}:app"));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[test]
fn measures_all_five_and_recommends_by_the_tree() {
    let dir = fixture("bench-all", &["benchsvc"]);
    let png = dir.join("bench.png");
    let png_arg = png.display().to_string();
    let v = bench_all(
        &dir,
        "benchsvc",
        &["--qps", "10", "--batch", "--plot", &png_arg],
    );
    assert_eq!(
        (v["schema"].as_u64(), v["type"].as_str()),
        (Some(1), Some("bench_all"))
    );
    let rows = v["transports"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pool", "script", "plugin", "grpc", "queue"]);
    for r in rows {
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["cold_start_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(!r["isolation"].as_str().unwrap().is_empty(), "{r}");
        let runs = r["runs"].as_array().unwrap();
        let levels: Vec<u64> = runs
            .iter()
            .map(|x| x["concurrency"].as_u64().unwrap())
            .collect();
        let want: &[u64] = if r["transport"] == "script" {
            &[1]
        } else {
            &[1, 4]
        };
        assert_eq!(levels, want, "{r}");
        for run in runs {
            assert_eq!(
                (run["calls"].as_u64(), run["errors"].as_u64()),
                (Some(20), Some(0))
            );
            assert!(run["p50_us"].as_f64().unwrap() > 0.0, "{run}");
            assert!(run["throughput_per_s"].as_f64().unwrap() > 0.0, "{run}");
        }
    }
    let rec = &v["recommendation"];
    assert_eq!(rec["transport"], "queue", "{rec}");
    assert_eq!(rec["path"][1]["answer"], "no (--batch)", "{rec}");
    // The reason cites the queue's best measured level, whichever it was on this run.
    let fastest = rows[4]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            let t = |x: &Value| x["throughput_per_s"].as_f64().unwrap();
            t(a).total_cmp(&t(b))
        })
        .unwrap();
    let cited = format!("calls/s at concurrency {}", fastest["concurrency"]);
    assert!(
        rec["reason"].as_str().unwrap().contains(&cited),
        "{cited}: {rec}"
    );

    // The plot is a real PNG of a sensible size.
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(width >= 600 && height >= 300, "{width}x{height}");
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());

    // The private Redis is gone, and so is every Python process.
    let redis = v["redis"]["addr"].as_str().unwrap();
    assert_eq!(v["redis"]["source"], "private");
    assert!(
        std::net::TcpStream::connect(redis).is_err(),
        "redis still up"
    );
    assert_nothing_left("benchsvc");
}

#[test]
fn the_recommendation_follows_the_flags() {
    let dir = fixture("bench-all-tree", &["treesvc"]);
    let config = "qps = 5000\nrealtime = true\nneeds-plugin = true\npayload = { n = 1 }\n";
    std::fs::write(dir.join("bench.toml"), config).unwrap();
    for (flags, want) in [
        (&["--qps", "1000", "--latency-ms", "50"][..], "grpc"),
        // The same flags from a --config file; the command line wins (--qps 10 over 5000).
        (&["--config", "bench.toml", "--qps", "10"][..], "plugin"),
        (&["--qps", "10", "--realtime"][..], "process"),
    ] {
        let v = bench_all(&dir, "treesvc", flags);
        let rec = &v["recommendation"];
        assert_eq!(rec["transport"], want, "{flags:?}: {rec}");
        assert!(
            !rec["reason"].as_str().unwrap().contains("not measured"),
            "{rec}"
        );
        if want == "plugin" {
            assert_eq!(rec["needs"]["qps"], 10.0, "{rec}");
            assert_eq!(
                v["payload_bytes"], 7,
                "the config's payload {{\"n\":1}}: {v}"
            );
        }
    }
    assert_nothing_left("treesvc");
}

#[test]
fn redis_url_uses_that_redis_instead_of_starting_one() {
    let dir = fixture("bench-all-url", &["urlsvc"]);
    let redis = tandem_testkit::RedisServer::start(dir.join("redis"));
    let port = redis.port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let args = [
        "bench",
        "--all",
        "--app",
        "urlsvc:app",
        "-m",
        "echo",
        "--calls",
        "10",
        "-c",
        "2",
        "--warmup",
        "0",
        "--json",
    ];
    let out = tandem_with(&dir, &args, &[("REDIS_URL", &url)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["redis"]["source"], "REDIS_URL");
    assert_eq!(v["redis"]["addr"], format!("127.0.0.1:{port}"));
    let queue = &v["transports"][4];
    assert_eq!(
        (queue["transport"].as_str(), queue["errors"].as_u64()),
        (Some("queue"), Some(0))
    );
    // That Redis is still up (bench --all stops only what it started), without the run's queue:
    // only its reply streams are left, and they expire.
    let keys = redis_keys(port, "tandem-bench-*");
    let left: Vec<&str> = keys
        .lines()
        .filter(|l| l.starts_with("tandem-bench-") && !l.contains(":reply:"))
        .collect();
    assert!(left.is_empty(), "left in REDIS_URL's Redis: {left:?}");
    assert_nothing_left("urlsvc");
}

/// `KEYS pattern` over RESP's inline form: the raw reply.
fn redis_keys(port: u16, pattern: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("Redis is still up");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(format!("KEYS {pattern}\r\n").as_bytes())
        .unwrap();
    let mut buf = vec![0; 1 << 16];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn assert_fails(out: &std::process::Output, code: i32, words: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    for w in words {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
}

#[test]
fn an_unknown_module_or_method_fails_clearly_and_leaves_nothing() {
    let dir = fixture("bench-all-bad", &["badsvc"]);
    let args = [
        "bench",
        "--all",
        "--app",
        "nosuchbench:app",
        "-m",
        "echo",
        "--calls",
        "5",
    ];
    let out = tandem(&dir, &args);
    assert_fails(
        &out,
        2,
        &[
            "tandem: pool unavailable",
            "cannot import module 'nosuchbench'",
        ],
    );
    assert_nothing_left("nosuchbench");

    let args = [
        "bench",
        "--all",
        "--app",
        "badsvc:app",
        "-m",
        "nope",
        "--calls",
        "5",
    ];
    let out = tandem(&dir, &args);
    assert_fails(&out, 1, &["bad request", "has no handler 'nope'", "hint: "]);
    assert_nothing_left("badsvc");
}

#[test]
fn without_redis_server_it_says_what_to_install() {
    let dir = fixture("bench-all-noredis", &["noredissvc"]);
    let empty = dir.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let path = empty.display().to_string();
    let args = [
        "bench",
        "--all",
        "--app",
        "noredissvc:app",
        "-m",
        "echo",
        "--calls",
        "5",
    ];
    let out = tandem_with(&dir, &args, &[("PATH", &path), ("REDIS_URL", "")]);
    assert_fails(&out, 2, &["redis-server is not on PATH", "REDIS_URL"]);
    assert_nothing_left("noredissvc");
}

/// A running `tandem`, interrupted (SIGINT, as Ctrl-C) and reaped if the test fails early.
struct Running(std::process::Child);

impl Running {
    fn interrupt(&self) {
        let pid = self.0.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.interrupt();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn ctrl_c_stops_everything_it_started() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let dir = fixture("bench-all-int", &["intsvc"]);
    let mut run = Running(
        Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args([
                "bench",
                "--all",
                "--app",
                "intsvc:app",
                "-m",
                "echo",
                "--duration",
                "2s",
            ])
            .current_dir(&dir)
            .env("TANDEM_PYTHON", support::python())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Interrupt while the gRPC server runs (a process group of its own, with workers).
    support::wait_until(Duration::from_secs(60), "the gRPC server to start", || {
        !processes_with("tandem serve intsvc:app").is_empty()
    });
    run.interrupt();
    support::wait_until(Duration::from_secs(30), "tandem to exit", || {
        run.0.try_wait().unwrap().is_some()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut run.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(run.0.wait().unwrap().code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_nothing_left("intsvc");
}
