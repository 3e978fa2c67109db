//! Distributed execution on Ballista 55 (DataFusion's own engine): the
//! scheduler and executor processes of the `skewless` binary, and the
//! client session of `--cluster`.
//!
//! Functions travel by name in Ballista's plans, so every side registers
//! skewless's functions: the scheduler in the session it builds for each
//! job, the executors in their function registry, the client on its
//! context (Ballista's client set-up replaces a session's functions with
//! the built-ins, so they are registered again after it). Object stores
//! are per process: each side builds them from the same environment
//! variables as the local CLI ([`crate::session::CloudStores`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::error::Result as DfResult;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};
use crate::session::CloudStores;

pub mod identity;
pub mod write;
use identity::Side;

/// The environment variable `--cluster` defaults to.
pub const CLUSTER_VAR: &str = "SKEWLESS_CLUSTER";

/// Where a client's queries run: a scheduler (`df://HOST:PORT`) or an
/// in-process cluster of N task slots (`local:N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cluster {
    Remote { host: String, port: u16 },
    Local(usize),
}

impl std::str::FromStr for Cluster {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(n) = s.strip_prefix("local:") {
            return match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Cluster::Local(n)),
                _ => Err(format!(
                    "'{s}': local:N takes a number of task slots of at least 1"
                )),
            };
        }
        let Some(rest) = s.strip_prefix("df://") else {
            return Err(format!(
                "'{s}': a cluster is df://HOST:PORT (a scheduler) or local:N (in-process)"
            ));
        };
        let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("'{s}': '{port}' is not a port number"))?;
                (host, port)
            }
            None => (rest.trim_end_matches('/'), DEFAULT_SCHEDULER_PORT),
        };
        if host.is_empty() {
            return Err(format!("'{s}': the scheduler's host is missing"));
        }
        Ok(Cluster::Remote {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cluster::Remote { host, port } => write!(f, "df://{host}:{port}"),
            Cluster::Local(n) => write!(f, "local:{n}"),
        }
    }
}

/// `--grpc-max-message-size` unless given, in MiB.
pub const DEFAULT_MESSAGE_MIB: u32 = (identity::DEFAULT_MESSAGE_LIMIT >> 20) as u32;

/// The environment variable that sets a client's gRPC message limit (MiB).
pub const MESSAGE_LIMIT_VAR: &str = "SKEWLESS_GRPC_MAX_MESSAGE_SIZE";

/// Ballista's scheduler port.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// The runtime every cluster session of a process shares: skewless's
/// object stores, spill files under `temp` when given.
fn cluster_runtime(temp: Option<&PathBuf>) -> DfResult<Arc<RuntimeEnv>> {
    let mut builder =
        RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(CloudStores::default()));
    if let Some(dir) = temp {
        builder = builder.with_temp_file_path(dir.clone());
    }
    builder.build_arc()
}

/// A session with skewless's functions and Ballista's optimizer rules,
/// over `runtime`. The scheduler plans each job in one, the executors take
/// their functions from one.
///
/// skewless's single-process window step (`EntityWindowExec`) is left out:
/// window functions run on DataFusion's window operator, whose plans travel
/// to the executors.
pub fn cluster_state(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    side: Side,
) -> DfResult<SessionState> {
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(with_codecs(config))
        .with_runtime_env(runtime)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_query_planner(Arc::new(write::QueryPlanner))
        .build();
    register(&mut state, side)?;
    Ok(state)
}

/// `config` with skewless's codecs: Ballista's, which also carry the
/// parallel write ([`write`]).
fn with_codecs(config: SessionConfig) -> SessionConfig {
    config
        .with_ballista_logical_extension_codec(Arc::new(write::LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(write::PhysicalCodec::default()))
}

/// skewless's functions and `side`'s identity functions.
fn register(registry: &mut dyn FunctionRegistry, side: Side) -> DfResult<()> {
    skewless_udfs::register_all(registry)?;
    for f in identity::functions(side) {
        registry.register_udf(f)?;
    }
    Ok(())
}

/// The configuration a cluster process starts each session from:
/// Ballista's, with skewless's Parquet codec.
fn cluster_config() -> SessionConfig {
    let mut config = with_limit(with_codecs(SessionConfig::new_with_ballista()));
    config.options_mut().execution.parquet.compression =
        Some(crate::session::DEFAULT_COMPRESSION.into());
    config
}

/// `config` with this process's gRPC message limit for Ballista's clients
/// (a client's requests, an executor's shuffle reads).
fn with_limit(mut config: SessionConfig) -> SessionConfig {
    let limit = identity::message_limit().to_string();
    if let Err(e) = config.options_mut().set(
        ballista_core::config::BALLISTA_CLIENT_GRPC_MAX_MESSAGE_SIZE,
        &limit,
    ) {
        tracing::warn!("cannot set the gRPC message limit: {e}");
    }
    config
}

/// Flags of `skewless cluster scheduler`.
#[derive(Debug, Clone, clap::Args)]
pub struct SchedulerArgs {
    /// The address to listen on (gRPC, and HTTP /healthz and /readyz).
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub bind_host: String,

    /// The port to listen on.
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_SCHEDULER_PORT)]
    pub bind_port: u16,

    /// The host name executors and clients reach this scheduler by.
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    pub external_host: String,

    /// /readyz answers 200 once this many executors are registered.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_ready_executors: usize,

    /// The largest gRPC message this process sends or takes, in MiB
    /// (plans with inlined vocabularies are large; Ballista's default is
    /// 16). Give every process of a cluster the same.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MESSAGE_MIB,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    pub grpc_max_message_size: u32,
}

/// Flags of `skewless cluster executor`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecutorArgs {
    /// The address to listen on.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub bind_host: String,

    /// The Arrow Flight port (shuffle reads and results).
    #[arg(long, value_name = "PORT", default_value_t = 50051)]
    pub bind_port: u16,

    /// The port of the executor's gRPC service (tasks pushed by the
    /// scheduler).
    #[arg(long, value_name = "PORT", default_value_t = 50052)]
    pub bind_grpc_port: u16,

    /// The host name the scheduler, clients and other executors reach this
    /// executor by (default: the address the scheduler sees).
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,

    /// The scheduler's host.
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    pub scheduler_host: String,

    /// The scheduler's port.
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_SCHEDULER_PORT)]
    pub scheduler_port: u16,

    /// How long to keep trying to reach the scheduler at start.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub scheduler_connect_timeout: u16,

    /// Tasks run at once (default: one per core).
    #[arg(long, value_name = "N")]
    pub vcores: Option<usize>,

    /// Where shuffle files and spills are written.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// The largest gRPC message this process sends or takes, in MiB
    /// (plans with inlined vocabularies are large; Ballista's default is
    /// 16). Give every process of a cluster the same.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MESSAGE_MIB,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    pub grpc_max_message_size: u32,
}

/// Runs a scheduler until it fails or the process is stopped.
pub async fn run_scheduler(args: SchedulerArgs) -> Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;

    let address: SocketAddr = format!("{}:{}", args.bind_host, args.bind_port)
        .parse()
        .map_err(|e| Error::Usage(format!("--bind-host {}: {e}", args.bind_host)))?;
    let runtime = cluster_runtime(None)?;
    let limit = args.grpc_max_message_size << 20;
    identity::set_limits(limit as usize, 0);
    let mut config = SchedulerConfig {
        bind_host: args.bind_host.clone(),
        bind_port: args.bind_port,
        external_host: args.external_host.clone(),
        min_ready_executors: args.min_ready_executors,
        grpc_server_max_decoding_message_size: limit,
        grpc_server_max_encoding_message_size: limit,
        grpc_client_max_message_size: limit,
        ..Default::default()
    };
    config.override_config_producer = Some(Arc::new(cluster_config));
    config.override_logical_codec = Some(Arc::new(write::LogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(write::PhysicalCodec::default()));
    config.override_session_builder = Some(Arc::new(move |c: SessionConfig| {
        cluster_state(c, Arc::clone(&runtime), Side::Scheduler)
    }));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(cluster_error)?;
    tracing::info!(
        "skewless {} scheduler on {address} (ready at {} executor(s): /readyz)",
        env!("CARGO_PKG_VERSION"),
        args.min_ready_executors
    );
    ballista_scheduler::scheduler_process::start_server(cluster, address, Arc::new(config))
        .await
        .map_err(cluster_error)
}

/// Runs an executor until it is stopped (SIGINT/SIGTERM: it tells the
/// scheduler and lets its running tasks finish).
pub async fn run_executor(args: ExecutorArgs) -> Result<()> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};

    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("skewless-executor-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir).map_err(|source| Error::Io {
        path: work_dir.display().to_string(),
        source,
    })?;
    let limit = args.grpc_max_message_size << 20;
    let slots = args.vcores.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    identity::set_limits(limit as usize, slots);
    let runtime = cluster_runtime(Some(&work_dir))?;
    let functions = cluster_state(cluster_config(), Arc::clone(&runtime), Side::Executor)?;
    let temp = work_dir.clone();
    let config = ExecutorProcessConfig {
        bind_host: args.bind_host.clone(),
        external_host: args.external_host.clone(),
        port: args.bind_port,
        grpc_port: args.bind_grpc_port,
        scheduler_host: args.scheduler_host.clone(),
        scheduler_port: args.scheduler_port,
        scheduler_connect_timeout_seconds: args.scheduler_connect_timeout,
        vcores: slots,
        grpc_max_decoding_message_size: limit,
        grpc_max_encoding_message_size: limit,
        work_dir: Some(work_dir.display().to_string()),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&functions))),
        override_config_producer: Some(Arc::new(cluster_config)),
        override_logical_codec: Some(Arc::new(write::LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(write::PhysicalCodec::default())),
        override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| {
            cluster_runtime(Some(&temp))
        })),
        ..Default::default()
    };
    tracing::info!(
        "skewless {} executor on {}:{} (scheduler {}:{}, work dir {})",
        env!("CARGO_PKG_VERSION"),
        args.bind_host,
        args.bind_port,
        args.scheduler_host,
        args.scheduler_port,
        work_dir.display()
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(cluster_error)
}

/// A client session whose queries run on `cluster`, with skewless's
/// functions and object stores; `config` as for a local session.
pub async fn client_context(cluster: &Cluster, config: SessionConfig) -> Result<SessionContext> {
    if let Ok(mib) = std::env::var(MESSAGE_LIMIT_VAR) {
        let mib: usize = mib
            .trim()
            .parse()
            .ok()
            .filter(|m| (1..4096).contains(m))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{MESSAGE_LIMIT_VAR}={mib}: give a number of MiB from 1 to 4095"
                ))
            })?;
        identity::set_limits(mib << 20, 0);
    }
    // Ballista's settings (round-robin repartition off, strings as Utf8)
    // once, then the message limit on them.
    let config = with_limit(config.upgrade_for_ballista());
    let runtime = cluster_runtime(None)?;
    let ctx = match cluster {
        Cluster::Remote { host, port } => {
            let state = cluster_state(config, runtime, Side::Client)?;
            SessionContext::remote_with_state(&format!("df://{host}:{port}"), state).await?
        }
        Cluster::Local(n) => {
            // The in-process scheduler and executor plan and run with
            // this state: the scheduler's side of the identity.
            let config = config.with_ballista_standalone_parallelism(*n);
            let state = cluster_state(config, runtime, Side::Scheduler)?;
            SessionContext::standalone_with_state(state).await?
        }
    };
    // Ballista's client set-up left only the built-in functions.
    register(&mut *ctx.state_ref().write(), Side::Client)?;
    check_cluster(&ctx, cluster).await?;
    Ok(ctx)
}

/// A client session for an artifact's SQL on `cluster`: like
/// [`crate::session::sealed_context`], no table functions and no
/// information schema.
pub async fn sealed_client_context(cluster: &Cluster) -> Result<SessionContext> {
    let ctx = client_context(cluster, crate::session::config_from_env(false)?).await?;
    let names: Vec<String> = ctx.state().table_functions().keys().cloned().collect();
    for name in names {
        ctx.deregister_udtf(&name);
    }
    Ok(ctx)
}

/// Checks a cluster before its first query: the scheduler answers and has
/// its executors (`/readyz`), and scheduler and executor run this
/// skewless with this function set.
async fn check_cluster(ctx: &SessionContext, cluster: &Cluster) -> Result<()> {
    if let Cluster::Remote { host, port } = cluster {
        let (status, body) = http_get(host, *port, "/readyz")
            .await
            .map_err(|e| Error::Cluster(format!("cannot reach the scheduler at {cluster}: {e}")))?;
        if status != 200 {
            return Err(Error::Cluster(format!(
                "the scheduler at {cluster} is not ready: {}",
                body.trim()
            )));
        }
    }
    let sql = format!(
        "SELECT {}() AS scheduler, {}() AS executor",
        identity::SCHEDULER,
        identity::EXECUTOR
    );
    let batches = match ctx.sql(&sql).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    }
    .map_err(|e| {
        let text = e.to_string();
        if text.contains(identity::SCHEDULER) || text.contains(identity::EXECUTOR) {
            Error::Cluster(format!(
                "the cluster at {cluster} does not know skewless's functions (a stock \
                 Ballista process?): start its scheduler and executors with `skewless \
                 cluster scheduler` and `skewless cluster executor` ({text})"
            ))
        } else {
            Error::Cluster(format!("checking the cluster at {cluster}: {text}"))
        }
    })?;
    let ours = identity::identity();
    let row = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| Error::Cluster(format!("the cluster at {cluster} answered no row")))?;
    let mut budget = PlanBudget {
        limit: identity::message_limit(),
        slots: 1,
    };
    for (i, side) in ["scheduler", "executor"].into_iter().enumerate() {
        let answer = datafusion::arrow::util::display::array_value_to_string(row.column(i), 0)
            .map_err(|e| Error::Cluster(e.to_string()))?;
        let (theirs, limit, slots) = identity::parse_answer(&answer);
        if theirs != ours {
            return Err(Error::Cluster(format!(
                "the cluster at {cluster} runs {theirs} on its {side}, this client is {ours}: \
                 run the same skewless everywhere"
            )));
        }
        budget.limit = budget.limit.min(limit.unwrap_or(usize::MAX));
        budget.slots = budget.slots.max(slots.unwrap_or(1));
    }
    *PLAN_BUDGET.lock().expect("budget lock") = Some(budget);
    Ok(())
}

/// How large a plan the cluster this process checked takes: the smallest
/// gRPC message limit on its way (client, scheduler, executor), and the
/// tasks one message to an executor may carry (its slots), each with its
/// own copy of the plan.
#[derive(Debug, Clone, Copy)]
struct PlanBudget {
    limit: usize,
    slots: usize,
}

static PLAN_BUDGET: std::sync::Mutex<Option<PlanBudget>> = std::sync::Mutex::new(None);

/// Refuses a plan too large to travel through the cluster this process
/// checked: its encoded size (as Ballista sends it), times the executor's
/// slots, must fit the smallest gRPC message limit with a quarter to spare
/// (the executors' plans carry the same literals as this one, and more).
pub fn check_plan_size(plan: &datafusion::logical_expr::LogicalPlan) -> Result<()> {
    let Some(budget) = *PLAN_BUDGET.lock().expect("budget lock") else {
        return Ok(());
    };
    let codec = write::LogicalCodec::default();
    let size =
        datafusion_proto::bytes::logical_plan_to_bytes_with_extension_codec(plan, &codec)?.len();
    let needed = size.saturating_mul(budget.slots).saturating_add(size / 4);
    tracing::info!(
        size,
        slots = budget.slots,
        limit = budget.limit,
        "plan size"
    );
    if needed > budget.limit {
        let mib = |n: usize| n as f64 / (1 << 20) as f64;
        return Err(Error::Cluster(format!(
            "the plan is {:.1} MiB (its inlined statistics), and an executor with {} task \
             slot(s) takes {:.1} MiB of plans in one message: over the cluster's gRPC message \
             limit of {:.1} MiB; start the scheduler and executors with a larger \
             --grpc-max-message-size (and the client with SKEWLESS_GRPC_MAX_MESSAGE_SIZE), or \
             fewer --vcores",
            mib(size),
            budget.slots,
            mib(needed),
            mib(budget.limit)
        )));
    }
    Ok(())
}

/// A plain HTTP/1.1 GET on loopback or a cluster host: status and body.
async fn http_get(host: &str, port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect((host, port)).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut text = Vec::new();
        s.read_to_end(&mut text).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&text).into_owned())
    };
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))??;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn cluster_error(e: ballista_core::error::BallistaError) -> Error {
    Error::Cluster(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::Cluster;

    #[test]
    fn cluster_addresses() {
        assert_eq!(
            "df://sched.example:50070".parse::<Cluster>(),
            Ok(Cluster::Remote {
                host: "sched.example".into(),
                port: 50070
            })
        );
        assert_eq!(
            "df://127.0.0.1".parse::<Cluster>(),
            Ok(Cluster::Remote {
                host: "127.0.0.1".into(),
                port: 50050
            })
        );
        assert_eq!("local:2".parse::<Cluster>(), Ok(Cluster::Local(2)));
        let bad = |s: &str| s.parse::<Cluster>().unwrap_err();
        assert!(bad("local:0").contains("at least 1"), "{}", bad("local:0"));
        assert!(bad("grpc://h:1").contains("df://HOST:PORT"));
        assert!(bad("df://h:x").contains("'x' is not a port"));
        assert!(bad("df://:50050").contains("host is missing"));
    }
}
