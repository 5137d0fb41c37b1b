//! What the load-generator examples share: `--name value` options and their own CPU time.

use std::collections::HashMap;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The command line's `--name value` pairs.
pub(crate) fn options() -> Result<HashMap<String, String>, BoxError> {
    let mut map = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(key) = it.next() {
        let name = key
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {key:?}; options are --name value"))?;
        let value = it
            .next()
            .ok_or_else(|| format!("option --{name} needs a value"))?;
        map.insert(name.to_owned(), value);
    }
    Ok(map)
}

/// User + system CPU seconds of this process (`/proc/self/stat`, in USER_HZ = 100 ticks).
pub(crate) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}
