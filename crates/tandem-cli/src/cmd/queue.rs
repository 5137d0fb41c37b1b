//! `tandem queue stats|pending|dead|replay|purge-dead redis://HOST:PORT/STREAM`: inspect and
//! repair a Redis Streams queue through `tandem::queue::Admin`.

use serde_json::{json, Value};
use tandem::queue::{Admin, Stats};

use crate::args::{QueueAction, QueueArgs};
use crate::output::{print_line, Failure};

pub(crate) async fn run(args: QueueArgs) -> Result<(), Failure> {
    let t = &args.endpoint;
    let admin = Admin::connect(&t.url(), &t.stream)
        .await
        .map_err(|e| match e {
            tandem::Error::Unavailable { .. } | tandem::Error::Timeout { .. } => {
                Failure::SetupHint(Box::new(e), t.hint())
            }
            e => Failure::Setup(e),
        })?;
    let count = usize::try_from(args.count).unwrap_or(usize::MAX);
    let lines = match args.action {
        QueueAction::Stats => {
            let mut stats = admin.stats().await.map_err(Failure::Call)?;
            if let Some(g) = &args.group {
                stats.groups.retain(|s| &s.name == g);
                if stats.groups.is_empty() {
                    return Err(no_group(&t.stream, g));
                }
            }
            stats_output(&stats, args.json)
        }
        QueueAction::Pending => {
            let group = match &args.group {
                Some(g) => g.clone(),
                None => only_group(&admin, &t.stream).await?,
            };
            let entries = admin.pending(&group, count).await.map_err(Failure::Call)?;
            let rows = entries.iter().map(|e| {
                json!({
                    "type": "pending", "stream": t.stream, "group": group, "id": e.id,
                    "consumer": e.consumer, "idle_ms": millis(e.idle),
                    "deliveries": e.deliveries,
                })
            });
            output(
                rows.collect(),
                args.json,
                &["id", "consumer", "idle_ms", "deliveries"],
            )
        }
        QueueAction::Dead => {
            let letters = admin.dead(count).await.map_err(Failure::Call)?;
            let rows = letters.iter().map(|d| {
                json!({
                    "type": "dead", "stream": t.stream, "id": d.id, "task_id": d.task_id,
                    "method": d.method, "reason": d.reason, "error_kind": d.error.0,
                    "error_type": d.error.1, "error_message": d.error.2,
                    "attempts": d.attempts,
                })
            });
            output(
                rows.collect(),
                args.json,
                &[
                    "id",
                    "task_id",
                    "method",
                    "reason",
                    "attempts",
                    "error_type",
                    "error_message",
                ],
            )
        }
        QueueAction::Replay => {
            let n = admin.replay(count).await.map_err(Failure::Call)?;
            let row = json!({"type": "replay", "stream": t.stream, "replayed": n});
            if args.json {
                vec![json_line(&row)]
            } else {
                vec![format!("replayed {n} dead letter(s) onto {}", t.stream)]
            }
        }
        QueueAction::PurgeDead => {
            let n = admin.purge_dead().await.map_err(Failure::Call)?;
            let row = json!({"type": "purge", "stream": t.stream, "purged": n});
            if args.json {
                vec![json_line(&row)]
            } else {
                vec![format!("purged {n} dead letter(s) of {}", t.stream)]
            }
        }
    };
    for line in lines {
        print_line(&line)?;
    }
    Ok(())
}

/// One `--json` line: the object with `schema` (docs/cli-json.md) added.
fn json_line(v: &Value) -> String {
    let mut v = v.clone();
    if let Value::Object(map) = &mut v {
        map.insert("schema".to_owned(), json!(SCHEMA));
    }
    v.to_string()
}

/// Version of the `tandem queue --json` objects.
const SCHEMA: u32 = 1;

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn no_group(stream: &str, group: &str) -> Failure {
    Failure::Usage(anyhow::anyhow!(
        "no consumer group {group:?} on stream {stream:?} (run `tandem queue stats` to list the groups)"
    ))
}

/// The group to list when `--group` is not given: the stream's only one.
async fn only_group(admin: &Admin, stream: &str) -> Result<String, Failure> {
    let stats = admin.stats().await.map_err(Failure::Call)?;
    let names: Vec<&str> = stats.groups.iter().map(|g| g.name.as_str()).collect();
    match names.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(Failure::Usage(anyhow::anyhow!(
            "stream {stream:?} has no consumer group (start a consumer, or check the stream name)"
        ))),
        many => Err(Failure::Usage(anyhow::anyhow!(
            "stream {stream:?} has several groups ({}); pick one with --group",
            many.join(", ")
        ))),
    }
}

/// `stats` as JSON lines (a `stream` line, then a `group` line per group and a `consumer`
/// line per consumer) or as a table.
fn stats_output(s: &Stats, as_json: bool) -> Vec<String> {
    if as_json {
        let mut rows = vec![json!({
            "type": "stream", "stream": s.stream, "length": s.length,
            "groups": s.groups.len(), "dead": s.dead, "delayed": s.delayed,
        })];
        for g in &s.groups {
            rows.push(json!({
                "type": "group", "stream": s.stream, "group": g.name, "lag": g.lag,
                "pending": g.pending,
                "oldest_pending_age_ms": g.oldest_pending_age.map(millis),
                "consumers": g.consumers.len(),
            }));
            for c in &g.consumers {
                rows.push(json!({
                    "type": "consumer", "stream": s.stream, "group": g.name,
                    "consumer": c.name, "pending": c.pending,
                }));
            }
        }
        return rows.iter().map(json_line).collect();
    }
    let mut out = vec![format!(
        "stream {}: length {} · dead {} · delayed {} · {} group(s)",
        s.stream,
        s.length,
        s.dead,
        s.delayed,
        s.groups.len()
    )];
    if !s.groups.is_empty() {
        out.push(format!(
            "  {:<20} {:>8} {:>8} {:>14}  consumers",
            "group", "lag", "pending", "oldest pending"
        ));
    }
    for g in &s.groups {
        let lag = g.lag.map_or_else(|| "-".to_owned(), |l| l.to_string());
        let age = g
            .oldest_pending_age
            .map_or_else(|| "-".to_owned(), |a| format!("{:.1} s", a.as_secs_f64()));
        let consumers: Vec<String> = g
            .consumers
            .iter()
            .map(|c| format!("{}={}", c.name, c.pending))
            .collect();
        out.push(format!(
            "  {:<20} {:>8} {:>8} {:>14}  {}",
            g.name,
            lag,
            g.pending,
            age,
            consumers.join(" ")
        ));
    }
    out
}

/// Rows as JSON lines, or as a table of `columns` (with a line when there are none).
fn output(rows: Vec<Value>, as_json: bool, columns: &[&str]) -> Vec<String> {
    if as_json {
        return rows.iter().map(json_line).collect();
    }
    if rows.is_empty() {
        return vec!["(none)".to_owned()];
    }
    let cell = |r: &Value, c: &str| match &r[c] {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        v => v.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
                .min(60)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(columns.iter().map(|c| (*c).to_owned()).collect())];
    out.extend(
        rows.iter()
            .map(|r| line(columns.iter().map(|c| cell(r, c)).collect())),
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tables_pad_columns_and_say_none() {
        assert_eq!(output(vec![], false, &["id"]), vec!["(none)"]);
        let rows = vec![
            json!({"id": "1-0", "n": 3}),
            json!({"id": "12-0", "n": null}),
        ];
        let t = output(rows.clone(), false, &["id", "n"]);
        assert_eq!(t, vec!["id    n", "1-0   3", "12-0  -"]);
        let j = output(rows, true, &["id"]);
        assert_eq!(j[0], r#"{"id":"1-0","n":3,"schema":1}"#);
    }
}
