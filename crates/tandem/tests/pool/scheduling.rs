//! Calls go to idle workers only, and a full queue answers `Overloaded`.

use std::time::Duration;

use serde_json::json;
use tandem::Error;

use crate::apps::{builder, call_json, finish, svc_dir, within};
use crate::support;

#[tokio::test]
async fn pool_runs_a_fast_call_while_a_slow_one_blocks_another_worker() {
    let dir = svc_dir("no_hol");
    let gate = dir.join("gate-open");
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let slow = {
            let pool = pool.clone();
            let gate = gate.display().to_string();
            tokio::spawn(async move { call_json(&pool, "gate", json!(gate)).await })
        };
        assert!(support::wait_until(Duration::from_secs(10), || pool.stats().busy == 1).await);
        for i in 0..5 {
            assert_eq!(call_json(&pool, "echo", json!(i)).await.unwrap(), json!(i));
        }
        assert!(
            !slow.is_finished(),
            "the slow call finished before its gate opened"
        );
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), json!("opened"));
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_answers_overloaded_when_the_queue_is_full() {
    let dir = svc_dir("overloaded");
    let gate = dir.join("gate-open");
    within(60, async {
        let pool = builder(&dir).workers(1).max_queue(1).build().await.unwrap();
        let gate_arg = json!(gate.display().to_string());
        let running = {
            let (pool, arg) = (pool.clone(), gate_arg.clone());
            tokio::spawn(async move { call_json(&pool, "gate", arg).await })
        };
        assert!(support::wait_until(Duration::from_secs(10), || pool.stats().busy == 1).await);
        let queued = {
            let (pool, arg) = (pool.clone(), gate_arg.clone());
            tokio::spawn(async move { call_json(&pool, "gate", arg).await })
        };
        assert!(support::wait_until(Duration::from_secs(10), || pool.stats().queued == 1).await);
        let err = call_json(&pool, "echo", json!(1)).await.unwrap_err();
        match &err {
            Error::Overloaded { limit, .. } => assert_eq!(*limit, 1),
            other => panic!("expected Overloaded, got {other:?}"),
        }
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(running.await.unwrap().unwrap(), json!("opened"));
        assert_eq!(queued.await.unwrap().unwrap(), json!("opened"));
        finish(pool).await;
    })
    .await;
}

/// A call that finds an idle worker and its answer within the spin never waits on the runtime;
/// a task calling in a loop must still let the other tasks of its thread run.
#[tokio::test(flavor = "current_thread")]
async fn a_task_calling_in_a_loop_lets_the_other_tasks_of_its_thread_run() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const CALLS: u64 = 3_000;
    let dir = svc_dir("coop_loop");
    within(60, async {
        let pool = builder(&dir).workers(1).build().await.unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let (pool2, done2) = (pool.clone(), done.clone());
        let observer = tokio::spawn(async move {
            let mut observer = None;
            for i in 0..CALLS {
                assert_eq!(call_json(&pool2, "echo", json!(i)).await.unwrap(), json!(i));
                done2.fetch_add(1, Ordering::Relaxed);
                if i == 100 {
                    // Warm by now: this task on the same thread runs only when the loop yields.
                    let done = done2.clone();
                    observer = Some(tokio::spawn(async move { done.load(Ordering::Relaxed) }));
                }
            }
            observer.unwrap().await.unwrap()
        });
        let seen = observer.await.unwrap();
        // Each call counts against the task's budget, which tokio refills to 128 per poll.
        assert!(
            seen <= 101 + 128,
            "the other task ran only after {seen} of the loop's {CALLS} calls"
        );
        finish(pool).await;
    })
    .await;
}
