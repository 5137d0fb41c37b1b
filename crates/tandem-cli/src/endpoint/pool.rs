//! `pool:MODULE:APP`: a `tandem::process::Pool` of `python -m tandem worker MODULE:APP`.

use tandem::process::Pool;
use tower::util::BoxCloneService;

use super::{ConnectError, Connection, Options};

/// The app spec, `MODULE:APP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) app: String,
}

pub(super) fn parse(rest: &str) -> Result<Target, String> {
    match rest.split_once(':') {
        Some((module, app)) if !module.is_empty() && !app.is_empty() && !app.contains(':') => {
            Ok(Target { app: rest.to_owned() })
        }
        _ => Err(format!(
            "invalid pool endpoint \"pool:{rest}\" (format is pool:MODULE:APP, e.g. pool:service:app)"
        )),
    }
}

pub(super) async fn connect(t: &Target, opts: &Options) -> Result<Connection, ConnectError> {
    let mut builder = Pool::builder(t.app.clone())
        .workers(opts.workers)
        .python(opts.python.clone())
        .timeout(opts.timeout);
    if let Some(dir) = &opts.cwd {
        builder = builder.cwd(dir.clone());
    }
    if let Some(n) = opts.max_queue {
        builder = builder.max_queue(n);
    }
    let pool = builder.build().await.map_err(ConnectError::Start)?;
    let closer = pool.clone();
    Ok(Connection::new("pool", BoxCloneService::new(pool))
        .with_closer(async move { closer.shutdown().await }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn needs_module_and_app() {
        assert_eq!(parse("pkg.svc:app").unwrap().app, "pkg.svc:app");
        for bad in ["svc", "svc:", ":app", "a:b:c"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("format is pool:MODULE:APP"), "{bad}: {e}");
        }
    }
}
