//! Publishes N tasks to a Redis stream with [`tandem::queue::Producer::publish_batch`], the
//! way a Rust core does, and prints what it cost.
//!
//! It exists so `bench/queue_bench.py` feeds every consumer with the product's own producer:
//! a redis-py producer spends about 18 µs CPU per task on the two cores the consumers need,
//! this one a few.
//!
//! ```sh
//! cargo build --release -p tandem --all-features --example queue_load
//! $CARGO_TARGET_DIR/release/examples/queue_load --url redis://127.0.0.1:6379/0 --stream bench \
//!     --group g --count 20000 [--batch 1000] [--method noop] [--payload '{}']
//! ```
//!
//! Prints one JSON object: `published`, `seconds` (wall time of the publishing) and `cpu_s`
//! (this process's user + system CPU seconds).
#![allow(clippy::print_stdout, missing_docs)]

use std::time::Instant;

use tandem::queue::Producer;
use tandem::{Payload, Request};

mod support;

use support::BoxError;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args = support::options()?;
    let get = |name: &str| {
        args.get(name)
            .cloned()
            .ok_or_else(|| format!("missing required option --{name}"))
    };
    let (url, stream, group) = (get("url")?, get("stream")?, get("group")?);
    let count: usize = get("count")?.parse()?;
    let batch: usize = args.get("batch").map_or(Ok(1000), |v| v.parse())?;
    let method = args.get("method").map_or("noop", String::as_str).to_owned();
    let payload = args.get("payload").map_or("{}", String::as_str).to_owned();

    let producer = Producer::builder(url, stream).group(group).build().await?;
    let body = Payload::new(tandem::Codec::Json, payload.into_bytes());
    let started = Instant::now();
    let mut published = 0;
    while published < count {
        let n = batch.min(count - published);
        let requests = (0..n)
            .map(|_| Request::new(method.clone(), body.clone()))
            .collect();
        published += producer.publish_batch(requests).await?.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"published\": {published}, \"seconds\": {seconds:.6}, \"cpu_s\": {:.3}}}",
        support::cpu_seconds()
    );
    Ok(())
}
