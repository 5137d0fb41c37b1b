//! Publishes one report task per month onto a Redis stream and waits for the results that
//! Python consumers (`service.py`) send back. See README.md for the commands.

use std::time::Duration;

use tandem::queue::Producer;
use tandem::{Payload, Request};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379/reports".to_owned());
    let producer = Producer::from_uri(&uri).await?;
    // Fire-and-forget: the id is all the core keeps.
    let id = producer
        .publish(Request::new("archive", Payload::json(&"2026-10")?))
        .await?;
    eprintln!("queued archive task {id}");
    // Awaited: the months run in parallel on the consumers.
    let waits: Vec<_> = (1..=6)
        .map(|month| {
            let producer = producer.clone();
            tokio::spawn(async move {
                let req = Request::new(
                    "monthly",
                    Payload::json(&serde_json::json!({"month": month}))?,
                )
                .with_timeout(Duration::from_secs(10))
                .with_idempotency_key(format!("report-2026-{month:02}"));
                let resp = producer.publish_and_wait(req).await?;
                let v: serde_json::Value = resp.decode()?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(v)
            })
        })
        .collect();
    for wait in waits {
        match wait.await? {
            Ok(v) => println!("{v}"),
            Err(e) => println!("failed: {e}"),
        }
    }
    // A bad month raises in Python: the error comes back typed, with its traceback.
    let bad = Request::new("monthly", Payload::json(&serde_json::json!({"month": 13}))?)
        .with_timeout(Duration::from_secs(10));
    if let Err(e) = producer.publish_and_wait(bad).await {
        println!("month 13: {e}");
    }
    Ok(())
}
