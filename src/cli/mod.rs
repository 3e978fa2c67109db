//! The command line: `skewless run`, `skewless repl`, `skewless functions`.
//!
//! Arguments are parsed by clap into [`Args`]; the commands themselves are
//! plain library functions so that tests and other binaries can call them.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::exec::{self, Outcome};
use crate::location::TableArg;
use crate::output::{Format, Printer};
use crate::progress::ProgressMode;
use crate::script;

mod apply;
mod eval;
mod fit;
pub mod repl;
mod serve;
mod validate;

pub(crate) use eval::replay_events;
pub(crate) use serve::seconds;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  user error: bad SQL, unreadable or invalid data, bad arguments
  2  internal error: a bug in skewless or DataFusion (please report it)

Environment:
  DATAFUSION_*            DataFusion settings, e.g. DATAFUSION_EXECUTION_TARGET_PARTITIONS=4
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP
                          credentials and endpoint for s3:// locations (GOOGLE_* for gs://, AZURE_* for az://)
  RUST_LOG                log filter for tracing output on stderr (overrides -v)";

/// skewless: SQL-first preprocessing for machine learning.
#[derive(Debug, Parser)]
#[command(name = "skewless", version, about, after_help = EXIT_CODES)]
pub struct Args {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every statement of a SQL script in order; query results go to stdout.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Interactive SQL over the same session (\? for help).
    Repl(ReplArgs),
    /// Fit a transform (one SELECT): compute its statistics in one pass and
    /// write the versioned artifact.
    #[command(after_help = EXIT_CODES)]
    Fit(FitArgs),
    /// Apply a fitted artifact to new data in batch and write the features.
    #[command(after_help = EXIT_CODES)]
    Apply(ApplyArgs),
    /// Evaluate a fitted artifact on raw rows, one JSON object per line on
    /// stdin, into one JSON line of features per input line on stdout.
    #[command(after_help = EVAL_HELP)]
    Eval(EvalArgs),
    /// Serve fitted artifacts over HTTP: TensorFlow Serving / KServe v1
    /// REST, the Open Inference Protocol (v2), NDJSON, health and metrics.
    #[command(after_help = serve::SERVE_HELP)]
    Serve(serve::ServeArgs),
    /// Compare new data with the artifact's training profile (skew) or an
    /// earlier profile (drift): distances, out-of-range and unseen shares,
    /// NULL/NaN growth, schema; a table, JSON and an HTML report.
    #[command(after_help = validate::VALIDATE_HELP)]
    Validate(validate::ValidateArgs),
    /// List skewless's SQL functions with their documentation.
    Functions,
    /// The processes of a Ballista cluster that knows skewless's functions
    /// (see docs/cluster.md).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Serve skewless's SQL over Arrow Flight SQL to the REPL (`repl
    /// --connect`), ADBC, JDBC and BI tools: shared read-only tables, a
    /// session per client, limits on every query.
    #[command(after_help = crate::query::QUERY_SERVER_HELP)]
    QueryServer(crate::query::QueryServerArgs),
}

/// Run the statements on a query server instead of in this process.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArg {
    /// A `skewless query-server` to run the statements on: grpc://HOST:PORT.
    /// --table, --cluster and --overwrite are the server's then.
    #[arg(long, value_name = "grpc[+tls]://HOST:PORT", conflicts_with_all = ["tables", "cluster"])]
    pub connect: Option<String>,

    /// With --connect: a file holding the server's token
    /// (SKEWLESS_QUERY_TOKEN gives the token itself).
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub token_file: Option<PathBuf>,

    /// With --connect grpc+tls://: the certificate (PEM) the server's is
    /// checked against, instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub tls_ca: Option<PathBuf>,
}

impl ConnectArg {
    /// The connection, when --connect asks for one.
    pub async fn connect(&self) -> Result<Option<crate::query::client::Remote>> {
        let Some(url) = &self.connect else {
            return Ok(None);
        };
        let token = crate::query::read_token(self.token_file.as_ref())?;
        crate::query::client::Remote::connect(url, token, self.tls_ca.as_deref())
            .await
            .map(Some)
    }
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run a scheduler: it plans the queries of `--cluster df://HOST:PORT`
    /// clients and hands their tasks to executors (HTTP /healthz and
    /// /readyz on the same port).
    Scheduler(crate::cluster::SchedulerArgs),
    /// Run an executor: it registers with the scheduler and runs tasks.
    Executor(crate::cluster::ExecutorArgs),
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The artifact written by `skewless fit`.
    #[arg(value_name = "ARTIFACT.json")]
    pub artifact: PathBuf,

    /// Refuse the artifact unless it is signed with the key in FILE
    /// (see `fit --sign-key`).
    #[arg(long, value_name = "FILE", env = "SKEWLESS_VERIFY_KEY")]
    pub verify_key: Option<PathBuf>,

    /// Read rows from this file instead of stdin.
    #[arg(long, value_name = "ROWS.ndjson")]
    pub input: Option<PathBuf>,

    /// Print the compiled expression of each served output and exit.
    #[arg(long)]
    pub explain: bool,

    /// The longest input line accepted, in bytes; a longer line gets an
    /// error line and is skipped without being held in memory.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,

    /// Measure instead of printing features: evaluate every row ROUNDS
    /// times (after one warm-up round) and print the median and p99 time
    /// per row of the typed path (JSON parsed beforehand) and of JSON line
    /// to JSON line.
    #[arg(long, value_name = "ROUNDS", num_args = 0..=1, default_missing_value = "5")]
    pub latency: Option<usize>,

    /// Window features: first replay this event log (Parquet, CSV or
    /// NDJSON; a file, directory or glob, local or s3://) into the online
    /// state, in time order. A transform over several tables takes one
    /// TABLE=LOCATION per table, merged by time.
    #[arg(long, value_name = "[TABLE=]LOCATION")]
    pub events: Vec<String>,

    /// A transform over several tables (events and labels in a UNION):
    /// the table requests are rows of. By default, the one table whose rows
    /// reach the output.
    #[arg(long, value_name = "TABLE")]
    pub requests: Option<String>,

    /// Window features: how late an event may come behind its entity's
    /// newest event and still count (and a request still be exact), e.g.
    /// 10m, 2h, 1d, 500ms (a timestamp or date time column), or a plain
    /// number of units (an integer time column).
    #[arg(long, value_name = "DURATION", default_value = "0")]
    pub lateness: String,

    /// Window features: the most events one entity keeps per stream; a
    /// request whose window needs more fails rather than serving a number
    /// computed from part of them.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_events_per_entity: usize,

    /// Window features: push each request as an event once it is answered
    /// (a row that is scored and then becomes history, as every row is in
    /// batch).
    #[arg(long)]
    pub push_requests: bool,

    /// At the end, print on stderr the `skewless validate` report of the
    /// requests evaluated against the artifact's training profile (the same
    /// slots and formulas; see docs/validation.md).
    #[arg(long)]
    pub validate: bool,

    /// With --validate, also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE", requires = "validate")]
    pub validate_json: Option<PathBuf>,
}

/// `eval --max-line-bytes` unless given: 1 MiB, far above any row of
/// features' inputs.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

const EVAL_HELP: &str = "\
Each input line is a JSON object of raw input columns; fields the transform
does not read are skipped unread, a missing nullable column is NULL, a key
given twice is an error. Blank lines are skipped; a UTF-8 byte order mark
at the start is accepted; a line longer than --max-line-bytes (1 MiB unless
set) gets an error line. Each output line
is a JSON object of the served features (training-only --label outputs are
left out), in the transform's order. Floats print in their shortest form that
reads back to the same value; NaN and infinities print as the strings \"NaN\" (\"-NaN\"),
\"Infinity\" and \"-Infinity\" (and are accepted so in float inputs).
A line that fails gives {\"error\": \"...\"} and evaluation goes on; the
number of failed lines is reported on stderr.

Window features: a line {\"event\": {...}} pushes an event (a row of the
transform's input) into the online state and gives no output line (unless
it is bad: an error line); any other line is a request, answered as of its
time column. Times are RFC 3339 strings (with an offset when the column has
a time zone, without one when it has none; YYYY-MM-DD for dates) or
integers in the column's unit. --events replays a historical log first.
What the state held and counted (late, dropped, stale) is reported on
stderr at the end.

Example:
  echo '{\"age\": 39, \"education\": \"Bachelors\"}' | skewless eval census.json

Exit codes: 0 success (even with failed lines), 1 unreadable artifact or input.";

/// Where the queries run.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArg {
    /// Run the queries on a cluster: df://HOST:PORT (a `skewless cluster
    /// scheduler`) or local:N (Ballista in this process, N task slots).
    #[arg(long, value_name = "df://HOST:PORT|local:N", env = crate::cluster::CLUSTER_VAR)]
    pub cluster: Option<crate::cluster::Cluster>,
}

/// Inputs registered before any SQL runs.
#[derive(Debug, Clone, clap::Args)]
pub struct TableArgs {
    /// Register a table: NAME=LOCATION, a file, directory or glob, local or
    /// s3://, gs://, az:// (Parquet, CSV with header, NDJSON). Repeatable.
    #[arg(long = "table", value_name = "NAME=LOCATION")]
    pub tables: Vec<TableArg>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The SQL script to run ('-' reads it from stdin).
    #[arg(value_name = "SCRIPT.sql")]
    pub script: PathBuf,

    #[command(flatten)]
    pub tables: TableArgs,

    /// How query results are printed.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,

    /// Rows a result shows at most in the table format (0: all); the
    /// other formats stream every row.
    #[arg(long, value_name = "N", default_value_t = crate::output::DEFAULT_MAX_ROWS)]
    pub max_rows: usize,

    /// Let `COPY … TO` replace an existing output (without it, an existing
    /// file or non-empty directory is an error).
    #[arg(long)]
    pub overwrite: bool,

    /// Progress of long statements on stderr.
    #[arg(long, value_enum, default_value_t)]
    pub progress: ProgressMode,

    #[command(flatten)]
    pub cluster: ClusterArg,

    #[command(flatten)]
    pub connect: ConnectArg,
}

#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// The transform: one SELECT (FROM, JOIN and WHERE allowed).
    #[arg(value_name = "TRANSFORM.sql")]
    pub transform: PathBuf,

    #[command(flatten)]
    pub tables: TableArgs,

    #[command(flatten)]
    pub cluster: ClusterArg,

    /// Where to write the artifact (JSON).
    #[arg(long, value_name = "ARTIFACT.json")]
    pub out: PathBuf,

    /// Replace an existing artifact at --out.
    #[arg(long)]
    pub overwrite: bool,

    /// An output column that is a training label: produced in batch, not at
    /// serving time. Repeatable.
    #[arg(long = "label", value_name = "COLUMN")]
    pub labels: Vec<String>,

    /// Sign the artifact with the secret key in FILE (HMAC-SHA-256 over its
    /// canonical content): `apply`/`eval --verify-key FILE` then refuse any
    /// artifact the key did not sign. Make a key with
    /// `openssl rand -hex 32 > FILE`.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// Skip the check that the transform can be served one row at a time
    /// (for transforms with JOINs or aggregates, applied in batch only).
    #[arg(long)]
    pub batch_only: bool,

    /// Progress of the statistics pass on stderr.
    #[arg(long, value_enum, default_value_t)]
    pub progress: ProgressMode,

    /// The training profile of the inputs served outputs read (what
    /// `skewless validate` compares new data with): `full` (default),
    /// `summary` (counts, NULLs, non-finite values, min and max: no
    /// histogram, no memory per distinct value) or `none`, for every
    /// column or, as COLUMN=DEPTH, for one. Repeatable.
    #[arg(long = "profile", value_name = "[COLUMN=]full|summary|none")]
    pub profile: Vec<String>,

    /// Quantile bins of a numeric column's profile.
    #[arg(long, value_name = "B", default_value_t = crate::profile::DEFAULT_BINS,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub profile_bins: u64,

    /// The most values a categorical column's profile lists (the rest are
    /// summed; the distinct count stays exact).
    #[arg(long, value_name = "N", default_value_t = crate::profile::DEFAULT_CAP,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub profile_cap: u64,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The artifact written by `skewless fit`.
    #[arg(value_name = "ARTIFACT.json")]
    pub artifact: PathBuf,

    #[command(flatten)]
    pub tables: TableArgs,

    #[command(flatten)]
    pub cluster: ClusterArg,

    /// Refuse the artifact unless it is signed with the key in FILE
    /// (see `fit --sign-key`).
    #[arg(long, value_name = "FILE", env = "SKEWLESS_VERIFY_KEY")]
    pub verify_key: Option<PathBuf>,

    /// Where to write the features: a .parquet, .csv or .ndjson/.json file,
    /// or a directory (partitioned Parquet files); local or s3://.
    #[arg(long, value_name = "OUTPUT")]
    pub out: String,

    /// Write one hive-style directory per value of an output column, e.g.
    /// `--partition-by split` → OUTPUT/split=train/, OUTPUT/split=eval/
    /// (OUTPUT is then a directory; the column moves into the path).
    /// Repeatable.
    #[arg(long = "partition-by", value_name = "COLUMN")]
    pub partition_by: Vec<String>,

    /// Replace an existing output (a file, or a directory as a whole);
    /// without it, an existing file or non-empty directory is an error.
    #[arg(long)]
    pub overwrite: bool,

    /// Progress of the write on stderr.
    #[arg(long, value_enum, default_value_t)]
    pub progress: ProgressMode,
}

#[derive(Debug, clap::Args)]
pub struct ReplArgs {
    #[command(flatten)]
    pub tables: TableArgs,

    #[command(flatten)]
    pub cluster: ClusterArg,

    /// Rows a result shows at most (0: all).
    #[arg(long, value_name = "N", default_value_t = crate::output::DEFAULT_MAX_ROWS)]
    pub max_rows: usize,

    /// Let `COPY … TO` replace an existing output.
    #[arg(long)]
    pub overwrite: bool,

    /// Progress of long statements on stderr.
    #[arg(long, value_enum, default_value_t)]
    pub progress: ProgressMode,

    #[command(flatten)]
    pub connect: ConnectArg,
}

/// Sets up tracing on stderr: `RUST_LOG` if set, otherwise by `-v` count.
pub fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            // A failed cluster job is the command's error: said once.
            0 => "warn,ballista_core::execution_plans::distributed_query=off",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A multi-threaded tokio runtime (`workers` threads, or one per core).
fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder.enable_all().build().map_err(|e| Error::Io {
        path: "<tokio runtime>".into(),
        source: e,
    })
}

/// Runs a parsed command line.
pub fn main(args: Args) -> Result<()> {
    if let Command::Eval(eval) = &args.command {
        // Serving needs no async runtime.
        return eval::eval_command(eval);
    }
    if let Command::Serve(serve) = args.command {
        // The server builds its own runtime and handles its own signals.
        return serve::serve_command(serve);
    }
    let runtime = runtime(None)?;
    // SIGTERM (and SIGINT, but in the REPL, which cancels the running
    // statement instead) stops the command: its unfinished outputs are
    // removed and it exits with 128 + the signal's number.
    // A cluster process ends on SIGTERM or SIGINT as its normal stop (exit
    // 0): an executor through Ballista's own stop (on SIGINT it tells the
    // scheduler and lets its running tasks finish, for up to 30 s here).
    let repl = matches!(args.command, Command::Repl(_));
    let service = match &args.command {
        Command::Cluster(ClusterCommand::Executor(_)) => Some(true),
        Command::Cluster(ClusterCommand::Scheduler(_)) | Command::QueryServer(_) => Some(false),
        _ => None,
    };
    let signal =
        crate::cancel::on_signal(!repl && service != Some(true)).map_err(|e| Error::Io {
            path: "<signal handler>".into(),
            source: e,
        })?;
    let result = runtime.block_on(async {
        let command = async {
            match args.command {
                Command::Run(run) => run_command(run).await,
                Command::Fit(fit) => fit::fit_command(fit).await,
                Command::Apply(apply) => apply::apply_command(apply).await,
                Command::Validate(validate) => validate::validate_command(validate).await,
                Command::Eval(eval) => eval::eval_command(&eval),
                Command::Serve(_) => unreachable!("served above"),
                Command::Repl(repl) => {
                    let backend = match repl.connect.connect().await? {
                        Some(remote) => repl::Backend::Remote(Box::new(remote)),
                        None => repl::Backend::Local(
                            session_on(repl.cluster.cluster.as_ref(), &repl.tables).await?,
                        ),
                    };
                    let options = exec::Options {
                        progress: repl.progress.enabled(),
                        overwrite: repl.overwrite,
                        cancel: None,
                    };
                    repl::run(backend, options, repl.max_rows).await
                }
                Command::QueryServer(a) => crate::query::run(a).await,
                Command::Cluster(ClusterCommand::Scheduler(a)) => {
                    crate::cluster::run_scheduler(a).await
                }
                Command::Cluster(ClusterCommand::Executor(a)) => {
                    crate::cluster::run_executor(a).await
                }
                Command::Functions => {
                    let mut out = std::io::stdout().lock();
                    write_functions(&mut out).map_err(|e| Error::Io {
                        path: "<stdout>".into(),
                        source: e,
                    })
                }
            }
        };
        let Some(executor) = service else {
            return tokio::select! {
                result = command => result,
                Ok(signal) = signal => Err(Error::Interrupted(signal)),
            };
        };
        tokio::pin!(command);
        tokio::select! {
            result = &mut command => result,
            Ok(signal) = signal => {
                tracing::info!("{}: stopping", signal.name);
                if !executor {
                    return Ok(());
                }
                let _ = signal_hook::low_level::raise(signal_hook::consts::SIGINT);
                tokio::time::timeout(std::time::Duration::from_secs(30), command)
                    .await
                    .unwrap_or(Ok(()))
            }
        }
    });
    // Never wait long for work that was given up (a cancelled statement
    // finishing its current batch).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if matches!(result, Err(Error::Interrupted(_))) {
        // Now that no task runs, remove what interrupted writes left.
        crate::write::target::remove_pending();
    }
    result
}

/// A new session with the `--table` inputs registered.
pub async fn session_with_tables(tables: &TableArgs) -> Result<SessionContext> {
    session_on(None, tables).await
}

/// A session with the `--table` inputs registered whose queries run on
/// `cluster`, or in this process without one.
pub async fn session_on(
    cluster: Option<&crate::cluster::Cluster>,
    tables: &TableArgs,
) -> Result<SessionContext> {
    let ctx = match cluster {
        None => crate::session::new_context()?,
        Some(cluster) => crate::cluster::client_context(cluster, crate::session::config()?).await?,
    };
    for t in &tables.tables {
        crate::location::register_table(&ctx, &t.name, &t.location).await?;
    }
    Ok(ctx)
}

async fn run_command(args: RunArgs) -> Result<()> {
    let text = read_script(&args.script)?;
    let backend = match args.connect.connect().await? {
        Some(remote) => repl::Backend::Remote(Box::new(remote)),
        None => {
            repl::Backend::Local(session_on(args.cluster.cluster.as_ref(), &args.tables).await?)
        }
    };
    let stdout = BufWriter::new(std::io::stdout());
    let mut printer = Printer::new(args.format, stdout);
    printer.max_rows = args.max_rows;
    let options = exec::Options {
        progress: args.progress.enabled(),
        overwrite: args.overwrite,
        cancel: None,
    };
    run_script(&backend, &text, &mut printer, options).await
}

/// Writes `text` to stdout and flushes it. A closed reader (`| head`) or a
/// full disk is an error returned to the caller, never a panic; `main`
/// treats a broken pipe as success.
pub(crate) fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io {
            path: "<stdout>".into(),
            source,
        })
}

pub(crate) fn read_script(path: &PathBuf) -> Result<String> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(io)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(io)
    }
}

/// Runs every statement of `text` in order, stopping at the first failure,
/// which is reported with its position in the script.
pub async fn run_script<W: Write + Send>(
    backend: &repl::Backend,
    text: &str,
    printer: &mut Printer<W>,
    options: exec::Options,
) -> Result<()> {
    for statement in script::split(text) {
        tracing::info!(
            index = statement.index,
            line = statement.line,
            "running {}",
            statement.head()
        );
        let outcome = backend
            .execute(&statement.sql, printer, options.clone(), None)
            .await
            .map_err(|e| Error::Statement {
                index: statement.index,
                line: statement.line,
                head: statement.head(),
                source: Box::new(e),
            })?;
        if let Outcome::Written(rows) = outcome {
            eprintln!(
                "statement {} (line {}): {} rows written",
                statement.index,
                statement.line,
                crate::progress::group_digits(rows as usize)
            );
        }
    }
    Ok(())
}

/// The function list of `skewless functions` and the REPL's `\functions`:
/// grouped by kind, each with its syntax and the first sentence of its
/// documentation.
pub fn write_functions(out: &mut dyn Write) -> std::io::Result<()> {
    use skewless_udfs::scalar::FullPassKind;
    let scalars = skewless_udfs::scalar_functions();
    let (full_pass, instance): (Vec<_>, Vec<_>) = scalars
        .iter()
        .partition(|f| FullPassKind::from_name(f.name()).is_some());
    let aggregates = skewless_udfs::aggregate_functions();
    let windows = skewless_udfs::window_functions();
    fn docs(
        mut list: Vec<(String, Option<&datafusion::logical_expr::Documentation>)>,
    ) -> Vec<(String, Option<&datafusion::logical_expr::Documentation>)> {
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }
    let groups = [
        (
            "Full-pass functions (statistics fitted over the whole input)",
            docs(
                full_pass
                    .iter()
                    .map(|f| (f.name().to_string(), f.documentation()))
                    .collect(),
            ),
        ),
        (
            "Instance-level functions",
            docs(
                instance
                    .iter()
                    .map(|f| (f.name().to_string(), f.documentation()))
                    .collect(),
            ),
        ),
        (
            "Statistics (aggregates, GROUP BY works)",
            docs(
                aggregates
                    .iter()
                    .map(|f| (f.name().to_string(), f.documentation()))
                    .collect(),
            ),
        ),
        (
            "Window aggregations (an entity's events before each row: OVER (PARTITION BY entity))",
            // In the kernel's order: count, sum, mean, min, max, var, stddev, last, distinct.
            windows
                .iter()
                .map(|f| (f.name().to_string(), f.documentation()))
                .collect(),
        ),
    ];
    for (i, (title, functions)) in groups.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{title}:")?;
        for (name, doc) in functions {
            match doc {
                Some(doc) => {
                    writeln!(out, "  {}", doc.syntax_example)?;
                    writeln!(out, "      {}", first_sentence(&doc.description))?;
                }
                None => writeln!(out, "  {name}")?,
            }
        }
    }
    Ok(())
}

/// The first sentence of a description (up to the first ". ").
fn first_sentence(text: &str) -> String {
    let sentence = text.split(". ").next().unwrap_or_default();
    let sentence = sentence.trim_end_matches('.');
    format!("{sentence}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_flags() {
        let args = Args::try_parse_from([
            "skewless",
            "run",
            "job.sql",
            "--table",
            "census=data/adult.parquet",
            "--table",
            "t2=s3://bucket/dir/",
            "--format",
            "ndjson",
            "--progress",
            "never",
            "-vv",
        ])
        .unwrap();
        assert_eq!(args.verbose, 2);
        let Command::Run(run) = args.command else {
            panic!("not run")
        };
        assert_eq!(run.script, PathBuf::from("job.sql"));
        assert_eq!(run.format, Format::Ndjson);
        assert_eq!(run.progress, ProgressMode::Never);
        assert_eq!(run.tables.tables.len(), 2);
        assert_eq!(run.tables.tables[1].location, "s3://bucket/dir/");
    }

    #[test]
    fn defaults_and_bad_values() {
        let args = Args::try_parse_from(["skewless", "run", "x.sql"]).unwrap();
        let Command::Run(run) = args.command else {
            panic!("not run")
        };
        assert_eq!(run.format, Format::Table);
        assert_eq!(run.progress, ProgressMode::Auto);
        assert!(Args::try_parse_from(["skewless", "run", "x.sql", "--format", "xml"]).is_err());
        assert!(Args::try_parse_from(["skewless", "run", "x.sql", "--table", "nope"]).is_err());
        assert!(Args::try_parse_from(["skewless", "repl", "--table", "a=b.csv"]).is_ok());
    }
}
