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

use crate::apps::{back_to_size, builder, call_json, finish, json, svc_dir, within};
use crate::support;

type Call = JoinHandle<Result<serde_json::Value, Error>>;

/// Starts a call, then waits until the pool's stats show it where it should be (`at`).
async fn start(
    pool: &Pool,
    method: &str,
    arg: serde_json::Value,
    at: &str,
    cond: impl Fn(tandem::process::PoolStats) -> bool,
) -> Call {
    let (p, m) = (pool.clone(), method.to_owned());
    let call = tokio::spawn(async move { call_json(&p, &m, arg).await });
    until(at, pool, cond).await;
    call
}

/// Opens `gate` and checks that the call waiting on it answers.
async fn open(gate: &Path, call: Call) {
    std::fs::write(gate, b"").unwrap();
    assert_eq!(call.await.unwrap().unwrap(), json!("opened"));
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
        let first = start(&pool, "gate", gate(&g1), "first busy", |s| s.busy == 1).await;
        let second = start(&pool, "gate", gate(&g2), "both busy", |s| s.busy == 2).await;
        let slow = start(&pool, "gate", gate(&g3), "slow waits", |s| s.queued == 1).await;
        let fast = start(&pool, "echo", json!("fast"), "fast waits", |s| {
            s.queued == 2
        })
        .await;
        // The second worker frees: the slow call starts on it, the fast one is written behind.
        open(&g2, second).await;
        until("fast written behind slow", &pool, |s| s.pipelined == 1).await;
        // The first worker frees while the slow call still runs: the fast call moves there.
        open(&g1, first).await;
        let fast = tokio::time::timeout(Duration::from_secs(10), fast)
            .await
            .expect("the fast call waited behind the slow one");
        assert_eq!(fast.unwrap().unwrap(), json!("fast"));
        assert!(!slow.is_finished(), "the slow call's gate is still shut");
        assert_eq!(pool.stats().pipelined, 0);
        open(&g3, slow).await;
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
        let first = start(&pool, "gate", gate(&g0), "busy", |s| s.busy == 1).await;
        let slow = start(&pool, "gate", gate(&g1), "slow waits", |s| s.queued == 1).await;
        let late = {
            let pool = pool.clone();
            let req = json("echo", json!("late")).with_timeout(Duration::from_millis(1500));
            tokio::spawn(async move { pool.call(req).await })
        };
        until("late waits", &pool, |s| s.queued == 2).await;
        open(&g0, first).await;
        until("late written behind slow", &pool, |s| s.pipelined == 1).await;
        match late.await.unwrap() {
            Err(Error::Timeout { .. }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(pool.stats().pipelined, 0, "taken back");
        open(&g1, slow).await;
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
        let first = start(&pool, "gate", gate(&g0), "busy", |s| s.busy == 1).await;
        let slow = start(&pool, "gate", gate(&g1), "slow waits", |s| s.queued == 1).await;
        let touch = start(&pool, "touch", gate(&mark), "touch waits", |s| {
            s.queued == 2
        })
        .await;
        open(&g0, first).await;
        until("touch written behind slow", &pool, |s| s.pipelined == 1).await;
        touch.abort();
        assert!(touch.await.unwrap_err().is_cancelled());
        until("taken back", &pool, |s| s.pipelined == 0 && s.queued == 0).await;
        open(&g1, slow).await;
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
        let first = start(&pool, "gate", gate(&g1), "first busy", |s| s.busy == 1).await;
        let second = start(&pool, "gate", gate(&g2), "both busy", |s| s.busy == 2).await;
        let crash = start(&pool, "exit", json!(3), "crash waits", |s| s.queued == 1).await;
        let after = start(&pool, "echo", json!("after"), "after waits", |s| {
            s.queued == 2
        })
        .await;
        // The crash starts on the freed worker, with `after` written behind it (or, if the
        // worker is gone by then, still waiting): either way `after` must run elsewhere.
        open(&g2, second).await;
        match crash.await.unwrap() {
            Err(Error::Unavailable { .. }) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
        open(&g1, first).await;
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

#[tokio::test]
async fn two_calls_queued_behind_a_slow_one_both_move_to_the_worker_that_frees() {
    let dir = svc_dir("pipeline_two_move");
    let (g1, g2, g3) = (dir.join("g1"), dir.join("g2"), dir.join("g3"));
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let first = start(&pool, "gate", gate(&g1), "first busy", |s| s.busy == 1).await;
        let second = start(&pool, "gate", gate(&g2), "both busy", |s| s.busy == 2).await;
        let slow = start(&pool, "gate", gate(&g3), "slow waits", |s| s.queued == 1).await;
        let a = start(&pool, "echo", json!("a"), "a waits", |s| s.queued == 2).await;
        let b = start(&pool, "echo", json!("b"), "b waits", |s| s.queued == 3).await;
        // The second worker frees: the slow call starts on it, both others wait behind it.
        open(&g2, second).await;
        until("a and b written behind slow", &pool, |s| s.pipelined == 2).await;
        // The first worker frees while the slow call runs: it takes both, one after the other.
        open(&g1, first).await;
        for (call, want) in [(a, "a"), (b, "b")] {
            let got = tokio::time::timeout(Duration::from_secs(10), call)
                .await
                .expect("a call waited behind the slow one");
            assert_eq!(got.unwrap().unwrap(), json!(want));
        }
        assert!(!slow.is_finished(), "the slow call's gate is still shut");
        assert_eq!(pool.stats().pipelined, 0);
        open(&g3, slow).await;
        assert_eq!(pool.stats().restarts, 0);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn withdrawing_the_second_queued_call_leaves_the_first_to_run() {
    let dir = svc_dir("pipeline_second_deadline");
    let (g0, g1, mark) = (dir.join("g0"), dir.join("g1"), dir.join("ran"));
    within(60, async {
        let pool = builder(&dir).workers(1).build().await.unwrap();
        let first = start(&pool, "gate", gate(&g0), "busy", |s| s.busy == 1).await;
        let slow = start(&pool, "gate", gate(&g1), "slow waits", |s| s.queued == 1).await;
        let kept = start(&pool, "echo", json!("kept"), "kept waits", |s| {
            s.queued == 2
        })
        .await;
        let late = {
            let pool = pool.clone();
            let req = json("touch", gate(&mark)).with_timeout(Duration::from_millis(1500));
            tokio::spawn(async move { pool.call(req).await })
        };
        until("late waits", &pool, |s| s.queued == 3).await;
        open(&g0, first).await;
        until("kept and late written behind slow", &pool, |s| {
            s.pipelined == 2
        })
        .await;
        // Taking `late` back takes `kept` (ahead of it) back too: `kept` waits again.
        match late.await.unwrap() {
            Err(Error::Timeout { .. }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        until("only kept waits", &pool, |s| s.queued == 1).await;
        assert!(!kept.is_finished(), "the only worker runs the slow call");
        open(&g1, slow).await;
        assert_eq!(kept.await.unwrap().unwrap(), json!("kept"));
        assert!(!mark.exists(), "the withdrawn call ran");
        assert_eq!(pool.stats().restarts, 0, "the worker was not killed");
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn calls_queued_behind_one_that_kills_the_only_worker_run_on_its_replacement() {
    let dir = svc_dir("pipeline_two_crash");
    let g0 = dir.join("g0");
    within(60, async {
        let pool = builder(&dir).workers(1).build().await.unwrap();
        let first = start(&pool, "gate", gate(&g0), "busy", |s| s.busy == 1).await;
        let crash = start(&pool, "exit", json!(3), "crash waits", |s| s.queued == 1).await;
        let a = start(&pool, "echo", json!("a"), "a waits", |s| s.queued == 2).await;
        let b = start(&pool, "echo", json!("b"), "b waits", |s| s.queued == 3).await;
        open(&g0, first).await;
        match crash.await.unwrap() {
            Err(Error::Unavailable { .. }) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(a.await.unwrap().unwrap(), json!("a"));
        assert_eq!(b.await.unwrap().unwrap(), json!("b"));
        assert_eq!(pool.stats().pipelined, 0);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn calls_answered_before_the_worker_died_keep_their_answers() {
    // A worker frees with A, B and a poison call C waiting: A runs, B and C are written behind
    // it. The worker answers A and B, then dies on C, likely before the parent read A's
    // answer. Only C fails.
    let dir = svc_dir("pipeline_answered_then_died");
    let g0 = dir.join("g0");
    within(60, async {
        let pool = builder(&dir).workers(1).build().await.unwrap();
        for round in 0..5 {
            let first = start(&pool, "gate", gate(&g0), "busy", |s| s.busy == 1).await;
            let a = start(&pool, "echo", json!("a"), "a waits", |s| s.queued == 1).await;
            let b = start(&pool, "echo", json!("b"), "b waits", |s| s.queued == 2).await;
            let poison = start(&pool, "exit", json!(3), "c waits", |s| s.queued == 3).await;
            open(&g0, first).await;
            assert_eq!(a.await.unwrap().unwrap(), json!("a"), "round {round}");
            assert_eq!(b.await.unwrap().unwrap(), json!("b"), "round {round}");
            match poison.await.unwrap() {
                Err(Error::Unavailable { .. }) => {}
                other => panic!("expected Unavailable, got {other:?}"),
            }
            std::fs::remove_file(&g0).unwrap();
            back_to_size(&pool, 1).await;
        }
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn a_call_that_waited_behind_another_sees_its_true_deadline() {
    let dir = svc_dir("pipeline_deadline_seen");
    let (g0, g1) = (dir.join("g0"), dir.join("g1"));
    within(60, async {
        let pool = builder(&dir).workers(1).build().await.unwrap();
        let first = start(&pool, "gate", gate(&g0), "busy", |s| s.busy == 1).await;
        let slow = start(&pool, "gate", gate(&g1), "slow waits", |s| s.queued == 1).await;
        let seen = {
            let pool = pool.clone();
            let req = json("ctx", json!(null)).with_timeout(Duration::from_secs(4));
            tokio::spawn(async move { pool.call(req).await })
        };
        until("ctx waits", &pool, |s| s.queued == 2).await;
        open(&g0, first).await;
        until("ctx written behind slow", &pool, |s| s.pipelined == 1).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        open(&g1, slow).await;
        let answer = seen.await.unwrap().unwrap();
        let remaining = answer.payload().to_json_value().unwrap()["remaining"]
            .as_f64()
            .unwrap();
        // Written behind with about 4 s left, run 1.5 s later: the handler sees the difference.
        assert!(remaining < 3.0, "the handler saw {remaining} s left");
        assert!(remaining > 0.5, "the handler saw {remaining} s left");
        finish(pool).await;
    })
    .await;
}
