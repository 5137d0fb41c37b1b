use std::sync::Arc;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use tandem::guard::{BreakerConfig, ManualClock, Policy};
use tandem::metrics::{MetricsLayer, Registry};
use tandem::{Error, Payload, Request, Response, Transport};
use tower::{service_fn, Layer, Service, ServiceExt};

/// A scripted inner service: `ok` answers, `bad` is a BadRequest, `down` Unavailable,
/// `hang` never answers.
type Reply = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Error>> + Send>>;

fn stub() -> impl Service<Request, Response = Response, Error = Error, Future = Reply> + Clone {
    service_fn(|req: Request| -> Reply {
        Box::pin(async move {
            match req.method() {
                "ok" => Ok(Response::new(Payload::raw("ok"))),
                "bad" => Err(Error::bad_request(Transport::Pool, "bad", "unknown method")),
                "hang" => std::future::pending().await,
                _ => Err(Error::unavailable(Transport::Pool, "down", "worker exited")),
            }
        })
    })
}

fn req(method: &str) -> Request {
    Request::new(method, Payload::raw(""))
}

pub fn scrape(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parsable exposition")
}

/// The value of the sample `name` whose labels include all of `labels`.
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test]
async fn call_metrics_are_exact_after_a_known_sequence() {
    let registry = Registry::new();
    let mut svc = MetricsLayer::new(&registry, Transport::Pool).layer(stub());
    for method in ["ok", "ok", "ok", "bad", "down", "down"] {
        let _ = svc.ready().await.unwrap().call(req(method)).await;
    }
    let s = scrape(&registry.encode());
    let total = |method, status| {
        value(
            &s,
            "python_call_total",
            &[
                ("method", method),
                ("status", status),
                ("transport", "pool"),
            ],
        )
    };
    assert_eq!(total("ok", "ok"), Some(3.0));
    assert_eq!(total("bad", "bad_request"), Some(1.0));
    assert_eq!(total("down", "unavailable"), Some(2.0));
    assert_eq!(total("ok", "unavailable"), None);

    let hist = s
        .samples
        .iter()
        .find(|x| {
            x.metric == "python_call_duration_seconds" && x.labels.get("method") == Some("ok")
        })
        .expect("histogram for ok");
    let Value::Histogram(buckets) = &hist.value else {
        panic!("not a histogram: {:?}", hist.value)
    };
    let bounds: Vec<f64> = buckets.iter().map(|b| b.less_than).collect();
    let mut want = tandem::metrics::CALL_BUCKETS.to_vec();
    want.push(f64::INFINITY);
    assert_eq!(bounds, want);
    assert_eq!(buckets.last().unwrap().count, 3.0);
    assert_eq!(
        value(
            &s,
            "python_call_duration_seconds_count",
            &[("method", "down")]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn guard_metrics_follow_the_breaker_and_the_bulkhead() {
    let clock = ManualClock::new();
    let registry = Registry::new();
    let policy = Policy::new("risk", Transport::Grpc)
        .max_concurrent(1)
        .breaker(
            BreakerConfig::new("risk")
                .clock(clock.clock())
                .request_volume_threshold(4),
        )
        .fallback(|_, _| Some(Response::new(Payload::raw("degraded"))))
        .observer(Arc::new(registry.clone()));
    let mut svc = policy.layer().layer(stub());

    let _hung = svc.ready().await.unwrap().call(req("hang"));
    // Bulkhead full: 2 rejections; then 2 failures: 4 of 4 requests failed -> open.
    for method in ["ok", "ok", "down", "down"] {
        svc.ready().await.unwrap().call(req(method)).await.unwrap();
    }
    // Open: 3 rejections, each answered by the fallback.
    for _ in 0..3 {
        svc.ready().await.unwrap().call(req("ok")).await.unwrap();
    }
    let s = scrape(&registry.encode());
    let v = |name, labels: &[(&str, &str)]| value(&s, name, labels);
    assert_eq!(v("tandem_breaker_state", &[("name", "risk")]), Some(1.0));
    assert_eq!(
        v(
            "tandem_breaker_transitions_total",
            &[("name", "risk"), ("from", "closed"), ("to", "open")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("tandem_breaker_rejected_total", &[("name", "risk")]),
        Some(3.0)
    );
    assert_eq!(
        v("tandem_bulkhead_rejected_total", &[("name", "risk")]),
        Some(4.0)
    );
    assert_eq!(
        v("tandem_bulkhead_in_flight", &[("name", "risk")]),
        Some(1.0)
    );
    assert_eq!(
        v(
            "tandem_fallbacks_total",
            &[("name", "risk"), ("kind", "overloaded")]
        ),
        Some(4.0)
    );
    assert_eq!(
        v(
            "tandem_fallbacks_total",
            &[("name", "risk"), ("kind", "breaker_open")]
        ),
        Some(3.0)
    );
    assert_eq!(
        v(
            "python_call_total",
            &[
                ("method", "ok"),
                ("status", "breaker_open"),
                ("transport", "grpc")
            ]
        ),
        Some(3.0)
    );

    // After the sleep window a successful trial closes it again.
    clock.advance(Duration::from_secs(5));
    drop(_hung);
    svc.ready().await.unwrap().call(req("ok")).await.unwrap();
    let s = scrape(&registry.encode());
    assert_eq!(
        value(&s, "tandem_breaker_state", &[("name", "risk")]),
        Some(0.0)
    );
    for (from, to) in [("open", "half_open"), ("half_open", "closed")] {
        assert_eq!(
            value(
                &s,
                "tandem_breaker_transitions_total",
                &[("name", "risk"), ("from", from), ("to", to)]
            ),
            Some(1.0),
            "{from} -> {to}"
        );
    }
    assert_eq!(
        value(&s, "tandem_bulkhead_in_flight", &[("name", "risk")]),
        Some(0.0)
    );
}

#[tokio::test]
async fn the_method_label_is_capped() {
    let registry = Registry::with_method_limit(2);
    let svc =
        MetricsLayer::new(&registry, Transport::Queue).layer(service_fn(|_r: Request| async {
            Ok::<_, Error>(Response::default())
        }));
    for method in ["a", "b", "c", "d", "a"] {
        svc.clone().oneshot(req(method)).await.unwrap();
    }
    let s = scrape(&registry.encode());
    let total = |m| value(&s, "python_call_total", &[("method", m), ("status", "ok")]);
    assert_eq!(total("a"), Some(2.0));
    assert_eq!(total("b"), Some(1.0));
    assert_eq!(total("other"), Some(2.0));
    assert_eq!(total("c"), None);
}

#[test]
fn transport_handles_set_their_series() {
    let registry = Registry::new();
    let pool = registry.pool("risk");
    pool.set_busy(3);
    pool.set_idle(1);
    pool.worker_restarted();
    pool.worker_restarted();
    let plugin = registry.plugin("fx");
    plugin.restarted();
    plugin.reloaded();
    let queue = registry.queue("reports", "workers");
    queue.set_lag(12);
    queue.set_pending(4);
    queue.set_dead_letters(1);
    let grpc = registry.grpc("inference:50051");
    grpc.observe_batch(8);
    grpc.observe_batch(3);
    grpc.observe_queue_time(Duration::from_millis(2));

    let s = scrape(&registry.encode());
    let v = |name, labels: &[(&str, &str)]| value(&s, name, labels);
    assert_eq!(
        v(
            "tandem_pool_workers",
            &[("pool", "risk"), ("state", "busy")]
        ),
        Some(3.0)
    );
    assert_eq!(
        v(
            "tandem_pool_workers",
            &[("pool", "risk"), ("state", "idle")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("tandem_pool_worker_restarts_total", &[("pool", "risk")]),
        Some(2.0)
    );
    assert_eq!(
        v("tandem_plugin_restarts_total", &[("plugin", "fx")]),
        Some(1.0)
    );
    assert_eq!(
        v("tandem_plugin_reloads_total", &[("plugin", "fx")]),
        Some(1.0)
    );
    let q = [("stream", "reports"), ("group", "workers")];
    assert_eq!(v("tandem_queue_lag", &q), Some(12.0));
    assert_eq!(v("tandem_queue_pending", &q), Some(4.0));
    assert_eq!(v("tandem_queue_dead_letters", &q), Some(1.0));
    let t = [("target", "inference:50051")];
    assert_eq!(v("tandem_grpc_batch_size_sum", &t), Some(11.0));
    assert_eq!(v("tandem_grpc_batch_size_count", &t), Some(2.0));
    assert_eq!(v("tandem_grpc_queue_seconds_count", &t), Some(1.0));
}
