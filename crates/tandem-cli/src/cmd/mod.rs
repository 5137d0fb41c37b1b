//! One file per verb. Each `run` returns `Ok(())` (exit 0) or a [`Failure`] that decides the
//! exit code.

pub(crate) mod bench;
pub(crate) mod call;
pub(crate) mod queue;

use crate::args::CommonArgs;
use crate::endpoint::{self, ConnectError, Connection, Endpoint, Options};
use crate::output::Failure;

/// Opens `endpoint` with the shared flags.
async fn open(
    endpoint: &Endpoint,
    common: &CommonArgs,
    max_queue: Option<usize>,
) -> Result<Connection, Failure> {
    let opts = Options {
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
    };
    endpoint::connect(endpoint, &opts)
        .await
        .map_err(|e| match e {
            ConnectError::Start(e) => Failure::Setup(e),
            ConnectError::Absent(e, hint) => Failure::SetupHint(e, hint),
        })
}
