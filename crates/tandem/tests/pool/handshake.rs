//! Workers whose ready handshake is wrong: a peer from another tandem version, garbage, or
//! another frame first. `build` fails with `Protocol` naming the defect, and the worker is
//! killed.

use std::time::Duration;

use tandem::process::Pool;
use tandem::{Error, ErrorKind};

use crate::apps::{assert_contains, within};
use crate::support;

/// Stands in for the SDK: `python -m tandem worker CASE:app` runs this from the pool's working
/// directory, which comes first on `sys.path`. It writes its pid, sends what CASE says on the
/// wire, then waits to be killed.
const FAKE_WORKER: &str = r#"
import os, struct, sys, time
import msgpack

case = sys.argv[sys.argv.index("worker") + 1].split(":")[0]
with open(case + ".pid", "w") as f:
    f.write(str(os.getpid()))
max_frame = int(sys.argv[sys.argv.index("--max-frame") + 1])

def frame(type_, body):
    data = msgpack.packb(body, use_bin_type=True)
    return struct.pack(">I2sBBHQ", 14 + len(data), b"TD", 1, type_, 0, 0) + data

hello = {"protocol": 1, "pid": os.getpid(), "app": case, "methods": ["echo"],
         "max_frame": max_frame, "message_max": 65536}
if case == "before_seqpacket":
    del hello["message_max"]
elif case == "small_messages":
    hello["message_max"] = 4096
elif case == "protocol_two":
    hello["protocol"] = 2
wire = {
    "garbage": b"HELLO? THIS IS NOT A TANDEM FRAME",
    "answer_first": frame(3, {"codec": "json", "payload": b"1"}),
}.get(case) or frame(1, hello)
os.write(3, wire)
time.sleep(60)
"#;

async fn refused(case: &str, expect: &[&str]) {
    let dir = support::test_dir(&format!("handshake_{case}"));
    std::fs::create_dir_all(dir.join("tandem")).unwrap();
    support::write_file(&dir, "tandem/__init__.py", "");
    support::write_file(&dir, "tandem/__main__.py", FAKE_WORKER);
    within(60, async {
        // One worker: two would write the same pid file, one of them perhaps mid-write when
        // the other's refusal fails the build.
        let err = Pool::builder(format!("{case}:app"))
            .workers(1)
            .python(support::python())
            .cwd(dir.clone())
            .start_timeout(Duration::from_secs(20))
            .build()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        match &err {
            Error::Protocol { reason, .. } => assert_contains(reason, expect),
            other => panic!("expected Protocol, got {other:?}"),
        }
        let pid: u32 = std::fs::read_to_string(dir.join(format!("{case}.pid")))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            support::wait_until(Duration::from_secs(10), || !support::alive(pid)).await,
            "the refused worker {pid} still runs"
        );
        support::assert_no_zombies().await;
    })
    .await;
}

#[tokio::test]
async fn a_worker_from_before_the_seqpacket_wire_is_refused() {
    refused(
        "before_seqpacket",
        &[
            "no message_max",
            "predates the seqpacket wire",
            "same tandem version",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_worker_that_receives_smaller_messages_is_refused() {
    refused("small_messages", &["up to 4096 bytes", "65536"]).await;
}

#[tokio::test]
async fn a_worker_of_another_protocol_version_is_refused() {
    refused(
        "protocol_two",
        &["speaks pool protocol 2", "this host speaks 1"],
    )
    .await;
}

#[tokio::test]
async fn a_garbage_handshake_is_refused() {
    refused("garbage", &["bad ready handshake"]).await;
}

#[tokio::test]
async fn a_worker_that_answers_before_its_hello_is_refused() {
    refused("answer_first", &["expected a hello frame first, got ok"]).await;
}
