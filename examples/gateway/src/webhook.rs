//! Merchant webhooks: a background task drains the SQLite outbox through the adapter plugin
//! (`services/adapter.py`, go-plugin), with retries and backoff, never on the core path.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;
use serde_json::{json, Value};
use tandem::metrics::{MetricsLayer, Registry};
use tandem::plugin::Host;
use tandem::{Payload, Request, Transport};
use tokio::sync::{watch, Notify};
use tower::{Layer, ServiceExt};

use crate::config::Config;
use crate::db::{now_ms, Db};

const MAX_ATTEMPTS: i64 = 8;
const BATCH: i64 = 32;

/// Wakes the delivery task.
#[derive(Debug, Clone, Default)]
pub(crate) struct Webhooks {
    notify: Arc<Notify>,
}

impl Webhooks {
    /// A new payment is in the outbox.
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }
}

/// Runs until `stop` turns true, then kills the plugin.
pub(crate) async fn run(
    cfg: Config,
    db: Db,
    hooks: Webhooks,
    registry: Registry,
    mut stop: watch::Receiver<bool>,
) {
    if cfg.webhook_url.is_empty() {
        return;
    }
    let mut host: Option<Host> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        if host.is_none() {
            match start(&cfg).await {
                Ok(h) => host = Some(h),
                Err(e) => {
                    tracing::warn!("webhook adapter plugin did not start: {e}; retrying in 5 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
        }
        let mut more = false;
        if let Some(h) = &host {
            more = deliver_due(h, &cfg, &db, &registry).await == BATCH as usize;
        }
        if !more {
            tokio::select! {
                _ = hooks.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => {}
            }
        }
    }
    if let Some(h) = host {
        h.kill().await;
    }
}

async fn start(cfg: &Config) -> Result<Host, tandem::Error> {
    Host::builder(&cfg.python)
        .args(["-m", "tandem", "plugin", "adapter:app"])
        .current_dir(&cfg.services_dir)
        .env("ADAPTER_WEBHOOK_SECRET", &cfg.webhook_secret)
        .name("webhook-adapter")
        .start_timeout(Duration::from_secs(20))
        .start()
        .await
}

/// Delivers the due outbox rows; returns how many it tried.
async fn deliver_due(host: &Host, cfg: &Config, db: &Db, registry: &Registry) -> usize {
    let due = db
        .run(|c| {
            let mut q = c.prepare(
                "SELECT payment_id, body, attempts FROM outbox
                 WHERE status = 'pending' AND next_at <= ?1 ORDER BY next_at LIMIT ?2",
            )?;
            let rows = q.query_map(params![now_ms(), BATCH], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .unwrap_or_default();
    let n = due.len();
    let svc = MetricsLayer::new(registry, Transport::Plugin).layer(host.clone());
    let mut calls = tokio::task::JoinSet::new();
    for (id, body, attempts) in due {
        let svc = svc.clone();
        let url = cfg.webhook_url.clone();
        calls.spawn(async move {
            let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let call = json!({
                "method": "POST",
                "endpoint": url,
                "payload": event,
                "headers": {"x-adapter-provider": "webhook", "Idempotency-Key": id},
            });
            let outcome = match Payload::json(&call) {
                Ok(p) => {
                    let req = Request::new("call", p).with_timeout(Duration::from_secs(5));
                    match svc.oneshot(req).await {
                        Ok(resp) => match resp.decode::<Value>() {
                            Ok(v) => match v["status_code"].as_i64() {
                                Some(s) if (200..300).contains(&s) => Ok(()),
                                _ => Err(format!("receiver answered {v}")),
                            },
                            Err(e) => Err(format!("bad adapter reply: {e}")),
                        },
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            (id, attempts, outcome)
        });
    }
    while let Some(Ok((id, attempts, outcome))) = calls.join_next().await {
        let _ = db
            .run(move |c| {
                match outcome {
                    Ok(()) => c.execute(
                        "UPDATE outbox SET status='delivered', attempts=?2, last_error=NULL WHERE payment_id=?1",
                        params![id, attempts + 1],
                    ),
                    Err(e) => {
                        let attempts = attempts + 1;
                        let status = if attempts >= MAX_ATTEMPTS { "failed" } else { "pending" };
                        let backoff = (200i64 << attempts.min(8)).min(30_000);
                        c.execute(
                            "UPDATE outbox SET status=?2, attempts=?3, next_at=?4, last_error=?5 WHERE payment_id=?1",
                            params![id, status, attempts, now_ms() + backoff, e],
                        )
                    }
                }
            })
            .await;
    }
    n
}

/// Outbox counts by status.
pub(crate) async fn stats(db: &Db) -> Value {
    db.read(|c| {
        let mut q = c.prepare("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = serde_json::Map::new();
        for row in rows {
            let (s, n) = row?;
            out.insert(s, n.into());
        }
        Ok(Value::Object(out))
    })
    .await
    .unwrap_or(Value::Null)
}

/// One payment's delivery status.
pub(crate) async fn status_of(db: &Db, id: String) -> Option<Value> {
    db.read(move |c| {
        use rusqlite::OptionalExtension;
        c.query_row(
            "SELECT status, attempts, last_error FROM outbox WHERE payment_id=?1",
            params![id],
            |r| {
                Ok(
                    json!({"status": r.get::<_, String>(0)?, "attempts": r.get::<_, i64>(1)?,
                          "last_error": r.get::<_, Option<String>>(2)?}),
                )
            },
        )
        .optional()
    })
    .await
    .ok()
    .flatten()
}
