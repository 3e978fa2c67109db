//! Writing on a cluster: in parallel, atomically, with no storage access
//! on the client.
//!
//! Ballista 55 plans every write (`COPY`, `INSERT`, a DataFrame write) as
//! one sink after a coalesce: one task on one executor encodes every row.
//! A skewless write on a cluster is one job of two stages instead:
//!
//! 1. [`PartWriterExec`] writes each partition of its input — the scan's
//!    file ranges, which a row-wise plan keeps — to a part file of its own,
//!    `w_P.EXT` in a temporary directory beside the target, on whichever
//!    executor runs that task (an empty partition writes nothing, except
//!    partition 0, so that an empty output still has a file with the
//!    schema);
//! 2. [`CommitExec`], one task after all of them, moves the parts into
//!    place as `part-0000P.EXT` (the same move as a local write, see
//!    [`crate::write::target`]) and answers the number of rows.
//!
//! Every storage operation runs on the executors, with their object
//! stores: the client only plans. A single-file target is written by one
//! partition (the client plans the job with one target partition), so its
//! rows keep the input's order.
//!
//! The client sends the step as a logical node ([`WriteNode`]); the
//! scheduler plans it ([`WritePlanner`]); the nodes travel through
//! skewless's codecs ([`LogicalCodec`], [`PhysicalCodec`]), which hand
//! everything else to Ballista's.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use async_trait::async_trait;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, DataFusionError, Result, TableReference};
use datafusion::config::{CsvOptions, TableParquetOptions};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::{FileGroup, FileSinkConfig};
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    AggregateUDF, Expr, Extension, HigherOrderUDF, LogicalPlan, ScalarUDF, UserDefinedLogicalNode,
    UserDefinedLogicalNodeCore, WindowUDF,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::write::target::{Place, Target, Temporary};

/// What a cluster write does: fixed by the client, carried in the plans.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Serialize, Deserialize)]
pub struct WriteSpec {
    /// The target: an absolute path or a store URL (a trailing `/` for a
    /// directory).
    pub target: String,
    /// A directory of part files (otherwise one file).
    pub directory: bool,
    /// The temporary beside the target (as `target`), which the parts are
    /// written into (a directory) or which is the file.
    pub temp: String,
    /// The extension of the files: `parquet`, `csv`, `json`, `ndjson` or
    /// `jsonl`.
    pub format: String,
    /// Replace an existing target.
    pub overwrite: bool,
}

/// The schema of a write's answer: the rows written, as DataFusion's COPY.
fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

/// The schema of what each part writer tells the commit.
fn parts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("file", DataType::Utf8, false),
    ]))
}

/// The logical step the client sends: write `input` as `spec` says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WriteNode {
    input: LogicalPlan,
    spec: WriteSpec,
    schema: DFSchemaRef,
}

impl WriteNode {
    pub fn new(input: LogicalPlan, spec: WriteSpec) -> Result<Self> {
        Ok(Self {
            input,
            spec,
            schema: Arc::new(DFSchema::try_from(count_schema().as_ref().clone())?),
        })
    }

    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(self),
        })
    }
}

impl PartialOrd for WriteNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.spec.partial_cmp(&other.spec) {
            Some(Ordering::Equal) => self.input.partial_cmp(&other.input),
            order => order,
        }
    }
}

impl UserDefinedLogicalNodeCore for WriteNode {
    fn name(&self) -> &str {
        "SkewlessWrite"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SkewlessWrite: {} ({})",
            self.spec.target, self.spec.format
        )
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(Self {
            input: one(&inputs)?,
            spec: self.spec.clone(),
            schema: Arc::clone(&self.schema),
        })
    }
}

/// Plans a [`WriteNode`] on the scheduler: the part writers, then the
/// commit (DataFusion puts the coalesce between them, where Ballista cuts
/// the stages).
#[derive(Debug, Default)]
pub struct WritePlanner;

#[async_trait]
impl ExtensionPlanner for WritePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<WriteNode>() else {
            return Ok(None);
        };
        let parts = Arc::new(PartWriterExec::new(
            one(physical_inputs)?,
            node.spec.clone(),
        ));
        Ok(Some(Arc::new(CommitExec::new(parts, node.spec.clone()))))
    }
}

/// The query planner of cluster sessions: DataFusion's, with
/// [`WritePlanner`].
#[derive(Debug, Default)]
pub struct QueryPlanner;

#[async_trait]
impl datafusion::execution::context::QueryPlanner for QueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        datafusion::physical_planner::DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(WritePlanner),
        ])
        .create_physical_plan(logical_plan, session)
        .await
    }
}

fn properties(schema: SchemaRef, partitions: usize) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(partitions),
        EmissionType::Final,
        Boundedness::Bounded,
    ))
}

/// Writes each partition of its input to a part file of its own; answers
/// one row per partition: (partition, rows, file or NULL).
#[derive(Debug)]
pub struct PartWriterExec {
    input: Arc<dyn ExecutionPlan>,
    spec: WriteSpec,
    properties: Arc<PlanProperties>,
}

impl PartWriterExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, spec: WriteSpec) -> Self {
        let partitions = input.output_partitioning().partition_count();
        Self {
            input,
            spec,
            properties: properties(parts_schema(), partitions),
        }
    }
}

impl DisplayAs for PartWriterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PartWriterExec: {} part(s) of {} into {}",
            self.properties.partitioning.partition_count(),
            self.spec.format,
            self.spec.temp
        )
    }
}

impl ExecutionPlan for PartWriterExec {
    fn name(&self) -> &str {
        "PartWriterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        if self.spec.directory {
            vec![Distribution::UnspecifiedDistribution]
        } else {
            vec![Distribution::SinglePartition]
        }
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(one(&children)?, self.spec.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let key = part_key(&self.input, partition, &context);
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let spec = self.spec.clone();
        let schema = parts_schema();
        let answer = Arc::clone(&schema);
        let written = async move {
            let (rows, file) = write_part(&spec, &key, input, &context).await?;
            Ok(RecordBatch::try_new(
                answer,
                vec![
                    Arc::new(StringArray::from(vec![key])),
                    Arc::new(UInt64Array::from(vec![rows])),
                    Arc::new(StringArray::from(vec![file])),
                ],
            )?)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(written),
        )))
    }
}

/// What orders a part among the others: where its rows start in the input
/// (the first file of its scan and the byte its range starts at), so the
/// parts follow the input. A task runs its partitions as a plan of its own
/// (Ballista restricts the scan to them), so the partition number alone
/// does not say. Without a file scan below (a shuffle), the task's id.
fn part_key(input: &Arc<dyn ExecutionPlan>, partition: usize, context: &TaskContext) -> String {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    let mut key = None;
    let _ = input.apply(|node| {
        if let Some(scan) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|s| s.data_source().downcast_ref::<FileScanConfig>())
        {
            key = scan
                .file_groups
                .get(partition)
                .and_then(|g| g.files().first())
                .map(|f| {
                    let start = f.range.as_ref().map_or(0, |r| r.start);
                    format!("{}@{start:020}", f.object_meta.location)
                });
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    key.unwrap_or_else(|| format!("~{}/{partition:010}", context.task_id().unwrap_or_default()))
}

/// Writes one partition to a part file named after its key; its rows and
/// the file.
async fn write_part(
    spec: &WriteSpec,
    key: &str,
    input: SendableRecordBatchStream,
    context: &Arc<TaskContext>,
) -> Result<(u64, String)> {
    let file = if spec.directory {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}/w_{name}.{}",
            spec.temp.trim_end_matches('/'),
            spec.format
        )
    } else {
        spec.temp.clone()
    };
    let schema = input.schema();
    let url = ListingTableUrl::parse(&file)?;
    let config = FileSinkConfig {
        original_url: file.clone(),
        object_store_url: url.object_store(),
        file_group: FileGroup::default(),
        table_paths: vec![url],
        output_schema: schema,
        table_partition_cols: vec![],
        insert_op: InsertOp::Append,
        keep_partition_by_columns: false,
        file_extension: spec.format.clone(),
        file_output_mode: datafusion::datasource::physical_plan::FileOutputMode::SingleFile,
    };
    let sink: Arc<dyn DataSink> = match spec.format.as_str() {
        "parquet" => {
            let options = TableParquetOptions {
                global: context.session_config().options().execution.parquet.clone(),
                ..Default::default()
            };
            Arc::new(
                datafusion::datasource::file_format::parquet::ParquetSink::new(config, options),
            )
        }
        "csv" => Arc::new(datafusion::datasource::file_format::csv::CsvSink::new(
            config,
            (&CsvOptions::default().with_has_header(true)).try_into()?,
        )),
        _ => crate::json::format::sink(config)?,
    };
    let rows = sink.write_all(input, context).await?;
    tracing::info!(key, rows, file, "skewless wrote a part");
    Ok((rows, file))
}

/// Moves the parts into place once every part writer is done; answers the
/// rows written.
#[derive(Debug)]
pub struct CommitExec {
    input: Arc<dyn ExecutionPlan>,
    spec: WriteSpec,
    properties: Arc<PlanProperties>,
}

impl CommitExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, spec: WriteSpec) -> Self {
        Self {
            input,
            spec,
            properties: properties(count_schema(), 1),
        }
    }
}

impl DisplayAs for CommitExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitExec: {}", self.spec.target)
    }
}

impl ExecutionPlan for CommitExec {
    fn name(&self) -> &str {
        "CommitExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(one(&children)?, self.spec.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "CommitExec has one partition, not {partition}"
            )));
        }
        let mut input = self.input.execute(0, Arc::clone(&context))?;
        let spec = self.spec.clone();
        let schema = count_schema();
        let answer = Arc::clone(&schema);
        let committed = async move {
            let external = |e: crate::error::Error| DataFusionError::External(Box::new(e));
            let target = Target::parse(&spec.target, spec.directory).map_err(external)?;
            let place = Target::parse(&spec.temp, spec.directory)
                .map_err(external)?
                .place;
            // Removed if anything below fails.
            let temp = Temporary::adopt(target, place.clone());
            if let Place::Store { url, .. } = &place {
                temp.set_store(context.runtime_env().object_store(url)?);
            }
            // Every part, in input order: the empty ones are dropped (all
            // but one if every part is empty: the file that has the schema).
            let mut parts: Vec<(String, u64, String)> = Vec::new();
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let keys = batch.column(0).as_string::<i32>();
                let rows = batch.column(1).as_primitive::<UInt64Type>();
                let files = batch.column(2).as_string::<i32>();
                for i in 0..batch.num_rows() {
                    parts.push((
                        keys.value(i).to_string(),
                        rows.value(i),
                        files.value(i).to_string(),
                    ));
                }
            }
            parts.sort();
            let total: u64 = parts.iter().map(|p| p.1).sum();
            let mut names = std::collections::HashMap::new();
            let mut kept = 0;
            for (i, (_, rows, file)) in parts.iter().enumerate() {
                let name = file.rsplit('/').next().unwrap_or(file).to_string();
                let keep = *rows > 0 || (total == 0 && i == 0);
                let part = keep.then(|| format!("part-{kept:05}.{}", spec.format));
                kept += usize::from(keep);
                names.insert(name, part);
            }
            let temp = if spec.directory {
                temp.with_names(names)
            } else {
                temp
            };
            temp.commit_in(&context.runtime_env(), spec.overwrite)
                .await
                .map_err(external)?;
            Ok(RecordBatch::try_new(
                answer,
                vec![Arc::new(UInt64Array::from(vec![total]))],
            )?)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(committed),
        )))
    }
}

/// Marks skewless's nodes in the plans Ballista ships.
const MAGIC: &[u8] = b"skewless:write:";

fn encode_spec(kind: u8, spec: &WriteSpec, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    buf.push(kind);
    serde_json::to_writer(buf, spec).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn decode_spec(buf: &[u8], what: u8) -> Option<Result<WriteSpec>> {
    let rest = buf.strip_prefix(MAGIC)?;
    let (&kind, json) = rest.split_first()?;
    (kind == what)
        .then(|| serde_json::from_slice(json).map_err(|e| DataFusionError::External(Box::new(e))))
}

/// The one input (child) of a write node.
fn one<T: Clone>(inputs: &[T]) -> Result<T> {
    match inputs {
        [input] => Ok(input.clone()),
        _ => Err(DataFusionError::Internal(format!(
            "a skewless write node takes one input, got {}",
            inputs.len()
        ))),
    }
}

/// The function (de)serializers of a codec, handed to its inner codec:
/// skewless's functions travel by name, as Ballista's.
macro_rules! delegate_functions {
    () => {
        fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
            self.inner.try_decode_udf(name, buf)
        }

        fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udf(node, buf)
        }

        fn try_decode_higher_order_function(
            &self,
            name: &str,
            buf: &[u8],
        ) -> Result<Arc<HigherOrderUDF>> {
            self.inner.try_decode_higher_order_function(name, buf)
        }

        fn try_encode_higher_order_function(
            &self,
            node: &HigherOrderUDF,
            buf: &mut Vec<u8>,
        ) -> Result<()> {
            self.inner.try_encode_higher_order_function(node, buf)
        }

        fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
            self.inner.try_decode_udaf(name, buf)
        }

        fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udaf(node, buf)
        }

        fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
            self.inner.try_decode_udwf(name, buf)
        }

        fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udwf(node, buf)
        }
    };
}

/// Ballista's logical codec, which also carries [`WriteNode`].
#[derive(Debug, Default)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        match decode_spec(buf, b'L') {
            Some(spec) => Ok(Extension {
                node: Arc::new(WriteNode::new(one(inputs)?, spec?)?),
            }),
            None => self.inner.try_decode(buf, inputs, ctx),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        match node.node.as_any().downcast_ref::<WriteNode>() {
            Some(write) => encode_spec(b'L', &write.spec, buf),
            None => self.inner.try_encode(node, buf),
        }
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        self.inner
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    delegate_functions!();
}

/// Ballista's physical codec, which also carries [`PartWriterExec`] and
/// [`CommitExec`].
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(spec) = decode_spec(buf, b'P') {
            return Ok(Arc::new(PartWriterExec::new(one(inputs)?, spec?)));
        }
        if let Some(spec) = decode_spec(buf, b'C') {
            return Ok(Arc::new(CommitExec::new(one(inputs)?, spec?)));
        }
        self.inner.try_decode(buf, inputs, ctx, proto_converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let (kind, spec) = if let Some(p) = node.downcast_ref::<PartWriterExec>() {
            (b'P', &p.spec)
        } else if let Some(c) = node.downcast_ref::<CommitExec>() {
            (b'C', &c.spec)
        } else {
            return self.inner.try_encode(node, buf, proto_converter);
        };
        encode_spec(kind, spec, buf)
    }

    delegate_functions!();
}

/// The rows a write's answer reports.
pub fn rows_written(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter(|b| b.num_columns() == 1)
        .map(|b| {
            b.column(0)
                .as_primitive::<UInt64Type>()
                .iter()
                .flatten()
                .sum::<u64>()
        })
        .sum()
}

/// Writes the rows of `input` to `target` on the cluster `ctx` runs on
/// (see the module); answers the rows written.
pub async fn write(
    ctx: &datafusion::prelude::SessionContext,
    input: LogicalPlan,
    target: Target,
    overwrite: bool,
) -> crate::error::Result<u64> {
    // What the client can see of a local target (on one machine, or a
    // shared volume) is checked before the job; the commit checks again.
    if !overwrite && matches!(target.place, Place::Local(_)) && target.exists(ctx).await? {
        return Err(crate::write::target::exists_error(&target.display));
    }
    let directory = target.directory;
    // The executors resolve a local path in their own directories: both
    // places go absolute.
    let spec = WriteSpec {
        target: target.place.url(directory),
        directory,
        temp: target.temporary_place().url(directory),
        format: crate::write::output_extension(&target.display)?,
        overwrite,
    };
    let plan = WriteNode::new(input, spec)?.into_plan();
    super::check_plan_size(&plan)?;
    let mut state = ctx.state();
    if !directory {
        // One file: one partition reads the input in order.
        state.config_mut().options_mut().execution.target_partitions = 1;
    }
    let physical = state.create_physical_plan(&plan).await?;
    let batches = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
    Ok(rows_written(&batches))
}
