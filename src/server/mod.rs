//! `skewless serve`: the fitted transform over HTTP.
//!
//! hyper 1 (HTTP/1.1) on a tokio runtime. A connection is accepted while
//! fewer than `max_connections` are open (beyond, it gets a 503 and is
//! closed); its headers must arrive within `header_read_timeout` and a
//! request's body within `body_read_timeout`. A request is refused with 503
//! when `max_in_flight` are being answered, and with 413 when its body is
//! larger than `max_body_bytes` (from Content-Length before reading, or
//! while reading). Handlers run on the runtime's threads; a panic in one
//! becomes a 500 and the server goes on. SIGTERM (or SIGINT) turns
//! readiness to 503, stops accepting, lets connections finish what they
//! are answering, and exits within `drain_timeout`; a second signal exits
//! at once. SIGHUP reloads every model (see [`models::Model::reload`]).
//!
//! Routes: [`routes`]; limits are documented in `docs/server.md`.

pub mod json;
pub mod metrics;
pub mod models;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::artifact::SigningKey;
use crate::error::{Error, Result};
use metrics::Metrics;
use models::Model;
use routes::{Action, Route};

/// The server's limits; each refused request is counted by reason.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_rows: usize,
    pub max_json_depth: usize,
    pub max_string_bytes: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub max_in_flight: usize,
    pub drain_timeout: Duration,
    /// The served rows `GET /v1/models/M/validation` reports on (the most
    /// recent, in whole seconds).
    pub validation_rows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 << 20,
            max_rows: 10_000,
            max_json_depth: 32,
            max_string_bytes: 64 << 10,
            max_header_bytes: 16 << 10,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_in_flight: 256,
            drain_timeout: Duration::from_secs(10),
            validation_rows: 100_000,
        }
    }
}

/// What `serve` was asked to do.
pub struct Config {
    pub bind: SocketAddr,
    pub threads: Option<usize>,
    pub limits: Limits,
    /// The bearer token every request but the health probes must carry.
    pub token: Option<Vec<u8>>,
    pub verify_key: Option<SigningKey>,
    /// `[NAME=]ARTIFACT`, one per model.
    pub models: Vec<String>,
    /// The limits of window state (lateness, per-entity cap).
    pub online: crate::serving::OnlineLimits,
    /// `--events [MODEL=][TABLE=]LOCATION`.
    pub events: Vec<String>,
    /// `--state [MODEL=]FILE`.
    pub state: Vec<String>,
    /// `--poll`: how often to look for a new version of each model.
    pub poll: Option<Duration>,
}

/// What every connection shares.
pub struct Shared {
    pub models: Vec<Model>,
    pub limits: Limits,
    pub token: Option<Vec<u8>>,
    pub metrics: Metrics,
    /// Set once shutdown begins: readiness answers 503.
    pub draining: AtomicBool,
    verify_key: Option<SigningKey>,
    /// A path whose handler panics (only [`harness::Harness::panic_on`]
    /// sets it: the test that a panic is a 500 and the server goes on).
    panic_path: Option<String>,
}

/// A response: status, body, content type and extra headers.
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    content_type: &'static str,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Reply {
    pub fn json(status: StatusCode, body: String) -> Self {
        Self {
            status,
            body,
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    pub fn ndjson(body: String) -> Self {
        Self {
            content_type: "application/x-ndjson",
            ..Self::json(StatusCode::OK, body)
        }
    }

    /// `{"error": message}`.
    pub fn error(status: StatusCode, message: &str) -> Self {
        let mut body = String::from("{\"error\":");
        crate::serving::write_json_string(&mut body, message);
        body.push('}');
        Self::json(status, body)
    }

    fn with(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers
                .push((header::HeaderName::from_static(name), v));
        }
        self
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from(self.body)));
        *r.status_mut() = self.status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (k, v) in self.headers {
            r.headers_mut().insert(k, v);
        }
        r
    }
}

/// Loads every model (failing on the first that does not load), binds, and
/// serves until a shutdown signal. Prints one line when listening.
pub fn run(config: Config) -> Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.enable_all().build().map_err(|e| Error::Io {
        path: "<tokio runtime>".into(),
        source: e,
    })?;
    if config.models.is_empty() {
        return Err(Error::Usage(
            "serve: give at least one model, as [NAME=]ARTIFACT".into(),
        ));
    }
    let metrics = Metrics::default();
    let mut models: Vec<Model> = Vec::new();
    let windows = models::WindowOptions {
        limits: config.online,
        ..Default::default()
    };
    for spec in &config.models {
        let model = models::load_model(spec, config.verify_key.as_ref(), windows.clone())?;
        if models.iter().any(|m| m.name == model.name) {
            return Err(Error::Usage(format!(
                "serve: two models named '{}'; name them apart as NAME=ARTIFACT",
                model.name
            )));
        }
        let v = model.current();
        metrics.loaded(&model.name, v.number, v.load_time);
        models.push(model);
    }
    for (m, spec) in assign(&models, "events", &config.events)? {
        models[m].windows.events.push(spec);
    }
    for (m, file) in assign(&models, "state", &config.state)? {
        if models[m].windows.state.is_some() {
            return Err(Error::Usage(format!(
                "--state: two files for model '{}'",
                models[m].name
            )));
        }
        models[m].windows.state = Some(file.into());
    }
    for m in &models {
        if let Some(what) = models::bootstrap(m)? {
            eprintln!("skewless serve: model '{}': {what}", m.name);
        }
    }
    let shared = Arc::new(Shared {
        models,
        limits: config.limits,
        token: config.token,
        metrics,
        draining: AtomicBool::new(false),
        verify_key: config.verify_key,
        panic_path: None,
    });
    runtime.block_on(serve(shared, config.bind, config.poll))
}

/// The model each `--FLAG [MODEL=]VALUE` is for: the one named, or the
/// one model with window functions.
fn assign(models: &[Model], flag: &str, specs: &[String]) -> Result<Vec<(usize, String)>> {
    let windowed: Vec<usize> = (0..models.len())
        .filter(|&i| models[i].current().evaluator.has_windows())
        .collect();
    let mut out = Vec::new();
    for spec in specs {
        let named = spec
            .split_once('=')
            .and_then(|(name, rest)| Some((models.iter().position(|m| m.name == name)?, rest)));
        let (m, value) = match (named, windowed.as_slice()) {
            (Some((m, rest)), _) => (m, rest.to_string()),
            (None, [one]) => (*one, spec.clone()),
            (None, []) => {
                return Err(Error::Usage(format!(
                    "--{flag} {spec}: no model has window functions, so none keeps events"
                )));
            }
            (None, several) => {
                return Err(Error::Usage(format!(
                    "--{flag} {spec}: several models have window functions ({}): give it as \
                     MODEL={spec}",
                    several
                        .iter()
                        .map(|&i| models[i].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        if !windowed.contains(&m) {
            return Err(Error::Usage(format!(
                "--{flag} {spec}: model '{}' has no window functions, so it keeps no events",
                models[m].name
            )));
        }
        out.push((m, value));
    }
    Ok(out)
}

async fn serve(shared: Arc<Shared>, bind: SocketAddr, poll: Option<Duration>) -> Result<()> {
    let listener = TcpListener::bind(bind).await.map_err(|e| Error::Io {
        path: format!("--bind {bind}"),
        source: e,
    })?;
    let local = listener.local_addr().map_err(|e| Error::Io {
        path: format!("--bind {bind}"),
        source: e,
    })?;
    {
        let names: Vec<String> = shared
            .models
            .iter()
            .map(|m| {
                let v = m.current();
                format!("{} (version {}, {})", m.name, v.number, v.file.display())
            })
            .collect();
        eprintln!(
            "skewless serve: listening on http://{local}; models: {}",
            names.join(", ")
        );
    }
    use tokio::signal::unix::{SignalKind, signal};
    let io = |e| Error::Io {
        path: "<signal handler>".into(),
        source: e,
    };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    let mut hup = signal(SignalKind::hangup()).map_err(io)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(every) = poll {
        // A model whose source changed is reloaded as SIGHUP would, off
        // the request path; one look at a time.
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let shared = Arc::clone(&shared);
                let _ = tokio::task::spawn_blocking(move || {
                    for m in &shared.models {
                        if m.changed() {
                            reload_one(&shared, m);
                        }
                    }
                })
                .await;
            }
        });
    }
    let connections = Arc::new(tokio::sync::Semaphore::new(shared.limits.max_connections));
    let tracker = drain::Tracker::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                    shared.metrics.reject("connections");
                    tokio::spawn(refuse(stream));
                    continue;
                };
                let shared = Arc::clone(&shared);
                let stop = stop_rx.clone();
                let guard = tracker.enter();
                tokio::spawn(async move {
                    connection(shared, stream, stop).await;
                    drop(permit);
                    drop(guard);
                });
            }
            _ = hup.recv() => {
                let shared = Arc::clone(&shared);
                tokio::task::spawn_blocking(move || reload_all(&shared));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    // Drain: readiness says 503, no new connection is accepted, open ones
    // finish the request they are answering and close.
    shared.draining.store(true, Ordering::SeqCst);
    drop(listener);
    let _ = stop_tx.send(true);
    eprintln!(
        "skewless serve: draining {} connections (at most {:?}; a second signal exits now)",
        tracker.count(),
        shared.limits.drain_timeout
    );
    tokio::select! {
        _ = tracker.idle() => {}
        _ = tokio::time::sleep(shared.limits.drain_timeout) => {
            eprintln!("skewless serve: drain timeout; closing {} connections", tracker.count());
        }
        _ = term.recv() => return Ok(()),
        _ = int.recv() => return Ok(()),
    }
    // Window state to its --state file, once no request runs.
    let saving = Arc::clone(&shared);
    let saved = tokio::task::spawn_blocking(move || {
        let mut failed = None;
        for m in &saving.models {
            match m.save_state() {
                None => {}
                Some(Ok(what)) => {
                    eprintln!("skewless serve: model '{}': window state, {what}", m.name)
                }
                Some(Err(e)) => {
                    eprintln!(
                        "skewless serve: model '{}': window state not saved: {e}",
                        m.name
                    );
                    failed = Some(e);
                }
            }
        }
        failed
    });
    tokio::select! {
        done = saved => match done {
            Ok(Some(e)) => Err(e),
            _ => Ok(()),
        },
        _ = term.recv() => Ok(()),
        _ = int.recv() => Ok(()),
    }
}

/// Reloads every model from its source (SIGHUP), off the request path.
fn reload_all(shared: &Shared) {
    for m in &shared.models {
        reload_one(shared, m);
    }
}

/// Reloads one model, logged and counted.
fn reload_one(shared: &Shared, m: &Model) {
    {
        match m.reload(shared.verify_key.as_ref()) {
            Ok((v, note)) => {
                shared.metrics.reloaded(&m.name, true);
                shared.metrics.loaded(&m.name, v.number, v.load_time);
                eprintln!(
                    "skewless serve: model '{}' reloaded: version {} ({}){}",
                    m.name,
                    v.number,
                    v.file.display(),
                    note.map(|n| format!("; {n}")).unwrap_or_default()
                );
            }
            Err(e) => {
                shared.metrics.reloaded(&m.name, false);
                eprintln!(
                    "skewless serve: model '{}' failed to reload, version {} stays: {e}",
                    m.name,
                    m.current().number
                );
            }
        }
    }
}

/// A connection over the limit: a 503 and close, without reading it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = "{\"error\":\"too many connections (--max-connections)\"}";
    let text = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(text.as_bytes())).await;
    let _ = stream.shutdown().await;
}

async fn connection<S>(shared: Arc<Shared>, stream: S, mut stop: tokio::sync::watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    shared.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let service_shared = Arc::clone(&shared);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = Arc::clone(&service_shared);
        async move { Ok::<_, std::convert::Infallible>(answer(&shared, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout)
        .max_buf_size(shared.limits.max_header_bytes.max(8192))
        .keep_alive(true)
        // A client that shuts down its sending side once its request is
        // sent still gets the answer.
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let stopping = tokio::select! {
        _ = conn.as_mut() => false,
        stopped = stop.wait_for(|s| *s) => stopped.is_ok(),
    };
    if stopping {
        conn.as_mut().graceful_shutdown();
        let _ = conn.as_mut().await;
    }
    shared.metrics.connections.fetch_sub(1, Ordering::Relaxed);
}

/// One request: limits, route, handler (panics caught), metrics.
async fn answer(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let route = routes::route(&path);
    let label = route.label();
    let reply = if route.is_probe() {
        probe(shared, &route)
    } else if let Some(refused) = authorize(shared, &req) {
        shared.metrics.reject("unauthorized");
        refused
    } else if req.method() != route.method() && route != Route::NotFound {
        Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{path} takes {}, not {}", route.method(), req.method()),
        )
        .with("allow", route.method().as_str())
    } else if route == Route::Metrics {
        // Outside the in-flight limit, so that an overload can be watched.
        handle(shared, route.clone(), req).await
    } else {
        let in_flight = shared.metrics.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = if in_flight > shared.limits.max_in_flight as u64 {
            shared.metrics.reject("in_flight");
            Reply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "the server is answering {} requests, its limit (--max-in-flight): retry",
                    shared.limits.max_in_flight
                ),
            )
            .with("retry-after", "1")
        } else {
            let handled = std::panic::AssertUnwindSafe(handle(shared, route.clone(), req))
                .catch_unwind()
                .await;
            handled.unwrap_or_else(|_| {
                Reply::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (a bug in skewless; the server goes on): please report it",
                )
            })
        };
        shared.metrics.in_flight.fetch_sub(1, Ordering::SeqCst);
        reply
    };
    shared
        .metrics
        .request(label, reply.status.as_u16(), started.elapsed());
    reply.into_response()
}

fn probe(shared: &Shared, route: &Route<'_>) -> Reply {
    match route {
        Route::Ready if shared.draining.load(Ordering::SeqCst) => {
            Reply::json(StatusCode::SERVICE_UNAVAILABLE, "{\"ready\":false}".into())
        }
        Route::Ready => Reply::json(StatusCode::OK, "{\"ready\":true}".into()),
        _ => Reply::json(StatusCode::OK, "{\"live\":true}".into()),
    }
}

/// None when the request may go on; a 401 otherwise.
fn authorize(shared: &Shared, req: &Request<Incoming>) -> Option<Reply> {
    use subtle::ConstantTimeEq;
    let token = shared.token.as_ref()?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match given {
        Some(g) if bool::from(g.ct_eq(token)) => None,
        _ => Some(
            Reply::error(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (Authorization: Bearer …)",
            )
            .with("www-authenticate", "Bearer"),
        ),
    }
}

async fn handle(shared: &Shared, route: Route<'_>, req: Request<Incoming>) -> Reply {
    if shared.panic_path.as_deref() == Some(req.uri().path()) {
        panic!("a panic asked for by the test harness");
    }
    let (name, version, action) = match route {
        Route::Metrics => {
            let mut text = shared.metrics.render();
            let versions: Vec<_> = shared.models.iter().map(|m| (m, m.current())).collect();
            let windows: Vec<_> = versions
                .iter()
                .map(|(m, v)| (m.name.as_str(), v.number, v.evaluator.state_report()))
                .collect();
            metrics::render_windows(&mut text, &windows);
            let skew: Vec<_> = versions
                .iter()
                .map(|(m, v)| (m.name.as_str(), v.number, v.evaluator.skew_counts()))
                .collect();
            metrics::render_skew(&mut text, &skew);
            let validation: Vec<_> = versions
                .iter()
                .filter_map(|(m, v)| {
                    let live = v.live.as_ref()?;
                    let report = live.plan().report(
                        &live.total(),
                        &v.evaluator,
                        &crate::validate::Limits::default(),
                    );
                    Some((m.name.as_str(), v.number, report))
                })
                .collect();
            metrics::render_validation(&mut text, &validation);
            return Reply {
                content_type: "text/plain; version=0.0.4",
                ..Reply::json(StatusCode::OK, text)
            };
        }
        Route::ServerMetadata => {
            return Reply::json(
                StatusCode::OK,
                format!(
                    "{{\"name\":\"skewless\",\"version\":\"{}\",\"extensions\":[]}}",
                    env!("CARGO_PKG_VERSION")
                ),
            );
        }
        Route::NotFound => {
            let names: Vec<&str> = shared.models.iter().map(|m| m.name.as_str()).collect();
            return Reply::error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no route {} {}; models: {} (see docs/server.md for the routes)",
                    req.method(),
                    req.uri().path(),
                    names.join(", ")
                ),
            );
        }
        Route::Model {
            name,
            version,
            action,
        } => (name, version, action),
        Route::Live | Route::Ready => unreachable!("probes are answered before"),
    };
    let (model, v) = match routes::find(shared, name, version) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let tag = |r: Reply, v: &models::Version| {
        r.with("x-skewless-model-version", &v.number.to_string())
            .with("x-skewless-artifact-checksum", &v.checksum)
    };
    let body = match action {
        Action::V1Status => return tag(routes::v1_status(&v), &v),
        Action::V1Metadata => return tag(routes::v1_metadata(model, &v), &v),
        Action::V1Validation => return tag(routes::v1_validation(&v), &v),
        Action::V2Metadata => return tag(routes::v2_metadata(model, &v), &v),
        Action::V2Ready => return tag(routes::v2_ready(model), &v),
        Action::V1Predict | Action::Eval | Action::Events | Action::V2Infer => {
            match read_body(shared, req).await {
                Ok(body) => body,
                Err(reply) => return tag(reply, &v),
            }
        }
    };
    let (counted, v) = match action {
        Action::V1Predict => (routes::v1_predict(shared, &v, &body), v),
        // Pushes land in the version being served once the body is in
        // (a reload carrying the state over waits for them).
        Action::Eval | Action::Events if v.evaluator.has_windows() => {
            let _pushing = model.pushing.read().unwrap_or_else(|e| e.into_inner());
            let now = model.current();
            let counted = match action {
                Action::Eval => routes::eval_lines(shared, &now, &body),
                _ => routes::push_events(shared, &now, &body),
            };
            (counted, now)
        }
        Action::Eval => (routes::eval_lines(shared, &v, &body), v),
        Action::Events => (routes::push_events(shared, &v, &body), v),
        _ => (routes::v2_infer(shared, model, &v, &body), v),
    };
    shared
        .metrics
        .rows(&model.name, v.number, counted.rows, counted.errors);
    tag(counted.reply, &v)
}

/// The whole body, within the size limit and the body-read timeout.
async fn read_body(shared: &Shared, req: Request<Incoming>) -> std::result::Result<Bytes, Reply> {
    let limit = shared.limits.max_body_bytes;
    let too_large = |n: &dyn std::fmt::Display| {
        shared.metrics.reject("body_size");
        Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is {n} bytes, more than the limit of {limit} (--max-body-bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > limit as u64
    {
        return Err(too_large(&n));
    }
    let mut body = req.into_body();
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Reply::error(StatusCode::BAD_REQUEST, &format!("reading the body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(too_large(&format!("over {}", buf.len() + data.len())));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(shared.limits.body_read_timeout, read).await {
        Ok(Ok(())) => Ok(Bytes::from(buf)),
        Ok(Err(reply)) => Err(reply),
        Err(_) => {
            shared.metrics.reject("body_timeout");
            Err(Reply::error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {:?} (--body-read-timeout)",
                    shared.limits.body_read_timeout
                ),
            )
            .with("connection", "close"))
        }
    }
}

/// Counting live connections, and waiting for none.
mod drain {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default, Clone)]
    pub struct Tracker {
        inner: Arc<(AtomicUsize, tokio::sync::Notify)>,
    }

    pub struct Guard(Tracker);

    impl Tracker {
        pub fn enter(&self) -> Guard {
            self.inner.0.fetch_add(1, Ordering::SeqCst);
            Guard(self.clone())
        }

        pub fn count(&self) -> usize {
            self.inner.0.load(Ordering::SeqCst)
        }

        /// Returns once no guard is alive.
        pub async fn idle(&self) {
            loop {
                let notified = self.inner.1.notified();
                if self.count() == 0 {
                    return;
                }
                notified.await;
            }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if self.0.inner.0.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.0.inner.1.notify_waiters();
            }
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("models", &self.models.len())
            .field("limits", &self.limits)
            .finish()
    }
}

/// The whole request path (HTTP parsing, limits, routes, handlers) over an
/// in-memory connection, for the fuzz test and the `cargo fuzz` target
/// (`fuzz/`): bytes in, the bytes the server answers out.
#[doc(hidden)]
pub mod harness {
    use super::*;

    pub struct Harness {
        shared: Arc<Shared>,
        runtime: tokio::runtime::Runtime,
    }

    impl Harness {
        /// A server of `models` (`[NAME=]ARTIFACT`) with `limits`, not bound
        /// to any address.
        pub fn new(models: &[&str], limits: Limits, token: Option<&[u8]>) -> Result<Self> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Io {
                    path: "<tokio runtime>".into(),
                    source: e,
                })?;
            let mut loaded = Vec::new();
            for spec in models {
                loaded.push(models::load_model(spec, None, Default::default())?);
            }
            let shared = Arc::new(Shared {
                models: loaded,
                limits,
                token: token.map(<[u8]>::to_vec),
                metrics: Metrics::default(),
                draining: AtomicBool::new(false),
                verify_key: None,
                panic_path: None,
            });
            Ok(Self { shared, runtime })
        }

        /// The harness, with the handler of `path` panicking (to check that
        /// a panic becomes a 500 and the server goes on).
        pub fn panic_on(mut self, path: &str) -> Self {
            if let Some(shared) = Arc::get_mut(&mut self.shared) {
                shared.panic_path = Some(path.to_string());
            }
            self
        }

        /// Sends `input` on a fresh connection, closes the sending side,
        /// and returns everything the server wrote until it closed (or 10
        /// seconds passed).
        pub fn exchange(&self, input: &[u8]) -> Vec<u8> {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let shared = Arc::clone(&self.shared);
            self.runtime.block_on(async move {
                let (client, server) = tokio::io::duplex(1 << 16);
                let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                let task = tokio::spawn(connection(shared, server, stop_rx));
                let (mut from_server, mut to_server) = tokio::io::split(client);
                let mut out = Vec::new();
                // Written and read at once: a server that stops reading
                // (a 413) does not hold the writer forever.
                let talk = async {
                    let send = async {
                        let _ = to_server.write_all(input).await;
                        let _ = to_server.shutdown().await;
                    };
                    let receive = from_server.read_to_end(&mut out);
                    let _ = tokio::join!(send, receive);
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), talk).await;
                task.abort();
                out
            })
        }
    }
}
