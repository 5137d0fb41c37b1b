//! Nothing is lost: consumers killed with SIGKILL mid-batch, Redis restarted mid-run,
//! graceful and immediate shutdown.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use tandem::queue::Producer;
use tandem::{Payload, Request};

use crate::harness::{Consumer, Redis};
use crate::support;

fn req(method: &str, v: serde_json::Value) -> Request {
    Request::new(method, Payload::json(&v).unwrap())
}

fn handled(redis: &Redis) -> u64 {
    redis.query(redis::cmd("SCARD").arg("handled"))
}

/// How many entries group `g` of `jobs` has delivered and not acked.
fn pending(redis: &Redis) -> i64 {
    let summary: redis::Value = redis.query(redis::cmd("XPENDING").arg("jobs").arg("g"));
    match summary {
        redis::Value::Array(fields) => match fields.first() {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("XPENDING count: {other:?}"),
        },
        other => panic!("XPENDING: {other:?}"),
    }
}

fn calls(redis: &Redis, key: &str) -> u64 {
    redis
        .query::<Option<u64>>(redis::cmd("GET").arg(key))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_killed_mid_batch_lose_nothing() {
    const TASKS: u64 = 2000;
    const KILLS: u64 = 8;
    const BATCH: u64 = 20;
    let redis = Redis::start("kill9", false);
    let dir = support::test_dir("queue-kill9");
    let consumer = Consumer::start(
        &dir,
        &redis,
        "jobs",
        &[
            "--processes",
            "2",
            "--batch",
            "20",
            "--visibility-timeout",
            "2",
            "--reclaim-interval",
            "0.5",
        ],
    );
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .build()
        .await
        .unwrap();
    let publisher = tokio::spawn(async move {
        for chunk in 0..TASKS / 50 {
            let reqs = (chunk * 50..chunk * 50 + 50)
                .map(|n| req("record", json!({ "n": n })))
                .collect();
            p.publish_batch(reqs).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    for kill in 0..KILLS {
        let before = handled(&redis);
        let grew = support::wait_until(Duration::from_secs(30), || {
            handled(&redis) >= (before + 60).min(TASKS - 100)
        })
        .await;
        assert!(
            grew,
            "tasks stopped flowing before kill {kill}:\n{}",
            consumer.output()
        );
        let workers = consumer.workers();
        assert!(
            !workers.is_empty(),
            "no consumer processes:\n{}",
            consumer.output()
        );
        consumer.signal("-KILL", workers[(kill as usize) % workers.len()]);
    }
    publisher.await.unwrap();
    let all = support::wait_until(Duration::from_secs(90), || handled(&redis) == TASKS).await;
    assert!(
        all,
        "only {} of {TASKS} tasks handled:\n{}",
        handled(&redis),
        consumer.output()
    );
    let dupes = calls(&redis, "calls") - TASKS;
    assert!(
        dupes <= KILLS * BATCH * 2,
        "{dupes} duplicates for {KILLS} kills of batches of {BATCH}"
    );
    let drained = support::wait_until(Duration::from_secs(20), || {
        redis.query::<u64>(redis::cmd("XLEN").arg("jobs")) == 0
    })
    .await;
    assert!(drained, "acknowledged entries were not deleted");
    let dead: u64 = redis.query(redis::cmd("XLEN").arg("jobs:dead"));
    assert_eq!(dead, 0, "no task should be dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_loses_no_acknowledged_publish() {
    const TASKS: u64 = 400;
    let mut redis = Redis::start("restart", true);
    let dir = support::test_dir("queue-restart");
    let consumer = Consumer::start(&dir, &redis, "jobs", &["--batch", "10"]);
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .build()
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let publisher = tokio::spawn(async move {
        let mut failures = 0u32;
        for n in 0..TASKS {
            loop {
                match p.publish(req("record", json!({ "n": n }))).await {
                    Ok(_) => break,
                    Err(e) => {
                        failures += 1;
                        assert!(e.is_transient(), "{e:?}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            let _ = tx.send(n);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        failures
    });
    let mut acked = HashSet::new();
    while acked.len() < 150 {
        acked.insert(rx.recv().await.unwrap());
    }
    redis.restart();
    let failures = publisher.await.unwrap();
    while let Ok(n) = rx.try_recv() {
        acked.insert(n);
    }
    assert_eq!(acked.len() as u64, TASKS);
    let all = support::wait_until(Duration::from_secs(60), || handled(&redis) >= TASKS).await;
    let members: Vec<u64> = redis.query(redis::cmd("SMEMBERS").arg("handled"));
    let members: HashSet<u64> = members.into_iter().collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|n| !members.contains(n))
        .take(10)
        .collect();
    assert!(
        all && lost.is_empty(),
        "lost {lost:?} after a redis restart ({failures} publish failures):\n{}",
        consumer.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_tasks_and_a_second_exits_at_once() {
    let redis = Redis::start("sigterm", false);
    let dir = support::test_dir("queue-sigterm");
    let mut consumer = Consumer::start(&dir, &redis, "jobs", &["--batch", "4"]);
    let p = Producer::builder(redis.url(), "jobs")
        .group("g")
        .build()
        .await
        .unwrap();
    let reqs = (0..24)
        .map(|n| req("slow", json!({"n": n, "s": 0.1})))
        .collect();
    p.publish_batch(reqs).await.unwrap();
    let started =
        support::wait_until(Duration::from_secs(20), || calls(&redis, "slow_calls") >= 2).await;
    assert!(started, "{}", consumer.output());
    consumer.signal("-TERM", consumer.pid());
    let exited = support::wait_until(Duration::from_secs(20), || {
        matches!(consumer.child.try_wait(), Ok(Some(_)))
    })
    .await;
    assert!(
        exited,
        "consumer did not stop on SIGTERM:\n{}",
        consumer.output()
    );
    assert_eq!(pending(&redis), 0, "a graceful stop left tasks pending");
    let ran = calls(&redis, "slow_calls");
    assert_eq!(ran, handled(&redis), "a task ran without being recorded");
    assert!(
        ran < 24,
        "graceful stop should leave unread tasks in the stream"
    );
    // A new consumer runs exactly the rest: nothing lost, nothing twice.
    let mut again = Consumer::start(&dir, &redis, "jobs", &["--batch", "4"]);
    let all = support::wait_until(Duration::from_secs(30), || handled(&redis) == 24).await;
    assert!(all, "{}", again.output());
    // The handler records a task before the worker acks it: wait for the acks too, or the
    // kill below can leave the last ones pending.
    let acked = support::wait_until(Duration::from_secs(10), || pending(&redis) == 0).await;
    assert!(acked, "handled tasks left pending:\n{}", again.output());
    assert_eq!(
        calls(&redis, "slow_calls"),
        24,
        "duplicates after a graceful stop"
    );
    again.kill();

    // Second SIGTERM: exit at once, the task stays pending (not lost).
    let mut c = Consumer::start(&dir, &redis, "jobs", &[]);
    p.publish(req("slow", json!({"n": 100, "s": 30})))
        .await
        .unwrap();
    let started = support::wait_until(Duration::from_secs(20), || {
        calls(&redis, "slow_calls") == 25
    })
    .await;
    assert!(started, "{}", c.output());
    c.signal("-TERM", c.pid());
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.signal("-TERM", c.pid());
    let exited = support::wait_until(Duration::from_secs(5), || {
        matches!(c.child.try_wait(), Ok(Some(_)))
    })
    .await;
    assert!(
        exited,
        "a second SIGTERM must exit at once:\n{}",
        c.output()
    );
    assert_eq!(pending(&redis), 1, "the interrupted task must stay pending");
    c.kill();
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_processes_exit_when_their_parent_is_killed() {
    let redis = Redis::start("orphans", false);
    let dir = support::test_dir("queue-orphans");
    let mut consumer = Consumer::start(&dir, &redis, "jobs", &["--processes", "2"]);
    let two = support::wait_until(Duration::from_secs(20), || consumer.workers().len() == 2).await;
    assert!(two, "{}", consumer.output());
    let workers = consumer.workers();
    consumer.signal("-KILL", consumer.pid());
    let _ = consumer.child.wait();
    for w in workers {
        support::assert_exits(w, Duration::from_secs(10)).await;
    }
}
