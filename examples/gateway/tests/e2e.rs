//! End to end, with real processes: Redis, the inference service (`tandem serve`), the report
//! consumer (`tandem consume`), a webhook receiver, and the gateway (which starts the adapter
//! plugin itself).

#[path = "../src/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{free_port, http, json, wait_for, Http, Proc};
use serde_json::{json as j, Value};

const SECRET: &str = "e2e-secret";

fn python() -> PathBuf {
    match std::env::var_os("TANDEM_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => harness::repo_root().join(".venv/bin/python"),
    }
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; count it as gone only once reaped.
    Path::new(&format!("/proc/{pid}")).exists()
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

async fn pay(client: &Http, url: &str, key: &str, body: Value) -> (u16, Value) {
    json(
        client,
        "POST",
        &format!("{url}/v1/payments"),
        &[
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        body.to_string().into_bytes(),
    )
    .await
    .expect("payment request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_end_to_end() {
    let dir = std::env::temp_dir().join(format!("gateway-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    let py = python();
    let services = harness::repo_root().join("examples/gateway/services");

    // Redis (private) and the report consumer.
    let redis = tandem_testkit::RedisServer::start(dir.join("redis"));
    let redis_url = redis.url();
    let _consumer = Proc::start(
        "consumer",
        &py,
        &[
            "-m",
            "tandem",
            "consume",
            "reports:app",
            "--redis",
            &redis_url,
            "--stream",
            "reports",
            "--group",
            "reports",
            "--processes",
            "1",
        ],
        &services,
        &[],
        &dir.join("consumer.log"),
    )
    .expect("consumer");

    // Inference and the webhook receiver.
    let iport = free_port();
    let mut inference =
        harness::start_inference(&py, iport, 0, &dir.join("inference.log")).expect("inference");
    let rport = free_port();
    let received = dir.join("received.jsonl");
    let _receiver = Proc::start(
        "receiver",
        &py,
        &[
            "receiver.py",
            "--port",
            &rport.to_string(),
            "--secret",
            SECRET,
            "--out",
            &received.to_string_lossy(),
        ],
        &services,
        &[],
        &dir.join("receiver.log"),
    )
    .expect("receiver");
    assert!(
        harness::inference_ready(iport, Duration::from_secs(90)).await,
        "inference not ready; see {}",
        dir.display()
    );

    // The gateway.
    let gport = free_port();
    let mut gateway = Proc::start(
        "gateway",
        Path::new(env!("CARGO_BIN_EXE_gateway")),
        &[
            "--listen",
            &format!("127.0.0.1:{gport}"),
            "--db",
            &dir.join("gateway.sqlite3").to_string_lossy(),
            "--inference",
            &format!("grpc://127.0.0.1:{iport}"),
            "--redis",
            &redis_url,
            "--reports-dir",
            &dir.join("reports").to_string_lossy(),
            "--webhook-url",
            &format!("http://127.0.0.1:{rport}/hook"),
            "--webhook-secret",
            SECRET,
            "--python",
            &py.to_string_lossy(),
        ],
        &dir,
        &[],
        &dir.join("gateway.log"),
    )
    .expect("gateway");
    let url = format!("http://127.0.0.1:{gport}");
    let client = http();
    let up = wait_for(Duration::from_secs(30), || {
        let (c, u) = (client.clone(), url.clone());
        async move {
            matches!(
                json(&c, "GET", &format!("{u}/readyz"), &[], vec![]).await,
                Ok((200, _))
            )
        }
    })
    .await;
    assert!(up, "gateway not ready; see {}", dir.display());

    // Bad input: a clear 400, and the idempotency conflict.
    let (s, v) = pay(
        &client,
        &url,
        "bad-1",
        j!({"amount_cents": 0, "currency": "EUR", "merchant_id": "m1"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("amount_cents"),
        "{v}"
    );
    let (s, v) = json(
        &client,
        "POST",
        &format!("{url}/v1/payments"),
        &[],
        b"{not json".to_vec(),
    )
    .await
    .expect("post");
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["kind"], "invalid_json", "{v}");

    // A payment scored by the model (the first calls may fall back while connections warm up).
    let mut model_payment = Value::Null;
    for i in 0..200 {
        let (s, v) = pay(&client, &url, &format!("model-{i}"), j!({"amount_cents": 4200, "currency": "EUR", "merchant_id": "m1", "card_country": "FR", "ip_country": "FR"})).await;
        assert_eq!(s, 201, "{v}");
        if v["risk_source"] == "model" {
            model_payment = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        model_payment["risk_source"],
        "model",
        "no payment scored by the model; see {}",
        dir.display()
    );
    let id = model_payment["id"].as_str().expect("id").to_owned();
    let key = "idem-1";
    let body = j!({"amount_cents": 999, "currency": "USD", "merchant_id": "m2"});
    let (s1, first) = pay(&client, &url, key, body.clone()).await;
    let (s2, again) = pay(&client, &url, key, body).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["id"], again["id"]);
    let (s, v) = pay(
        &client,
        &url,
        key,
        j!({"amount_cents": 1000, "currency": "USD", "merchant_id": "m2"}),
    )
    .await;
    assert_eq!(s, 409, "{v}");

    // The webhook reaches the receiver with a valid signature.
    let delivered = wait_for(Duration::from_secs(60), || {
        let (c, u, id) = (client.clone(), url.clone(), id.clone());
        async move {
            matches!(json(&c, "GET", &format!("{u}/v1/payments/{id}/webhook"), &[], vec![]).await,
                Ok((200, v)) if v["status"] == "delivered")
        }
    })
    .await;
    assert!(
        delivered,
        "webhook for {id} not delivered; see {}",
        dir.display()
    );
    let lines = std::fs::read_to_string(&received).expect("receiver output");
    let ours: Vec<Value> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"]["payment"]["id"] == id.as_str())
        .collect();
    assert!(
        !ours.is_empty() && ours.iter().all(|v| v["valid"] == true),
        "{lines}"
    );

    // A report over the queue: CSV and PNG.
    let (s, v) = json(&client, "POST", &format!("{url}/v1/reports"), &[], vec![])
        .await
        .expect("report");
    assert_eq!(s, 202, "{v}");
    let rid = v["id"].as_str().expect("report id").to_owned();
    let report = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    let done = wait_for(Duration::from_secs(60), || {
        let (c, u, rid, report) = (client.clone(), url.clone(), rid.clone(), report.clone());
        async move {
            if let Ok((200, v)) =
                json(&c, "GET", &format!("{u}/v1/reports/{rid}"), &[], vec![]).await
            {
                if v["state"] != "queued" {
                    *report.lock().expect("report") = v;
                    return true;
                }
            }
            false
        }
    })
    .await;
    assert!(done, "report not done; see {}", dir.display());
    let report = report.lock().expect("report").clone();
    assert_eq!(report["state"], "done", "{report}");
    let csv =
        std::fs::read_to_string(report["result"]["csv"].as_str().expect("csv path")).expect("csv");
    assert!(
        csv.starts_with("merchant_id,currency,payments,amount_cents"),
        "{csv}"
    );
    let png = std::fs::read(report["result"]["png"].as_str().expect("png path")).expect("png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    // Reconciliation through the one-shot script.
    let other = first["id"].as_str().expect("id");
    let settlement = format!("payment_id,amount_cents\n{id},4200\n{other},1\npay_unknown,5\n");
    let (s, v) = json(
        &client,
        "POST",
        &format!("{url}/v1/reconcile"),
        &[],
        settlement.into_bytes(),
    )
    .await
    .expect("reconcile");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matched"], j!([id]), "{v}");
    assert_eq!(v["mismatched"][0]["id"], other, "{v}");
    assert_eq!(v["missing"], j!(["pay_unknown"]), "{v}");
    let (s, v) = json(
        &client,
        "POST",
        &format!("{url}/v1/reconcile"),
        &[],
        b"pay_x,notanumber\n".to_vec(),
    )
    .await
    .expect("reconcile");
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("integer"),
        "{v}"
    );

    // Python down: payments are still accepted, scored by the Rust rules.
    assert!(
        inference.stop("-TERM", Duration::from_secs(10)),
        "inference did not stop on SIGTERM"
    );
    for i in 0..20 {
        let (s, v) = pay(
            &client,
            &url,
            &format!("down-{i}"),
            j!({"amount_cents": 1500, "currency": "EUR", "merchant_id": "m3"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["risk_source"], "fallback", "{v}");
    }
    let (_, ready) = json(&client, "GET", &format!("{url}/readyz"), &[], vec![])
        .await
        .expect("readyz");
    assert_eq!(ready["ready"], true, "{ready}");
    let (_, metrics) = harness::send(&client, "GET", &format!("{url}/metrics"), &[], vec![])
        .await
        .expect("metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    for transport in ["grpc", "plugin", "queue", "script"] {
        assert!(
            metrics.contains(&format!("transport=\"{transport}\"")),
            "no python_call metrics for {transport}:\n{metrics}"
        );
    }

    // Clean shutdown: the gateway exits on SIGTERM and takes its plugin with it.
    let kids = children(gateway.pid());
    assert!(
        !kids.is_empty(),
        "the adapter plugin should be a child of the gateway"
    );
    assert!(
        gateway.stop("-TERM", Duration::from_secs(15)),
        "gateway did not exit on SIGTERM; see {}",
        dir.display()
    );
    let gone = wait_for(Duration::from_secs(10), || {
        let kids = kids.clone();
        async move { kids.iter().all(|&k| !alive(k)) }
    })
    .await;
    assert!(gone, "children {kids:?} of the gateway outlived it");
    // Stop the peers (Redis keeps its data in the directory) before removing it.
    drop((_receiver, _consumer, inference, gateway, redis));
    let _ = std::fs::remove_dir_all(&dir);
}
