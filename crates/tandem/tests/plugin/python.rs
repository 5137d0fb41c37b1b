//! The Python SDK's plugin (`python -m tandem plugin module:app`) loaded by the Rust host.

use std::time::Duration;

use tandem::plugin::Host;
use tandem::{Error, Payload, Request};

use tandem::plugin::{Channel, Level};

use crate::helpers::{assert_gone, Captured};
use crate::support::{python, repo_root, test_dir, wait_until, write_file};

const APP: &str = r#"
import tandem

app = tandem.App("pyplug")


@app.handler("echo")
def echo(payload, ctx):
    return payload


@app.handler("talk")
def talk(payload, ctx):
    print("py-stdout", flush=True)
    ctx.logger.warning("py-log")
    return payload


@app.handler("boom")
def boom(payload, ctx):
    raise ValueError("no good")
"#;

fn sdk_present() -> bool {
    repo_root().join("python/src/tandem/plugin.py").is_file()
}

async fn python_round_trip(tls: bool) {
    if !sdk_present() {
        eprintln!("skipped: python/src/tandem/plugin.py is not on this branch yet");
        return;
    }
    let dir = test_dir(if tls { "py-plugin-tls" } else { "py-plugin" });
    write_file(&dir, "pyplug.py", APP);
    let out = Captured::default();
    let builder = Host::builder(python())
        .args(["-m", "tandem", "plugin", "pyplug:app"])
        .current_dir(&dir)
        .env("PYTHONPATH", &dir)
        .auto_mtls(tls)
        .start_timeout(Duration::from_secs(30));
    let host = out
        .attach(builder)
        .start()
        .await
        .expect("start the Python plugin");
    let pid = host.pid().unwrap();
    host.ping().await.unwrap();
    let req = Request::new(
        "echo",
        Payload::json(&serde_json::json!({"x": [1, 2]})).unwrap(),
    )
    .with_timeout(Duration::from_secs(10));
    let reply = host.call(req).await.unwrap();
    assert_eq!(
        reply.decode::<serde_json::Value>().unwrap(),
        serde_json::json!({"x": [1, 2]})
    );
    // print() goes over GRPCStdio; the handler's logger writes hclog JSON on stderr.
    let talk =
        Request::new("talk", Payload::json(&0).unwrap()).with_timeout(Duration::from_secs(10));
    host.call(talk).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || out
            .has_stdio(Channel::Stdout, "py-stdout"))
        .await,
        "stdio: {:?}",
        out.stdio.lock().unwrap()
    );
    let warned =
        |r: &tandem::plugin::LogRecord| r.level == Level::Warn && r.message.contains("py-log");
    assert!(
        wait_until(Duration::from_secs(5), || out.has_log(warned)).await,
        "logs: {:?}",
        out.logs.lock().unwrap()
    );
    let err = host
        .call(
            Request::new("boom", Payload::json(&1).unwrap()).with_timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
    match err {
        Error::Remote {
            exc_type, message, ..
        } => {
            assert!(exc_type.contains("ValueError"), "{exc_type}");
            assert_eq!(message, "no good");
        }
        other => panic!("expected Remote, got {other}"),
    }
    host.kill().await;
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_plugin_with_auto_mtls() {
    python_round_trip(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_plugin_without_tls() {
    python_round_trip(false).await;
}
