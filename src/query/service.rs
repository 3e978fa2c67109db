//! Arrow Flight SQL over the [`Engine`]: statements and prepared
//! statements (planned in `GetFlightInfo`, run in `DoGet`), the metadata
//! calls JDBC and ADBC clients list tables with, and cancellation.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, Nullable, ProstMessageExt, Searchable, SqlInfo,
    TicketStatementQuery, XdbcDataType,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{LogicalPlan, TableType};
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::ConnInfo;
use super::engine::{self, Engine, KIND_DONE, KIND_ROWS, KIND_WRITTEN, Prepared, Session};

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

/// The Flight SQL service.
pub struct QueryService {
    pub engine: Arc<Engine>,
    sql_info: SqlInfoData,
    types: XdbcTypeInfoData,
    /// The token the handshake hands back, when the server has one.
    token: Option<String>,
}

impl QueryService {
    pub fn new(engine: Arc<Engine>, token: Option<String>) -> Self {
        Self {
            engine,
            sql_info: sql_info(),
            types: xdbc_types(),
            token,
        }
    }

    async fn session<T>(&self, request: &Request<T>) -> Result<Arc<Session>, Status> {
        let conn = request
            .extensions()
            .get::<ConnInfo>()
            .ok_or_else(|| Status::internal("a call without its connection"))?;
        self.engine.session(conn.id).await
    }

    /// The FlightInfo of a planned statement: a command runs now; a query
    /// or a write waits for its `DoGet`.
    async fn info_for(
        &self,
        session: Arc<Session>,
        plan: LogicalPlan,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let kind = match &plan {
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) => KIND_DONE,
            LogicalPlan::Copy(_) | LogicalPlan::Dml(_) => KIND_WRITTEN,
            _ => KIND_ROWS,
        };
        if kind == KIND_DONE {
            self.engine.run_command(&session, plan).await?;
            let info = FlightInfo::new()
                .try_with_schema(&Schema::empty())
                .map_err(arrow_status)?
                .with_descriptor(descriptor)
                .with_app_metadata(KIND_DONE.to_vec());
            return Ok(Response::new(info));
        }
        let schema = engine::result_schema(&plan);
        let handle = self.engine.hold(session, plan);
        let ticket = TicketStatementQuery {
            statement_handle: handle.into_bytes().into(),
        };
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(arrow_status)?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor)
            .with_app_metadata(kind.to_vec());
        Ok(Response::new(info))
    }

    /// The FlightInfo of a metadata command: its ticket is the command.
    fn metadata_info(
        &self,
        command: impl ProstMessageExt,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(arrow_status)?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// The ticket handles of a FlightInfo's endpoints.
    fn handles(info: &FlightInfo) -> Vec<String> {
        info.endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref())
            .filter_map(|t| Any::decode(&*t.ticket).ok())
            .filter_map(|any| any.unpack::<TicketStatementQuery>().ok().flatten())
            .filter_map(|t| String::from_utf8(t.statement_handle.to_vec()).ok())
            .collect()
    }

    fn cancel_info(&self, info: &FlightInfo) -> CancelStatus {
        let handles = Self::handles(info);
        if handles.is_empty() {
            return CancelStatus::NotCancellable;
        }
        let mut any = false;
        for handle in handles {
            any |= self.engine.cancel(&handle);
        }
        if any {
            CancelStatus::Cancelled
        } else {
            CancelStatus::NotCancellable
        }
    }
}

/// A metadata call's answer: the one batch its builder made.
fn answer(
    schema: SchemaRef,
    built: Result<RecordBatch, FlightError>,
) -> Result<Response<DoGetStream>, Status> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::iter([Ok(built.map_err(flight_status)?)]))
        .map_err(flight_status);
    Ok(Response::new(Box::pin(stream)))
}

fn arrow_status(e: arrow::error::ArrowError) -> Status {
    Status::internal(e.to_string())
}

fn flight_status(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(status) => *status,
        e => Status::internal(e.to_string()),
    }
}

fn table_type_name(t: TableType) -> &'static str {
    match t {
        TableType::Base => "TABLE",
        TableType::View => "VIEW",
        TableType::Temporary => "LOCAL TEMPORARY",
    }
}

#[tonic::async_trait]
impl FlightSqlService for QueryService {
    type FlightService = QueryService;

    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        // The interceptor checked the credentials (Bearer, or Basic with the
        // token as password); the answer hands back the bearer token.
        let answer = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(futures::stream::iter([Ok(answer)])));
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::internal("the token is not a valid header value"))?;
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        let plan = self.engine.plan(&session, &query.query).await?;
        self.info_for(session, plan, request.into_inner()).await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let handle = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("a ticket that is not skewless's"))?;
        let (schema, rx) = self.engine.start(&handle).await?;
        let batches = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .map_err(|status| FlightError::Tonic(Box::new(status)));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(flight_status);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let plan = self.engine.plan(&session, &query.query).await?;
        let parameter_schema = parameter_schema(&plan)?;
        let dataset_schema = engine::result_schema(&plan);
        let handle = self.engine.new_handle();
        session.prepared.lock().unwrap().insert(
            handle.clone(),
            Prepared {
                sql: query.query,
                plan,
                parameters: None,
            },
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into_bytes().into(),
            dataset_schema: schema_bytes(&dataset_schema)?,
            parameter_schema: schema_bytes(&parameter_schema)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let handle = handle_of(&query.prepared_statement_handle)?;
        let mut batches = parameter_batches(request);
        let mut row = None;
        let mut rows = 0;
        // Read no further than a second row.
        while let Some(batch) = batches.try_next().await.map_err(flight_status)? {
            rows += batch.num_rows();
            if rows > 1 {
                break;
            }
            if batch.num_rows() == 1 {
                row = Some(batch);
            }
        }
        let Some(batch) = row.filter(|_| rows == 1) else {
            return Err(Status::invalid_argument(format!(
                "bind one row of parameters per execution, got {}",
                if rows > 1 {
                    "more".to_string()
                } else {
                    rows.to_string()
                }
            )));
        };
        let values = row_values(&batch, 0)?;
        let mut prepared = session.prepared.lock().unwrap();
        let statement = prepared.get_mut(&handle).ok_or_else(unknown_prepared)?;
        statement.parameters = Some(values);
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into_bytes().into()),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        let handle = handle_of(&query.prepared_statement_handle)?;
        let plan = bind(&prepared_of(&session, &handle)?)?;
        self.info_for(session, plan, request.into_inner()).await
    }

    async fn do_put_statement_update(
        &self,
        query: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        let plan = self.engine.plan(&session, &query.query).await?;
        self.update(session, plan).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        let handle = handle_of(&query.prepared_statement_handle)?;
        let mut statement = prepared_of(&session, &handle)?;
        // The parameters come in this call's stream: one execution per row
        // (none: the parameters bound before, if any).
        let mut batches = parameter_batches(request);
        let mut rows = Vec::new();
        while let Some(batch) = batches.try_next().await.map_err(flight_status)? {
            for row in 0..batch.num_rows() {
                if rows.len() == MAX_UPDATE_ROWS {
                    return Err(Status::invalid_argument(format!(
                        "at most {MAX_UPDATE_ROWS} rows of parameters per update"
                    )));
                }
                rows.push(row_values(&batch, row)?);
            }
        }
        if rows.is_empty() {
            return self.update(session, bind(&statement)?).await;
        }
        let mut count = 0;
        for values in rows {
            statement.parameters = Some(values);
            count += self.update(Arc::clone(&session), bind(&statement)?).await?;
        }
        Ok(count)
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let session = self.session(&request).await?;
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).into_owned();
        session.prepared.lock().unwrap().remove(&handle);
        Ok(())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        _request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(&*query.info)
            .map_err(|e| Status::invalid_argument(format!("not a FlightInfo: {e}")))?;
        // CancelResult: 1 cancelled, 3 not cancellable (the enum's module is
        // not public).
        let result = match self.cancel_info(&info) {
            CancelStatus::Cancelled => 1,
            _ => 3,
        };
        Ok(ActionCancelQueryResult { result })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let action = request.get_ref();
        if action.r#type != "CancelFlightInfo" {
            return Err(Status::invalid_argument(format!(
                "unknown action '{}'",
                action.r#type
            )));
        }
        let cancel = CancelFlightInfoRequest::decode(&*action.body)
            .map_err(|e| Status::invalid_argument(format!("not a CancelFlightInfoRequest: {e}")))?;
        let status = match &cancel.info {
            Some(info) => self.cancel_info(info),
            None => CancelStatus::NotCancellable,
        };
        let result = CancelFlightInfoResult::new(status);
        let body = arrow_flight::Result {
            body: result.encode_to_vec().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(body)]))))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let mut builder = query.into_builder();
        let mut names = session.ctx.catalog_names();
        names.sort();
        for name in names {
            builder.append(name);
        }
        answer(builder.schema(), builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let mut builder = query.into_builder();
        for (catalog, schema) in schemas(&session) {
            builder.append(catalog, schema);
        }
        answer(builder.schema(), builder.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let mut builder = query.into_builder();
        for (catalog_name, schema_name) in schemas(&session) {
            let Some(schema) = session
                .ctx
                .catalog(&catalog_name)
                .and_then(|c| c.schema(&schema_name))
            else {
                continue;
            };
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                let provider: Arc<dyn TableProvider> = match schema.table(&name).await {
                    Ok(Some(p)) => p,
                    _ => continue,
                };
                let table_schema = engine::plain_schema(&provider.schema());
                builder
                    .append(
                        &catalog_name,
                        &schema_name,
                        &name,
                        table_type_name(provider.table_type()),
                        &table_schema,
                    )
                    .map_err(flight_status)?;
            }
        }
        answer(builder.schema(), builder.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for t in ["LOCAL TEMPORARY", "TABLE", "VIEW"] {
            builder.append(t);
        }
        answer(builder.schema(), builder.build())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = self.sql_info.schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder = query.into_builder(&self.sql_info);
        answer(builder.schema(), builder.build())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = self.types.schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder = query.into_builder(&self.types);
        answer(builder.schema(), builder.build())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl QueryService {
    /// A statement run as an update (what JDBC's `executeUpdate` and ADBC's
    /// `execute_update` send): DDL and SET run; a write or a query runs to
    /// its end, under the same limits; the answer is the rows written (0
    /// for DDL, the rows for a query).
    async fn update(&self, session: Arc<Session>, plan: LogicalPlan) -> Result<i64, Status> {
        if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)) {
            self.engine.run_command(&session, plan).await?;
            return Ok(0);
        }
        let written = matches!(plan, LogicalPlan::Copy(_) | LogicalPlan::Dml(_));
        let handle = self.engine.hold(session, plan);
        let (_, mut rx) = self.engine.start(&handle).await?;
        let mut count = 0i64;
        while let Some(batch) = rx.recv().await {
            let batch = batch?;
            count += match batch
                .column_by_name("count")
                .and_then(|c| c.as_primitive_opt::<arrow::datatypes::UInt64Type>())
            {
                Some(c) if written => c.iter().flatten().sum::<u64>() as i64,
                _ => batch.num_rows() as i64,
            };
        }
        Ok(count)
    }
}

/// Rows of parameters one update takes at most (`executemany`).
const MAX_UPDATE_ROWS: usize = 10_000;

fn row_values(batch: &RecordBatch, row: usize) -> Result<Vec<ScalarValue>, Status> {
    batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, row).map_err(|e| Status::internal(e.to_string())))
        .collect()
}

/// A prepared statement's handle as a client sends it back.
fn handle_of(bytes: &[u8]) -> Result<String, Status> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Status::invalid_argument("a handle that is not skewless's"))
}

/// The prepared statement of `handle` in a session (a copy: binding it
/// does not hold the session's lock).
fn prepared_of(session: &Session, handle: &str) -> Result<Prepared, Status> {
    session
        .prepared
        .lock()
        .unwrap()
        .get(handle)
        .cloned()
        .ok_or_else(unknown_prepared)
}

/// The record batches (rows of parameters) a DoPut streams in.
fn parameter_batches(
    request: Request<PeekableFlightDataStream>,
) -> arrow_flight::decode::FlightRecordBatchStream {
    let stream = request
        .into_inner()
        .map_err(|s| FlightError::Tonic(Box::new(s)));
    arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream)
}

fn unknown_prepared() -> Status {
    Status::not_found(
        "no prepared statement has this handle in this session (it was closed, or the session ended)",
    )
}

/// Every (catalog, schema) of a session but `information_schema`.
fn schemas(session: &Session) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut catalogs = session.ctx.catalog_names();
    catalogs.sort();
    for catalog_name in catalogs {
        let Some(catalog) = session.ctx.catalog(&catalog_name) else {
            continue;
        };
        let mut names = catalog.schema_names();
        names.sort();
        for schema_name in names {
            if schema_name != "information_schema" {
                out.push((catalog_name.clone(), schema_name));
            }
        }
    }
    out
}

/// The parameters a plan's placeholders take: `$1`, `$2`, … in order, typed
/// where DataFusion infers a type.
fn parameter_schema(plan: &LogicalPlan) -> Result<Schema, Status> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut names: Vec<(usize, String, arrow::datatypes::DataType)> = types
        .into_iter()
        .map(|(name, t)| {
            let n = name.trim_start_matches('$').parse().unwrap_or(usize::MAX);
            (n, name, t.unwrap_or(arrow::datatypes::DataType::Null))
        })
        .collect();
    names.sort();
    Ok(Schema::new(
        names
            .into_iter()
            .map(|(_, name, t)| arrow::datatypes::Field::new(name, t, true))
            .collect::<Vec<_>>(),
    ))
}

/// The prepared plan with its bound parameters, each cast to the type its
/// placeholder takes.
fn bind(statement: &Prepared) -> Result<LogicalPlan, Status> {
    let expected = parameter_schema(&statement.plan)?;
    let given = statement.parameters.clone().unwrap_or_default();
    if given.len() != expected.fields().len() {
        return Err(Status::invalid_argument(format!(
            "the statement takes {} parameter(s), {} were bound: {}",
            expected.fields().len(),
            given.len(),
            statement.sql
        )));
    }
    let values = given
        .into_iter()
        .zip(expected.fields())
        .map(|(value, field)| {
            if field.data_type().is_null() || value.data_type() == *field.data_type() {
                Ok(value)
            } else {
                value.cast_to(field.data_type()).map_err(|e| {
                    Status::invalid_argument(format!(
                        "parameter {} must be {}: {e}",
                        field.name(),
                        field.data_type()
                    ))
                })
            }
        })
        .collect::<Result<Vec<_>, Status>>()?;
    statement
        .plan
        .clone()
        .with_param_values(values)
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let options = arrow::ipc::writer::IpcWriteOptions::default();
    let message: arrow_flight::IpcMessage = arrow_flight::SchemaAsIpc::new(schema, &options)
        .try_into()
        .map_err(arrow_status)?;
    Ok(message.0)
}

fn sql_info() -> SqlInfoData {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "skewless");
    builder.append(
        SqlInfo::FlightSqlServerVersion,
        crate::cluster::identity::identity(),
    );
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    builder.append(SqlInfo::FlightSqlServerReadOnly, false);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    builder.append(SqlInfo::FlightSqlServerCancel, true);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, true);
    builder.append(SqlInfo::SqlDdlTable, true);
    // Unquoted names are lowercased (SqlSupportedCaseSensitivity 3);
    // quoted ones are kept as written and compared as they are.
    builder.append(SqlInfo::SqlIdentifierCase, 3i32);
    builder.build().expect("static SqlInfo")
}

fn xdbc_types() -> XdbcTypeInfoData {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    let types = [
        ("BOOLEAN", XdbcDataType::XdbcBit),
        ("TINYINT", XdbcDataType::XdbcTinyint),
        ("SMALLINT", XdbcDataType::XdbcSmallint),
        ("INTEGER", XdbcDataType::XdbcInteger),
        ("BIGINT", XdbcDataType::XdbcBigint),
        ("FLOAT", XdbcDataType::XdbcFloat),
        ("DOUBLE", XdbcDataType::XdbcDouble),
        ("DECIMAL", XdbcDataType::XdbcDecimal),
        ("VARCHAR", XdbcDataType::XdbcVarchar),
        ("BINARY", XdbcDataType::XdbcBinary),
        ("DATE", XdbcDataType::XdbcDate),
        ("TIME", XdbcDataType::XdbcTime),
        ("TIMESTAMP", XdbcDataType::XdbcTimestamp),
    ];
    for (name, data_type) in types {
        let quoted = matches!(
            data_type,
            XdbcDataType::XdbcVarchar | XdbcDataType::XdbcDate | XdbcDataType::XdbcTimestamp
        );
        builder.append(XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            column_size: None,
            literal_prefix: quoted.then(|| "'".into()),
            literal_suffix: quoted.then(|| "'".into()),
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: data_type == XdbcDataType::XdbcVarchar,
            searchable: Searchable::Full,
            unsigned_attribute: None,
            fixed_prec_scale: false,
            auto_increment: None,
            local_type_name: Some(name.into()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode: None,
            num_prec_radix: None,
            interval_precision: None,
        });
    }
    builder.build().expect("static type info")
}
