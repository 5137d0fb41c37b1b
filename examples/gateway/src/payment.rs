//! `POST /v1/payments`: validate, honour the idempotency key, score, persist, queue the webhook.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::db::now_ms;
use crate::AppState;

/// A payment as the client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPayment {
    /// Amount in minor units (> 0).
    pub(crate) amount_cents: i64,
    /// ISO 4217 code, three upper-case letters.
    pub(crate) currency: String,
    /// The merchant.
    pub(crate) merchant_id: String,
    /// Merchant category for the risk model.
    #[serde(default = "default_category")]
    pub(crate) merchant_category: String,
    /// Hash of the card (never the number); accepted and validated, not yet scored.
    #[allow(dead_code)]
    #[serde(default)]
    pub(crate) card_hash: Option<String>,
    /// Country that issued the card.
    #[serde(default)]
    pub(crate) card_country: Option<String>,
    /// Country of the client's IP.
    #[serde(default)]
    pub(crate) ip_country: Option<String>,
    /// Whether the card was present.
    #[serde(default)]
    pub(crate) card_present: bool,
}

fn default_category() -> String {
    "grocery".into()
}

impl NewPayment {
    /// Card country differs from IP country.
    pub(crate) fn country_mismatch(&self) -> bool {
        matches!((&self.card_country, &self.ip_country), (Some(a), Some(b)) if a != b)
    }

    fn validate(&self) -> Result<(), String> {
        if self.amount_cents <= 0 || self.amount_cents > 100_000_000 {
            return Err(format!(
                "amount_cents must be between 1 and 100000000, got {}",
                self.amount_cents
            ));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "currency must be an ISO 4217 code such as \"EUR\", got {:?}",
                self.currency
            ));
        }
        if self.merchant_id.is_empty() || self.merchant_id.len() > 64 {
            return Err("merchant_id must be 1 to 64 characters".into());
        }
        for (name, c) in [
            ("card_country", &self.card_country),
            ("ip_country", &self.ip_country),
        ] {
            if let Some(c) = c {
                if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(format!(
                        "{name} must be an ISO 3166 alpha-2 code such as \"FR\", got {c:?}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A JSON error response.
pub(crate) fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"kind": kind, "message": message.into()}})),
    )
        .into_response()
}

enum Stored {
    Created(Value),
    Replayed(Value),
    Conflict,
}

/// The handler.
pub(crate) async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let p: NewPayment = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("payment body: {e}"),
            )
        }
    };
    if let Err(e) = p.validate() {
        return error(StatusCode::BAD_REQUEST, "invalid_payment", e);
    }
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 128 => Some(k.to_owned()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 128 visible ASCII characters",
            )
        }
    };
    let hash = hex::encode(Sha256::digest(&body));
    if let Some(k) = key.clone() {
        let h = hash.clone();
        match st.db.read(move |c| lookup(c, &k, &h)).await {
            Ok(Some(s)) => return stored_response(s),
            Ok(None) => {}
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "storage", e),
        }
    }
    let risk_started = std::time::Instant::now();
    let verdict = st.risk.score(&p).await;
    let risk_took = risk_started.elapsed();
    let id = format!("pay_{:016x}", st.next_id());
    let record = json!({
        "id": id,
        "status": if verdict.decision == "decline" { "declined" } else { "accepted" },
        "amount_cents": p.amount_cents,
        "currency": p.currency,
        "merchant_id": p.merchant_id,
        "risk": verdict.risk,
        "decision": verdict.decision,
        "risk_source": verdict.risk_source,
        "fallback_reason": verdict.fallback_reason,
    });
    let webhook = !st.config.webhook_url.is_empty();
    let rec = record.clone();
    let store_started = std::time::Instant::now();
    let result = st
        .db
        .run(move |c| insert(c, &rec, &p, key.as_deref(), &hash, webhook))
        .await;
    let store_took = store_started.elapsed();
    st.metrics
        .observe_payment(started.elapsed(), verdict.risk_source);
    match result {
        Ok(Stored::Created(v)) => {
            if webhook {
                st.webhooks.wake();
            }
            (
                StatusCode::CREATED,
                [("server-timing", server_timing(risk_took, store_took))],
                Json(v),
            )
                .into_response()
        }
        Ok(s) => stored_response(s),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "storage", e),
    }
}

/// The `Server-Timing` header of a new payment: where its core-path time went (the risk step,
/// model or fallback, and the SQLite commit), in milliseconds.
fn server_timing(risk: std::time::Duration, store: std::time::Duration) -> String {
    format!(
        "risk;dur={:.3}, store;dur={:.3}",
        risk.as_secs_f64() * 1000.0,
        store.as_secs_f64() * 1000.0
    )
}

fn stored_response(s: Stored) -> Response {
    match s {
        Stored::Created(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Stored::Replayed(v) => (StatusCode::OK, [("idempotent-replayed", "true")], Json(v)).into_response(),
        Stored::Conflict => error(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            "this Idempotency-Key was already used with a different body; use a new key for a new payment",
        ),
    }
}

fn lookup(c: &rusqlite::Connection, key: &str, hash: &str) -> rusqlite::Result<Option<Stored>> {
    let row: Option<(String, String)> = c
        .query_row(
            "SELECT body_hash, response FROM payments WHERE idempotency_key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map(|(h, resp)| {
        if h == hash {
            Stored::Replayed(serde_json::from_str(&resp).unwrap_or(Value::Null))
        } else {
            Stored::Conflict
        }
    }))
}

fn insert(
    c: &mut rusqlite::Connection,
    rec: &Value,
    p: &NewPayment,
    key: Option<&str>,
    hash: &str,
    webhook: bool,
) -> rusqlite::Result<Stored> {
    // `Db::run` makes this atomic (a savepoint inside the writer's group transaction).
    // A concurrent request with the same key may have won the race since the lookup.
    if let Some(k) = key {
        if let Some(s) = lookup(c, k, hash)? {
            return Ok(s);
        }
    }
    let id = rec["id"].as_str().unwrap_or_default();
    c.execute(
        "INSERT INTO payments (id, idempotency_key, body_hash, merchant_id, amount_cents, currency, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, key, hash, p.merchant_id, p.amount_cents, p.currency, rec.to_string(), now_ms()],
    )?;
    if webhook {
        let event = json!({"type": "payment.created", "payment": rec});
        c.execute(
            "INSERT INTO outbox (payment_id, body) VALUES (?1, ?2)",
            params![id, event.to_string()],
        )?;
    }
    Ok(Stored::Created(rec.clone()))
}
