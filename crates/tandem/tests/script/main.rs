//! Integration tests of `tandem::process::Script` against real Python processes.
//!
//! - `success.rs`: codecs round trip, env and cwd honoured, the tower::Service face.
//! - `failure.rs`: structured Python errors, non-zero exits, signals, bad output.
//! - `lifecycle.rs`: timeouts kill the whole process group; no zombies, no orphans.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod failure;
mod lifecycle;
mod success;

use std::path::Path;

use tandem::process::{Script, ScriptBuilder};

/// A `@tandem.script` file written into the test's directory, run by the test Python.
pub fn py_script(dir: &Path, source: &str) -> ScriptBuilder {
    let path = support::write_file(dir, "script.py", source);
    Script::builder(support::python()).args([path])
}
