//! `tandem call ENDPOINT METHOD [JSON | @FILE]`: one call, the result as JSON on stdout.

use std::io::IsTerminal;

use anyhow::Context as _;
use tandem::{Payload, Request};
use tower::ServiceExt;

use crate::args::CallArgs;
use crate::output::{print_line, Failure};

pub(crate) async fn run(args: CallArgs) -> Result<(), Failure> {
    let value = read_payload(args.payload.as_deref()).map_err(Failure::Usage)?;
    let codec: tandem::Codec = args.common.codec.into();
    let payload = Payload::json(&value)
        .and_then(|p| p.transcode(codec))
        .map_err(|e| Failure::Usage(anyhow::anyhow!("cannot encode the payload: {e}")))?;
    let conn = super::open(&args.endpoint, &args.common, None).await?;
    let req = Request::new(args.method, payload).with_timeout(args.common.timeout);
    let result = conn.service.clone().oneshot(req).await;
    conn.close().await;
    let resp = result.map_err(Failure::Call)?;
    let value = resp
        .payload()
        .to_json_value()
        .map_err(|e| Failure::Internal(anyhow::anyhow!("cannot read the answer: {e}")))?;
    let text = if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    }
    .map_err(|e| Failure::Internal(e.into()))?;
    print_line(&text)
}

/// The payload argument: inline JSON, `@FILE` with JSON, or `null` when absent.
pub(super) fn read_payload(arg: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let Some(arg) = arg else {
        return Ok(serde_json::Value::Null);
    };
    let (text, origin) = match arg.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read payload file {path:?}"))?,
            format!("file {path:?}"),
        ),
        None => (arg.to_owned(), "argument".to_owned()),
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "the payload {origin} is not valid JSON (quote it, e.g. '{{\"n\": 1}}', or pass @FILE)"
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn payload_is_inline_json_a_file_or_null() {
        assert_eq!(read_payload(None).unwrap(), serde_json::Value::Null);
        assert_eq!(
            read_payload(Some("[1,2]")).unwrap(),
            serde_json::json!([1, 2])
        );
        let path =
            std::env::temp_dir().join(format!("tandem-cli-payload-{}.json", std::process::id()));
        std::fs::write(&path, "{\"a\": 1}").unwrap();
        let arg = format!("@{}", path.display());
        assert_eq!(
            read_payload(Some(&arg)).unwrap(),
            serde_json::json!({"a": 1})
        );
        std::fs::remove_file(&path).unwrap();
        let e = read_payload(Some("{oops")).unwrap_err();
        assert!(format!("{e:#}").contains("not valid JSON"));
        let e = read_payload(Some("@/nonexistent/x.json")).unwrap_err();
        assert!(format!("{e:#}").contains("cannot read payload file"));
    }
}
