//! One file per verb. Each `run` returns `Ok(())` (exit 0) or a [`Failure`] that decides the
//! exit code.

pub(crate) mod bench;
mod bench_all;
pub(crate) mod call;
pub(crate) mod queue;

use crate::args::CommonArgs;
use crate::endpoint::{self, ConnectError, Connection, Endpoint, Options};
use crate::output::Failure;

/// The endpoint options from the shared flags.
fn options(common: &CommonArgs, max_queue: Option<usize>) -> Options {
    Options {
        workers: usize::from(common.workers),
        python: common
            .python
            .clone()
            .unwrap_or_else(tandem::process::default_python),
        cwd: common.cwd.clone(),
        timeout: common.timeout,
        codec: common.codec.into(),
        max_queue,
        cookie: common.cookie.clone(),
        version: common.plugin_version,
        tls: common.tls,
    }
}

/// A connect failure as the CLI reports it.
fn setup_failure(e: ConnectError) -> Failure {
    match e {
        ConnectError::Start(e) => Failure::Setup(e),
        ConnectError::Absent(e, hint) => Failure::SetupHint(e, hint),
    }
}

/// Opens `endpoint` with the shared flags.
async fn open(
    endpoint: &Endpoint,
    common: &CommonArgs,
    max_queue: Option<usize>,
) -> Result<Connection, Failure> {
    endpoint::connect(endpoint, &options(common, max_queue))
        .await
        .map_err(setup_failure)
}
