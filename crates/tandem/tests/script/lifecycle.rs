use std::time::Duration;

use serde_json::json;
use tandem::{Error, Payload};

use crate::{py_script, support};

/// A script that starts a grandchild (sleeping, ignoring nothing), writes its pid to a file, then
/// hangs. The timeout must kill both.
const SPAWNS_GRANDCHILD: &str = r#"
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open("grandchild.pid", "w") as f:
    f.write(str(child.pid))
time.sleep(300)
"#;

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = support::test_dir("script_timeout_group");
    let script = py_script(&dir, SPAWNS_GRANDCHILD)
        .cwd(&dir)
        .timeout(Duration::from_secs(3))
        .grace(Duration::from_millis(200))
        .build();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        script.run(Payload::json(&json!(0)).unwrap()),
    )
    .await
    .expect("the call must end")
    .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");

    let pid: u32 = std::fs::read_to_string(dir.join("grandchild.pid"))
        .expect("the script wrote its grandchild's pid before the timeout")
        .trim()
        .parse()
        .unwrap();
    support::assert_exits(pid, Duration::from_secs(10)).await;
    support::assert_no_zombies().await;
}

#[tokio::test]
async fn a_leftover_background_child_is_killed_when_the_script_exits() {
    let dir = support::test_dir("script_leftover");
    let src = r#"
import subprocess, sys, json
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
sys.stdout.write(json.dumps({"grandchild": child.pid}))
"#;
    let out = py_script(&dir, src)
        .timeout(Duration::from_secs(20))
        .build()
        .run(Payload::json(&json!(0)).unwrap())
        .await
        .unwrap();
    let got: serde_json::Value = out.decode().unwrap();
    let pid = u32::try_from(got["grandchild"].as_u64().unwrap()).unwrap();
    support::assert_exits(pid, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn dropping_a_running_call_kills_its_group() {
    let dir = support::test_dir("script_drop");
    let script = py_script(&dir, SPAWNS_GRANDCHILD).cwd(&dir).build();
    let pidfile = dir.join("grandchild.pid");
    let call = script.run(Payload::json(&json!(0)).unwrap());
    // Run the call until the grandchild exists, then drop it.
    let ready = async {
        support::wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(&pidfile).is_ok_and(|s| !s.trim().is_empty())
        })
        .await
    };
    tokio::select! {
        _ = call => panic!("the script should hang"),
        ok = ready => assert!(ok, "grandchild never started"),
    }
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    support::assert_exits(pid, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn many_runs_leave_no_zombies() {
    let dir = support::test_dir("script_no_zombies");
    let src = "import tandem\n@tandem.script\ndef main(data):\n    return data\n";
    let script = py_script(&dir, src).build();
    let runs = (0..6).map(|i| script.run(Payload::json(&json!(i)).unwrap()));
    for r in futures_join(runs).await {
        r.unwrap();
    }
    support::assert_no_zombies().await;
}

async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<_> = fs.map(Box::pin).collect();
    for h in handles {
        out.push(h.await);
    }
    out
}
