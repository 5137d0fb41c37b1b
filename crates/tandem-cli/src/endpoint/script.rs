//! `script:PATH`: a one-shot `tandem::process::Script`, one process per call.
//!
//! `tandem bench --all` also runs an App method one-shot: `python -m tandem run MODULE:APP`.

use tandem::process::Script;
use tower::util::BoxCloneService;

use super::{ConnectError, Connection, Options};

/// The interpreter's arguments: the script file, or `-m tandem run MODULE:APP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) args: Vec<String>,
}

pub(super) fn parse(rest: &str) -> Result<Target, String> {
    if rest.is_empty() {
        return Err(
            "missing path in \"script:\" (format is script:PATH, e.g. script:./report.py)".into(),
        );
    }
    Ok(Target {
        args: vec![rest.to_owned()],
    })
}

pub(super) fn connect(t: &Target, opts: &Options) -> Result<Connection, ConnectError> {
    let mut builder = Script::builder(opts.python.clone())
        .args(&t.args)
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
        assert_eq!(parse("a/b.py").unwrap().args, vec!["a/b.py"]);
        assert!(parse("").unwrap_err().contains("format is script:PATH"));
    }
}
