use std::time::Duration;

use serde_json::json;
use tandem::{Error, Payload};

use crate::{py_script, support};

fn payload() -> Payload {
    Payload::json(&json!({"n": 1})).unwrap()
}

#[tokio::test]
async fn python_exception_becomes_remote_with_type_message_and_traceback() {
    let dir = support::test_dir("script_remote");
    let src = r#"
import tandem

def helper(n):
    raise ValueError(f"n must be positive, got {n}")

@tandem.script
def main(data):
    print("this goes to stderr")
    helper(-data["n"])
"#;
    let err = py_script(&dir, src)
        .timeout(Duration::from_secs(20))
        .build()
        .run(payload())
        .await
        .unwrap_err();
    match &err {
        Error::Remote {
            exc_type,
            message,
            traceback,
            ..
        } => {
            assert_eq!(exc_type, "ValueError");
            assert_eq!(message, "n must be positive, got -1");
            assert!(traceback.contains("in helper"), "{traceback}");
        }
        other => panic!("expected Remote, got {other:?}"),
    }
    assert!(err.to_string().contains("ValueError"));
}

#[tokio::test]
async fn undecodable_input_is_bad_request() {
    let dir = support::test_dir("script_bad_input");
    let src = "import tandem\n@tandem.script\ndef main(data):\n    return data\n";
    let err = py_script(&dir, src)
        .build()
        .run(Payload::new(tandem::Codec::Json, "{not json"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot decode"), "{err}");
}

#[tokio::test]
async fn nonzero_exit_is_unavailable_with_status_and_stderr_tail() {
    let dir = support::test_dir("script_exit");
    let src = "import sys\nsys.stderr.write('disk full\\n')\nsys.exit(3)\n";
    let err = py_script(&dir, src)
        .build()
        .run(payload())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(msg.contains("exited with status 3"), "{msg}");
    assert!(msg.contains("disk full"), "{msg}");
}

#[tokio::test]
async fn death_by_signal_is_unavailable_and_named() {
    let dir = support::test_dir("script_signal");
    let src = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n";
    let err = py_script(&dir, src)
        .build()
        .run(payload())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("signal 11"), "{err}");
}

#[tokio::test]
async fn invalid_json_output_is_a_protocol_error() {
    let dir = support::test_dir("script_bad_output");
    let src = "print('hello, not json')\n";
    let err = py_script(&dir, src)
        .build()
        .run(payload())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("not valid json"), "{err}");
}

#[tokio::test]
async fn oversized_output_is_cut_off_and_reported() {
    let dir = support::test_dir("script_oversized");
    // Writes forever: the cap must stop it, not the timeout.
    let src = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n";
    let started = std::time::Instant::now();
    let err = py_script(&dir, src)
        .max_output(100_000)
        .timeout(Duration::from_secs(60))
        .build()
        .run(payload())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("exceeded max_output of 100000 bytes"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the cap did not stop the script"
    );
    support::assert_no_zombies().await;
}

#[tokio::test]
async fn missing_program_is_unavailable() {
    let err = tandem::process::Script::builder("/nonexistent/tandem-python")
        .build()
        .run(payload())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot start"), "{err}");
}
