//! `tandem bench --config FILE.toml`: flags from a file. Each key is a flag's long name (`-` or
//! `_` between words), each value its value; flags given on the command line win:
//!
//! ```toml
//! all = true
//! app = "service:app"
//! method = "score"
//! payload = { amount = 12 }    # a table or array is sent as JSON; a string as written
//! concurrency = [1, 64]
//! qps = 500
//! latency-ms = 50
//! realtime = true
//! plot = "bench.png"
//! ```
//!
//! The file becomes ordinary flags placed before the command line's own (`tandem bench` sets
//! `args_override_self`, so a later flag replaces an earlier one): one parser, one set of checks.

use std::ffi::OsString;

/// `argv` with the flags of its `bench --config FILE` file inserted after `bench`.
pub(crate) fn expand(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    if argv.get(1).and_then(|v| v.to_str()) != Some("bench") {
        return Ok(argv);
    }
    let Some(path) = config_path(&argv[2..]) else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the config file {path:?}: {e}"))?;
    let flags = flags(&text).map_err(|e| format!("config file {path:?}: {e}"))?;
    let mut out = argv[..2].to_vec();
    out.extend(flags.into_iter().map(OsString::from));
    out.extend_from_slice(&argv[2..]);
    Ok(out)
}

/// The value of `--config PATH` or `--config=PATH`.
fn config_path(args: &[OsString]) -> Option<String> {
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(str::to_owned);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(p.to_owned());
        }
    }
    None
}

/// The TOML document as command-line flags.
fn flags(text: &str) -> Result<Vec<String>, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        if key == "config" {
            return Err("a config file cannot name another (`config` key)".to_owned());
        }
        match value {
            toml::Value::Boolean(true) => out.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => out.extend([flag, s]),
            toml::Value::Integer(n) => out.extend([flag, n.to_string()]),
            toml::Value::Float(x) => out.extend([flag, x.to_string()]),
            v @ toml::Value::Table(_) if key == "payload" => {
                out.extend([flag, json(&v).to_string()])
            }
            toml::Value::Array(items) if key == "payload" => {
                let v = toml::Value::Array(items);
                out.extend([flag, json(&v).to_string()]);
            }
            toml::Value::Array(items) => {
                let parts: Result<Vec<String>, String> = items
                    .iter()
                    .map(|i| match i {
                        toml::Value::Integer(n) => Ok(n.to_string()),
                        toml::Value::String(s) => Ok(s.clone()),
                        other => Err(format!("{key}: unexpected {} in a list", other.type_str())),
                    })
                    .collect();
                out.extend([flag, parts?.join(",")]);
            }
            other => {
                return Err(format!(
                    "{key}: a {} is not a flag value (use a string, number, boolean or list)",
                    other.type_str()
                ))
            }
        }
    }
    Ok(out)
}

/// A TOML value as JSON (the payload).
fn json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(n) => J::from(*n),
        toml::Value::Float(x) => J::from(*x),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(json).collect()),
        toml::Value::Table(t) => J::Object(t.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_become_flags() {
        let f = flags(
            "all = true\njson = false\napp = \"s:app\"\nlatency_ms = 50\nqps = 2.5\n\
             concurrency = [1, 64]\npayload = { amount = 12, tags = [\"a\"] }\n",
        )
        .unwrap();
        // Keys come in name order.
        assert_eq!(
            f,
            [
                "--all",
                "--app",
                "s:app",
                "--concurrency",
                "1,64",
                "--latency-ms",
                "50",
                "--payload",
                r#"{"amount":12,"tags":["a"]}"#,
                "--qps",
                "2.5",
            ]
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(flags("app = ").unwrap_err().contains("not valid TOML"));
        assert!(flags("[section]\na = 1")
            .unwrap_err()
            .contains("section: a table"));
        assert!(flags("config = \"x\"")
            .unwrap_err()
            .contains("cannot name another"));
    }

    #[test]
    fn config_flags_go_before_the_command_line() {
        let path = std::env::temp_dir().join(format!("tandem-cfg-{}.toml", std::process::id()));
        std::fs::write(&path, "method = \"a\"\n").unwrap();
        let argv: Vec<OsString> = [
            "tandem",
            "bench",
            "--config",
            path.to_str().unwrap(),
            "-m",
            "b",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let out = expand(argv.clone()).unwrap();
        assert_eq!(out[2..4], [OsString::from("--method"), OsString::from("a")]);
        assert_eq!(out[4..], argv[2..]);
        std::fs::remove_file(&path).unwrap();
        let missing = ["tandem", "bench", "--config=/nonexistent.toml"].map(OsString::from);
        assert!(expand(missing.to_vec())
            .unwrap_err()
            .contains("cannot read the config file"));
        let call = ["tandem", "call", "--config", "x"]
            .map(OsString::from)
            .to_vec();
        assert_eq!(expand(call.clone()).unwrap(), call);
    }
}
