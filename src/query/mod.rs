//! `skewless query-server`: skewless's SQL over Arrow Flight SQL.
//!
//! The server holds shared, read-only tables (`--table`), gives every client
//! connection a session of its own (`SET`, views and external tables stay
//! in it) and runs each query under the server's limits: a memory pool per
//! query, a time limit, and a bounded number of queries at once with a
//! bounded queue. Clients touch no file but through `--allow-location`;
//! with a token, every call must carry it.
//!
//! - [`engine`]: sessions, planned and running queries, limits;
//! - [`service`]: the Flight SQL calls;
//! - [`guard`]: what clients may touch;
//! - [`client`]: skewless's own client (`repl --connect`, `run --connect`).

pub mod client;
pub mod engine;
pub mod guard;
pub mod service;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use crate::error::{Error, Result};
use crate::location::TableArg;
use engine::{Engine, Limits};

/// The default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:50051";

/// The variable a token may come from instead of `--token-file` (server)
/// and that `--connect` clients send.
pub const TOKEN_VAR: &str = "SKEWLESS_QUERY_TOKEN";

pub(crate) const QUERY_SERVER_HELP: &str = "\
Clients: skewless repl --connect grpc://HOST:PORT, skewless run --connect …,
ADBC (adbc-driver-flightsql), the Arrow Flight SQL JDBC driver (DBeaver).
See docs/query-server.md.

Safe by default: loopback only (--public to bind beyond), no client file
access (--allow-location), a memory pool, a time limit and a bounded queue
for every query. With --token-file (or SKEWLESS_QUERY_TOKEN) every call must
carry `authorization: Bearer TOKEN` (or Basic auth with the token as
password, for the handshake); others get UNAUTHENTICATED.

Signals: SIGTERM or SIGINT stops the server (exit 0).";

#[derive(Debug, clap::Args)]
pub struct QueryServerArgs {
    /// The address to listen on (port 0: any free port, printed at start).
    /// Binding beyond loopback needs --public.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,

    /// Allow --bind on an address other than loopback.
    #[arg(long)]
    pub public: bool,

    /// A table every client sees, read-only: NAME=LOCATION, a file,
    /// directory or glob, local or s3://, gs://, az://. Repeatable.
    #[arg(long = "table", value_name = "NAME=LOCATION")]
    pub tables: Vec<TableArg>,

    /// Run the queries on a cluster: df://HOST:PORT (a `skewless cluster
    /// scheduler`) or local:N.
    #[arg(long, value_name = "df://HOST:PORT|local:N", env = crate::cluster::CLUSTER_VAR)]
    pub cluster: Option<crate::cluster::Cluster>,

    /// A file holding the token every call must carry (compared in
    /// constant time). SKEWLESS_QUERY_TOKEN gives the token itself.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// A location prefix clients may read (CREATE EXTERNAL TABLE) and
    /// write (COPY … TO): a local directory, or s3://BUCKET/PATH and the
    /// like. Repeatable. Without it clients only query the shared tables.
    #[arg(long = "allow-location", value_name = "PREFIX")]
    pub allow_locations: Vec<String>,

    /// Memory one query may hold (e.g. 512MiB, 4GiB); sorts, aggregates
    /// and joins that can spill to disk do so beyond it, others fail with
    /// RESOURCE_EXHAUSTED, alone.
    #[arg(long, value_name = "SIZE", default_value = "2GiB", value_parser = parse_size)]
    pub query_memory: usize,

    /// Seconds a query may run before it is stopped (DEADLINE_EXCEEDED).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600.0)]
    pub query_timeout: f64,

    /// Queries running at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub max_concurrent_queries: usize,

    /// Queries waiting for a slot; one more is refused at once
    /// (RESOURCE_EXHAUSTED).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_queued_queries: usize,

    /// Client sessions (connections) at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_sessions: usize,

    /// Seconds a session may go unused before it ends (its views and
    /// settings go; the client's next call says so).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800.0)]
    pub idle_timeout: f64,

    /// Serve TLS (clients connect to grpc+tls://) with this certificate
    /// chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `512MiB`, `4GiB`, `1000000` (bytes).
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{s}': expected a size such as 512MiB or 4GiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("'{s}': unknown unit '{other}' (use KiB, MiB, GiB)")),
    };
    let bytes = number * scale as f64;
    if !(bytes >= 1.0 && bytes < usize::MAX as f64) {
        return Err(format!("'{s}': expected a positive size"));
    }
    Ok(bytes as usize)
}

/// The token, from `--token-file` or `SKEWLESS_QUERY_TOKEN`.
pub fn read_token(file: Option<&PathBuf>) -> Result<Option<String>> {
    let (text, from) = match file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?,
            format!("--token-file {}", path.display()),
        ),
        None => match std::env::var(TOKEN_VAR) {
            Ok(t) => (t, TOKEN_VAR.to_string()),
            Err(_) => return Ok(None),
        },
    };
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(Error::Usage(format!("{from}: the token is empty")));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Usage(format!(
            "{from}: the token must be printable ASCII without spaces (it travels in a header)"
        )));
    }
    Ok(Some(token))
}

/// One client connection, as the calls on it see it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub id: u64,
}

/// A byte stream a client connection runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection's byte stream; its session ends when it is dropped.
struct Conn {
    io: Box<dyn Io>,
    info: ConnInfo,
    engine: Weak<Engine>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.upgrade() {
            engine.close(self.info.id);
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_write_vectored()
    }
}

/// Checks every call's credentials: `Bearer TOKEN`, or `Basic` with the
/// token as password (what Flight clients send to the handshake). The
/// SHA-256 digests are compared, in constant time.
#[derive(Clone)]
struct Auth {
    digest: Option<[u8; 32]>,
}

impl Auth {
    fn digest(token: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token).into()
    }

    fn check(
        &self,
        request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        use subtle::ConstantTimeEq;
        let Some(expected) = &self.digest else {
            return Ok(request);
        };
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let given: Option<Vec<u8>> = if let Some(token) = header.strip_prefix("Bearer ") {
            Some(token.trim().as_bytes().to_vec())
        } else if let Some(basic) = header.strip_prefix("Basic ") {
            use base64::Engine as _;
            use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
            // Go's Flight client leaves the padding out.
            let engine = GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                GeneralPurposeConfig::new()
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent),
            );
            engine.decode(basic.trim()).ok().and_then(|b| {
                let at = b.iter().position(|&c| c == b':')?;
                Some(b[at + 1..].to_vec())
            })
        } else {
            None
        };
        match given {
            Some(token) if bool::from(Self::digest(&token).ct_eq(expected)) => Ok(request),
            Some(_) => Err(tonic::Status::unauthenticated(
                "the token is wrong (authorization: Bearer TOKEN)",
            )),
            None => Err(tonic::Status::unauthenticated(
                "this server needs a token: authorization: Bearer TOKEN \
                 (skewless: --token-file or SKEWLESS_QUERY_TOKEN; ADBC: \
                 adbc.flight.sql.authorization_header)",
            )),
        }
    }
}

/// Runs the query server until a signal stops it.
pub async fn run(args: QueryServerArgs) -> Result<()> {
    if !args.bind.ip().is_loopback() && !args.public {
        return Err(Error::Usage(format!(
            "--bind {}: not a loopback address; add --public to serve beyond this machine \
             (and consider --token-file)",
            args.bind
        )));
    }
    let token = read_token(args.token_file.as_ref())?;
    let allowed = guard::Allowed::new(&args.allow_locations).map_err(Error::Usage)?;
    let limits = Limits {
        query_memory: args.query_memory,
        query_timeout: Some(crate::cli::seconds("query-timeout", args.query_timeout)?),
        max_queries: args.max_concurrent_queries.max(1),
        max_queued: args.max_queued_queries,
        idle_timeout: crate::cli::seconds("idle-timeout", args.idle_timeout)?,
        max_sessions: args.max_sessions.max(1),
    };
    // The shared tables are resolved once, in a session of the server's.
    let base = match &args.cluster {
        None => crate::session::new_context()?,
        Some(cluster) => crate::cluster::client_context(cluster, crate::session::config()?).await?,
    };
    let mut tables = Vec::new();
    for t in &args.tables {
        crate::location::register_table(&base, &t.name, &t.location).await?;
        let provider = base.table_provider(t.name.as_str()).await?;
        tables.push((t.name.clone(), provider));
    }
    let engine = Arc::new(
        Engine::new(tables, allowed, limits, args.cluster.clone()).map_err(|source| Error::Io {
            path: "<query runtime>".into(),
            source,
        })?,
    );
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|source| Error::Io {
            path: format!("--bind {}", args.bind),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Io {
        path: format!("--bind {}", args.bind),
        source,
    })?;
    // Sessions idle too long end; planned queries nobody fetched go.
    let sweeper = {
        let every = (engine.limits.idle_timeout / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(30));
        let engine = Arc::downgrade(&engine);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match engine.upgrade() {
                    Some(e) => e.sweep(),
                    None => break,
                }
            }
        })
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            cert, key,
        )?)),
        _ => None,
    };
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    let incoming = accept(listener, tls, Arc::downgrade(&engine));
    let auth = Auth {
        digest: token.as_deref().map(|t| Auth::digest(t.as_bytes())),
    };
    let token_required = token.is_some();
    let service = service::QueryService::new(Arc::clone(&engine), token);
    let flight = FlightServiceServer::new(service)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let intercepted =
        tonic::service::interceptor::InterceptedService::new(flight, move |r| auth.check(r));
    eprintln!(
        "skewless query server listening on {scheme}://{local} ({} shared table(s); {}; client \
         locations: {})",
        engine.tables.len(),
        if token_required {
            "token required"
        } else {
            "no token"
        },
        engine.allowed.describe()
    );
    let served = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(intercepted)
        .serve_with_incoming(incoming)
        .await;
    sweeper.abort();
    served.map_err(|e| Error::Io {
        path: format!("{scheme}://{local}"),
        source: std::io::Error::other(e),
    })
}

/// The connections, as tonic takes them: accepted here, each TLS
/// handshake (10 s at most) in a task of its own so that a slow client
/// holds up no other.
fn accept(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    engine: Weak<Engine>,
) -> impl futures::Stream<Item = std::io::Result<Conn>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Conn>(16);
    tokio::spawn(async move {
        let mut next = 0u64;
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            next += 1;
            let info = ConnInfo { id: next };
            let engine = Weak::clone(&engine);
            let tx = tx.clone();
            match &tls {
                None => {
                    let conn = Conn {
                        io: Box::new(tcp),
                        info,
                        engine,
                    };
                    if tx.send(conn).await.is_err() {
                        break;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                        match handshake.await {
                            Ok(Ok(io)) => {
                                let _ = tx
                                    .send(Conn {
                                        io: Box::new(io),
                                        info,
                                        engine,
                                    })
                                    .await;
                            }
                            Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
                            Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|conn| (Ok(conn), rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    fn request(header: Option<&str>) -> tonic::Request<()> {
        let mut r = tonic::Request::new(());
        if let Some(h) = header {
            r.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        r
    }

    #[test]
    fn tokens_are_checked() {
        let auth = Auth {
            digest: Some(Auth::digest(b"s3cret")),
        };
        assert!(auth.check(request(Some("Bearer s3cret"))).is_ok());
        // user:s3cret, with and without padding
        assert!(auth.check(request(Some("Basic dXNlcjpzM2NyZXQ="))).is_ok());
        assert!(auth.check(request(Some("Basic dXNlcjpzM2NyZXQ"))).is_ok());
        assert!(auth.check(request(Some("Basic dXNlcjpzM2NyZXR="))).is_err());
        let wrong = auth.check(request(Some("Bearer s3cre"))).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(wrong.message().contains("wrong"));
        let missing = auth.check(request(None)).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("needs a token"));
        assert!(Auth { digest: None }.check(request(None)).is_ok());
    }
}
