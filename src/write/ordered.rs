//! Deterministic, order-keeping execution of what skewless writes.
//!
//! DataFusion runs a query over several partitions and merges them in
//! whatever order they finish, so the rows of a written file come out in a
//! different order from run to run. Here a write's input is made
//! deterministic instead, in one of two ways:
//!
//! - **Row-wise plans** (projections, filters and UNNEST over one file
//!   scan, as every served transform is): the scan is cut into *units* that
//!   depend on the data alone — groups of Parquet row groups, byte ranges
//!   of CSV/NDJSON files, files otherwise, in path order — one partition
//!   each. [`OrderedConcatExec`] runs up to `target_partitions` units at a
//!   time and emits them in unit order: the input's row order (file order,
//!   then row order), with the same batches whatever the number of threads.
//!   Units ahead of the one being written hold at most a few batches, so
//!   memory stays bounded: the parallelism is the writer encoding while the
//!   next batches are computed.
//! - **Window steps of skewless's window functions** over such a chain
//!   ([`EntityWindowExec`]) read their input through the same units, in
//!   order, and emit an order of their own that depends on the data alone
//!   (entity by entity, by time), with row-wise steps above them.
//! - **Anything else** (joins, aggregates, sorts, DataFusion's windows) is
//!   planned on a single partition, where DataFusion's operators are
//!   deterministic, and partitions of sources are concatenated in order.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, replace_children_if_necessary,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::unnest::UnnestExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;
use skewless_udfs::window::exec::EntityWindowExec;

/// Rows a Parquet unit holds at least (consecutive row groups are joined
/// up to it): large enough that per-unit costs vanish, small enough to
/// spread a file over the threads.
const UNIT_ROWS: i64 = 128 * 1024;
/// Bytes of a CSV/NDJSON unit.
const UNIT_BYTES: u64 = 32 << 20;

/// The session settings under which a write is planned: no round-robin
/// repartitioning or re-split file scans (units are made here instead), no
/// work stealing between partitions, one output file at a time.
pub fn configure(state: &mut SessionState) {
    let options = state.config_mut().options_mut();
    options.optimizer.enable_round_robin_repartition = false;
    options.optimizer.repartition_file_scans = false;
    options.execution.minimum_parallel_output_files =
        datafusion::common::config::ConfigNonZeroUsize::try_new(1).expect("1 is not zero");
    options.execution.enable_file_stream_work_stealing = false;
}

/// Makes the plan under a write sink (or a query root) deterministic:
/// `None` when it is not row-wise over one file scan, in which case the
/// caller plans it again on one partition ([`single_partition`]).
pub async fn units(
    plan: Arc<dyn ExecutionPlan>,
    state: &SessionState,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    // A coalesce (or nothing) above the row-wise chain.
    let (below, fetch) = match plan.downcast_ref::<CoalescePartitionsExec>() {
        Some(c) => (Arc::clone(c.input()), c.fetch()),
        None => (Arc::clone(&plan), None),
    };
    let mut chain = Vec::new();
    let mut node = below;
    let base: Arc<dyn ExecutionPlan> = loop {
        if let Some(source) = node.downcast_ref::<DataSourceExec>() {
            let Some(scan) = source.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(None);
            };
            let groups = unit_groups(scan, state).await?;
            // Each unit stays in its partition: no work stealing between them.
            let config = FileScanConfigBuilder::from(scan.clone())
                .with_file_groups(groups)
                .with_preserve_order(true)
                .build();
            break DataSourceExec::from_data_source(config);
        }
        // A window step of skewless's functions reads its whole input in
        // order and emits a deterministic order of its own: its input is
        // cut into units in turn.
        if node.is::<EntityWindowExec>() {
            let child = Arc::clone(node.children()[0]);
            let Some(input) = Box::pin(units(child, state)).await? else {
                return Ok(None);
            };
            break replace_children_if_necessary(node, vec![input])?;
        }
        let row_wise = node.is::<ProjectionExec>()
            || node.is::<FilterExec>()
            || node.is::<UnnestExec>()
            || matches!(node.name(), "CoalesceBatchesExec" | "CooperativeExec");
        let children = node.children();
        if !row_wise || children.len() != 1 {
            return Ok(None);
        }
        let child = Arc::clone(children[0]);
        chain.push(node);
        node = child;
    };
    let mut rebuilt = base;
    for parent in chain.into_iter().rev() {
        rebuilt = replace_children_if_necessary(parent, vec![rebuilt])?;
    }
    let window = state.config().target_partitions().max(1);
    Ok(Some(Arc::new(OrderedConcatExec::new(
        rebuilt, window, fetch,
    ))))
}

/// For a plan planned on one partition: every merge of partitions (of a
/// source with several, such as a table built by CREATE TABLE … AS) becomes
/// an in-order concatenation.
pub fn single_partition(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    plan.transform_up(|node| {
        if let Some(c) = node.downcast_ref::<CoalescePartitionsExec>() {
            let concat = OrderedConcatExec::new(Arc::clone(c.input()), 1, c.fetch());
            return Ok(Transformed::yes(Arc::new(concat) as Arc<dyn ExecutionPlan>));
        }
        Ok(Transformed::no(node))
    })
    .map(|t| t.data)
}

/// The scan's files, in path order, cut into units of one partition each.
async fn unit_groups(scan: &FileScanConfig, state: &SessionState) -> Result<Vec<FileGroup>> {
    let mut files: Vec<PartitionedFile> = scan
        .file_groups
        .iter()
        .flat_map(|g| g.files().iter().cloned())
        .collect();
    files.sort_by(|a, b| {
        a.object_meta
            .location
            .cmp(&b.object_meta.location)
            .then_with(|| range_start(a).cmp(&range_start(b)))
    });
    let file_type = scan.file_source.file_type().to_string();
    let store = state.runtime_env().object_store(&scan.object_store_url)?;
    let compressed = scan.file_compression_type.is_compressed();
    let mut units = Vec::new();
    for file in files {
        let whole = file.range.is_some() || file.extensions.contains::<ParquetAccessPlan>();
        match file_type.as_str() {
            "parquet" if !whole => {
                let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
                let metadata = DFParquetMetadata::new(store.as_ref(), &file.object_meta)
                    .with_file_metadata_cache(Some(cache))
                    .fetch_metadata()
                    .await?;
                let groups = metadata.row_groups();
                if groups.len() <= 1 {
                    units.push(file);
                    continue;
                }
                let mut start = 0;
                while start < groups.len() {
                    let mut end = start;
                    let mut rows = 0;
                    while end < groups.len() && (end == start || rows < UNIT_ROWS) {
                        rows += groups[end].num_rows();
                        end += 1;
                    }
                    let mut plan = ParquetAccessPlan::new_none(groups.len());
                    for i in start..end {
                        plan.scan(i);
                    }
                    let mut unit = file.clone();
                    unit.extensions.insert(plan);
                    units.push(unit);
                    start = end;
                }
            }
            "csv" | "json" if !whole && !compressed && file.object_meta.size > UNIT_BYTES => {
                let size = file.object_meta.size;
                let mut start = 0;
                while start < size {
                    let end = (start + UNIT_BYTES).min(size);
                    units.push(file.clone().with_range(start as i64, end as i64));
                    start = end;
                }
            }
            _ => units.push(file),
        }
    }
    Ok(units.into_iter().map(|f| FileGroup::new(vec![f])).collect())
}

fn range_start(f: &PartitionedFile) -> i64 {
    f.range.as_ref().map_or(0, |r| r.start)
}

/// One partition: the input's partitions one after another, in order, with
/// up to `window` of them running at once (those ahead of the one being
/// emitted hold their batches until it is done). An optional `fetch`
/// stops after that many rows.
#[derive(Debug)]
pub struct OrderedConcatExec {
    input: Arc<dyn ExecutionPlan>,
    window: usize,
    fetch: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl OrderedConcatExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, window: usize, fetch: Option<usize>) -> Self {
        let mut eq = input.equivalence_properties().clone();
        eq.clear_orderings();
        eq.clear_per_partition_constants();
        let properties = PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            input,
            window: window.max(1),
            fetch,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for OrderedConcatExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OrderedConcatExec: partitions={}, window={}",
            self.input.output_partitioning().partition_count(),
            self.window
        )?;
        if let Some(fetch) = self.fetch {
            write!(f, ", fetch={fetch}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for OrderedConcatExec {
    fn name(&self) -> &str {
        "OrderedConcatExec"
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

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("OrderedConcatExec takes one child");
        }
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            self.window,
            self.fetch,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("OrderedConcatExec has one partition, not {partition}");
        }
        let state = Concat {
            input: Arc::clone(&self.input),
            context,
            count: self.input.output_partitioning().partition_count(),
            next: 0,
            window: self.window,
            running: VecDeque::new(),
            remaining: self.fetch,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            let batch = state.next_batch().await?;
            Some((batch, state))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.input.schema(),
            stream,
        )))
    }
}

/// Batches a partition may hold ahead of its reader: the head's producer
/// waits for the writer, the others wait for their turn.
const AHEAD: usize = 8;

/// A partition running ahead: its batches, as they come.
struct Running {
    receiver: tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
    // Dropping the task stops the partition.
    _task: datafusion::common::runtime::SpawnedTask<()>,
}

struct Concat {
    input: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
    count: usize,
    next: usize,
    window: usize,
    running: VecDeque<Running>,
    remaining: Option<usize>,
}

impl Concat {
    /// Starts partitions until `window` run (or none is left).
    fn fill(&mut self) {
        while self.running.len() < self.window && self.next < self.count {
            let (sender, receiver) = tokio::sync::mpsc::channel(AHEAD);
            let stream = self.input.execute(self.next, Arc::clone(&self.context));
            let task = datafusion::common::runtime::SpawnedTask::spawn(async move {
                let mut stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(batch) = stream.next().await {
                    let failed = batch.is_err();
                    if sender.send(batch).await.is_err() || failed {
                        return;
                    }
                }
            });
            self.running.push_back(Running {
                receiver,
                _task: task,
            });
            self.next += 1;
        }
    }

    async fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        if self.remaining == Some(0) {
            return None;
        }
        loop {
            self.fill();
            let head = self.running.front_mut()?;
            match head.receiver.recv().await {
                Some(Ok(batch)) => {
                    let batch = match &mut self.remaining {
                        Some(left) => {
                            let take = (*left).min(batch.num_rows());
                            *left -= take;
                            batch.slice(0, take)
                        }
                        None => batch,
                    };
                    return Some(Ok(batch));
                }
                Some(Err(e)) => {
                    self.running.clear();
                    self.next = self.count;
                    return Some(Err(e));
                }
                None => {
                    self.running.pop_front();
                }
            }
        }
    }
}
