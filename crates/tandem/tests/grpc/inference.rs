//! The typed `InferenceService` client: Predict (batched), BatchPredict, StreamPredict.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tandem::ErrorKind;
use tokio_stream::StreamExt;

use crate::server::Server;
use crate::{client, support};

fn input(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn output(data: &[u8]) -> serde_json::Value {
    serde_json::from_slice(data).expect("JSON output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_predicts_each_get_their_own_result() {
    let server = Server::start("concurrent_predicts", 2, &[]).await;
    let c = client(&[server.uri()], 4);
    let infer = c.inference().with_timeout(Duration::from_secs(20));
    let calls: Vec<_> = (0..200i64)
        .map(|x| {
            let infer = infer.clone();
            tokio::spawn(async move {
                let out = infer
                    .predict("double", input(serde_json::json!({"x": x})), HashMap::new())
                    .await
                    .unwrap();
                (x, output(&out.output_data))
            })
        })
        .collect();
    let mut batches = BTreeSet::new();
    for call in calls {
        let (x, out) = call.await.unwrap();
        assert_eq!(out["y"].as_i64(), Some(2 * x), "input {x} got {out}");
        batches.insert(out["batch"].as_u64().unwrap());
    }
    eprintln!("batch sizes seen: {batches:?}");

    let results = infer
        .batch_predict(
            "double",
            vec![
                input(serde_json::json!({"x": 1})),
                b"not json".to_vec(),
                input(serde_json::json!({"x": 3})),
            ],
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(output(&results[0].output_data)["y"], 2);
    assert!(
        !results[1].success && results[1].error.contains("bad_request"),
        "{:?}",
        results[1]
    );
    assert_eq!(output(&results[2].output_data)["y"], 6);

    server.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_errors_map_to_the_call_model() {
    let server = Server::start("inference_errors", 1, &[]).await;
    let c = client(&[server.uri()], 1);
    let infer = c.inference().with_timeout(Duration::from_secs(10));

    let err = infer
        .predict("nope", input(serde_json::json!({})), HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("NOT_FOUND") && text.contains("'nope'"),
        "{text}"
    );
    assert!(text.contains("Predict at http://127.0.0.1"), "{text}");

    let err = infer
        .predict("double", b"\xff garbage".to_vec(), HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    assert!(err.to_string().contains("INVALID_ARGUMENT"), "{err}");

    // The model's queue holds one input: a burst is shed with RESOURCE_EXHAUSTED.
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let infer = infer.clone();
            tokio::spawn(async move {
                infer
                    .predict("slow", input(serde_json::json!({"s": 0.5})), HashMap::new())
                    .await
            })
        })
        .collect();
    let mut overloaded = 0;
    for call in calls {
        if let Err(e) = call.await.unwrap() {
            assert_eq!(e.kind(), ErrorKind::Overloaded, "{e}");
            overloaded += 1;
        }
    }
    assert!(overloaded >= 1, "no predict was shed by a queue of one");

    // A deadline shorter than the model: Timeout.
    let err = c
        .inference()
        .with_timeout(Duration::from_millis(200))
        .predict("slow", input(serde_json::json!({"s": 2})), HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");

    server.stop().await;
    support::assert_no_zombies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_predict_is_a_stream_with_gzip() {
    let server = Server::start("stream_predict", 1, &["--gzip"]).await;
    let c = tandem::grpc::Client::builder()
        .endpoint(server.uri())
        .health_service("inference.InferenceService")
        .gzip(true)
        .build()
        .unwrap();
    let infer = c.inference().with_timeout(Duration::from_secs(10));
    let chunks: Vec<_> = infer
        .stream_predict("double", input(serde_json::json!({"n": 5})), HashMap::new())
        .collect()
        .await;
    assert_eq!(chunks.len(), 5);
    for (i, chunk) in chunks.iter().enumerate() {
        let chunk = chunk.as_ref().unwrap();
        assert_eq!(output(&chunk.data)["i"], i);
        assert_eq!(chunk.is_final, i == 4);
    }

    let mut failed = infer.stream_predict("nope", b"{}".to_vec(), HashMap::new());
    let err = failed.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    assert!(failed.next().await.is_none());

    server.stop().await;
    support::assert_no_zombies().await;
}
