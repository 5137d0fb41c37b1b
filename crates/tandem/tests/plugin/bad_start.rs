//! Plugins that fail to start: each ends in a clear error within the start timeout, with no
//! process left behind.

use std::time::{Duration, Instant};

use tandem::plugin::Host;
use tandem::Error;

use crate::helpers::{assert_gone, echo, go_plugin, misbehave, read_pid};
use crate::support::test_dir;

/// Starts `builder`, expects an error within the deadline, checks the pid file's process is gone.
async fn fails(name: &str, builder: tandem::plugin::Builder, dir: &std::path::Path) -> Error {
    let started = Instant::now();
    let err = match builder.start().await {
        Ok(host) => {
            host.kill().await;
            panic!("{name}: plugin started");
        }
        Err(e) => e,
    };
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{name}: took {:?}",
        started.elapsed()
    );
    if let Some(pid) = read_pid(dir) {
        assert_gone(pid).await;
    }
    err
}

fn assert_words(err: &Error, words: &[&str]) {
    let text = err.to_string();
    for w in words {
        assert!(text.contains(w), "missing {w:?} in: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_cookie_reports_the_plugins_message() {
    let dir = test_dir("wrong-cookie");
    let err = fails(
        "wrong cookie",
        echo()
            .handshake("TANDEM_PLUGIN", "wrong")
            .start_timeout(Duration::from_secs(5)),
        &dir,
    )
    .await;
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert_words(
        &err,
        &[
            "exited before the handshake",
            "status 1",
            "This binary is a plugin",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_stdout_is_a_protocol_error() {
    let dir = test_dir("garbage");
    let err = fails("garbage", misbehave("garbage", &dir), &dir).await;
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
    assert_words(
        &err,
        &[
            "unrecognized remote plugin message",
            "hello from a program that is not a plugin",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_exit_is_reported_with_status() {
    let dir = test_dir("silent");
    let err = fails("silent", misbehave("silent", &dir), &dir).await;
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert_words(
        &err,
        &[
            "exited before the handshake",
            "status 0",
            "stderr was empty",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn immediate_exit_quotes_stderr() {
    let dir = test_dir("exit");
    let err = fails("exit", misbehave("exit", &dir), &dir).await;
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert_words(
        &err,
        &["status 1", "missing configuration file /etc/misbehave.conf"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hang_before_handshake_times_out_and_is_killed() {
    let dir = test_dir("hang");
    let err = fails("hang", misbehave("hang", &dir), &dir).await;
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert_words(
        &err,
        &["did not print a handshake within 2s", "misbehave: waiting"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unrequested_certificate_is_refused() {
    let dir = test_dir("cert");
    let err = fails("cert", misbehave("cert", &dir), &dir).await;
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
    assert_words(&err, &["certificate although AutoMTLS is off"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn netrpc_and_core_version_are_refused() {
    let dir = test_dir("netrpc");
    let err = fails("netrpc", misbehave("netrpc", &dir), &dir).await;
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
    assert_words(
        &err,
        &["unsupported plugin protocol \"netrpc\"", "GRPCServer"],
    );
    let dir = test_dir("core");
    let err = fails("core", misbehave("core", &dir), &dir).await;
    assert_words(&err, &["incompatible core API version"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sh_c_without_exec_grandchild_is_killed_with_the_group() {
    let dir = test_dir("sh-c");
    let script = format!("{} ; echo unreachable", go_plugin("misbehave").display());
    let builder = Host::builder("sh")
        .arg("-c")
        .arg(script)
        .env("MISBEHAVE_MODE", "hang")
        .env("MISBEHAVE_PIDFILE", dir.join("pid"))
        .auto_mtls(false)
        .start_timeout(Duration::from_secs(2));
    let err = fails("sh -c", builder, &dir).await;
    assert_words(&err, &["did not print a handshake"]);
    assert!(read_pid(&dir).is_some(), "the grandchild ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn sh_c_wrapped_plugin_works_and_kill_cleans_the_grandchild() {
    let script = format!("{} ; echo done >&2", go_plugin("echo").display());
    let host = Host::builder("sh")
        .arg("-c")
        .arg(script)
        .start()
        .await
        .unwrap();
    let sh = host.pid().unwrap();
    let grandchildren = crate::support::children(sh);
    assert_eq!(grandchildren.len(), 1, "sh forked the plugin");
    host.ping().await.unwrap();
    host.kill().await;
    assert_gone(sh).await;
    assert_gone(grandchildren[0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checksum_is_checked_before_launch() {
    use sha2::Digest as _;
    let path = go_plugin("echo");
    let good: [u8; 32] = sha2::Sha256::digest(std::fs::read(&path).unwrap()).into();
    let host = echo().checksum_sha256(good).start().await.unwrap();
    let pid = host.pid().unwrap();
    host.kill().await;
    assert_gone(pid).await;
    let dir = test_dir("checksum");
    let err = fails("checksum", echo().checksum_sha256([7; 32]), &dir).await;
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert_words(&err, &["checksum mismatch", &hex::encode([7u8; 32])]);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_program_names_it() {
    let dir = test_dir("missing");
    let err = fails("missing", Host::builder(dir.join("no-such-plugin")), &dir).await;
    assert_words(&err, &["cannot spawn", "no-such-plugin"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_start_leaves_no_process() {
    let dir = test_dir("abandoned");
    let mut start = Box::pin(
        misbehave("hang", &dir)
            .start_timeout(Duration::from_secs(60))
            .start(),
    );
    tokio::select! {
        r = &mut start => panic!("start ended: {:?}", r.map(|_| ())),
        ran = crate::support::wait_until(Duration::from_secs(10), || read_pid(&dir).is_some()) => assert!(ran),
    }
    drop(start); // e.g. the caller's own timeout fired
    assert_gone(read_pid(&dir).unwrap()).await;
}
