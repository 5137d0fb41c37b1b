//! `--plot FILE.png`: drawn by matplotlib in the `--python` interpreter
//! (`python -m tandem._benchplot FILE.png`, the `bench --all --json` object on stdin), which
//! `make setup` installs with the `reports` extra.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use serde_json::Value;

use crate::output::Failure;

/// Draws `object` (the `--json` result) into `path` with `python`.
pub(super) fn draw(python: &Path, path: &Path, object: &Value) -> Result<(), Failure> {
    let run = || -> anyhow::Result<std::process::Output> {
        let mut child = Command::new(python)
            .args(["-m", "tandem._benchplot"])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", python.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(object.to_string().as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    };
    let out =
        run().map_err(|e| Failure::Usage(e.context(format!("cannot draw {}", path.display()))))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(Failure::Usage(anyhow::anyhow!(
        "cannot draw {} with {} ({}): {}",
        path.display(),
        python.display(),
        out.status,
        err.trim()
    )))
}
