//! One transport at a time: start what it needs, time the first successful call (cold start),
//! run `tandem::bench` at each concurrency level, stop everything.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tandem::bench::{self, Limit, Report};
use tandem::Request;
use tower::ServiceExt;

use super::peer::{free_port, Peer};
use crate::endpoint::{self, Connection, Endpoint, Options};
use crate::output::Failure;

/// The transports measured, in order.
pub(super) const TRANSPORTS: [&str; 5] = ["pool", "script", "plugin", "grpc", "queue"];

/// Calls the one-shot script makes at most per run (a process per call is slow).
pub(super) const SCRIPT_CALLS: u64 = 20;

/// How long a started server may take to answer its first call.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a stage needs.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// `MODULE:APP`.
    pub(super) app: String,
    /// The bench settings (method, payload, limit, timeout, warm-up).
    pub(super) cfg: bench::Config,
    /// Concurrency levels.
    pub(super) levels: Vec<usize>,
    /// Endpoint options (interpreter, cwd, timeout, pool size and queue).
    pub(super) opts: Options,
    /// Directory of the started processes (`--cwd`, else the current one).
    pub(super) cwd: PathBuf,
    /// Where logs of started processes go.
    pub(super) logs: PathBuf,
    /// `host:port` of a Redis to use (REDIS_URL), or `None` for a private redis-server.
    pub(super) redis: Option<String>,
    /// The redis-server binary (when no REDIS_URL).
    pub(super) redis_server: Option<PathBuf>,
}

/// One transport's results.
#[derive(Debug, Clone)]
pub(super) struct Row {
    /// `pool`, `script`, `plugin`, `grpc` or `queue`.
    pub(super) transport: &'static str,
    /// From starting the transport to its first successful call, in milliseconds.
    pub(super) cold_start_ms: f64,
    /// What a crash of the handler's process takes down (by design of the transport).
    pub(super) isolation: &'static str,
    /// Failed calls over all runs.
    pub(super) errors: u64,
    /// One `tandem bench` report per concurrency level.
    pub(super) runs: Vec<Report>,
    /// `HOST:PORT` of the Redis the queue used.
    pub(super) redis: Option<String>,
}

/// What a crash takes down, per transport (how each is built, see docs/choosing.md).
pub(super) fn isolation(transport: &str) -> &'static str {
    match transport {
        "pool" => "one worker process and its call; the pool starts a new worker",
        "script" => "only its own call: every call is a fresh process",
        "plugin" => "the plugin process and every call in flight on it; the host restarts it",
        "grpc" => "one server worker process and its calls; the other workers keep serving",
        "queue" => "nothing is lost: the task is delivered again (at least once)",
        _ => "",
    }
}

/// Starts `transport`, times its cold start and measures it; stops it before returning.
pub(super) async fn run(plan: &Plan, transport: &'static str) -> Result<Row, Failure> {
    let mut peers = Vec::new();
    let started = Instant::now();
    let (conn, started, redis) = start(plan, transport, &mut peers, started).await?;
    let result = measure(plan, transport, &conn, &mut peers, started)
        .await
        .map(|row| Row { redis, ..row });
    conn.close().await;
    drop(peers);
    if let (Some(addr), Ok(row)) = (&plan.redis, &result) {
        if row.transport == "queue" {
            // A Redis the user gave (REDIS_URL) keeps running: take the run's stream out of it.
            let url = format!("redis://{addr}");
            let admin = tandem::queue::Admin::connect(&url, &queue_stream()).await;
            if let Err(e) = async { admin?.delete().await }.await {
                eprintln!(
                    "tandem bench: could not delete the stream {}: {e}",
                    queue_stream()
                );
            }
        }
    }
    result
}

/// The stream the queue row publishes to.
fn queue_stream() -> String {
    format!("tandem-bench-{}", std::process::id())
}

async fn measure(
    plan: &Plan,
    transport: &'static str,
    conn: &Connection,
    peers: &mut [Peer],
    started: Instant,
) -> Result<Row, Failure> {
    let body = plan
        .cfg
        .body
        .clone()
        .unwrap_or_else(|| bench::payload(plan.cfg.payload_bytes, plan.cfg.codec));
    let req = Request::new(plan.cfg.method.clone(), body).with_timeout(plan.opts.timeout);
    let first = conn.service.clone().oneshot(req);
    tokio::pin!(first);
    // The first call, unless a started peer dies first (then its log says why).
    loop {
        tokio::select! {
            r = &mut first => { r.map_err(Failure::Call)?; break; }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                for p in peers.iter_mut() {
                    if let Some(status) = p.exited() {
                        return Err(Failure::Usage(p.died(status)));
                    }
                }
            }
        }
    }
    let cold_start_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut runs = Vec::new();
    if transport == "script" {
        let limit = match plan.cfg.limit {
            Limit::Calls(n) => Limit::Calls(n.min(SCRIPT_CALLS)),
            d => d,
        };
        let cfg = plan.cfg.clone().concurrency(1).limit(limit).warmup(0);
        runs.push(bench::run(conn.service.clone(), &cfg).await);
    } else {
        for &c in &plan.levels {
            let cfg = plan.cfg.clone().concurrency(c);
            runs.push(bench::run(conn.service.clone(), &cfg).await);
        }
    }
    for r in &mut runs {
        r.transport = transport.to_owned();
    }
    Ok(Row {
        transport,
        cold_start_ms,
        isolation: isolation(transport),
        errors: runs.iter().map(|r| r.errors).sum(),
        runs,
        redis: None,
    })
}

/// Starts `transport` (its peers go in `peers`) and returns its connection, when its own start
/// began (after any Redis it needs), and the Redis address for the queue.
async fn start(
    plan: &Plan,
    transport: &str,
    peers: &mut Vec<Peer>,
    started: Instant,
) -> Result<(Connection, Instant, Option<String>), Failure> {
    let python = plan.opts.python.clone();
    let workers = plan.opts.workers.to_string();
    let connect = |e: Endpoint| async move {
        endpoint::connect(&e, &plan.opts)
            .await
            .map_err(super::super::setup_failure)
    };
    match transport {
        "pool" => Ok((connect(Endpoint::pool(&plan.app)).await?, started, None)),
        "script" => Ok((
            connect(Endpoint::app_script(&plan.app)).await?,
            started,
            None,
        )),
        "plugin" => {
            let command = vec![
                python.display().to_string(),
                "-m".into(),
                "tandem".into(),
                "plugin".into(),
                plan.app.clone(),
            ];
            Ok((connect(Endpoint::plugin(command)).await?, started, None))
        }
        "grpc" => {
            let port = free_port().map_err(Failure::Internal)?;
            let args = [
                "-m",
                "tandem",
                "serve",
                &plan.app,
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                &workers,
            ];
            peers.push(spawn(
                plan,
                "the gRPC server (python -m tandem serve)",
                &python,
                &args,
            )?);
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(status) = peers[0].exited() {
                    return Err(Failure::Usage(peers[0].died(status)));
                }
                match endpoint::connect(&Endpoint::grpc("127.0.0.1", port), &plan.opts).await {
                    Ok(c) => return Ok((c, started, None)),
                    Err(endpoint::ConnectError::Absent(..)) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => return Err(super::super::setup_failure(e)),
                }
            }
        }
        _ => {
            let addr = match &plan.redis {
                Some(addr) => addr.clone(),
                None => {
                    let redis = start_redis(plan)?;
                    let addr = redis.1;
                    peers.push(redis.0);
                    wait_port(&addr, &mut peers[0]).await?;
                    addr
                }
            };
            let started = Instant::now();
            let stream = queue_stream();
            let url = format!("redis://{addr}");
            let args = [
                "-m",
                "tandem",
                "consume",
                &plan.app,
                "--redis",
                &url,
                "--stream",
                &stream,
                "--group",
                "tandem-bench",
                "--processes",
                &workers,
            ];
            peers.push(spawn(
                plan,
                "the consumer (python -m tandem consume)",
                &python,
                &args,
            )?);
            let target = endpoint::redis::parse(&format!("{addr}/{stream}"))
                .map_err(|e| Failure::Usage(anyhow::anyhow!("{e}")))?;
            Ok((connect(Endpoint::Redis(target)).await?, started, Some(addr)))
        }
    }
}

fn spawn(
    plan: &Plan,
    what: &'static str,
    program: &std::path::Path,
    args: &[&str],
) -> Result<Peer, Failure> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let log = plan.logs.join(format!(
        "{}.log",
        what.split_whitespace().nth(1).unwrap_or("peer")
    ));
    Peer::start(what, program, &args, &plan.cwd, log).map_err(Failure::Usage)
}

/// A private redis-server on a free loopback port, saving nothing.
fn start_redis(plan: &Plan) -> Result<(Peer, String), Failure> {
    let program = plan
        .redis_server
        .clone()
        .ok_or_else(|| Failure::Usage(anyhow::anyhow!("no redis-server to start")))?;
    let port = free_port().map_err(Failure::Internal)?;
    let dir = plan.logs.display().to_string();
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir,
    ];
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let log = plan.logs.join("redis-server.log");
    let peer = Peer::start("the private redis-server", &program, &args, &plan.cwd, log)
        .map_err(Failure::Usage)?;
    Ok((peer, format!("127.0.0.1:{port}")))
}

/// Waits until `addr` accepts connections, or `peer` exits.
async fn wait_port(addr: &str, peer: &mut Peer) -> Result<(), Failure> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = peer.exited() {
            return Err(Failure::Usage(peer.died(status)));
        }
        if Instant::now() > deadline {
            return Err(Failure::Usage(anyhow::anyhow!(
                "redis-server did not listen on {addr} within {} s",
                START_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
