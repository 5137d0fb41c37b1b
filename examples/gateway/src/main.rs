//! The reference core system: a payment gateway in Rust that hands its non-core work to Python
//! through tandem (risk scoring over grpc, webhooks through a go-plugin adapter, reports over
//! the queue, reconciliation as a one-shot script).
//!
//! ```sh
//! cargo run -p gateway -- --listen 127.0.0.1:8080 --inference grpc://127.0.0.1:50051 \
//!     --redis redis://127.0.0.1:6379 --webhook-url http://127.0.0.1:9000/hook
//! ```
//! `scripts/demo.sh` starts everything; `examples/gateway/README.md` explains each part.

mod config;
mod db;
mod jobs;
mod payment;
mod risk;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus_families::GatewayMetrics;
use serde_json::json;
use tokio::sync::watch;

mod prometheus_families {
    //! The gateway's own metric: core-path latency by risk source.
    use std::time::Duration;

    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::Histogram;

    type Labels = Vec<(String, String)>;

    /// Core-path latency of payments, labelled by `risk_source`.
    #[derive(Debug, Clone)]
    pub(crate) struct GatewayMetrics {
        latency: Family<Labels, Histogram, fn() -> Histogram>,
    }

    impl GatewayMetrics {
        /// Registers `gateway_payment_duration_seconds` in `registry`.
        pub(crate) fn new(registry: &tandem::metrics::Registry) -> Self {
            let latency: Family<Labels, Histogram, fn() -> Histogram> =
                Family::new_with_constructor(|| {
                    Histogram::new(tandem::metrics::CALL_BUCKETS.iter().copied())
                });
            registry.register(
                "gateway_payment_duration_seconds",
                "Core-path latency of POST /v1/payments",
                latency.clone(),
            );
            GatewayMetrics { latency }
        }

        /// Records one payment.
        pub(crate) fn observe_payment(&self, took: Duration, source: &str) {
            self.latency
                .get_or_create(&vec![("risk_source".to_owned(), source.to_owned())])
                .observe(took.as_secs_f64());
        }
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    config: Arc<config::Config>,
    db: db::Db,
    risk: risk::Risk,
    webhooks: webhook::Webhooks,
    producer: Option<tandem::queue::Producer>,
    reports: jobs::Reports,
    registry: tandem::metrics::Registry,
    metrics: GatewayMetrics,
    ids: Arc<AtomicU64>,
}

impl AppState {
    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = match config::Config::from_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gateway: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(cfg: config::Config) -> Result<(), String> {
    let (db, db_thread) = db::Db::open(&cfg.db)?;
    let registry = tandem::metrics::Registry::new();
    let risk = risk::Risk::new(&cfg.inference, cfg.risk_deadline, &registry)
        .map_err(|e| format!("inference client: {e}"))?;
    let producer = if cfg.redis.is_empty() {
        None
    } else {
        match jobs::producer(&cfg.redis).await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("reports disabled: {e}");
                None
            }
        }
    };
    let start = db::now_ms() as u64;
    let state = AppState {
        config: Arc::new(cfg.clone()),
        db: db.clone(),
        risk,
        webhooks: webhook::Webhooks::default(),
        producer,
        reports: Default::default(),
        registry: registry.clone(),
        metrics: GatewayMetrics::new(&registry),
        ids: Arc::new(AtomicU64::new(start << 16)),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let hooks = tokio::spawn(webhook::run(
        cfg.clone(),
        db.clone(),
        state.webhooks.clone(),
        registry.clone(),
        stop_rx,
    ));
    let app = Router::new()
        .route("/v1/payments", post(payment::create))
        .route("/v1/payments/{id}/webhook", get(webhook_status))
        .route("/v1/reports", post(jobs::create_report))
        .route("/v1/reports/{id}", get(jobs::get_report))
        .route("/v1/reconcile", post(jobs::reconcile))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "gateway listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server: {e}"))?;
    tracing::info!("stopping: in-flight requests done; stopping the webhook worker and plugin");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), hooks).await;
    drop(state);
    drop(db);
    tokio::task::spawn_blocking(move || db_thread.join())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

async fn readyz(State(st): State<AppState>) -> Response {
    let db_ok = st
        .db
        .run(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
        .await
        .is_ok();
    let body = json!({
        "ready": db_ok,
        "db": db_ok,
        "risk": st.risk.state(),
        "reports": st.producer.is_some(),
        "webhooks": webhook::stats(&st.db).await,
    });
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.registry.encode(),
    )
        .into_response()
}

async fn webhook_status(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match webhook::status_of(&st.db, id.clone()).await {
        Some(v) => Json(v).into_response(),
        None => payment::error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no webhook for payment {id}"),
        ),
    }
}
