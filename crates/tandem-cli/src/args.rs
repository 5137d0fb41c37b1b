//! The command line, as clap derive types. Each flag's doc comment is its help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;
use crate::endpoint::Endpoint;

/// Call Python from Rust: make one call, or measure a transport.
#[derive(Debug, Parser)]
#[command(
    name = "tandem",
    version,
    about,
    propagate_version = true,
    args_override_self = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Make one call and print the result as JSON.
    // `--version N` is the plugin protocol version here; `tandem --version` still works.
    #[command(disable_version_flag = true)]
    Call(CallArgs),
    /// Measure latency (p50, p99) and throughput of an endpoint, or (--all) of an app over
    /// every transport, with a recommendation.
    #[command(disable_version_flag = true)]
    Bench(BenchArgs),
    /// Inspect and repair a Redis Streams queue: stats, pending, dead, replay, purge-dead.
    Queue(QueueArgs),
}

/// `tandem queue ACTION redis://HOST:PORT/STREAM`.
#[derive(Debug, Args)]
pub(crate) struct QueueArgs {
    /// What to do.
    #[arg(value_enum)]
    pub(crate) action: QueueAction,
    /// The queue, redis://HOST:PORT/STREAM.
    #[arg(value_parser = parse_queue_endpoint)]
    pub(crate) endpoint: crate::endpoint::redis::Target,
    /// Consumer group (pending: which group to list; stats: only this group).
    ///
    /// Defaults to every group for stats, and to the only group for pending.
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// Print one flat JSON object per line (see docs/cli-json.md) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// How many entries to list (pending, dead) or replay (replay).
    #[arg(long, short = 'n', default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) count: u64,
}

/// The `tandem queue` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum QueueAction {
    /// Stream length, groups, lag, pending per consumer, oldest pending age, dead letters.
    Stats,
    /// The pending (delivered, unacknowledged) entries of a group.
    Pending,
    /// The dead letters in STREAM:dead.
    Dead,
    /// Moves up to --count dead letters back onto the stream.
    Replay,
    /// Deletes every dead letter.
    PurgeDead,
}

fn parse_queue_endpoint(s: &str) -> Result<crate::endpoint::redis::Target, String> {
    let rest = s
        .strip_prefix("redis://")
        .ok_or_else(|| format!("{s:?} is not a queue (format is redis://HOST:PORT/STREAM)"))?;
    crate::endpoint::redis::parse(rest)
}

/// A `--cookie KEY=VALUE` pair.
fn parse_cookie(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!(
            "{s:?} is not KEY=VALUE (e.g. TANDEM_PLUGIN=5f0b7c2e-tandem-go-plugin)"
        )),
    }
}

/// `tandem call ENDPOINT METHOD [JSON | @FILE]`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// Where to call: pool:MODULE:APP, script:PATH, plugin:COMMAND, grpc://HOST:PORT or
    /// redis://HOST:PORT/STREAM.
    pub(crate) endpoint: Endpoint,
    /// The method (handler name) to call.
    pub(crate) method: String,
    /// The payload: inline JSON, or @FILE to read JSON from a file (default: null).
    pub(crate) payload: Option<String>,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// `tandem bench ENDPOINT --method M …` or `tandem bench --all --app MODULE:APP --method M …`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// What to measure: pool:MODULE:APP, script:PATH, plugin:COMMAND, grpc://HOST:PORT or
    /// redis://HOST:PORT/STREAM (or --all).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub(crate) endpoint: Option<Endpoint>,
    /// Measure --app over every transport and the one-shot script, starting what each needs
    /// (servers, a private redis-server unless REDIS_URL is set) and stopping it after, then
    /// recommend one (see docs/choosing.md).
    #[arg(long, requires = "app")]
    pub(crate) all: bool,
    /// Read flags from a TOML file (keys are flag names, e.g. app = "svc:app", qps = 500);
    /// flags on the command line win.
    #[arg(long, value_name = "FILE.toml")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) all_args: AllArgs,
    /// The method (handler name) to call; it should echo or do little.
    #[arg(long, short = 'm')]
    pub(crate) method: String,
    /// Size of each payload in bytes (a JSON string of about that size).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub(crate) payload_bytes: usize,
    /// The payload of every call instead of --payload-bytes: inline JSON, or @FILE.
    #[arg(long, value_name = "JSON|@FILE", conflicts_with = "payload_bytes")]
    pub(crate) payload: Option<String>,
    /// How many calls are in flight at once; a list (1,64) runs each level in turn (default 1;
    /// with --all 1,64).
    #[arg(long, short = 'c', value_name = "C[,C…]", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) concurrency: Vec<u32>,
    /// Stop after N calls (default 1000, unless --duration is given).
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    pub(crate) calls: Option<u64>,
    /// Stop after this long instead of a call count, e.g. 10s or 1m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Calls made before measuring (not counted).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub(crate) warmup: u64,
    /// Print one JSON object (see docs/cli-json.md) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// The flags of `tandem bench --all`: what to run, and the needs the recommendation follows.
#[derive(Debug, Args)]
pub(crate) struct AllArgs {
    /// The App to measure (with --all), MODULE:APP as `python -m tandem` takes it.
    #[arg(long, value_name = "MODULE:APP", requires = "all")]
    pub(crate) app: Option<String>,
    /// Expected calls per second, for the recommendation.
    #[arg(long, value_name = "N", requires = "all")]
    pub(crate) qps: Option<f64>,
    /// The longest the caller can wait for an answer, in milliseconds, for the recommendation.
    #[arg(long, value_name = "MS", requires = "all")]
    pub(crate) latency_ms: Option<f64>,
    /// The caller waits for the answer (for the recommendation).
    #[arg(long, requires = "all", conflicts_with = "batch")]
    pub(crate) realtime: bool,
    /// The caller does not wait for the answer: background or batch work.
    #[arg(long, requires = "all")]
    pub(crate) batch: bool,
    /// The handler needs plugins: isolation, swap without restart, third-party code.
    #[arg(long, requires = "all")]
    pub(crate) needs_plugin: bool,
    /// Also draw p50/p99 and calls/s per transport into FILE.png (with the --python
    /// interpreter's matplotlib: pip install 'tandem[reports]').
    #[arg(long, value_name = "FILE.png", requires = "all")]
    pub(crate) plot: Option<PathBuf>,
}

/// Flags shared by `call` and `bench`.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// Per-call timeout, e.g. 250ms, 2s or 1m (a bare number is seconds).
    #[arg(long, short = 't', default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Payload codec on the wire.
    #[arg(long, value_enum, default_value_t = CodecArg::Json)]
    pub(crate) codec: CodecArg,
    /// Pool workers to start (pool: endpoints).
    #[arg(long, short = 'w', default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) workers: u16,
    /// Python interpreter for workers and scripts (default: $TANDEM_PYTHON, ./.venv, python3).
    #[arg(long, value_name = "PATH")]
    pub(crate) python: Option<PathBuf>,
    /// Working directory of workers and scripts (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub(crate) cwd: Option<PathBuf>,
    /// Plugin handshake magic cookie (plugin: endpoints; default tandem's own).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_cookie)]
    pub(crate) cookie: Option<(String, String)>,
    /// Plugin app protocol version to offer (plugin: endpoints; default 1).
    #[arg(long = "version", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) plugin_version: Option<u32>,
    /// Talk to the plugin over AutoMTLS (plugin: endpoints).
    #[arg(long)]
    pub(crate) tls: bool,
}

/// The codecs a user can pick on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CodecArg {
    /// UTF-8 JSON.
    Json,
    /// MessagePack.
    Msgpack,
}

impl From<CodecArg> for tandem::Codec {
    fn from(c: CodecArg) -> Self {
        match c {
            CodecArg::Json => tandem::Codec::Json,
            CodecArg::Msgpack => tandem::Codec::Msgpack,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tandem").chain(args.iter().copied()))
    }

    fn call(args: &[&str]) -> CallArgs {
        match parse(args).unwrap().command {
            Command::Call(a) => a,
            _ => panic!("expected call"),
        }
    }

    fn bench(args: &[&str]) -> BenchArgs {
        match parse(args).unwrap().command {
            Command::Bench(a) => a,
            _ => panic!("expected bench"),
        }
    }

    fn queue(args: &[&str]) -> QueueArgs {
        match parse(args).unwrap().command {
            Command::Queue(a) => a,
            _ => panic!("expected queue"),
        }
    }

    #[test]
    fn queue_takes_an_action_and_a_stream() {
        let q = queue(&["queue", "stats", "redis://127.0.0.1:6379/jobs"]);
        assert_eq!(q.action, QueueAction::Stats);
        assert_eq!(
            (q.endpoint.port, q.endpoint.stream.as_str()),
            (6379, "jobs")
        );
        assert_eq!((q.group, q.json, q.count), (None, false, 100));
        assert_eq!(
            queue(&["queue", "purge-dead", "redis://h:1/s"]).action,
            QueueAction::PurgeDead
        );
        assert!(parse(&["queue", "explode", "redis://h:1/s"]).is_err());
        let e = parse(&["queue", "stats", "grpc://h:1"]).unwrap_err();
        assert!(e.to_string().contains("redis://HOST:PORT/STREAM"), "{e}");
        assert!(parse(&["queue", "stats", "redis://h:1"]).is_err());
    }

    #[test]
    fn queue_group_json_and_count_flags() {
        let q = queue(&[
            "queue",
            "pending",
            "redis://h:1/s",
            "--group",
            "g",
            "--json",
            "--count",
            "5",
        ]);
        assert_eq!((q.group.as_deref(), q.json, q.count), (Some("g"), true, 5));
        assert!(parse(&["queue", "dead", "redis://h:1/s", "--count", "0"]).is_err());
    }

    #[test]
    fn cookie_flag_is_key_equals_value() {
        let a = call(&["call", "plugin:./p", "x", "--cookie", "K=v=w"]);
        assert_eq!(a.common.cookie, Some(("K".to_owned(), "v=w".to_owned())));
        let e = parse(&["call", "plugin:./p", "x", "--cookie", "novalue"]).unwrap_err();
        assert!(e.to_string().contains("KEY=VALUE"), "{e}");
        assert!(parse(&["call", "plugin:./p", "x", "--cookie", "=v"]).is_err());
    }

    #[test]
    fn tandem_version_still_prints_the_version() {
        let e = parse(&["--version"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        let e = parse(&["queue", "--version"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
    }

    #[test]
    fn version_and_tls_flags() {
        let a = call(&["call", "plugin:./p", "x", "--version", "2", "--tls"]);
        assert_eq!((a.common.plugin_version, a.common.tls), (Some(2), true));
        let b = bench(&["bench", "plugin:./p", "-m", "e"]);
        assert_eq!((b.common.plugin_version, b.common.tls), (None, false));
        assert!(parse(&["call", "plugin:./p", "x", "--version", "0"]).is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn call_takes_endpoint_method_and_optional_payload() {
        let a = call(&["call", "pool:svc:app", "echo"]);
        assert_eq!(a.method, "echo");
        assert!(a.payload.is_none());
        let a = call(&["call", "script:./s.py", "main", "@in.json"]);
        assert_eq!(a.payload.as_deref(), Some("@in.json"));
        assert!(parse(&["call", "pool:svc:app"]).is_err());
    }

    #[test]
    fn timeout_flag_parses_durations() {
        let a = call(&["call", "pool:m:a", "x", "--timeout", "250ms"]);
        assert_eq!(a.common.timeout, Duration::from_millis(250));
        assert_eq!(
            call(&["call", "pool:m:a", "x"]).common.timeout,
            Duration::from_secs(30)
        );
        assert!(parse(&["call", "pool:m:a", "x", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn codec_flag_accepts_json_and_msgpack() {
        assert_eq!(
            call(&["call", "pool:m:a", "x", "--codec", "msgpack"])
                .common
                .codec,
            CodecArg::Msgpack
        );
        assert_eq!(
            call(&["call", "pool:m:a", "x"]).common.codec,
            CodecArg::Json
        );
        assert!(parse(&["call", "pool:m:a", "x", "--codec", "yaml"]).is_err());
    }

    #[test]
    fn workers_flag_is_a_positive_count() {
        assert_eq!(
            call(&["call", "pool:m:a", "x", "--workers", "4"])
                .common
                .workers,
            4
        );
        assert_eq!(call(&["call", "pool:m:a", "x"]).common.workers, 2);
        assert!(parse(&["call", "pool:m:a", "x", "--workers", "0"]).is_err());
    }

    #[test]
    fn python_and_cwd_flags_take_paths() {
        let a = call(&[
            "call",
            "pool:m:a",
            "x",
            "--python",
            "/usr/bin/python3",
            "--cwd",
            "/tmp",
        ]);
        assert_eq!(a.common.python, Some(PathBuf::from("/usr/bin/python3")));
        assert_eq!(a.common.cwd, Some(PathBuf::from("/tmp")));
    }

    #[test]
    fn endpoint_must_have_a_known_scheme() {
        let err = parse(&["call", "ftp://x", "m"]).unwrap_err();
        assert!(err.to_string().contains("pool:MODULE:APP"), "{err}");
    }

    #[test]
    fn bench_method_is_required() {
        assert!(parse(&["bench", "pool:m:a"]).is_err());
        let b = bench(&["bench", "pool:m:a", "--method", "echo"]);
        assert_eq!(
            (b.payload_bytes, b.concurrency, b.calls, b.json),
            (100, vec![], None, false)
        );
    }

    #[test]
    fn bench_payload_bytes_and_concurrency() {
        let b = bench(&[
            "bench",
            "pool:m:a",
            "-m",
            "echo",
            "--payload-bytes",
            "65536",
            "--concurrency",
            "64",
        ]);
        assert_eq!((b.payload_bytes, b.concurrency), (65536, vec![64]));
        let b = bench(&["bench", "pool:m:a", "-m", "e", "-c", "1,64"]);
        assert_eq!(b.concurrency, vec![1, 64]);
        assert!(parse(&["bench", "pool:m:a", "-m", "e", "--concurrency", "0"]).is_err());
        assert!(parse(&["bench", "pool:m:a", "-m", "e", "--payload-bytes", "-1"]).is_err());
    }

    #[test]
    fn bench_calls_and_duration_exclude_each_other() {
        assert_eq!(
            bench(&["bench", "pool:m:a", "-m", "e", "--calls", "10"]).calls,
            Some(10)
        );
        let b = bench(&["bench", "pool:m:a", "-m", "e", "--duration", "2s"]);
        assert_eq!(b.duration, Some(Duration::from_secs(2)));
        assert!(parse(&[
            "bench",
            "pool:m:a",
            "-m",
            "e",
            "--calls",
            "1",
            "--duration",
            "1s"
        ])
        .is_err());
    }

    #[test]
    fn bench_json_and_warmup_flags() {
        let b = bench(&["bench", "pool:m:a", "-m", "e", "--json", "--warmup", "0"]);
        assert!(b.json);
        assert_eq!(b.warmup, 0);
        assert_eq!(
            bench(&["bench", "script:s.py", "-m", "e", "--timeout", "1m"])
                .common
                .timeout,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn bench_all_takes_an_app_instead_of_an_endpoint() {
        let b = bench(&[
            "bench",
            "--all",
            "--app",
            "svc:app",
            "-m",
            "echo",
            "--qps",
            "1000",
            "--latency-ms",
            "50",
            "--plot",
            "out.png",
            "--payload",
            "@in.json",
        ]);
        assert!(b.all && b.endpoint.is_none());
        assert_eq!(b.all_args.app.as_deref(), Some("svc:app"));
        assert_eq!(
            (b.all_args.qps, b.all_args.latency_ms),
            (Some(1000.0), Some(50.0))
        );
        assert_eq!(b.payload.as_deref(), Some("@in.json"));
        // --all needs --app and no endpoint; the needs flags need --all.
        assert!(parse(&["bench", "--all", "-m", "e"]).is_err());
        assert!(parse(&["bench", "pool:m:a", "--all", "--app", "m:a", "-m", "e"]).is_err());
        assert!(parse(&["bench", "pool:m:a", "-m", "e", "--qps", "5"]).is_err());
        assert!(parse(&["bench", "-m", "e"]).is_err());
        let both = [
            "bench",
            "--all",
            "--app",
            "m:a",
            "-m",
            "e",
            "--batch",
            "--realtime",
        ];
        assert!(parse(&both).is_err());
    }
}
