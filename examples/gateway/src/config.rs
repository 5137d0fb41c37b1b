//! Settings from flags (`--listen ADDR`) or the environment (`GATEWAY_LISTEN`), with defaults.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Address of the HTTP API.
    pub(crate) listen: String,
    /// SQLite database file.
    pub(crate) db: PathBuf,
    /// gRPC endpoint of `tandem serve` (the risk model); empty disables scoring.
    pub(crate) inference: String,
    /// Deadline of one risk score.
    pub(crate) risk_deadline: Duration,
    /// Redis URL for the report queue; empty disables reports.
    pub(crate) redis: String,
    /// Directory the report consumer writes into.
    pub(crate) reports_dir: PathBuf,
    /// Merchant webhook URL; empty disables webhooks.
    pub(crate) webhook_url: String,
    /// HMAC secret of the webhook signature.
    pub(crate) webhook_secret: String,
    /// Python interpreter for the plugin and the scripts.
    pub(crate) python: PathBuf,
    /// Directory holding `adapter.py`, `reconcile.py`, ...
    pub(crate) services_dir: PathBuf,
}

const FLAGS: &[(&str, &str, &str)] = &[
    ("listen", "GATEWAY_LISTEN", "127.0.0.1:8080"),
    ("db", "GATEWAY_DB", "gateway.sqlite3"),
    ("inference", "GATEWAY_INFERENCE", "grpc://127.0.0.1:50051"),
    ("risk-deadline-ms", "GATEWAY_RISK_DEADLINE_MS", "50"),
    ("redis", "REDIS_URL", ""),
    ("reports-dir", "GATEWAY_REPORTS_DIR", "reports"),
    ("webhook-url", "GATEWAY_WEBHOOK_URL", ""),
    ("webhook-secret", "ADAPTER_WEBHOOK_SECRET", "demo-secret"),
    ("python", "TANDEM_PYTHON", ""),
    ("services-dir", "GATEWAY_SERVICES_DIR", ""),
];

/// The usage text printed by `--help` and on a bad flag.
pub(crate) fn usage() -> String {
    let mut s = String::from("usage: gateway [--FLAG VALUE]...\n\nflags (environment, default):\n");
    for (flag, env, default) in FLAGS {
        s.push_str(&format!("  --{flag:<18} ({env}, {default:?})\n"));
    }
    s
}

impl Config {
    /// Reads flags from `args` (without the program name), then the environment, then defaults.
    pub(crate) fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut given: Vec<(String, String)> = Vec::new();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}\n{}", usage()))?;
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                    (name.to_owned(), v)
                }
            };
            if !FLAGS.iter().any(|(f, _, _)| *f == name) {
                return Err(format!("unknown flag --{name}\n{}", usage()));
            }
            given.push((name, value));
        }
        let get = |flag: &str| -> String {
            if let Some((_, v)) = given.iter().rev().find(|(n, _)| n == flag) {
                return v.clone();
            }
            let (_, env, default) = FLAGS
                .iter()
                .find(|(f, _, _)| *f == flag)
                .copied()
                .unwrap_or(("", "", ""));
            std::env::var(env).unwrap_or_else(|_| default.to_owned())
        };
        let deadline: u64 = get("risk-deadline-ms")
            .parse()
            .map_err(|e| format!("--risk-deadline-ms: {e} (give milliseconds, e.g. 50)"))?;
        let services_dir = match get("services-dir") {
            s if s.is_empty() => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("services"),
            s => PathBuf::from(s),
        };
        let python = match get("python") {
            s if s.is_empty() => tandem::process::default_python(),
            s => PathBuf::from(s),
        };
        Ok(Config {
            listen: get("listen"),
            db: get("db").into(),
            inference: get("inference"),
            risk_deadline: Duration::from_millis(deadline),
            redis: get("redis"),
            reports_dir: get("reports-dir").into(),
            webhook_url: get("webhook-url"),
            webhook_secret: get("webhook-secret"),
            python,
            services_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_defaults() {
        let c = Config::from_args(args(&["--listen", "127.0.0.1:1", "--risk-deadline-ms=20"]))
            .expect("config");
        assert_eq!(c.listen, "127.0.0.1:1");
        assert_eq!(c.risk_deadline, Duration::from_millis(20));
    }

    #[test]
    fn unknown_flag_and_bad_deadline_say_what_to_do() {
        let e = Config::from_args(args(&["--nope", "1"])).expect_err("unknown");
        assert!(
            e.contains("unknown flag --nope") && e.contains("usage"),
            "{e}"
        );
        let e = Config::from_args(args(&["--risk-deadline-ms", "soon"])).expect_err("bad");
        assert!(e.contains("milliseconds"), "{e}");
    }
}
