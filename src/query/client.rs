//! skewless's own Flight SQL client: `repl --connect` and `run --connect`
//! run their statements on a query server and print what comes back as a
//! local run prints it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{SchemaRef, UInt64Type};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    CommandGetSqlInfo, CommandGetTables, CommandStatementQuery, ProstMessageExt, SqlInfo,
};
use arrow_flight::{Action, CancelFlightInfoRequest, FlightDescriptor, FlightInfo, Ticket};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::engine::{KIND_DONE, KIND_WRITTEN};
use crate::error::{Error, Result};
use crate::exec::Outcome;
use crate::output::ResultSink;

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Client = FlightServiceClient<InterceptedService<Channel, Bearer>>;

/// A connection to a query server (one session on it).
#[derive(Clone)]
pub struct Remote {
    client: Client,
    /// `grpc://HOST:PORT`, for messages.
    pub url: String,
    /// The server's `skewless VERSION (functions …)`.
    pub server: String,
}

/// A gRPC status as a skewless error: the server's message, with the code
/// when it is not a plain bad statement.
pub fn remote_error(status: &tonic::Status) -> Error {
    let message = status.message();
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::Unknown => Error::Data(message.to_string()),
        code => Error::Data(format!("{} ({:?})", message, code)),
    }
}

fn flight_error(e: FlightError) -> Error {
    match e {
        FlightError::Tonic(status) => remote_error(&status),
        e => Error::Data(format!("query server: {e}")),
    }
}

impl Remote {
    /// Connects to `url` (`grpc://HOST:PORT`) and asks the server who it is;
    /// a wrong or missing token fails here.
    pub async fn connect(url: &str, token: Option<String>, ca: Option<&Path>) -> Result<Self> {
        let usage = || {
            Error::Usage(format!(
                "--connect {url}: expected grpc://HOST:PORT or grpc+tls://HOST:PORT (a \
                 `skewless query-server`)"
            ))
        };
        let (address, tls) = match (url.strip_prefix("grpc://"), url.strip_prefix("grpc+tls://")) {
            (Some(a), _) => (a, false),
            (_, Some(a)) => (a, true),
            _ => return Err(usage()),
        };
        if address.is_empty() || address.contains('/') {
            return Err(usage());
        }
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|_| usage())?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        let connected = if tls {
            let config = super::tls::client_config(ca)?;
            let host = address
                .rsplit_once(':')
                .map_or(address, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let name = rustls::pki_types::ServerName::try_from(host).map_err(|_| usage())?;
            let address = address.to_string();
            let connector = tower::service_fn(move |_: http::Uri| {
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(&config));
                let name = name.clone();
                let address = address.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(&address).await?;
                    tcp.set_nodelay(true)?;
                    let tls = connector.connect(name, tcp).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            });
            endpoint.connect_with_connector(connector).await
        } else {
            endpoint.connect().await
        };
        let channel = connected.map_err(|e| {
            let mut source: &dyn std::error::Error = &e;
            while let Some(inner) = source.source() {
                source = inner;
            }
            Error::Data(format!(
                "cannot connect to the query server at {url}: {source}"
            ))
        })?;
        let bearer = match token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| Error::Usage("the token is not a valid header value".into()))?,
            ),
            None => None,
        };
        let client = FlightServiceClient::with_interceptor(channel, Bearer(bearer))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let mut remote = Self {
            client,
            url: url.to_string(),
            server: String::new(),
        };
        remote.server = match remote.server_identity().await {
            Ok(server) => server,
            // A TLS server closes a plain connection at once (the error
            // varies: cancelled, an h2 error, a transport error).
            Err(Error::Data(m)) if !tls && !m.ends_with("(Unauthenticated)") => {
                return Err(Error::Data(format!(
                    "the query server at {url} closed the connection: {m}; if the server has \
                     --tls-cert, connect with grpc+tls://"
                )));
            }
            Err(e) => return Err(e),
        };
        Ok(remote)
    }

    async fn server_identity(&mut self) -> Result<String> {
        let command = CommandGetSqlInfo {
            info: vec![SqlInfo::FlightSqlServerVersion as u32],
        };
        let batches = self.fetch(command.as_any().encode_to_vec()).await?;
        for batch in &batches {
            let values = batch.column(1).as_union();
            for i in 0..values.len() {
                let value = values.value(i);
                if let Some(s) = value.as_string_opt::<i32>()
                    && !s.is_empty()
                {
                    return Ok(s.value(0).to_string());
                }
            }
        }
        Ok("an unknown version".into())
    }

    /// All batches of a command's (single-endpoint) result.
    async fn fetch(&mut self, command: Vec<u8>) -> Result<Vec<RecordBatch>> {
        let info = self
            .client
            .get_flight_info(FlightDescriptor::new_cmd(command))
            .await
            .map_err(|s| remote_error(&s))?
            .into_inner();
        let mut out = Vec::new();
        for endpoint in info.endpoint {
            let Some(ticket) = endpoint.ticket else {
                continue;
            };
            let mut stream = self.stream(ticket).await?;
            while let Some(batch) = stream.next().await {
                out.push(batch.map_err(flight_error)?);
            }
        }
        Ok(out)
    }

    async fn stream(&mut self, ticket: Ticket) -> Result<FlightRecordBatchStream> {
        let data = self
            .client
            .do_get(ticket)
            .await
            .map_err(|s| remote_error(&s))?
            .into_inner();
        Ok(FlightRecordBatchStream::new_from_flight_data(
            data.map_err(|s| FlightError::Tonic(Box::new(s))),
        ))
    }

    /// Runs one statement on the server; rows stream into `sink` as for a
    /// local statement. `running` receives the statement's FlightInfo once
    /// it has one, so that a Ctrl-C can cancel it on the server.
    pub async fn execute(
        &self,
        sql: &str,
        sink: &mut (dyn ResultSink + Send),
        running: Option<Arc<Mutex<Option<FlightInfo>>>>,
    ) -> Result<Outcome> {
        let mut this = self.clone();
        let command = CommandStatementQuery {
            query: sql.to_string(),
            transaction_id: None,
        };
        let info = this
            .client
            .get_flight_info(FlightDescriptor::new_cmd(command.as_any().encode_to_vec()))
            .await
            .map_err(|s| remote_error(&s))?
            .into_inner();
        if let Some(slot) = &running {
            *slot.lock().unwrap() = Some(info.clone());
        }
        if info.app_metadata.as_ref() == KIND_DONE {
            return Ok(Outcome::Done);
        }
        let written = info.app_metadata.as_ref() == KIND_WRITTEN;
        let schema: SchemaRef = Arc::new(
            info.clone()
                .try_decode_schema()
                .map_err(|e| Error::Data(format!("query server: a bad schema: {e}")))?,
        );
        if !written {
            sink.begin(&schema)?;
        }
        let mut rows = 0;
        let mut count = 0u64;
        for endpoint in info.endpoint {
            let Some(ticket) = endpoint.ticket else {
                continue;
            };
            let mut stream = this.stream(ticket).await?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(flight_error)?;
                if written {
                    if let Some(c) = batch
                        .column_by_name("count")
                        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
                    {
                        count += c.iter().flatten().sum::<u64>();
                    }
                    continue;
                }
                rows += batch.num_rows();
                sink.batch(&batch)?;
            }
        }
        if written {
            return Ok(Outcome::Written(count));
        }
        sink.end(rows)?;
        Ok(Outcome::Rows(rows))
    }

    /// Asks the server to stop the statement of `info` (its work stops
    /// when the client drops the stream too; this also stops a statement
    /// still waiting for a slot).
    pub async fn cancel(&self, info: FlightInfo) {
        let mut this = self.clone();
        let action = Action {
            r#type: "CancelFlightInfo".into(),
            body: CancelFlightInfoRequest::new(info).encode_to_vec().into(),
        };
        let call = async {
            if let Ok(response) = this.client.do_action(action).await {
                let _ = response.into_inner().try_collect::<Vec<_>>().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), call).await;
    }

    /// The server's tables and views of this session: (name, type) with
    /// the types a local REPL shows (base, view, temporary).
    pub async fn tables(&self) -> Result<Vec<[String; 2]>> {
        let rows = self.get_tables(None, false).await?;
        Ok(rows
            .into_iter()
            .map(|(name, kind, _)| [name, kind])
            .collect())
    }

    /// A table's columns, as the server reads them.
    pub async fn describe(&self, name: &str) -> Result<arrow::datatypes::Schema> {
        let rows = self.get_tables(Some(name), true).await?;
        match rows.into_iter().find(|(n, _, _)| n == name) {
            Some((_, _, Some(schema))) => Ok(schema),
            _ => Err(Error::Data(format!(
                "table '{name}' not found on the query server"
            ))),
        }
    }

    async fn get_tables(
        &self,
        name: Option<&str>,
        include_schema: bool,
    ) -> Result<Vec<(String, String, Option<arrow::datatypes::Schema>)>> {
        let mut this = self.clone();
        let command = CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: name.map(str::to_string),
            table_types: vec![],
            include_schema,
        };
        let batches = this.fetch(command.as_any().encode_to_vec()).await?;
        let mut out = Vec::new();
        for batch in &batches {
            let names = batch.column(2).as_string::<i32>();
            let kinds = batch.column(3).as_string::<i32>();
            let schemas = batch.column_by_name("table_schema");
            for i in 0..batch.num_rows() {
                let kind = match kinds.value(i) {
                    "TABLE" => "base",
                    "VIEW" => "view",
                    "LOCAL TEMPORARY" => "temporary",
                    other => other,
                };
                let schema = match schemas {
                    Some(s) => Some(
                        arrow::ipc::convert::try_schema_from_ipc_buffer(
                            s.as_binary::<i32>().value(i),
                        )
                        .map_err(|e| Error::Data(format!("query server: a bad schema: {e}")))?,
                    ),
                    None => None,
                };
                out.push((names.value(i).to_string(), kind.to_string(), schema));
            }
        }
        Ok(out)
    }
}
