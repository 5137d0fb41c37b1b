//! Risk scoring: the `risk` model over gRPC with a short deadline and a breaker, and a
//! rules-based fallback in Rust so that a payment never waits on Python.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tandem::guard::{BreakerConfig, BreakerHandle, Policy};
use tandem::{Error, Payload, Request, Response, Transport};
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

use crate::payment::NewPayment;

/// A risk verdict and where it came from.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verdict {
    /// Fraud probability in 0..1.
    pub(crate) risk: f64,
    /// approve / review / decline.
    pub(crate) decision: String,
    /// `model` or `fallback`.
    pub(crate) risk_source: &'static str,
    /// Why the fallback was used, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fallback_reason: Option<String>,
}

type Svc = BoxCloneSyncService<Request, Response, Error>;

/// The guarded risk client.
#[derive(Clone)]
pub(crate) struct Risk {
    svc: Option<Svc>,
    breaker: Option<BreakerHandle>,
    client: Option<tandem::grpc::Client>,
}

impl std::fmt::Debug for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Risk")
            .field("state", &self.state())
            .finish()
    }
}

impl Risk {
    /// Builds the client for `uri` (empty: always the fallback).
    pub(crate) fn new(
        uri: &str,
        deadline: Duration,
        registry: &tandem::metrics::Registry,
    ) -> Result<Risk, Error> {
        if uri.is_empty() {
            return Ok(Risk {
                svc: None,
                breaker: None,
                client: None,
            });
        }
        let client = tandem::grpc::Client::builder()
            .endpoint(uri)
            .default_timeout(deadline)
            .build()?;
        let infer = client.inference().with_timeout(deadline);
        let predict = tower::service_fn(move |req: Request| {
            let infer = infer.clone();
            async move {
                let out = infer
                    .predict("risk", req.payload().bytes().to_vec(), HashMap::new())
                    .await?;
                Ok::<_, Error>(Response::new(Payload::new(
                    tandem::Codec::Json,
                    out.output_data,
                )))
            }
        });
        let policy = Policy::new("risk", Transport::Grpc)
            .timeout(deadline)
            .no_retry()
            .breaker(
                BreakerConfig::new("risk")
                    .request_volume_threshold(10)
                    .sleep_window(Duration::from_secs(2)),
            )
            .observer(Arc::new(registry.clone()));
        let layer = policy.layer();
        let breaker = layer.breaker();
        let svc = BoxCloneSyncService::new(layer.layer(predict));
        Ok(Risk {
            svc: Some(svc),
            breaker,
            client: Some(client),
        })
    }

    /// The breaker state and connection health, for `/readyz`.
    pub(crate) fn state(&self) -> Value {
        json!({
            "configured": self.svc.is_some(),
            "breaker": self.breaker.as_ref().map(|b| format!("{:?}", b.state())),
            "health": self.client.as_ref().map(|c| c.health_summary()),
        })
    }

    /// Scores `p`: the model within the deadline, else the rules.
    pub(crate) async fn score(&self, p: &NewPayment) -> Verdict {
        let Some(svc) = self.svc.clone() else {
            return rules(p, "inference not configured".into());
        };
        let input = json!({
            "amount": p.amount_cents as f64 / 100.0,
            "merchant_category": p.merchant_category,
            "country_mismatch": p.country_mismatch(),
            "card_present": p.card_present,
        });
        let req = match Payload::json(&input) {
            Ok(payload) => Request::new("risk", payload),
            Err(e) => return rules(p, format!("encode: {e}")),
        };
        match svc.oneshot(req).await {
            Ok(resp) => match resp.decode::<Value>() {
                Ok(v) => match (v["risk"].as_f64(), v["decision"].as_str()) {
                    (Some(risk), Some(decision)) => Verdict {
                        risk,
                        decision: decision.to_owned(),
                        risk_source: "model",
                        fallback_reason: None,
                    },
                    _ => rules(p, format!("unexpected model output {v}")),
                },
                Err(e) => rules(p, format!("undecodable model output: {e}")),
            },
            Err(e) => rules(p, e.to_string()),
        }
    }
}

/// The degraded answer: amount and country thresholds.
pub(crate) fn rules(p: &NewPayment, reason: String) -> Verdict {
    let mut risk: f64 = 0.02;
    if p.amount_cents >= 500_000 {
        risk += 0.5;
    } else if p.amount_cents >= 100_000 {
        risk += 0.25;
    }
    if p.country_mismatch() {
        risk += 0.3;
    }
    if matches!(p.ip_country.as_deref(), Some("KP" | "IR")) {
        risk = 1.0;
    }
    let risk = risk.min(1.0);
    let decision = if risk >= 0.8 {
        "decline"
    } else if risk >= 0.4 {
        "review"
    } else {
        "approve"
    };
    Verdict {
        risk,
        decision: decision.into(),
        risk_source: "fallback",
        fallback_reason: Some(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(amount_cents: i64, card: &str, ip: &str) -> NewPayment {
        serde_json::from_value(json!({
            "amount_cents": amount_cents, "currency": "EUR", "merchant_id": "m",
            "card_country": card, "ip_country": ip,
        }))
        .expect("payment")
    }

    #[test]
    fn rules_approve_small_domestic_payments() {
        let v = rules(&payment(1_000, "FR", "FR"), "down".into());
        assert_eq!(
            (v.decision.as_str(), v.risk_source),
            ("approve", "fallback")
        );
    }

    #[test]
    fn rules_review_large_cross_border_and_decline_sanctioned() {
        assert_eq!(
            rules(&payment(200_000, "FR", "US"), String::new()).decision,
            "review"
        );
        assert_eq!(
            rules(&payment(600_000, "FR", "US"), String::new()).decision,
            "decline"
        );
        assert_eq!(
            rules(&payment(100, "FR", "KP"), String::new()).decision,
            "decline"
        );
    }
}
