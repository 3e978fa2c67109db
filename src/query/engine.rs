//! The query server's state: one session per client connection, the
//! statements waiting for their `DoGet`, the running queries, and the
//! limits every query runs under (memory, time, how many at once).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::Status;

use super::guard::{self, Allowed, Refused};
use crate::cancel::CancelToken;
use crate::error::Error;

/// The limits every client query runs under.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory one query may hold (DataFusion's memory pool; sorts,
    /// aggregates and joins that can spill do so beyond it).
    pub query_memory: usize,
    /// A query running longer is stopped (DEADLINE_EXCEEDED).
    pub query_timeout: Option<Duration>,
    /// Queries running at once; more wait, up to `max_queued`.
    pub max_queries: usize,
    /// Queries waiting for a slot; beyond, RESOURCE_EXHAUSTED at once.
    pub max_queued: usize,
    /// A session unused this long ends (its views and settings go).
    pub idle_timeout: Duration,
    /// Sessions (client connections) at once.
    pub max_sessions: usize,
}

/// What a `FlightInfo`'s `app_metadata` says a statement gives: rows, a
/// count of rows written, or nothing (DDL, SET). skewless's own client
/// prints accordingly; other clients ignore it.
pub const KIND_ROWS: &[u8] = b"skewless:rows";
pub const KIND_WRITTEN: &[u8] = b"skewless:written";
pub const KIND_DONE: &[u8] = b"skewless:done";

/// One client connection's session.
pub struct Session {
    pub id: u64,
    pub ctx: SessionContext,
    last_used: std::sync::Mutex<Instant>,
    /// Queries of this session planned or running.
    active: AtomicUsize,
    pub prepared: std::sync::Mutex<HashMap<String, Prepared>>,
}

/// A prepared statement: its plan with placeholders, and the parameters
/// bound last.
#[derive(Clone)]
pub struct Prepared {
    pub sql: String,
    pub plan: LogicalPlan,
    pub parameters: Option<Vec<datafusion::common::ScalarValue>>,
}

impl Session {
    fn touch(&self) {
        *self.last_used.lock().unwrap() = Instant::now();
    }
}

/// A query of a session, planned or running: the session does not end
/// idle while one is held.
struct Active(Arc<Session>);

impl Active {
    fn new(session: Arc<Session>) -> Self {
        session.active.fetch_add(1, Ordering::SeqCst);
        Self(session)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// A planned query waiting for its `DoGet`.
struct Pending {
    active: Active,
    plan: LogicalPlan,
    created: Instant,
}

/// The server-wide state.
pub struct Engine {
    /// The shared tables, read-only, in every session.
    pub tables: Vec<(String, Arc<dyn TableProvider>)>,
    providers: Vec<Arc<dyn TableProvider>>,
    pub allowed: Allowed,
    pub limits: Limits,
    cluster: Option<crate::cluster::Cluster>,
    sessions: std::sync::Mutex<HashMap<u64, Arc<Session>>>,
    /// Held while a session is made, so that two first calls on one
    /// connection make one session.
    making: tokio::sync::Mutex<()>,
    expired: std::sync::Mutex<HashSet<u64>>,
    pending: std::sync::Mutex<HashMap<String, Pending>>,
    running: std::sync::Mutex<HashMap<String, CancelToken>>,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    next_handle: AtomicU64,
    /// Where queries run: a runtime of their own, so that a query busy in
    /// one long poll never delays the gRPC side (new connections, the
    /// cancel of that very query, the time limit).
    work: tokio::runtime::Handle,
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The runtime queries run on: one worker per core. It lives as long as the
/// process (a server runs until it exits).
fn work_runtime() -> std::io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("skewless-query")
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::mem::forget(runtime);
    Ok(handle)
}

impl Engine {
    pub fn new(
        tables: Vec<(String, Arc<dyn TableProvider>)>,
        allowed: Allowed,
        limits: Limits,
        cluster: Option<crate::cluster::Cluster>,
    ) -> std::io::Result<Self> {
        let providers = tables.iter().map(|(_, p)| Arc::clone(p)).collect();
        Ok(Self {
            work: work_runtime()?,
            tables,
            providers,
            allowed,
            slots: Arc::new(Semaphore::new(limits.max_queries.max(1))),
            limits,
            cluster,
            sessions: Default::default(),
            making: Default::default(),
            expired: Default::default(),
            pending: Default::default(),
            running: Default::default(),
            queued: AtomicUsize::new(0),
            next_handle: AtomicU64::new(1),
        })
    }

    /// The session of connection `conn`, made on its first call. A session
    /// that ended idle is reported once, then a new one starts.
    pub async fn session(&self, conn: u64) -> Result<Arc<Session>, Status> {
        if let Some(session) = self.sessions.lock().unwrap().get(&conn) {
            session.touch();
            return Ok(Arc::clone(session));
        }
        let _making = self.making.lock().await;
        if let Some(session) = self.sessions.lock().unwrap().get(&conn) {
            return Ok(Arc::clone(session));
        }
        if self.sessions.lock().unwrap().len() >= self.limits.max_sessions {
            return Err(Status::resource_exhausted(format!(
                "the query server holds its maximum of {} sessions (--max-sessions); \
                 try again when a client disconnects",
                self.limits.max_sessions
            )));
        }
        let ctx = self.new_context().await.map_err(|e| status(&e))?;
        let session = Arc::new(Session {
            id: conn,
            ctx,
            last_used: std::sync::Mutex::new(Instant::now()),
            active: AtomicUsize::new(0),
            prepared: Default::default(),
        });
        self.sessions
            .lock()
            .unwrap()
            .insert(conn, Arc::clone(&session));
        tracing::info!(conn, "session started");
        if self.expired.lock().unwrap().remove(&conn) {
            return Err(Status::failed_precondition(format!(
                "the session ended after {} s without use: its views, tables and settings \
                 are gone; a new session has started, run the statement again",
                self.limits.idle_timeout.as_secs_f64()
            )));
        }
        Ok(session)
    }

    async fn new_context(&self) -> crate::error::Result<SessionContext> {
        let ctx = match &self.cluster {
            Some(cluster) => {
                crate::cluster::client_context(cluster, crate::session::config()?).await?
            }
            None => crate::session::server_context(self.limits.query_memory)?,
        };
        guard::register_shared(&ctx, &self.tables)?;
        Ok(ctx)
    }

    /// The connection closed: its session and its waiting queries end.
    pub fn close(&self, conn: u64) {
        self.expired.lock().unwrap().remove(&conn);
        if self.sessions.lock().unwrap().remove(&conn).is_some() {
            self.pending
                .lock()
                .unwrap()
                .retain(|_, p| p.active.0.id != conn);
            tracing::info!(conn, "session ended: the client disconnected");
        }
    }

    /// Ends sessions idle longer than the limit, and forgets planned
    /// queries nobody fetched in that time.
    pub fn sweep(&self) {
        let idle = self.limits.idle_timeout;
        let mut ended = Vec::new();
        self.sessions.lock().unwrap().retain(|id, s| {
            let keep =
                s.active.load(Ordering::SeqCst) > 0 || s.last_used.lock().unwrap().elapsed() < idle;
            if !keep {
                ended.push(*id);
            }
            keep
        });
        for id in &ended {
            tracing::info!(
                conn = id,
                "session ended: idle for {} s",
                idle.as_secs_f64()
            );
            self.expired.lock().unwrap().insert(*id);
        }
        self.pending
            .lock()
            .unwrap()
            .retain(|_, p| p.created.elapsed() < idle && !ended.contains(&p.active.0.id));
    }

    /// Plans one statement in `session`, refusing what clients may not do
    /// before anything reads a location.
    pub async fn plan(&self, session: &Session, sql: &str) -> Result<LogicalPlan, Status> {
        let refused = |r: Refused| Status::permission_denied(r.0);
        let guard = |seen: crate::exec::Guarded<'_>| {
            let checked = match seen {
                crate::exec::Guarded::Location(location) => self
                    .allowed
                    .check("CREATE EXTERNAL TABLE location", location),
                crate::exec::Guarded::Statement(statement) => {
                    self.allowed.check_statement(statement)
                }
            };
            checked.map_err(|r| Error::Refused(r.0))
        };
        let dialect = session.ctx.state().config().options().sql_parser.dialect;
        let numbered = crate::exec::number_placeholders(sql, &dialect);
        let sql = numbered.as_deref().unwrap_or(sql);
        let plan = crate::exec::plan_statement_guarded(&session.ctx, sql, &guard)
            .await
            .map_err(|e| match e {
                Error::Refused(m) => refused(Refused(m)),
                e => status(&e),
            })?;
        guard::check_plan(&plan, &self.allowed, &self.providers).map_err(refused)?;
        Ok(plan)
    }

    /// Runs a statement that gives no rows (DDL, SET) in its session now.
    pub async fn run_command(&self, session: &Session, plan: LogicalPlan) -> Result<(), Status> {
        let _slot = self.admit().await?;
        let ctx = session.ctx.clone();
        // Dropped (the client went away, the time ran out): stopped.
        let mut work = AbortOnDrop(self.work.spawn(async move {
            let df = ctx.execute_logical_plan(plan).await?;
            df.collect().await?;
            Ok::<_, Error>(())
        }));
        let result = match self.limits.query_timeout {
            Some(limit) => tokio::time::timeout(limit, &mut work.0)
                .await
                .map_err(|_| timed_out(limit))?,
            None => (&mut work.0).await,
        };
        session.touch();
        result
            .map_err(|e| Status::internal(format!("the statement's task failed: {e}")))?
            .map_err(|e| status(&e))
    }

    /// Keeps a planned query for its `DoGet`; the handle is its ticket.
    pub fn hold(&self, session: Arc<Session>, plan: LogicalPlan) -> String {
        let handle = self.new_handle();
        self.pending.lock().unwrap().insert(
            handle.clone(),
            Pending {
                active: Active::new(session),
                plan,
                created: Instant::now(),
            },
        );
        handle
    }

    /// An unguessable handle: a counter and 128 random bits.
    pub fn new_handle(&self) -> String {
        let mut random = [0u8; 16];
        getrandom::getrandom(&mut random).expect("the system's random numbers");
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", self.next_handle.fetch_add(1, Ordering::Relaxed))
    }

    /// Waits for a query slot, or refuses when too many queries wait.
    async fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.limits.max_queued {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Status::resource_exhausted(format!(
                "the query server runs its maximum of {} queries and {} more wait \
                 (--max-concurrent-queries, --max-queued-queries); try again later",
                self.limits.max_queries, self.limits.max_queued
            )));
        }
        struct Queued<'a>(&'a AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _queued = Queued(&self.queued);
        Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the query server is stopping"))
    }

    /// Starts the query of `handle`: its rows arrive on the receiver (at
    /// most two batches ahead of the client). Dropping the receiver, a
    /// cancel of the handle (also while it waits for a slot) or the time
    /// limit stops its work and frees its slot at once.
    pub async fn start(
        self: &Arc<Self>,
        handle: &str,
    ) -> Result<(SchemaRef, mpsc::Receiver<Result<RecordBatch, Status>>), Status> {
        let pending = self.pending.lock().unwrap().remove(handle).ok_or_else(|| {
            Status::not_found(
                "no query has this ticket: it was fetched already, its session ended, \
                 or it was not fetched in time",
            )
        })?;
        // Cancellable from here on: the entry goes when this call or the
        // query's task ends.
        let token = CancelToken::new();
        let running = Running::new(self, handle, token.clone());
        let slot = tokio::select! {
            slot = self.admit() => slot,
            _ = cancelled(&token) => Err(Status::cancelled(crate::cancel::CANCELLED)),
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err(e) => {
                if e.code() == tonic::Code::ResourceExhausted {
                    // "Try again later": the ticket stays good.
                    self.pending
                        .lock()
                        .unwrap()
                        .insert(handle.to_string(), pending);
                }
                return Err(e);
            }
        };
        let Pending { active, plan, .. } = pending;
        let session = Arc::clone(&active.0);
        let schema = plain_schema(plan.schema().as_arrow());
        let (tx, rx) = mpsc::channel(2);
        let engine = Arc::clone(self);
        let out_schema = Arc::clone(&schema);
        tokio::spawn(async move {
            let started = Instant::now();
            let mut work = AbortOnDrop(engine.work.spawn({
                let engine = Arc::clone(&engine);
                let session = Arc::clone(&session);
                let token = token.clone();
                let tx = tx.clone();
                async move { run_query(&engine, &session, plan, &token, &tx, &out_schema).await }
            }));
            let limit = engine.limits.query_timeout;
            let deadline = async {
                match limit {
                    Some(l) => tokio::time::sleep(l).await,
                    None => std::future::pending().await,
                }
            };
            let (outcome, error) = tokio::select! {
                r = &mut work.0 => match r {
                    Ok(Ok(())) => ("done", None),
                    Ok(Err(e)) if e.code() == tonic::Code::Cancelled => ("cancelled", Some(e)),
                    Ok(Err(e)) => ("failed", Some(e)),
                    Err(e) => ("failed", Some(Status::internal(format!("the query's task failed: {e}")))),
                },
                _ = tx.closed() => ("cancelled: the client went away", None),
                _ = cancelled(&token) => ("cancelled", Some(Status::cancelled(crate::cancel::CANCELLED))),
                _ = deadline => ("timed out", Some(timed_out(limit.unwrap_or_default()))),
            };
            // First the work stops and the slot is free (the token stops
            // the operators within a batch; the abort drops the streams),
            // whether or not the client reads what is left.
            token.cancel();
            drop(work);
            drop(slot);
            drop(running);
            drop(active);
            tracing::info!(
                conn = session.id,
                seconds = started.elapsed().as_secs_f64(),
                "query {outcome}"
            );
            // Then the client is told, after the batches it has not read
            // yet, for as long as it stays.
            if let Some(error) = error {
                tokio::select! {
                    _ = tx.send(Err(error)) => {}
                    _ = tx.closed() => {}
                }
            }
        });
        Ok((schema, rx))
    }

    /// Cancels the running or waiting query of `handle`; false if none.
    pub fn cancel(&self, handle: &str) -> bool {
        if let Some(token) = self.running.lock().unwrap().get(handle) {
            token.cancel();
            return true;
        }
        self.pending.lock().unwrap().remove(handle).is_some()
    }
}

/// The entry of a query that can be cancelled, removed when dropped.
struct Running {
    engine: Arc<Engine>,
    handle: String,
}

impl Running {
    fn new(engine: &Arc<Engine>, handle: &str, token: CancelToken) -> Self {
        engine
            .running
            .lock()
            .unwrap()
            .insert(handle.to_string(), token);
        Self {
            engine: Arc::clone(engine),
            handle: handle.to_string(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.engine.running.lock().unwrap().remove(&self.handle);
    }
}

/// Resolves once `token` is cancelled.
async fn cancelled(token: &CancelToken) {
    while !token.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs one query and sends its batches, in the server's plain types.
async fn run_query(
    engine: &Engine,
    session: &Session,
    mut plan: LogicalPlan,
    token: &CancelToken,
    tx: &mpsc::Sender<Result<RecordBatch, Status>>,
    schema: &SchemaRef,
) -> Result<(), Status> {
    let ctx = match engine.cluster {
        Some(_) => session.ctx.clone(),
        None => query_context(&session.ctx, engine.limits.query_memory),
    };
    let fail = |e: Error| status_with(&e, engine.limits.query_memory);
    if crate::fit::has_full_pass(&plan) {
        plan = crate::fit::fit_plan(&ctx, plan, false)
            .await
            .map_err(fail)?;
    }
    if let LogicalPlan::Copy(copy) = plan {
        let policy = crate::write::Policy {
            overwrite: false,
            progress: false,
            cancel: Some(token.clone()),
        };
        let rows = crate::write::write_copy(&ctx, copy, policy)
            .await
            .map_err(fail)?;
        let count: ArrayRef = Arc::new(UInt64Array::from(vec![rows]));
        let batch = RecordBatch::try_new(Arc::clone(schema), vec![count])
            .map_err(|e| Status::internal(e.to_string()))?;
        let _ = tx.send(Ok(batch)).await;
        return Ok(());
    }
    let df = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(|e| fail(e.into()))?;
    let physical = df
        .create_physical_plan()
        .await
        .map_err(|e| fail(e.into()))?;
    let physical = crate::cancel::cancellable(physical, token).map_err(|e| fail(e.into()))?;
    let mut stream = execute_stream(physical, ctx.task_ctx()).map_err(|e| fail(e.into()))?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| fail(e.into()))?;
        let batch = plain_batch(batch, schema).map_err(|e| Status::internal(e.to_string()))?;
        if tx.send(Ok(batch)).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// The session's state over a runtime of its own: this query's memory pool
/// (the object stores and spill files are the server's).
fn query_context(session: &SessionContext, memory: usize) -> SessionContext {
    let state = session.state();
    let base = state.runtime_env();
    let runtime = RuntimeEnv {
        memory_pool: Arc::new(FairSpillPool::new(memory)),
        disk_manager: Arc::clone(&base.disk_manager),
        cache_manager: Arc::clone(&base.cache_manager),
        object_store_registry: Arc::clone(&base.object_store_registry),
    };
    let state = SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(Arc::new(runtime))
        .build();
    SessionContext::new_with_state(state)
}

/// Results go out with strings as `Utf8` and bytes as `Binary` (not the
/// view layouts DataFusion reads Parquet into), which every Flight SQL
/// client reads.
pub fn plain_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_data_type(plain_type(f.data_type())))
            .collect::<Vec<Field>>(),
        schema.metadata().clone(),
    ))
}

/// Strings and bytes without views; dictionaries as their values (Flight's
/// encoder sends dictionaries expanded).
fn plain_type(t: &arrow::datatypes::DataType) -> arrow::datatypes::DataType {
    match t {
        arrow::datatypes::DataType::Dictionary(_, values) => plain_type(values),
        t => crate::artifact::canonical_type(t),
    }
}

fn plain_batch(batch: RecordBatch, schema: &SchemaRef) -> arrow::error::Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<arrow::error::Result<Vec<_>>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// The schema of a statement's result as clients see it.
pub fn result_schema(plan: &LogicalPlan) -> SchemaRef {
    plain_schema(plan.schema().as_arrow())
}

fn timed_out(limit: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the query ran longer than the server allows ({} s, --query-timeout) and was stopped",
        limit.as_secs_f64()
    ))
}

/// A skewless error as a gRPC status.
pub fn status(e: &Error) -> Status {
    status_with(e, 0)
}

fn status_with(e: &Error, memory: usize) -> Status {
    use datafusion::error::DataFusionError;
    let message = e.to_string();
    let root = match e {
        Error::DataFusion(d) => Some(d.find_root()),
        _ => None,
    };
    match root {
        Some(DataFusionError::ResourcesExhausted(_)) => {
            let limit = if memory > 0 {
                format!(" (each query may hold {}, --query-memory)", size(memory))
            } else {
                String::new()
            };
            Status::resource_exhausted(format!(
                "the query needs more memory than the server allows{limit}: {message}"
            ))
        }
        Some(DataFusionError::Execution(m)) if m.contains(crate::cancel::CANCELLED) => {
            Status::cancelled(message)
        }
        _ => match e {
            Error::Internal(_) => Status::internal(message),
            Error::Io { .. } => Status::internal(message),
            _ => Status::invalid_argument(message),
        },
    }
}

/// A size in the units `--query-memory` takes.
pub fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{b} bytes"),
    }
}
