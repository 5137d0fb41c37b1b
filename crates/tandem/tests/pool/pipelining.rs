//! Calls written behind a running call (pipelining): they run in order on that worker, move
//! to a worker that frees first, are taken back unread when their caller gives up, and run
//! elsewhere when the worker dies before reaching them. Gates (files the handlers wait for)
//! decide the order of events.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tandem::process::Pool;
use tandem::Error;
use tokio::task::JoinHandle;

use crate::apps::{builder, call_json, finish, json, svc_dir, within};
use crate::support;

type Call = JoinHandle<Result<serde_json::Value, Error>>;

fn spawn_call(pool: &Pool, method: &str, arg: serde_json::Value) -> Call {
    let (pool, method) = (pool.clone(), method.to_owned());
    tokio::spawn(async move { call_json(&pool, &method, arg).await })
}

fn gate(path: &Path) -> serde_json::Value {
    json!(path.display().to_string())
}

async fn until(what: &str, pool: &Pool, cond: impl Fn(tandem::process::PoolStats) -> bool) {
    assert!(
        support::wait_until(Duration::from_secs(15), || cond(pool.stats())).await,
        "{what}: {:?}",
        pool.stats()
    );
}

#[tokio::test]
async fn a_call_queued_behind_a_slow_one_moves_to_the_worker_that_frees_first() {
    let dir = svc_dir("pipeline_moves");
    let (g1, g2, g3) = (dir.join("g1"), dir.join("g2"), dir.join("g3"));
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let first = spawn_call(&pool, "gate", gate(&g1));
        until("first busy", &pool, |s| s.busy == 1).await;
        let second = spawn_call(&pool, "gate", gate(&g2));
        until("both busy", &pool, |s| s.busy == 2).await;
        let slow = spawn_call(&pool, "gate", gate(&g3));
        until("slow waits", &pool, |s| s.queued == 1).await;
        let fast = spawn_call(&pool, "echo", json!("fast"));
        until("fast waits", &pool, |s| s.queued == 2).await;
        // The second worker frees: the slow call starts on it, the fast one is written behind.
        std::fs::write(&g2, b"").unwrap();
        assert_eq!(second.await.unwrap().unwrap(), json!("opened"));
        until("fast written behind slow", &pool, |s| s.pipelined == 1).await;
        // The first worker frees while the slow call still runs: the fast call moves there.
        std::fs::write(&g1, b"").unwrap();
        assert_eq!(first.await.unwrap().unwrap(), json!("opened"));
        let fast = tokio::time::timeout(Duration::from_secs(10), fast)
            .await
            .expect("the fast call waited behind the slow one");
        assert_eq!(fast.unwrap().unwrap(), json!("fast"));
        assert!(!slow.is_finished(), "the slow call's gate is still shut");
        assert_eq!(pool.stats().pipelined, 0);
        std::fs::write(&g3, b"").unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), json!("opened"));
        assert_eq!(pool.stats().restarts, 0);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn a_queued_call_past_its_deadline_is_taken_back_and_its_worker_kept() {
    let dir = svc_dir("pipeline_deadline");
    let (g0, g1) = (dir.join("g0"), dir.join("g1"));
    within(60, async {
        let pool = builder(&dir).workers(1).build().await.unwrap();
        let pid = call_json(&pool, "pid", json!(null)).await.unwrap();
        let first = spawn_call(&pool, "gate", gate(&g0));
        until("busy", &pool, |s| s.busy == 1).await;
        let slow = spawn_call(&pool, "gate", gate(&g1));
        until("slow waits", &pool, |s| s.queued == 1).await;
        let late = {
            let pool = pool.clone();
            let req = json("echo", json!("late")).with_timeout(Duration::from_millis(1500));
            tokio::spawn(async move { pool.call(req).await })
        };
        until("late waits", &pool, |s| s.queued == 2).await;
        std::fs::write(&g0, b"").unwrap();
        assert_eq!(first.await.unwrap().unwrap(), json!("opened"));
        until("late written behind slow", &pool, |s| s.pipelined == 1).await;
        match late.await.unwrap() {
            Err(Error::Timeout { .. }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(pool.stats().pipelined, 0, "taken back");
        std::fs::write(&g1, b"").unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), json!("opened"));
        assert_eq!(pool.stats().restarts, 0, "the worker was not killed");
        assert_eq!(call_json(&pool, "pid", json!(null)).await.unwrap(), pid);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn a_queued_call_whose_caller_went_away_never_runs() {
    let dir = svc_dir("pipeline_cancel");
    let (g0, g1, mark) = (dir.join("g0"), dir.join("g1"), dir.join("ran"));
    within(60, async {
        let pool = builder(&dir).workers(1).build().await.unwrap();
        let first = spawn_call(&pool, "gate", gate(&g0));
        until("busy", &pool, |s| s.busy == 1).await;
        let slow = spawn_call(&pool, "gate", gate(&g1));
        until("slow waits", &pool, |s| s.queued == 1).await;
        let touch = spawn_call(&pool, "touch", gate(&mark));
        until("touch waits", &pool, |s| s.queued == 2).await;
        std::fs::write(&g0, b"").unwrap();
        assert_eq!(first.await.unwrap().unwrap(), json!("opened"));
        until("touch written behind slow", &pool, |s| s.pipelined == 1).await;
        touch.abort();
        assert!(touch.await.unwrap_err().is_cancelled());
        until("taken back", &pool, |s| s.pipelined == 0 && s.queued == 0).await;
        std::fs::write(&g1, b"").unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), json!("opened"));
        assert_eq!(call_json(&pool, "echo", json!(1)).await.unwrap(), json!(1));
        assert!(!mark.exists(), "the withdrawn call ran");
        assert_eq!(pool.stats().restarts, 0);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn a_call_queued_behind_one_that_kills_its_worker_runs_elsewhere() {
    let dir = svc_dir("pipeline_crash");
    let (g1, g2) = (dir.join("g1"), dir.join("g2"));
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let first = spawn_call(&pool, "gate", gate(&g1));
        until("first busy", &pool, |s| s.busy == 1).await;
        let second = spawn_call(&pool, "gate", gate(&g2));
        until("both busy", &pool, |s| s.busy == 2).await;
        let crash = spawn_call(&pool, "exit", json!(3));
        until("crash waits", &pool, |s| s.queued == 1).await;
        let after = spawn_call(&pool, "echo", json!("after"));
        until("after waits", &pool, |s| s.queued == 2).await;
        // The crash starts on the freed worker, with `after` written behind it (or, if the
        // worker is gone by then, still waiting): either way `after` must run elsewhere.
        std::fs::write(&g2, b"").unwrap();
        assert_eq!(second.await.unwrap().unwrap(), json!("opened"));
        match crash.await.unwrap() {
            Err(Error::Unavailable { .. }) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
        std::fs::write(&g1, b"").unwrap();
        assert_eq!(first.await.unwrap().unwrap(), json!("opened"));
        assert_eq!(after.await.unwrap().unwrap(), json!("after"));
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn every_answer_reaches_its_own_caller_under_load() {
    let dir = svc_dir("pipeline_load");
    within(90, async {
        let pool = builder(&dir)
            .workers(2)
            .max_queue(64)
            .build()
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for t in 0..64 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..40 {
                    let sent = json!({"task": t, "i": i, "pad": "x".repeat(t * 7)});
                    let got = call_json(&pool, "echo", sent.clone()).await.unwrap();
                    assert_eq!(got, sent);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let s = pool.stats();
        assert_eq!((s.restarts, s.queued, s.pipelined, s.busy), (0, 0, 0, 0));
        finish(pool).await;
    })
    .await;
}
