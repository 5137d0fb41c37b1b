//! Workers that die mid-call: only that call fails, the worker is replaced; crash loops are
//! reported, not spun.

use std::time::Duration;

use serde_json::json;
use tandem::process::Pool;
use tandem::{Error, ErrorKind};

use crate::apps::{assert_contains, back_to_size, builder, call_json, finish, svc_dir, within};
use crate::support;

async fn crash_once(test: &str, method: &str, arg: serde_json::Value, expect: &[&str]) {
    let dir = svc_dir(test);
    within(60, async {
        let pool = builder(&dir).workers(2).build().await.unwrap();
        let err = call_json(&pool, method, arg).await.unwrap_err();
        match &err {
            Error::Unavailable { reason, .. } => assert_contains(reason, expect),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        back_to_size(&pool, 2).await;
        assert!(pool.stats().restarts >= 1);
        assert_eq!(
            call_json(&pool, "echo", json!("alive")).await.unwrap(),
            json!("alive")
        );
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_restarts_worker_after_os_exit() {
    crash_once(
        "os_exit",
        "exit",
        json!(7),
        &["exit status 7", "about to exit on purpose"],
    )
    .await;
}

#[tokio::test]
async fn pool_restarts_worker_after_segfault() {
    crash_once(
        "segv",
        "signal",
        json!(libc::SIGSEGV),
        &["signal 11", "SIGSEGV", "about to die by signal"],
    )
    .await;
}

#[tokio::test]
async fn pool_restarts_worker_after_sigkill() {
    crash_once(
        "sigkill",
        "signal",
        json!(libc::SIGKILL),
        &["signal 9", "SIGKILL"],
    )
    .await;
}

#[tokio::test]
async fn pool_build_fails_with_the_stderr_tail_when_the_app_does_not_import() {
    let dir = support::test_dir("import_fails");
    support::write_file(
        &dir,
        "broken.py",
        "import tandem\nimport no_such_module_xyz\n",
    );
    within(60, async {
        let err = Pool::builder("broken:app")
            .python(support::python())
            .cwd(dir.clone())
            .workers(2)
            .build()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert_contains(
            &err.to_string(),
            &[
                "before its ready handshake",
                "exit status",
                "no_such_module_xyz",
            ],
        );
        support::assert_no_zombies().await;
    })
    .await;
}

#[tokio::test]
async fn pool_reports_a_crash_loop_after_build_and_fails_fast() {
    // Starts once, then every later start fails at import.
    let dir = support::test_dir("crash_loop");
    let marker = dir.join("started-once");
    support::write_file(
        &dir,
        "once.py",
        &format!(
            r#"import os, sys
import tandem
if os.path.exists({marker:?}):
    sys.stderr.write("refusing to start again on purpose\n")
    sys.exit(3)
open({marker:?}, "w").close()
app = tandem.App("once")

@app.handler("exit")
def exit_(code):
    os._exit(code)
"#,
            marker = marker.display().to_string()
        ),
    );
    within(60, async {
        let pool = Pool::builder("once:app")
            .python(support::python())
            .cwd(dir.clone())
            .workers(1)
            .timeout(Duration::from_secs(1))
            .build()
            .await
            .unwrap();
        let err = call_json(&pool, "exit", json!(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        // Restarts keep failing; soon calls fail fast naming the crash loop.
        let mut last;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let err = call_json(&pool, "exit", json!(1)).await.unwrap_err();
            last = err.to_string();
            if last.contains("crash loop") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no crash loop reported: {last}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_contains(
            &last,
            &[
                "crash loop",
                "refusing to start again on purpose",
                "exit status 3",
            ],
        );
        assert_eq!(pool.stats().workers, 0);
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_survives_a_handler_that_crashes_at_every_call() {
    let dir = svc_dir("crash_every_call");
    within(90, async {
        let pool = builder(&dir).workers(1).build().await.unwrap();
        let calls = 5;
        for _ in 0..calls {
            let err = call_json(&pool, "exit", json!(1)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        }
        back_to_size(&pool, 1).await;
        // Restarts follow crashes only: nothing respawns on its own.
        let restarts = pool.stats().restarts;
        assert!(restarts <= calls, "{restarts} restarts for {calls} crashes");
        assert_eq!(call_json(&pool, "echo", json!(2)).await.unwrap(), json!(2));
        finish(pool).await;
    })
    .await;
}

#[tokio::test]
async fn pool_build_names_a_missing_interpreter() {
    let dir = svc_dir("no_python");
    within(30, async {
        let err = builder(&dir)
            .python("/nonexistent/python3")
            .build()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert_contains(&err.to_string(), &["cannot start", "/nonexistent/python3"]);
    })
    .await;
}
