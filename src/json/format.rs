//! NDJSON as a DataFusion file format with skewless's JSON convention.
//!
//! [`JsonFormatFactory`] replaces DataFusion's JSON format in every skewless
//! session, under the extensions `json`, `ndjson` and `jsonl` (so `STORED AS
//! NDJSON` and `COPY … TO 'x.jsonl'` work). It reads as DataFusion does,
//! except that schema inference takes a column whose values are numbers and
//! the strings `"NaN"`, `"-NaN"`, `"Infinity"`, `"-Infinity"` (or only
//! those strings) as Float64 — the convention's floats read back as floats
//! (Arrow's JSON decoder parses those strings into a float column). It
//! writes with [`super::writer_builder`]: explicit nulls, and floats as the
//! convention says.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::catalog::Session;
use datafusion::common::file_options::json_writer::JsonWriterOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::{GetExt, Result, Statistics, not_impl_err};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::{
    JsonFormat as DfJsonFormat, JsonFormatFactory as DfJsonFormatFactory,
};
use datafusion::datasource::file_format::write::BatchSerializer;
use datafusion::datasource::file_format::write::demux::DemuxedStreamReceiver;
use datafusion::datasource::file_format::write::orchestration::spawn_writer_tasks_and_join;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::datasource::physical_plan::{FileScanConfig, FileSinkConfig, FileSource};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_expr_common::sort_expr::LexRequirement;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

/// The extensions skewless reads and writes as NDJSON.
pub const EXTENSIONS: [&str; 3] = ["json", "ndjson", "jsonl"];

/// Makes [`JsonFormat`]s; one per extension is registered in a session.
#[derive(Debug)]
pub struct JsonFormatFactory {
    ext: &'static str,
    inner: DfJsonFormatFactory,
}

impl JsonFormatFactory {
    pub fn new(ext: &'static str) -> Self {
        Self {
            ext,
            inner: DfJsonFormatFactory::new(),
        }
    }

    /// One factory per extension in [`EXTENSIONS`].
    pub fn all() -> Vec<Arc<dyn FileFormatFactory>> {
        EXTENSIONS
            .iter()
            .map(|ext| Arc::new(Self::new(ext)) as _)
            .collect()
    }
}

impl GetExt for JsonFormatFactory {
    fn get_ext(&self) -> String {
        self.ext.to_string()
    }
}

impl FileFormatFactory for JsonFormatFactory {
    fn create(
        &self,
        state: &dyn Session,
        format_options: &HashMap<String, String>,
    ) -> Result<Arc<dyn FileFormat>> {
        let inner = self.inner.create(state, format_options)?;
        let inner = match inner.downcast_ref::<DfJsonFormat>() {
            Some(f) => DfJsonFormat::default().with_options(f.options().clone()),
            None => DfJsonFormat::default(),
        };
        Ok(Arc::new(JsonFormat::new(inner, self.ext)))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(JsonFormat::new(DfJsonFormat::default(), self.ext))
    }
}

/// DataFusion's JSON format with skewless's inference and writer.
#[derive(Debug, Default)]
pub struct JsonFormat {
    inner: DfJsonFormat,
    ext: &'static str,
}

impl JsonFormat {
    pub fn new(inner: DfJsonFormat, ext: &'static str) -> Self {
        Self { inner, ext }
    }

    fn writer_options(&self) -> Result<JsonWriterOptions> {
        JsonWriterOptions::try_from(self.inner.options())
    }
}

#[async_trait]
impl FileFormat for JsonFormat {
    fn get_ext(&self) -> String {
        self.ext.to_string()
    }

    fn get_ext_with_compression(&self, c: &FileCompressionType) -> Result<String> {
        Ok(format!("{}{}", self.ext, c.get_ext()))
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.inner.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        let mut schema = self.inner.infer_schema(state, store, objects).await?;
        // A column NULL in every sampled line (sparse, or all its first
        // values NULL, as in window features ordered entity by entity)
        // would be typed Null and fail at its first value: read on until
        // every column has a type, or the end.
        if schema
            .fields()
            .iter()
            .any(|f| f.data_type() == &DataType::Null)
        {
            let all = DfJsonFormat::default()
                .with_options(self.inner.options().clone())
                .with_schema_infer_max_rec(usize::MAX);
            schema = all.infer_schema(state, store, objects).await?;
        }
        let strings: Vec<&str> = schema
            .fields()
            .iter()
            .filter(|f| f.data_type() == &DataType::Utf8)
            .map(|f| f.name().as_str())
            .collect();
        let compressed = self
            .compression_type()
            .is_some_and(|c| c != FileCompressionType::UNCOMPRESSED);
        if strings.is_empty() || compressed {
            return Ok(schema);
        }
        let limit = self.inner.options().schema_infer_max_rec.unwrap_or(1000);
        let mut seen: BTreeMap<&str, Seen> =
            strings.iter().map(|s| (*s, Seen::default())).collect();
        // The rows DataFusion inferred from: up to `limit` in all, in order.
        let mut remaining = limit;
        for object in objects {
            if remaining == 0 {
                break;
            }
            let head = store
                .get_range(&object.location, 0..object.size.min(SAMPLE_BYTES))
                .await?;
            remaining -= sample(&head, remaining, &mut seen);
        }
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| match seen.get(f.name().as_str()) {
                Some(s) if s.special && !s.other => {
                    f.as_ref().clone().with_data_type(DataType::Float64)
                }
                _ => f.as_ref().clone(),
            })
            .collect();
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        )))
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        self.inner
            .infer_stats(state, store, table_schema, object)
            .await
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.create_physical_plan(state, conf).await
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        _state: &dyn Session,
        conf: FileSinkConfig,
        order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if conf.insert_op != InsertOp::Append {
            return not_impl_err!("Overwrites are not implemented for NDJSON");
        }
        let sink = Arc::new(JsonSink {
            config: conf,
            options: self.writer_options()?,
        });
        Ok(Arc::new(DataSinkExec::new(input, sink, order_requirements)))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.inner.file_source(table_schema)
    }
}

/// How much of each file schema inference samples again for float strings.
const SAMPLE_BYTES: u64 = 4 << 20;

/// What the values of a string-inferred column looked like.
#[derive(Debug, Default)]
struct Seen {
    /// A float string of the convention ("NaN", "Infinity", …).
    special: bool,
    /// Any other string (or object, array, boolean).
    other: bool,
}

/// Looks at the first `limit` complete lines of `head`; how many it saw.
fn sample(head: &Bytes, limit: usize, seen: &mut BTreeMap<&str, Seen>) -> usize {
    let complete = match head.iter().rposition(|&b| b == b'\n') {
        Some(end) => &head[..end],
        None => &head[..],
    };
    let lines = complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(limit);
    let mut count = 0;
    for line in lines {
        count += 1;
        let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(line) else {
            continue;
        };
        for (key, value) in &object {
            let Some(s) = seen.get_mut(key.as_str()) else {
                continue;
            };
            match value {
                serde_json::Value::Null | serde_json::Value::Number(_) => {}
                serde_json::Value::String(text) if super::special_float(text).is_some() => {
                    s.special = true;
                }
                _ => s.other = true,
            }
        }
    }
    count
}

/// A sink that writes NDJSON in the convention to `config`'s output, with
/// DataFusion's default JSON writer options (a cluster's part writers).
pub(crate) fn sink(config: FileSinkConfig) -> Result<Arc<dyn DataSink>> {
    Ok(Arc::new(JsonSink {
        config,
        options: JsonWriterOptions::try_from(&datafusion::config::JsonOptions::default())?,
    }))
}

/// Writes NDJSON files in the convention.
struct JsonSink {
    config: FileSinkConfig,
    options: JsonWriterOptions,
}

impl fmt::Debug for JsonSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonSink").finish()
    }
}

impl DisplayAs for JsonSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonSink(file={})", self.config.original_url)
    }
}

#[async_trait]
impl datafusion::datasource::physical_plan::FileSink for JsonSink {
    fn config(&self) -> &FileSinkConfig {
        &self.config
    }

    async fn spawn_writer_tasks_and_join(
        &self,
        context: &Arc<TaskContext>,
        demux_task: SpawnedTask<Result<()>>,
        file_stream_rx: DemuxedStreamReceiver,
        object_store: Arc<dyn ObjectStore>,
    ) -> Result<u64> {
        spawn_writer_tasks_and_join(
            context,
            Arc::new(Serializer),
            self.options.compression.into(),
            self.options.compression_level,
            object_store,
            demux_task,
            file_stream_rx,
        )
        .await
    }
}

#[async_trait]
impl DataSink for JsonSink {
    fn schema(&self) -> &SchemaRef {
        self.config.output_schema()
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> Result<u64> {
        datafusion::datasource::physical_plan::FileSink::write_all(self, data, context).await
    }
}

struct Serializer;

impl BatchSerializer for Serializer {
    fn serialize(&self, batch: RecordBatch, _initial: bool) -> Result<Bytes> {
        let mut buffer = Vec::with_capacity(4096);
        let mut writer =
            super::writer_builder().build::<_, arrow::json::writer::LineDelimited>(&mut buffer);
        writer.write(&batch)?;
        writer.finish()?;
        Ok(Bytes::from(buffer))
    }
}
