//! App protocol version negotiation against a Go plugin with VersionedPlugins.

use std::time::{Duration, Instant};

use tandem::{Error, Payload, Request};

use crate::helpers::{assert_gone, echo};

async fn negotiated(host_versions: &[u32], plugin_versions: &str) -> Result<u32, Error> {
    let host = echo()
        .auto_mtls(false)
        .versions(host_versions.iter().copied())
        .env("ECHO_VERSIONS", plugin_versions)
        .start()
        .await?;
    let pid = host.pid().unwrap();
    let v = host.negotiated_version().unwrap();
    let reply = host
        .call(
            Request::new("version", Payload::raw(Vec::new())).with_timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert_eq!(
        reply.payload().bytes().as_ref(),
        v.to_string().as_bytes(),
        "plugin serves the negotiated set"
    );
    host.kill().await;
    assert_gone(pid).await;
    Ok(v)
}

#[tokio::test(flavor = "multi_thread")]
async fn highest_common_version_wins() {
    assert_eq!(negotiated(&[1, 2, 3], "1,3").await.unwrap(), 3);
    assert_eq!(negotiated(&[1], "1,3").await.unwrap(), 1);
    assert_eq!(negotiated(&[5, 2], "5").await.unwrap(), 5);
    assert_eq!(negotiated(&[3, 1], "1,2,3,4").await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_common_version_is_a_clear_error() {
    let started = Instant::now();
    let err = negotiated(&[7, 8], "1,3").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("incompatible API version"), "{text}");
    assert!(text.contains("[7, 8]"), "{text}");
}
