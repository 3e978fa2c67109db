//! The training profile: for every raw input a served output reads, its
//! distribution in the training data as exact counts — numeric columns over
//! slots whose edges are decided at fit (the minimum, exact quantile
//! boundaries, the maximum, plus a slot below and one above), categorical
//! columns (strings, booleans, integers read as keys) by value. `fit`
//! records it in the artifact; `skewless validate` counts new data over the
//! same slots ([`count_new`]) and compares ([`crate::validate`]).
//!
//! Counts are exact integers from mergeable aggregate states
//! (`numeric_profile`, `profile_slots`, `vocabulary`), so a profile does
//! not depend on partitioning, and profiles of parts of the data over the
//! same edges add up to the profile of the whole ([`Profile::merge`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::Column as DfColumn;
use datafusion::execution::FunctionRegistry;
use datafusion::functions_aggregate::count::count as count_of;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, lit};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod tally;
pub use tally::{LookupOutput, MORE_UNSEEN, Recent, Tally, TallyPlan};

/// Quantile bins of a numeric profile unless `fit --profile-bins` says.
pub const DEFAULT_BINS: u64 = 10;
/// The most values a categorical profile lists (the rest are summed).
pub const DEFAULT_CAP: u64 = 1000;

/// A table's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The table the columns are read from (the request table).
    pub table: String,
    /// Rows profiled.
    pub rows: u64,
    /// Quantile bins asked for (a column may have fewer: repeated
    /// boundaries are dropped).
    pub bins: u64,
    /// The most values a categorical column lists.
    pub cap: u64,
    pub columns: Vec<ColumnProfile>,
    /// The transform's WHERE over the table, if it has one, with the rows
    /// it keeps (validate compares the share it drops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterProfile>,
}

/// The WHERE a transform applies to the rows of the profiled table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterProfile {
    /// The predicate as SQL (its fitted form).
    pub predicate: String,
    /// The rows for which it holds.
    pub kept: u64,
}

/// One column's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    /// The column's Arrow type at fit, as the artifact's inputs write it.
    pub data_type: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// What a column's profile counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Counts {
    /// Numbers. `edges` and `slots` are empty for a summary profile.
    Numeric {
        /// Finite values.
        count: u64,
        nulls: u64,
        nan: u64,
        pos_inf: u64,
        neg_inf: u64,
        min: Option<f64>,
        max: Option<f64>,
        /// The minimum, the quantile boundaries inside, the maximum.
        edges: Vec<f64>,
        /// Below the minimum, one per bin, above the maximum
        /// ([`skewless_udfs::kernel::profile::slot`]).
        slots: Vec<u64>,
    },
    /// Values compared as text (integers in decimal, booleans as
    /// `true`/`false`). `distinct` is None and `values` empty for a
    /// summary profile.
    Categorical {
        /// Non-NULL values.
        count: u64,
        nulls: u64,
        distinct: Option<u64>,
        /// The most frequent values with their counts, by count descending
        /// then value ascending, at most the profile's cap.
        values: Vec<(String, u64)>,
        /// The values beyond the cap, summed.
        other: u64,
    },
}

impl Counts {
    /// Non-NULL values (finite and not, for numbers).
    pub fn values(&self) -> u64 {
        match self {
            Counts::Numeric {
                count,
                nan,
                pos_inf,
                neg_inf,
                ..
            } => count + nan + pos_inf + neg_inf,
            Counts::Categorical { count, .. } => *count,
        }
    }

    pub fn nulls(&self) -> u64 {
        match self {
            Counts::Numeric { nulls, .. } | Counts::Categorical { nulls, .. } => *nulls,
        }
    }

    pub fn is_summary(&self) -> bool {
        match self {
            Counts::Numeric { edges, slots, .. } => edges.is_empty() && slots.is_empty(),
            Counts::Categorical { distinct, .. } => distinct.is_none(),
        }
    }
}

/// How much of a column `fit` profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Nothing.
    None,
    /// Counts, NULLs, non-finite values, min and max: no histogram, no
    /// values (no memory per distinct value).
    Summary,
    /// Everything.
    Full,
}

/// What to profile and how: a default depth, per-column depths, the bins
/// and the cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub default: Depth,
    pub columns: BTreeMap<String, Depth>,
    pub bins: u64,
    pub cap: u64,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            default: Depth::Full,
            columns: BTreeMap::new(),
            bins: DEFAULT_BINS,
            cap: DEFAULT_CAP,
        }
    }
}

impl Plan {
    /// Reads `--profile` values: `none`, `summary` or `full` for every
    /// column, or `COLUMN=none|summary|full` for one.
    pub fn with_settings(mut self, settings: &[String]) -> Result<Self> {
        let depth = |s: &str| match s {
            "none" => Ok(Depth::None),
            "summary" => Ok(Depth::Summary),
            "full" => Ok(Depth::Full),
            other => Err(Error::Usage(format!(
                "--profile: '{other}' is not none, summary or full"
            ))),
        };
        for s in settings {
            match s.split_once('=') {
                Some((column, d)) => {
                    self.columns.insert(column.to_string(), depth(d)?);
                }
                None => self.default = depth(s)?,
            }
        }
        Ok(self)
    }

    fn depth(&self, column: &str) -> Depth {
        *self.columns.get(column).unwrap_or(&self.default)
    }
}

/// A column to profile: its name, its type at fit, whether it is
/// categorical.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub categorical: bool,
}

/// The profile of `columns` of table `table` in one aggregate pass.
pub async fn profile(
    ctx: &SessionContext,
    table: &str,
    columns: &[Column],
    plan: &Plan,
    filter: Option<String>,
) -> Result<Option<Profile>> {
    let columns: Vec<(&Column, Depth)> = columns
        .iter()
        .map(|c| (c, plan.depth(&c.name)))
        .filter(|(_, d)| *d != Depth::None)
        .collect();
    let served: Vec<Column> = columns.iter().map(|(c, _)| (*c).clone()).collect();
    check_settings(plan, &served)?;
    if columns.is_empty() {
        return Ok(None);
    }
    let mut aggregates = Vec::new();
    for (c, depth) in &columns {
        aggregates.extend(aggregates_of(ctx, c, *depth, None, plan)?);
    }
    if let Some(predicate) = &filter {
        aggregates.push(kept_by(ctx, table, predicate).await?);
    }
    let (rows, batch) = run(ctx, table, aggregates).await?;
    let mut at = 0;
    let mut out = Vec::new();
    for (c, depth) in &columns {
        out.push(ColumnProfile {
            name: c.name.clone(),
            data_type: crate::artifact::type_name(&c.data_type),
            counts: decode(&batch, &mut at, c.categorical, *depth, plan.cap)?,
        });
    }
    let filter = filter.map(|predicate| FilterProfile {
        predicate,
        kept: batch.column(at).as_primitive::<Int64Type>().value(0).max(0) as u64,
    });
    Ok(Some(Profile {
        table: table.to_string(),
        rows,
        bins: plan.bins,
        cap: plan.cap,
        columns: out,
        filter,
    }))
}

/// `count(*) FILTER (WHERE predicate)` over `table`'s rows: the rows a
/// WHERE keeps (NULL is not kept).
async fn kept_by(ctx: &SessionContext, table: &str, predicate: &str) -> Result<Expr> {
    use datafusion::logical_expr::ExprFunctionExt;
    let df = ctx.table(table).await?;
    let predicate = df.parse_sql_expr(predicate).map_err(|e| {
        Error::Data(format!(
            "the transform's WHERE ({predicate}) does not plan over table '{table}': {e}"
        ))
    })?;
    Ok(count_of(lit(1)).filter(predicate).build()?)
}

/// A profile computed along with `fit`'s statistics: the aggregates of
/// every column the transform reads of the table, before it is known which
/// of them served outputs read and how (integers are counted both as
/// numbers and as categories), and how to read the profile back.
#[derive(Debug, Clone)]
pub struct Candidates {
    table: String,
    /// Per column: its name, its depth, where its numeric and its
    /// categorical aggregates start in the pass's extra values.
    columns: Vec<(String, Depth, Option<usize>, Option<usize>)>,
    plan: Plan,
}

impl Candidates {
    /// The candidates among `columns` (name, type) of `table`, and their
    /// aggregates, in order.
    pub fn new(
        ctx: &SessionContext,
        table: &str,
        columns: &[(String, DataType)],
        plan: &Plan,
    ) -> Result<(Self, Vec<Expr>)> {
        let mut aggregates = Vec::new();
        let mut out = Vec::new();
        for (name, data_type) in columns {
            let depth = plan.depth(name);
            if depth == Depth::None {
                continue;
            }
            let text = matches!(
                data_type,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Boolean
            );
            let (mut numeric, mut categorical) = (None, None);
            for (as_category, wanted) in [(false, !text), (true, text || data_type.is_integer())] {
                if !wanted {
                    continue;
                }
                let at = aggregates.len();
                let column = Column {
                    name: name.clone(),
                    data_type: data_type.clone(),
                    categorical: as_category,
                };
                aggregates.extend(aggregates_of(ctx, &column, depth, None, plan)?);
                if as_category {
                    categorical = Some(at);
                } else {
                    numeric = Some(at);
                }
            }
            out.push((name.clone(), depth, numeric, categorical));
        }
        Ok((
            Self {
                table: table.to_string(),
                columns: out,
                plan: plan.clone(),
            },
            aggregates,
        ))
    }

    /// The profile of `served` read from the pass's extra values (`batch`:
    /// the aggregates, then the row count); None when a served column was
    /// not a candidate as it is read (then profile in a pass of its own).
    pub fn profile(&self, batch: &RecordBatch, served: &[Column]) -> Result<Option<Profile>> {
        check_settings(&self.plan, served)?;
        let rows = batch
            .column(batch.num_columns() - 1)
            .as_primitive::<Int64Type>()
            .value(0) as u64;
        let mut out = Vec::new();
        for c in served {
            let depth = self.plan.depth(&c.name);
            if depth == Depth::None {
                continue;
            }
            let Some((_, _, numeric, categorical)) =
                self.columns.iter().find(|(n, ..)| *n == c.name)
            else {
                return Ok(None);
            };
            let Some(mut at) = (if c.categorical {
                *categorical
            } else {
                *numeric
            }) else {
                return Ok(None);
            };
            let counts =
                decode_with_rows(batch, &mut at, c.categorical, depth, self.plan.cap, rows)?;
            out.push(ColumnProfile {
                name: c.name.clone(),
                data_type: crate::artifact::type_name(&c.data_type),
                counts,
            });
        }
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some(Profile {
            table: self.table.clone(),
            rows,
            bins: self.plan.bins,
            cap: self.plan.cap,
            columns: out,
            filter: None,
        }))
    }
}

/// `--profile COLUMN=…` must name a column a served output reads.
fn check_settings(plan: &Plan, served: &[Column]) -> Result<()> {
    for name in plan.columns.keys() {
        if !served.iter().any(|c| &c.name == name) && plan.depth(name) != Depth::None {
            return Err(Error::Usage(format!(
                "--profile {name}=…: '{name}' is not an input a served output reads"
            )));
        }
    }
    Ok(())
}

/// New data counted over a profile's slots, in one aggregate pass over
/// table `table`: a profile with the training profile's edges (numbers) and
/// every value (categories, capped only when written). Columns in `skip`
/// (missing or of another type) are left out.
pub async fn count_new(
    ctx: &SessionContext,
    table: &str,
    training: &Profile,
    skip: &[String],
) -> Result<Profile> {
    let plan = Plan {
        cap: u64::MAX,
        ..Plan::default()
    };
    let mut aggregates = Vec::new();
    let mut kept = Vec::new();
    for c in training.columns.iter().filter(|c| !skip.contains(&c.name)) {
        let categorical = matches!(c.counts, Counts::Categorical { .. });
        let column = Column {
            name: c.name.clone(),
            data_type: DataType::Null,
            categorical,
        };
        let depth = if c.counts.is_summary() {
            Depth::Summary
        } else {
            Depth::Full
        };
        let edges = match &c.counts {
            Counts::Numeric { edges, .. } if depth == Depth::Full => Some(edges.as_slice()),
            _ => None,
        };
        aggregates.extend(aggregates_of(ctx, &column, depth, edges, &plan)?);
        kept.push((c, depth, categorical));
    }
    if let Some(f) = &training.filter {
        aggregates.push(kept_by(ctx, table, &f.predicate).await?);
    }
    let (rows, batch) = run(ctx, table, aggregates).await?;
    let mut at = 0;
    let mut columns = Vec::new();
    for (c, depth, categorical) in kept {
        let mut counts = decode(&batch, &mut at, categorical, depth, u64::MAX)?;
        if let (
            Counts::Numeric {
                edges: new_edges, ..
            },
            Counts::Numeric { edges, .. },
        ) = (&mut counts, &c.counts)
        {
            new_edges.clone_from(edges);
        }
        columns.push(ColumnProfile {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            counts,
        });
    }
    let filter = training.filter.as_ref().map(|f| FilterProfile {
        predicate: f.predicate.clone(),
        kept: batch.column(at).as_primitive::<Int64Type>().value(0).max(0) as u64,
    });
    Ok(Profile {
        table: table.to_string(),
        rows,
        bins: training.bins,
        cap: training.cap,
        columns,
        filter,
    })
}

/// The aggregates profiling one column: a numeric profile (or, with
/// `edges`, counts over them), or a vocabulary and a count.
fn aggregates_of(
    ctx: &SessionContext,
    c: &Column,
    depth: Depth,
    edges: Option<&[f64]>,
    plan: &Plan,
) -> Result<Vec<Expr>> {
    let column = Expr::Column(DfColumn::new_unqualified(&c.name));
    let udaf = |name: &str, args: Vec<Expr>| -> Result<Expr> { Ok(ctx.udaf(name)?.call(args)) };
    Ok(if c.categorical {
        let text = cast(column.clone(), DataType::Utf8);
        match depth {
            Depth::Full => vec![
                udaf("vocabulary", vec![text])?,
                count_of(column).alias(format!("count {}", c.name)),
            ],
            _ => vec![count_of(column).alias(format!("count {}", c.name))],
        }
    } else {
        let number = cast(column, DataType::Float64);
        match (depth, edges) {
            (Depth::Full, Some(edges)) => {
                vec![udaf("profile_slots", vec![number, edges_literal(edges)])?]
            }
            (Depth::Full, None) => vec![udaf(
                "numeric_profile",
                vec![number, lit(plan.bins as i64)],
            )?],
            _ => vec![
                udaf("profile_slots", vec![number.clone(), edges_literal(&[])])?,
                udaf("min_max_stats", vec![number])?,
            ],
        }
    })
}

fn edges_literal(edges: &[f64]) -> Expr {
    let values = Arc::new(datafusion::arrow::array::Float64Array::from(edges.to_vec()));
    lit(crate::fit::list_literal(values))
}

/// Runs the aggregates over `table` with a row count: the rows and the
/// one-row result.
async fn run(
    ctx: &SessionContext,
    table: &str,
    mut aggregates: Vec<Expr>,
) -> Result<(u64, RecordBatch)> {
    let scan = ctx.table(table).await?.into_unoptimized_plan();
    aggregates = aggregates
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.alias(format!("__skewless_profile_{i}")))
        .collect();
    aggregates.push(count_of(lit(1)).alias("__skewless_rows"));
    let plan = LogicalPlanBuilder::from(scan)
        .aggregate(Vec::<Expr>::new(), aggregates)?
        .build()?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    let batch = batches
        .into_iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| Error::Internal("the profile pass returned no row".into()))?;
    let rows = batch
        .column(batch.num_columns() - 1)
        .as_primitive::<Int64Type>()
        .value(0) as u64;
    Ok((rows, batch))
}

/// Reads one column's aggregates from the pass's row, from column `at` on
/// (the table's row count in the row's last column).
fn decode(
    batch: &RecordBatch,
    at: &mut usize,
    categorical: bool,
    depth: Depth,
    cap: u64,
) -> Result<Counts> {
    let rows = batch
        .column(batch.num_columns() - 1)
        .as_primitive::<Int64Type>()
        .value(0) as u64;
    decode_with_rows(batch, at, categorical, depth, cap, rows)
}

/// [`decode`] with the table's row count given.
fn decode_with_rows(
    batch: &RecordBatch,
    at: &mut usize,
    categorical: bool,
    depth: Depth,
    cap: u64,
    rows: u64,
) -> Result<Counts> {
    let mut next = || {
        let c = Arc::clone(batch.column(*at));
        *at += 1;
        c
    };
    let int = |s: &datafusion::arrow::array::StructArray, name: &str| -> u64 {
        s.column_by_name(name)
            .map(|c| c.as_primitive::<Int64Type>().value(0).max(0) as u64)
            .unwrap_or(0)
    };
    let float = |s: &datafusion::arrow::array::StructArray, name: &str| -> Option<f64> {
        s.column_by_name(name).and_then(|c| {
            let c = c.as_primitive::<Float64Type>();
            (!c.is_null(0)).then(|| c.value(0))
        })
    };
    if categorical {
        let (values, other, distinct) = if depth == Depth::Full {
            let list = next();
            let entries = list.as_list::<i32>().value(0);
            let entries = entries.as_struct();
            let names = entries
                .column_by_name("value")
                .ok_or_else(|| Error::Internal("vocabulary has no values".into()))?;
            let names = datafusion::arrow::compute::cast(names, &DataType::Utf8)
                .map_err(datafusion::error::DataFusionError::from)?;
            let names = names.as_string::<i32>();
            let counts = entries
                .column_by_name("count")
                .ok_or_else(|| Error::Internal("vocabulary has no counts".into()))?
                .as_primitive::<Int64Type>();
            let mut values = Vec::new();
            let mut other = 0;
            for i in 0..names.len() {
                let n = counts.value(i).max(0) as u64;
                if (values.len() as u64) < cap {
                    values.push((names.value(i).to_string(), n));
                } else {
                    other += n;
                }
            }
            (values, other, Some(names.len() as u64))
        } else {
            (Vec::new(), 0, None)
        };
        let non_null = next().as_primitive::<Int64Type>().value(0).max(0) as u64;
        let other = if depth == Depth::Full {
            other
        } else {
            non_null
        };
        return Ok(Counts::Categorical {
            count: non_null,
            nulls: rows - non_null,
            distinct,
            values,
            other,
        });
    }
    let first = next();
    let s = first.as_struct();
    let slots = |s: &datafusion::arrow::array::StructArray| -> Vec<u64> {
        s.column_by_name("slots")
            .map(|c| {
                c.as_list::<i32>()
                    .value(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .map(|&n| n.max(0) as u64)
                    .collect()
            })
            .unwrap_or_default()
    };
    let edges: Vec<f64> = s
        .column_by_name("edges")
        .map(|c| {
            c.as_list::<i32>()
                .value(0)
                .as_primitive::<Float64Type>()
                .values()
                .to_vec()
        })
        .unwrap_or_default();
    let (min, max, slots) = match depth {
        Depth::Full => (float(s, "min"), float(s, "max"), slots(s)),
        _ => {
            let m = next();
            let m = m.as_struct();
            (float(m, "min"), float(m, "max"), Vec::new())
        }
    };
    Ok(Counts::Numeric {
        count: int(s, "count"),
        nulls: int(s, "nulls"),
        nan: int(s, "nan"),
        pos_inf: int(s, "pos_inf"),
        neg_inf: int(s, "neg_inf"),
        min,
        max,
        edges,
        slots,
    })
}

impl Profile {
    /// Adds the counts of `other`, a profile of other rows over the same
    /// columns and edges (e.g. two days of `validate --profile-out`).
    pub fn merge(&mut self, other: &Profile) -> Result<()> {
        let names = |p: &Profile| p.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if names(self) != names(other) {
            return Err(Error::Data(format!(
                "the profiles describe other columns ({:?} and {:?})",
                names(self),
                names(other)
            )));
        }
        self.rows += other.rows;
        match (&mut self.filter, &other.filter) {
            (Some(a), Some(b)) if a.predicate == b.predicate => a.kept += b.kept,
            (None, None) => {}
            _ => {
                return Err(Error::Data(
                    "the profiles were counted under other WHEREs".into(),
                ));
            }
        }
        for (mine, theirs) in self.columns.iter_mut().zip(&other.columns) {
            merge_counts(&mut mine.counts, &theirs.counts, self.cap)
                .map_err(|e| Error::Data(format!("column '{}': {e}", mine.name)))?;
        }
        Ok(())
    }
}

fn merge_counts(mine: &mut Counts, theirs: &Counts, cap: u64) -> std::result::Result<(), String> {
    match (mine, theirs) {
        (
            Counts::Numeric {
                count,
                nulls,
                nan,
                pos_inf,
                neg_inf,
                min,
                max,
                edges,
                slots,
            },
            Counts::Numeric {
                count: c2,
                nulls: n2,
                nan: nan2,
                pos_inf: p2,
                neg_inf: m2,
                min: min2,
                max: max2,
                edges: e2,
                slots: s2,
            },
        ) => {
            if edges != e2 || slots.len() != s2.len() {
                return Err("the profiles have other edges".into());
            }
            *count += c2;
            *nulls += n2;
            *nan += nan2;
            *pos_inf += p2;
            *neg_inf += m2;
            *min = [*min, *min2].into_iter().flatten().reduce(f64::min);
            *max = [*max, *max2].into_iter().flatten().reduce(f64::max);
            for (a, b) in slots.iter_mut().zip(s2) {
                *a += b;
            }
            Ok(())
        }
        (
            Counts::Categorical {
                count,
                nulls,
                distinct,
                values,
                other,
            },
            Counts::Categorical {
                count: c2,
                nulls: n2,
                values: v2,
                other: o2,
                ..
            },
        ) => {
            if *other > 0 || *o2 > 0 {
                return Err("a profile with values beyond its cap cannot be merged exactly".into());
            }
            let mut all: BTreeMap<String, u64> = values.drain(..).collect();
            for (v, n) in v2 {
                *all.entry(v.clone()).or_default() += n;
            }
            *count += c2;
            *nulls += n2;
            *distinct = Some(all.len() as u64);
            let mut sorted: Vec<(String, u64)> = all.into_iter().collect();
            sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let rest: u64 = sorted.iter().skip(cap as usize).map(|(_, n)| n).sum();
            sorted.truncate(cap as usize);
            *values = sorted;
            *other = rest;
            Ok(())
        }
        _ => Err("one profile counts numbers, the other categories".into()),
    }
}

/// Whether new data of type `actual` can be compared with a column profiled
/// as type `fitted` (text of the artifact's types): what `apply` accepts.
pub fn comparable(fitted: &str, actual: &DataType) -> bool {
    match fitted.parse::<DataType>() {
        Ok(t) => crate::artifact::accepts(&t, actual),
        Err(_) => fitted == actual.to_string(),
    }
}
