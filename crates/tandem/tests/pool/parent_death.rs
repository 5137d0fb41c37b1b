//! A parent killed with SIGKILL leaves no worker running: idle workers exit on EOF of their
//! wire, a busy one through its parent watchdog.
//!
//! The test re-runs this test binary as a helper process (go-plugin style) that builds a pool,
//! writes its workers' pids to a file and waits to be killed.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::apps::{builder, json, svc_dir, within};
use crate::support;

const HELPER_ENV: &str = "TANDEM_POOL_HELPER_DIR";

#[tokio::test]
async fn helper_builds_a_pool_and_waits_to_be_killed() {
    let Some(dir) = std::env::var_os(HELPER_ENV) else {
        return; // only does something when run as the helper
    };
    let dir = std::path::PathBuf::from(dir);
    let pool = builder(&dir).workers(2).build().await.unwrap();
    // One worker is busy with a call that never returns when the parent dies.
    let busy = pool.clone();
    tokio::spawn(async move { busy.call(json("sleep", serde_json::json!(300))).await });
    assert!(support::wait_until(Duration::from_secs(10), || pool.stats().busy == 1).await);
    let pids = support::children(std::process::id())
        .into_iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(dir.join("pids.tmp"), pids).unwrap();
    std::fs::rename(dir.join("pids.tmp"), dir.join("pids")).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(pool);
}

#[tokio::test]
async fn pool_workers_exit_when_the_parent_is_killed() {
    let dir = svc_dir("parent_death");
    within(60, async {
        let mut helper = Command::new(std::env::current_exe().unwrap())
            .args([
                "parent_death::helper_builds_a_pool_and_waits_to_be_killed",
                "--exact",
                "--nocapture",
            ])
            .env(HELPER_ENV, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pids_file = dir.join("pids");
        assert!(
            support::wait_until(Duration::from_secs(30), || pids_file.exists()).await,
            "the helper never built its pool"
        );
        let pids: Vec<u32> = std::fs::read_to_string(&pids_file)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2, "helper children: {pids:?}");
        assert!(pids.iter().all(|&p| support::alive(p)));
        helper.kill().unwrap(); // SIGKILL: no destructor runs in the helper
        helper.wait().unwrap();
        for pid in pids {
            support::assert_exits(pid, Duration::from_secs(10)).await;
        }
    })
    .await;
}
