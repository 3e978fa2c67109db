//! `skewless serve`: flags → [`crate::server::run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::server::{Config, Limits};

pub(super) const SERVE_HELP: &str = "\
Routes (see docs/server.md):
  POST /v1/models/NAME[/versions/N]:predict   {\"instances\": [row, …]} or {\"inputs\": {column: [values]}}
  POST /v1/models/NAME:eval                   JSON lines in, `skewless eval`'s lines out
  POST /v1/models/NAME:events                 window features: {\"instances\": [event, …]} or NDJSON events
  GET  /v1/models/NAME[/metadata]             status; inputs and outputs with types
  POST /v2/models/NAME/infer                  Open Inference Protocol: one tensor per input column
  GET  /v2/models/NAME[/ready], /v2/health/live, /v2/health/ready, /metrics

Signals: SIGHUP reloads every model (a failed load keeps the old version;
--poll does the same when a model's source changes);
SIGTERM or SIGINT drains (readiness 503, requests in flight answered) and
exits; a second one exits at once.

Exit codes:
  0  stopped by a signal after draining
  1  an artifact does not load, the address cannot be bound, bad flags";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The models: an artifact file, or a directory of numbered versions
    /// (DIR/1/…json, DIR/2/…json; the highest is served), each optionally
    /// named NAME=… (by default the file's or directory's name).
    #[arg(value_name = "[NAME=]ARTIFACT", required = true)]
    pub models: Vec<String>,

    /// The address to listen on. Binding beyond loopback needs --public.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8501")]
    pub bind: SocketAddr,

    /// Allow --bind on an address other than loopback.
    #[arg(long)]
    pub public: bool,

    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// A file holding the bearer token every request but the health probes
    /// must carry (Authorization: Bearer TOKEN), compared in constant time.
    #[arg(long, value_name = "FILE", env = "SKEWLESS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Refuse artifacts unless signed with the key in FILE (fit --sign-key).
    #[arg(long, value_name = "FILE", env = "SKEWLESS_VERIFY_KEY")]
    pub verify_key: Option<PathBuf>,

    /// The largest request body, in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,

    /// The most rows (instances, column values, tensor rows or lines) in one
    /// request (400 beyond).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_rows)]
    pub max_rows: usize,

    /// The deepest JSON nesting of a body (400 beyond).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_json_depth)]
    pub max_json_depth: usize,

    /// The longest JSON string of a body, in bytes (400 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_string_bytes)]
    pub max_string_bytes: usize,

    /// The largest request head (request line and headers), in bytes
    /// (at least 8192; 431 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_header_bytes)]
    pub max_header_bytes: usize,

    /// Seconds a client has to send a request's headers (the connection is
    /// closed after).
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().header_read_timeout.as_secs_f64())]
    pub header_read_timeout: f64,

    /// Seconds a client has to send a request's body (408 after).
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().body_read_timeout.as_secs_f64())]
    pub body_read_timeout: f64,

    /// The most client connections open at once (a 503 and close beyond).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,

    /// The most requests answered at once (503 with Retry-After beyond).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_in_flight)]
    pub max_in_flight: usize,

    /// Live skew: `GET /v1/models/M/validation` and the validation metrics
    /// cover about the last N rows served (kept as one tally per second).
    #[arg(long, value_name = "N", default_value_t = Limits::default().validation_rows)]
    pub validation_rows: u64,

    /// Window features: replay this event log into a model's online state
    /// at start (as `eval --events`; ignored when --state reads a
    /// snapshot). MODEL= names the model when several have windows.
    #[arg(long, value_name = "[MODEL=][TABLE=]LOCATION")]
    pub events: Vec<String>,

    /// Window features: a snapshot of a model's online state, read at
    /// start when the file exists and written (atomically) at shutdown, so
    /// a restart loses no event. MODEL= as for --events.
    #[arg(long, value_name = "[MODEL=]FILE")]
    pub state: Vec<String>,

    /// Window features: how late an event may come behind its entity's
    /// newest event and still count (10m, 2h, 500ms; a plain number for an
    /// integer time column), as for `eval --lateness`.
    #[arg(long, value_name = "DURATION", default_value = "0")]
    pub lateness: String,

    /// Window features: the most events one entity keeps per stream.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_events_per_entity: usize,

    /// Look for a new version of each model every SECONDS (a higher
    /// numbered directory, or the artifact file changed) and reload it as
    /// SIGHUP does. Off by default.
    #[arg(long, value_name = "SECONDS")]
    pub poll: Option<f64>,

    /// Seconds shutdown waits for connections to finish.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().drain_timeout.as_secs_f64())]
    pub drain_timeout: f64,
}

pub(crate) fn seconds(flag: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--{flag} {s}: expected a positive number of seconds"
            ))
        })
}

pub(super) fn serve_command(args: ServeArgs) -> Result<()> {
    if !args.bind.ip().is_loopback() && !args.public {
        return Err(Error::Usage(format!(
            "--bind {}: not a loopback address; add --public to serve beyond this machine \
             (and consider --token-file)",
            args.bind
        )));
    }
    let token = match &args.token_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
            let token = text.trim().as_bytes().to_vec();
            if token.is_empty() {
                return Err(Error::Usage(format!(
                    "--token-file {}: the file is empty",
                    path.display()
                )));
            }
            Some(token)
        }
    };
    let verify_key = args
        .verify_key
        .as_deref()
        .map(crate::artifact::SigningKey::from_file)
        .transpose()?;
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_rows: args.max_rows,
        max_json_depth: args.max_json_depth,
        max_string_bytes: args.max_string_bytes,
        max_header_bytes: args.max_header_bytes,
        header_read_timeout: seconds("header-read-timeout", args.header_read_timeout)?,
        body_read_timeout: seconds("body-read-timeout", args.body_read_timeout)?,
        max_connections: args.max_connections.max(1),
        max_in_flight: args.max_in_flight.max(1),
        drain_timeout: seconds("drain-timeout", args.drain_timeout)?,
        validation_rows: args.validation_rows.max(1),
    };
    crate::server::run(Config {
        bind: args.bind,
        threads: args.threads,
        limits,
        token,
        verify_key,
        models: args.models,
        online: crate::serving::OnlineLimits {
            lateness: super::eval::parse_lateness(&args.lateness)?,
            max_events_per_entity: args.max_events_per_entity,
        },
        events: args.events,
        state: args.state,
        poll: args.poll.map(|s| seconds("poll", s)).transpose()?,
    })
}
