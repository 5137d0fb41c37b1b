//! `script:PATH`: a one-shot `tandem::process::Script`, one process per call.

use std::path::PathBuf;

use tandem::process::Script;
use tower::util::BoxCloneService;

use super::{ConnectError, Connection, Options};

/// The script file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) path: PathBuf,
}

pub(super) fn parse(rest: &str) -> Result<Target, String> {
    if rest.is_empty() {
        return Err(
            "missing path in \"script:\" (format is script:PATH, e.g. script:./report.py)".into(),
        );
    }
    Ok(Target { path: rest.into() })
}

pub(super) fn connect(t: &Target, opts: &Options) -> Result<Connection, ConnectError> {
    let mut builder = Script::builder(opts.python.clone())
        .args([&t.path])
        .timeout(opts.timeout)
        .codec(opts.codec);
    if let Some(dir) = &opts.cwd {
        builder = builder.cwd(dir.clone());
    }
    Ok(Connection::new(
        "script",
        BoxCloneService::new(builder.build()),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn needs_a_path() {
        assert_eq!(parse("a/b.py").unwrap().path, PathBuf::from("a/b.py"));
        assert!(parse("").unwrap_err().contains("format is script:PATH"));
    }
}
