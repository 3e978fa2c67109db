//! Every window call of a window step over all entities at once.
//!
//! DataFusion evaluates a window function partition by partition: it sorts
//! (or hash-partitions, then sorts) the whole input by the `PARTITION BY`
//! columns and calls the evaluator once per entity. For skewless's window
//! functions neither is needed: an entity's events are found by hashing its
//! key, and each entity is sorted by time on its own. [`EntityWindowRule`]
//! (a physical optimizer rule, to run before DataFusion's own) replaces a
//! window step whose calls are all skewless's by [`EntityWindowExec`], which
//!
//! 1. reads its input (one partition, in order), giving each row the id of
//!    its entity (keys under 16 bytes in a [`crate::kernel::packed`] table,
//!    others in a hash map over their bytes) and keeping the columns;
//!    a `PARTITION BY` column that no call reads is not kept but rebuilt at
//!    output from each entity's key (one value per entity);
//! 2. groups the rows by entity (a counting sort);
//! 3. cuts the entities into runs of about a batch of rows and, on
//!    `target_partitions` worker threads as the output is read, orders
//!    each entity's rows by time and evaluates every call with
//!    [`super::CallInputs::evaluate_entity`] (the code DataFusion's path
//!    calls per partition), then emits the runs in order.
//!
//! The output holds the input's rows entity by entity, in order of each
//! entity's first row, and each entity's rows by time (ties, then rows
//! without a time, in input order). That order depends on the input's
//! order alone, not on the thread count: with the write path's ordered
//! input (files, then row groups, in order) the same bytes whatever the
//! partitioning. Only the kept input, the entity ids and a few runs'
//! results are held (10M events, four windows: about 500 MB; BENCHMARKS.md).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions,
    UInt32Array,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::{concat, take};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, exec_err, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::WindowUDFImpl;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::window::{StandardWindowExpr, WindowExpr};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use super::{CallInputs, EntityScratch, Times, WindowAggregate, user_args, window_rule};
use crate::kernel::packed::{PackedTable, pack, prefetch};
use crate::kernel::window::{Agg, WindowRule, WindowValue};

/// Replaces window steps whose calls are all skewless window functions by
/// [`EntityWindowExec`]. Runs first among the physical optimizer rules
/// ([`with_entity_windows`]), so that DataFusion's later rules see its
/// requirement (one input partition, no order) and add no sort.
#[derive(Debug, Default)]
pub struct EntityWindowRule;

/// DataFusion's physical optimizer rules with [`EntityWindowRule`] first.
pub fn with_entity_windows(
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut all: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> =
        vec![Arc::new(EntityWindowRule)];
    all.extend(rules);
    all
}

impl PhysicalOptimizerRule for EntityWindowRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let (exprs, input) = if let Some(w) = node.downcast_ref::<WindowAggExec>() {
                (w.window_expr(), w.input())
            } else if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
                (w.window_expr(), w.input())
            } else {
                return Ok(Transformed::no(node));
            };
            match EntityWindowExec::try_new(exprs.to_vec(), Arc::clone(input), node.schema())? {
                Some(exec) => Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "skewless_entity_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// One window call: its function, rule and argument expressions.
#[derive(Debug, Clone)]
struct Call {
    agg: Agg,
    rule: WindowRule,
    value: Arc<dyn PhysicalExpr>,
    ts: Arc<dyn PhysicalExpr>,
    known: Option<Arc<dyn PhysicalExpr>>,
}

/// Evaluates a window step's skewless window calls over every entity at
/// once (see the module docs).
#[derive(Debug)]
pub struct EntityWindowExec {
    input: Arc<dyn ExecutionPlan>,
    window_exprs: Vec<Arc<dyn WindowExpr>>,
    calls: Vec<Call>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl EntityWindowExec {
    /// The exec of a window step, `None` unless every call is a skewless
    /// window function and all share one `PARTITION BY`.
    pub fn try_new(
        window_exprs: Vec<Arc<dyn WindowExpr>>,
        input: Arc<dyn ExecutionPlan>,
        schema: SchemaRef,
    ) -> Result<Option<Self>> {
        let Some(first) = window_exprs.first() else {
            return Ok(None);
        };
        let partition_by = first.partition_by().to_vec();
        let input_schema = input.schema();
        let mut calls = Vec::with_capacity(window_exprs.len());
        for expr in &window_exprs {
            let Some(standard) = expr.as_any().downcast_ref::<StandardWindowExpr>() else {
                return Ok(None);
            };
            let Some(udf) = standard
                .get_standard_func_expr()
                .as_any()
                .downcast_ref::<WindowUDFExpr>()
            else {
                return Ok(None);
            };
            let Some(function) = udf.fun().inner().as_ref().downcast_ref::<WindowAggregate>()
            else {
                return Ok(None);
            };
            if expr.partition_by() != partition_by.as_slice() {
                return Ok(None);
            }
            let args = udf.args();
            let n = user_args(args);
            let ts_type = args[1].data_type(&input_schema)?;
            let rule = window_rule(function.name(), &ts_type, &args[2..n.min(5)])?;
            calls.push(Call {
                agg: function.agg(),
                rule,
                value: Arc::clone(&args[0]),
                ts: Arc::clone(&args[1]),
                known: (n == 6).then(|| Arc::clone(&args[5])),
            });
        }
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Some(Self {
            input,
            window_exprs,
            calls,
            partition_by,
            schema,
            properties: Arc::new(properties),
        }))
    }

    /// The input columns read back from the entity's key at output rather
    /// than kept: `PARTITION BY` columns that no call reads, with the index
    /// of their `PARTITION BY` expression.
    fn rebuilt_columns(&self) -> Vec<(usize, usize)> {
        let mut read = std::collections::HashSet::new();
        for call in &self.calls {
            for e in [&call.value, &call.ts]
                .into_iter()
                .chain(call.known.as_ref())
            {
                read.extend(datafusion::physical_expr::utils::collect_columns(e));
            }
        }
        self.partition_by
            .iter()
            .enumerate()
            .filter_map(|(p, e)| {
                let c = e.downcast_ref::<Column>()?;
                (!read.contains(c)).then_some((c.index(), p))
            })
            .collect()
    }
}

impl DisplayAs for EntityWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .window_exprs
            .iter()
            .map(|e| {
                e.name()
                    .split(" PARTITION BY")
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let keys: Vec<String> = self.partition_by.iter().map(|e| e.to_string()).collect();
        write!(
            f,
            "EntityWindowExec: partition_by=[{}], calls=[{}]",
            keys.join(", "),
            names.join(", ")
        )
    }
}

impl ExecutionPlan for EntityWindowExec {
    fn name(&self) -> &str {
        "EntityWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for e in &self.partition_by {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        for call in &self.calls {
            for e in [&call.value, &call.ts]
                .into_iter()
                .chain(call.known.as_ref())
            {
                if f(e)? == TreeNodeRecursion::Stop {
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("EntityWindowExec takes one child");
        }
        Ok(Arc::new(Self {
            input: children.swap_remove(0),
            window_exprs: self.window_exprs.clone(),
            calls: self.calls.clone(),
            partition_by: self.partition_by.clone(),
            schema: Arc::clone(&self.schema),
            properties: Arc::clone(&self.properties),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("EntityWindowExec has one partition, not {partition}");
        }
        let input = self.input.execute(0, Arc::clone(&context))?;
        let job = Job {
            calls: self.calls.clone(),
            partition_by: self.partition_by.clone(),
            rebuilt: self.rebuilt_columns(),
            input_schema: self.input.schema(),
            schema: Arc::clone(&self.schema),
            threads: context.session_config().target_partitions().max(1),
        };
        let stream = futures::stream::once(job.run(input)).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// One execution of an [`EntityWindowExec`].
struct Job {
    calls: Vec<Call>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// (input column, `PARTITION BY` index) of the columns rebuilt at output.
    rebuilt: Vec<(usize, usize)>,
    input_schema: SchemaRef,
    schema: SchemaRef,
    /// Threads evaluating entities.
    threads: usize,
}

impl Job {
    async fn run(self, mut input: SendableRecordBatchStream) -> Result<Batches> {
        // 1. Read: entity ids, kept columns, batch lengths.
        let width = self.input_schema.fields().len();
        let kept: Vec<usize> = (0..width)
            .filter(|c| !self.rebuilt.iter().any(|(r, _)| r == c))
            .collect();
        let mut keys = Keys::new(&self.partition_by, &self.input_schema)?;
        let mut ids: Vec<u32> = Vec::new();
        let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); kept.len()];
        while let Some(batch) = input.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            keys.assign(&batch, &mut ids)?;
            for (j, &c) in kept.iter().enumerate() {
                parts[j].push(Arc::clone(batch.column(c)));
            }
        }
        let rows = ids.len();
        if rows == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        if u32::try_from(rows).is_err() {
            return exec_err!(
                "window functions: {rows} rows in one window step; at most {} are supported",
                u32::MAX
            );
        }
        // One array per kept column, each concatenated and its parts let
        // go before the next (the input is held once).
        let mut columns = Vec::with_capacity(kept.len());
        for part in &mut parts {
            let part = std::mem::take(part);
            columns.push(match part.len() {
                1 => Arc::clone(&part[0]),
                _ => concat(&part.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?,
            });
        }
        let kept_schema = Arc::new(Schema::new(
            kept.iter()
                .map(|&c| self.input_schema.field(c).clone())
                .collect::<Vec<Field>>(),
        ));
        let all = RecordBatch::try_new_with_options(
            Arc::clone(&kept_schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        // The calls' arguments over the kept columns.
        let position: Vec<Option<usize>> = (0..width)
            .map(|c| kept.iter().position(|&k| k == c))
            .collect();
        let mut inputs = Vec::with_capacity(self.calls.len());
        for call in &self.calls {
            let eval = |e: &Arc<dyn PhysicalExpr>| -> Result<ArrayRef> {
                remap(e, &position)?.evaluate(&all)?.into_array(rows)
            };
            inputs.push(CallInputs {
                agg: call.agg,
                rule: call.rule,
                value: eval(&call.value)?,
                ts: Times::of(&eval(&call.ts)?)?,
                known: match &call.known {
                    Some(k) => Some(Times::of(&eval(k)?)?),
                    None => None,
                },
            });
        }
        // 2. Group by entity.
        let entities = keys.count();
        let groups = Groups::new(&ids, entities);
        drop(ids);
        let firsts = keys.firsts()?;
        // 3. Order each entity's rows by time, evaluate and emit, a run of
        // entities at a time, on worker threads, as the output is read.
        let mut by_time: Vec<Vec<usize>> = Vec::new();
        for (c, call) in inputs.iter().enumerate() {
            match by_time
                .iter_mut()
                .find(|g| inputs[g[0]].ts.same_as(&call.ts))
            {
                Some(g) => g.push(c),
                None => by_time.push(vec![c]),
            }
        }
        let runs = groups.runs();
        let output = Arc::new(Output {
            schema: self.schema,
            width,
            all,
            position,
            rebuilt: self.rebuilt,
            firsts,
            no_window: std::mem::take(&mut keys.no_window),
            touched: Touched::of(&inputs),
            inputs,
            by_time,
            groups,
        });
        Ok(output.stream(runs, self.threads))
    }
}

/// The output batches, in order.
type Batches = futures::stream::BoxStream<'static, Result<RecordBatch>>;

/// An expression over the input's columns, over the kept ones instead.
fn remap(e: &Arc<dyn PhysicalExpr>, position: &[Option<usize>]) -> Result<Arc<dyn PhysicalExpr>> {
    Arc::clone(e)
        .transform_up(|node| {
            if let Some(c) = node.downcast_ref::<Column>() {
                let Some(Some(k)) = position.get(c.index()) else {
                    return internal_err!("EntityWindowExec: column {c} is not kept");
                };
                return Ok(Transformed::yes(
                    Arc::new(Column::new(c.name(), *k)) as Arc<dyn PhysicalExpr>
                ));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
}

/// Entity ids from the `PARTITION BY` values: one id per distinct key, in
/// order of first appearance (ids only group rows: no result depends on
/// them).
struct Keys {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    converter: Option<RowConverter>,
    ids: HashMap<Box<[u8]>, u32, foldhash::fast::FixedState>,
    /// Ids of keys of up to 15 bytes, packed with their length.
    short: PackedTable<u32>,
    /// The entity of NULL keys (of one column keyed by its bytes).
    null_id: Option<u32>,
    /// Per entity: whether a key column is NULL (no window at all).
    no_window: Vec<bool>,
    /// Per key expression, the value of each entity (its first row's), in
    /// pieces as entities appear.
    firsts: Vec<Vec<ArrayRef>>,
}

impl Keys {
    fn new(exprs: &[Arc<dyn PhysicalExpr>], schema: &Schema) -> Result<Self> {
        let converter = match exprs.len() {
            0 => None,
            _ => Some(RowConverter::new(
                exprs
                    .iter()
                    .map(|e| Ok(SortField::new(e.data_type(schema)?)))
                    .collect::<Result<Vec<_>>>()?,
            )?),
        };
        Ok(Self {
            exprs: exprs.to_vec(),
            converter,
            ids: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x5EED)),
            short: PackedTable::default(),
            null_id: None,
            no_window: Vec::new(),
            firsts: vec![Vec::new(); exprs.len()],
        })
    }

    fn count(&self) -> usize {
        self.no_window
            .len()
            .max(usize::from(self.converter.is_none()))
    }

    /// Appends the entity id of each row of `batch` to `out`.
    fn assign(&mut self, batch: &RecordBatch, out: &mut Vec<u32>) -> Result<()> {
        let n = batch.num_rows();
        if self.converter.is_none() {
            // No PARTITION BY: one entity.
            out.extend(std::iter::repeat_n(0, n));
            return Ok(());
        }
        let arrays = self
            .exprs
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(n))
            .collect::<Result<Vec<_>>>()?;
        // One string column (the usual entity) is keyed by its bytes as
        // they are; anything else by its row encoding.
        let new_rows = match arrays[0].data_type() {
            DataType::Utf8View if arrays.len() == 1 => {
                let a = arrays[0].as_string_view();
                self.intern(n, |i| a.is_valid(i).then(|| a.value(i).as_bytes()), out)?
            }
            DataType::Utf8 if arrays.len() == 1 => {
                let a = arrays[0].as_string::<i32>();
                self.intern(n, |i| a.is_valid(i).then(|| a.value(i).as_bytes()), out)?
            }
            _ => {
                let converter = self.converter.as_ref().expect("checked above");
                let rows = converter.convert_columns(&arrays)?;
                // A key with a NULL is an entity of its own, with no window.
                let nulls: Vec<bool> = (0..n)
                    .map(|i| arrays.iter().any(|a| a.is_null(i)))
                    .collect();
                self.intern_rows(|i| rows.row(i), &nulls, out)?
            }
        };
        if !new_rows.is_empty() {
            let at = UInt32Array::from(new_rows);
            for (p, a) in arrays.iter().enumerate() {
                self.firsts[p].push(take(a.as_ref(), &at, None)?);
            }
        }
        Ok(())
    }

    /// A new entity id.
    fn new_id(&mut self, no_window: bool) -> Result<u32> {
        let id = u32::try_from(self.no_window.len())
            .or_else(|_| exec_err!("window functions: more than 2^32 entities"))?;
        self.no_window.push(no_window);
        Ok(id)
    }

    /// Ids by one column's bytes (`None` for NULL: one entity, no window);
    /// the rows that made new entities.
    fn intern<'a>(
        &mut self,
        n: usize,
        key: impl Fn(usize) -> Option<&'a [u8]>,
        out: &mut Vec<u32>,
    ) -> Result<Vec<u32>> {
        // Short keys (most entity ids) packed, and their slots fetched a
        // few rows ahead of their lookup: the lookups are cache misses
        // (a table of 100k keys does not fit in cache), overlapped so.
        let packed: Vec<Option<u128>> = (0..n).map(|i| key(i).and_then(pack)).collect();
        const AHEAD: usize = 16;
        for p in packed.iter().take(AHEAD).flatten() {
            self.short.prefetch(*p);
        }
        let mut new_rows = Vec::new();
        out.reserve(n);
        for i in 0..n {
            if let Some(Some(p)) = packed.get(i + AHEAD) {
                self.short.prefetch(*p);
            }
            // A packed key is looked up as it is: the row's bytes are read
            // again only for NULL and long keys.
            let id = match packed[i] {
                Some(p) => match self.short.get(p) {
                    Some(id) => id,
                    None => {
                        let id = self.new_id(false)?;
                        self.short.insert(p, id);
                        new_rows.push(i as u32);
                        id
                    }
                },
                None => match key(i) {
                    None => match self.null_id {
                        Some(id) => id,
                        None => {
                            let id = self.new_id(true)?;
                            self.null_id = Some(id);
                            new_rows.push(i as u32);
                            id
                        }
                    },
                    Some(k) => match self.ids.get(k) {
                        Some(&id) => id,
                        None => {
                            let id = self.new_id(false)?;
                            self.ids.insert(k.into(), id);
                            new_rows.push(i as u32);
                            id
                        }
                    },
                },
            };
            out.push(id);
        }
        Ok(new_rows)
    }

    /// Ids by the row encoding of several columns; `nulls[i]` whether row
    /// i's key has a NULL.
    fn intern_rows<K: AsRef<[u8]>>(
        &mut self,
        key: impl Fn(usize) -> K,
        nulls: &[bool],
        out: &mut Vec<u32>,
    ) -> Result<Vec<u32>> {
        let mut new_rows = Vec::new();
        out.reserve(nulls.len());
        for (i, &null) in nulls.iter().enumerate() {
            let k = key(i);
            let id = match self.ids.get(k.as_ref()) {
                Some(&id) => id,
                None => {
                    let id = self.new_id(null)?;
                    self.ids.insert(k.as_ref().into(), id);
                    new_rows.push(i as u32);
                    id
                }
            };
            out.push(id);
        }
        Ok(new_rows)
    }

    /// Per key expression, its value for each entity id.
    fn firsts(&mut self) -> Result<Vec<ArrayRef>> {
        self.ids = HashMap::default();
        self.short = PackedTable::default();
        std::mem::take(&mut self.firsts)
            .into_iter()
            .map(|parts| {
                Ok(concat(
                    &parts.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
                )?)
            })
            .collect()
    }
}

/// The rows of each entity (a counting sort of the ids): `rows[start[e] ..
/// start[e + 1]]`, in input order until [`evaluate`] orders them by time.
struct Groups {
    start: Vec<usize>,
    rows: Vec<u32>,
}

impl Groups {
    fn new(ids: &[u32], entities: usize) -> Self {
        let mut start = vec![0usize; entities + 1];
        for &id in ids {
            start[id as usize + 1] += 1;
        }
        for e in 0..entities {
            start[e + 1] += start[e];
        }
        let mut next = start.clone();
        let mut rows = vec![0u32; ids.len()];
        for (i, &id) in ids.iter().enumerate() {
            rows[next[id as usize]] = i as u32;
            next[id as usize] += 1;
        }
        Self { start, rows }
    }

    fn entities(&self) -> usize {
        self.start.len() - 1
    }

    /// Runs of whole entities, as many as fit in [`BATCH_ROWS`] rows (at
    /// least one each): the units of evaluation and output.
    fn runs(&self) -> Vec<(usize, usize)> {
        let entities = self.entities();
        let mut runs = Vec::new();
        let mut from = 0;
        while from < entities {
            let mut to = from + 1;
            while to < entities && self.start[to + 1] - self.start[from] <= BATCH_ROWS {
                to += 1;
            }
            runs.push((from, to));
            from = to;
        }
        runs
    }
}

/// One call's results over a run of output rows: the value's bits (an
/// `i64` count or an `f64`) and whether the row has one.
struct Results {
    count: bool,
    bits: Vec<u64>,
    valid: Vec<bool>,
}

impl Results {
    fn into_array(self) -> ArrayRef {
        let nulls = NullBuffer::new(BooleanBuffer::from(self.valid));
        if self.count {
            let values: Vec<i64> = self.bits.into_iter().map(|b| b as i64).collect();
            Arc::new(Int64Array::new(ScalarBuffer::from(values), Some(nulls)))
        } else {
            let values: Vec<f64> = self.bits.into_iter().map(f64::from_bits).collect();
            Arc::new(Float64Array::new(ScalarBuffer::from(values), Some(nulls)))
        }
    }
}

/// A column evaluation reads row by row, scattered (an entity's rows are
/// all over the input): fetched an entity ahead.
enum Touched {
    Times(ScalarBuffer<i64>),
    Numbers(ScalarBuffer<f64>),
}

impl Touched {
    /// The times and Float64 values of the calls, each column once.
    fn of(inputs: &[CallInputs]) -> Vec<Touched> {
        let mut touched: Vec<Touched> = Vec::new();
        let mut add = |t: Touched| {
            if !touched.iter().any(|u| u.address() == t.address()) {
                touched.push(t);
            }
        };
        for call in inputs {
            add(Touched::Times(call.ts.values.clone()));
            if let Some(v) = call.value.as_primitive_opt::<Float64Type>() {
                add(Touched::Numbers(v.values().clone()));
            }
        }
        touched
    }

    fn address(&self) -> (usize, usize) {
        match self {
            Touched::Times(v) => (v.as_ptr() as usize, v.len()),
            Touched::Numbers(v) => (v.as_ptr() as usize, v.len()),
        }
    }

    #[inline]
    fn prefetch(&self, row: usize) {
        match self {
            Touched::Times(v) => v.get(row).map(prefetch),
            Touched::Numbers(v) => v.get(row).map(prefetch),
        };
    }
}

/// Rows per output batch; entities are evaluated in runs of whole entities
/// of at most as many rows (or one larger entity).
const BATCH_ROWS: usize = 8192;

/// The output: the input's rows, entity by entity in order of first
/// appearance, each entity's rows in time order (of the first call's time;
/// ties, then rows without a time, in input order); the window columns
/// after. Runs of entities are evaluated by worker threads as batches are
/// read (run i by thread i mod n, each at most [`AHEAD`] runs ahead), so
/// the results of only a few runs are held, and the evaluation overlaps
/// with whatever consumes the batches (a writer encoding them).
struct Output {
    schema: SchemaRef,
    width: usize,
    all: RecordBatch,
    position: Vec<Option<usize>>,
    rebuilt: Vec<(usize, usize)>,
    firsts: Vec<ArrayRef>,
    no_window: Vec<bool>,
    inputs: Vec<CallInputs>,
    /// Calls over the same time column (they share the entity's sort).
    by_time: Vec<Vec<usize>>,
    groups: Groups,
    /// The columns evaluation reads by row, each once.
    touched: Vec<Touched>,
}

/// Runs a worker thread may have evaluated ahead of the reader.
const AHEAD: usize = 2;

impl Output {
    /// The batches of `runs`, evaluated by `threads` threads.
    fn stream(self: Arc<Self>, runs: Vec<(usize, usize)>, threads: usize) -> Batches {
        use futures::SinkExt;
        let threads = threads.clamp(1, runs.len().max(1));
        let runs = Arc::new(runs);
        let mut receivers = Vec::with_capacity(threads);
        for w in 0..threads {
            let (mut tx, rx) = futures::channel::mpsc::channel::<Result<RecordBatch>>(AHEAD);
            receivers.push(rx);
            let (output, runs) = (Arc::clone(&self), Arc::clone(&runs));
            std::thread::spawn(move || {
                for &(from, to) in runs.iter().skip(w).step_by(threads) {
                    let batch = output.run(from, to);
                    let failed = batch.is_err();
                    // The reader is gone (the query ended or was cancelled).
                    if futures::executor::block_on(tx.send(batch)).is_err() || failed {
                        return;
                    }
                }
            });
        }
        let count = runs.len();
        futures::stream::unfold((receivers, 0usize), move |(mut receivers, i)| async move {
            if i >= count {
                return None;
            }
            let w = i % receivers.len();
            let batch = match receivers[w].next().await {
                Some(batch) => batch,
                None => exec_err!("window evaluation stopped before run {i}"),
            };
            Some((batch, (receivers, i + 1)))
        })
        .flat_map(|batch| {
            // A run larger than a batch (one large entity) goes out in slices.
            let slices: Vec<Result<RecordBatch>> = match batch {
                Ok(b) => (0..b.num_rows())
                    .step_by(BATCH_ROWS)
                    .map(|at| Ok(b.slice(at, BATCH_ROWS.min(b.num_rows() - at))))
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(slices)
        })
        .boxed()
    }

    /// Entities `from..to` evaluated, their rows ordered: one batch.
    fn run(&self, from: usize, to: usize) -> Result<RecordBatch> {
        let start = &self.groups.start;
        let base = start[from];
        let len = start[to] - base;
        let mut rows = self.groups.rows[base..base + len].to_vec();
        let results = self.evaluate(from, to, &mut rows)?;
        let rows = UInt32Array::from(rows);
        let mut ids: Option<UInt32Array> = None;
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for c in 0..self.width {
            columns.push(match self.position[c] {
                Some(k) => take(self.all.column(k).as_ref(), &rows, None)?,
                None => {
                    let Some(&(_, p)) = self.rebuilt.iter().find(|(r, _)| *r == c) else {
                        return internal_err!("EntityWindowExec: column {c} is lost");
                    };
                    let ids =
                        ids.get_or_insert_with(|| {
                            UInt32Array::from_iter_values((from..to).flat_map(|e| {
                                std::iter::repeat_n(e as u32, start[e + 1] - start[e])
                            }))
                        });
                    take(self.firsts[p].as_ref(), ids, None)?
                }
            });
        }
        columns.extend(results);
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(len)),
        )?)
    }

    /// Evaluates entities `from..to` whose rows (in input order) are
    /// `rows`, ordering them for output.
    fn evaluate(&self, from: usize, to: usize, rows: &mut [u32]) -> Result<Vec<ArrayRef>> {
        let start = &self.groups.start;
        let base = start[from];
        let len = rows.len();
        let mut results: Vec<Results> = self
            .inputs
            .iter()
            .map(|c| Results {
                count: c.agg.is_count(),
                bits: vec![0; len],
                valid: vec![false; len],
            })
            .collect();
        let mut sorted: Vec<(i64, u32)> = Vec::new();
        let mut untimed: Vec<u32> = Vec::new();
        let mut position: Vec<(u32, u32)> = Vec::new();
        let mut scratch = EntityScratch::default();
        for e in from..to {
            let (lo, hi) = (start[e] - base, start[e + 1] - base);
            // The next entity's rows are scattered over the input: their
            // times and values are fetched while this one is evaluated.
            if e + 1 < to {
                for &r in &rows[hi..start[e + 2] - base] {
                    for column in &self.touched {
                        column.prefetch(r as usize);
                    }
                }
            }
            if self.no_window.get(e).copied().unwrap_or(false) {
                continue;
            }
            for (g, group) in self.by_time.iter().enumerate() {
                let ts = &self.inputs[group[0]].ts;
                sorted.clear();
                untimed.clear();
                for &r in &rows[lo..hi] {
                    match ts.get(r as usize) {
                        Some(t) => sorted.push((t, r)),
                        None => untimed.push(r),
                    }
                }
                sorted.sort_unstable();
                scratch.reset(&sorted);
                if g == 0 {
                    // The output order: by time, then the rows without one.
                    let order = sorted
                        .iter()
                        .map(|&(_, r)| r)
                        .chain(untimed.iter().copied());
                    for (slot, r) in rows[lo..hi].iter_mut().zip(order) {
                        *slot = r;
                    }
                } else {
                    position.clear();
                    position.extend(rows[lo..hi].iter().enumerate().map(|(k, &r)| (r, k as u32)));
                    position.sort_unstable();
                }
                for &c in group {
                    let out = &mut results[c];
                    let (bits, valid) = (&mut out.bits[lo..hi], &mut out.valid[lo..hi]);
                    // Where sorted[k]'s row is in the output.
                    let at = |k: usize| -> usize {
                        if g == 0 {
                            return k;
                        }
                        let row = sorted[k].1;
                        position[position.partition_point(|&(r, _)| r < row)].1 as usize
                    };
                    self.inputs[c].evaluate_entity(&sorted, &mut scratch, |k, r| {
                        let b = match r {
                            WindowValue::Count(n) => n as u64,
                            WindowValue::Value(Some(v)) => v.to_bits(),
                            WindowValue::Value(None) => return,
                        };
                        let i = at(k);
                        bits[i] = b;
                        valid[i] = true;
                    })?;
                }
            }
        }
        Ok(results.into_iter().map(Results::into_array).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// A session with every skewless function, with or without the rule.
    fn session(entity_windows: bool, partitions: usize) -> SessionContext {
        let mut builder = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(partitions))
            .with_default_features();
        if entity_windows {
            builder = builder
                .with_physical_optimizer_rules(with_entity_windows(PhysicalOptimizer::new().rules));
        }
        let mut ctx = SessionContext::new_with_state(builder.build());
        crate::register_all(&mut ctx).unwrap();
        ctx
    }

    /// Events with what the windows must get right: ties at one instant,
    /// events on window edges, NULL and non-finite values, −0.0, times
    /// before 1970 and NULL times, NULL entities in one key column of two,
    /// late arrivals, one entity with most of the rows.
    const EVENTS: &str = "CREATE TABLE ev AS SELECT * FROM (VALUES
        (1, 'a', 1, TIMESTAMP '1969-12-31 23:00:00', TIMESTAMP '1969-12-31 23:00:00', 1.5, 'x'),
        (2, 'a', 1, TIMESTAMP '1969-12-31 23:30:00', TIMESTAMP '1970-01-01 02:00:00', -0.0, 'y'),
        (3, 'a', 1, TIMESTAMP '1970-01-01 00:00:00', TIMESTAMP '1970-01-01 00:00:00', 2.25, 'x'),
        (4, 'a', 1, TIMESTAMP '1970-01-01 00:00:00', TIMESTAMP '1970-01-01 00:10:00', NULL, 'z'),
        (5, 'a', 1, TIMESTAMP '1970-01-01 01:00:00', TIMESTAMP '1970-01-01 01:00:00', 'NaN'::double, NULL),
        (6, 'a', 2, TIMESTAMP '1970-01-01 00:20:00', NULL, 'Infinity'::double, 'x'),
        (7, NULL, 1, TIMESTAMP '1970-01-01 00:30:00', TIMESTAMP '1970-01-01 00:30:00', 4.0, 'x'),
        (8, 'a long entity name, 36 bytes long.', NULL, TIMESTAMP '1970-01-01 00:30:00', TIMESTAMP '1970-01-01 00:30:00', 8.0, 'w'),
        (9, 'a long entity name, 36 bytes long.', 3, NULL, NULL, 16.0, 'w'),
        (10, 'a long entity name, 36 bytes long.', 3, TIMESTAMP '1970-01-01 00:59:59', TIMESTAMP '1970-01-01 00:59:59', 0.1, 'v'),
        (11, 'a long entity name, 36 bytes long.', 3, TIMESTAMP '1970-01-01 01:59:59', TIMESTAMP '1970-01-01 03:00:00', 0.2, 'v'),
        (12, 'a', 1, TIMESTAMP '1970-01-01 02:00:00', TIMESTAMP '1970-01-01 02:00:00', 0.3, 'u'),
        (13, 'a long entity name, 36 bytes long.', 3, TIMESTAMP '1970-01-01 02:59:59', TIMESTAMP '1970-01-01 02:59:59', -7.5, 'v'),
        (14, 'a', 1, TIMESTAMP '1970-01-01 00:59:59', TIMESTAMP '1970-01-01 00:59:59', 1e300, 'x'),
        (15, 'a', 1, TIMESTAMP '1970-01-01 01:00:00', TIMESTAMP '1970-01-01 01:00:00', -1e300, 'y')
    ) AS t(id, e, k, ts, arrived, x, s)";

    /// Every function, each mode, knowledge time, a composite key, an
    /// integer time and a second window step partitioned otherwise.
    const QUERY: &str = "SELECT id,
        window_count(x, ts, INTERVAL '1 hour') OVER w AS n,
        window_sum(x, ts, INTERVAL '2 hours') OVER w AS sum,
        window_mean(x, ts, INTERVAL '1 hour') OVER w AS mean,
        window_min(x, ts, INTERVAL '2 hours', INTERVAL '30 minutes') OVER w AS min_sawtooth,
        window_max(x, ts, INTERVAL '1 hour', INTERVAL '1 hour', 'hopping') OVER w AS max_hopping,
        window_var(x, ts, INTERVAL '3 hours') OVER w AS var,
        window_stddev(x, ts, INTERVAL '3 hours') OVER w AS sd,
        window_last(x, ts, INTERVAL '3 hours') OVER w AS last,
        window_distinct_count(s, ts, INTERVAL '3 hours') OVER w AS distinct_s,
        window_max(x, ts, INTERVAL '3 hours', NULL, 'sliding', arrived) OVER w AS max_known,
        window_sum(x, id, 5) OVER w AS sum_by_id,
        window_count(x, ts, INTERVAL '3 hours') OVER (PARTITION BY e, k) AS n_ek
      FROM ev WINDOW w AS (PARTITION BY e ORDER BY ts)
      ORDER BY id";

    async fn run(ctx: &SessionContext) -> (String, String) {
        ctx.sql(EVENTS).await.unwrap().collect().await.unwrap();
        let df = ctx.sql(QUERY).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        let batches = df.collect().await.unwrap();
        (pretty_format_batches(&batches).unwrap().to_string(), shown)
    }

    #[tokio::test]
    async fn every_entity_at_once_equals_datafusion_entity_by_entity() {
        let (expected, plain) = run(&session(false, 1)).await;
        assert!(!plain.contains("EntityWindowExec"), "{plain}");
        for partitions in [1, 2, 3] {
            let (got, shown) = run(&session(true, partitions)).await;
            assert_eq!(
                shown.matches("EntityWindowExec").count(),
                2,
                "both window steps: {shown}"
            );
            assert_eq!(got, expected, "{partitions} partitions");
        }
        // Some exact values, worked out by hand: row 3 (a at 00:00) sees
        // rows 1 (23:00, 1.5) and 2 (23:30, -0.0); row 4 ties with it.
        let line = |id: &str| {
            expected
                .lines()
                .find(|l| l.split('|').nth(1).map(str::trim) == Some(id))
                .unwrap()
                .to_string()
        };
        // The cells between the table's borders (NULL is empty).
        let cells = |id: &str| -> Vec<String> {
            let line = line(id);
            let inner = line.trim().trim_matches('|');
            inner.split('|').map(|c| c.trim().to_string()).collect()
        };
        assert_eq!(cells("3")[1..4], ["2", "1.5", "0.75"]);
        assert_eq!(cells("4")[1..4], ["2", "1.5", "0.75"]);
        // Row 7's entity is NULL: no window. Row 9 has no time.
        assert_eq!(cells("7")[1], "");
        assert_eq!(cells("9")[1], "");
    }

    #[tokio::test]
    async fn the_output_order_is_by_entity_then_time() {
        let ctx = session(true, 2);
        ctx.sql(EVENTS).await.unwrap().collect().await.unwrap();
        // One partition in, in order: the output order is the exec's own.
        let batches = ctx
            .sql(
                "SELECT id, window_count(x, ts, INTERVAL '1 hour') OVER (PARTITION BY e) AS n \
                 FROM ev",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        // a by time (ties in input order), then NULL, then b with the row
        // without a time last.
        assert_eq!(ids, [1, 2, 3, 4, 6, 14, 5, 15, 12, 7, 8, 10, 11, 13, 9]);
    }
}
