//! Non-core work: reports over the queue (`services/reports.py`) and reconciliation as a
//! one-shot script (`services/reconcile.py`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tandem::metrics::MetricsLayer;
use tandem::process::Script;
use tandem::queue::Producer;
use tandem::{Payload, Request, Transport};
use tower::{Layer, ServiceExt};

use crate::payment::error;
use crate::AppState;

/// Report states by id.
pub(crate) type Reports = Arc<Mutex<HashMap<String, Value>>>;

/// Connects the report producer (stream `reports`).
pub(crate) async fn producer(url: &str) -> Result<Producer, tandem::Error> {
    Producer::builder(url, "reports")
        .group("reports")
        .wait_timeout(Duration::from_secs(120))
        .build()
        .await
}

/// `POST /v1/reports` → 202 with the report id.
pub(crate) async fn create_report(State(st): State<AppState>) -> Response {
    let Some(producer) = st.producer.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "reports_disabled",
            "no Redis configured: start the gateway with --redis URL",
        );
    };
    let rows = st
        .db
        .read(|c| {
            let mut q =
                c.prepare("SELECT id, merchant_id, currency, amount_cents FROM payments")?;
            let rows = q.query_map([], |r| {
                Ok(json!([
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?
                ]))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "storage", e),
    };
    let id = format!("rep_{:016x}", st.next_id());
    let dir = std::path::absolute(&st.config.reports_dir)
        .unwrap_or_else(|_| st.config.reports_dir.clone());
    let task = json!({"report_id": id, "out_dir": dir, "payments": rows});
    let payload = match Payload::json(&task) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "encode", e.to_string()),
    };
    st.reports
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), json!({"id": id, "state": "queued"}));
    let reports = st.reports.clone();
    let registry = st.registry.clone();
    let rid = id.clone();
    tokio::spawn(async move {
        let svc =
            MetricsLayer::new(&registry, Transport::Queue).layer(tower::service_fn(move |req| {
                let producer = producer.clone();
                async move { producer.publish_and_wait(req).await }
            }));
        let state = match svc.oneshot(Request::new("payments_report", payload)).await {
            Ok(resp) => {
                json!({"id": rid, "state": "done", "result": resp.decode::<Value>().unwrap_or(Value::Null)})
            }
            Err(e) => json!({"id": rid, "state": "failed", "error": e.to_string()}),
        };
        reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rid, state);
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "state": "queued"})),
    )
        .into_response()
}

/// `GET /v1/reports/{id}`.
pub(crate) async fn get_report(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match st
        .reports
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
    {
        Some(v) => Json(v.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no report {id}"),
        ),
    }
}

/// `POST /v1/reconcile` with a CSV body (`payment_id,amount_cents` lines).
pub(crate) async fn reconcile(State(st): State<AppState>, body: Bytes) -> Response {
    let Ok(csv) = String::from_utf8(body.to_vec()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_csv",
            "the CSV body is not UTF-8",
        );
    };
    let db = std::path::absolute(&st.config.db).unwrap_or_else(|_| st.config.db.clone());
    let script = Script::builder(&st.config.python)
        .python_script(st.config.services_dir.join("reconcile.py"))
        .timeout(Duration::from_secs(30))
        .build();
    let svc =
        MetricsLayer::new(&st.registry, Transport::Script).layer(tower::service_fn(move |req| {
            let script = script.clone();
            async move { script.call_request(req).await }
        }));
    let payload = match Payload::json(&json!({"csv": csv, "db": db})) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "encode", e.to_string()),
    };
    match svc.oneshot(Request::new("reconcile", payload)).await {
        Ok(resp) => Json(resp.decode::<Value>().unwrap_or(Value::Null)).into_response(),
        Err(tandem::Error::BadRequest { reason, .. }) => {
            error(StatusCode::BAD_REQUEST, "invalid_csv", reason)
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            "reconcile_failed",
            format!("{e}; hint: {}", e.hint()),
        ),
    }
}
