//! The statistics full-pass calls need, computed in one aggregate pass.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{Field, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::prelude::SessionContext;

use skewless_udfs::aggregate::decode_strata;
use skewless_udfs::kernel::split::Strata;

use super::calls::FullPassUse;
use crate::error::Result;

/// A statistic to compute over the input relation.
#[derive(Debug, Clone, PartialEq)]
pub enum StatRequest {
    /// `min_max_stats(x)`.
    MinMax(Expr),
    /// `moments(x)`.
    Moments(Expr),
    /// `robust_stats(x)`: median and quartiles.
    Robust(Expr),
    /// `vocabulary(x, top_k, min_frequency)`.
    Vocabulary {
        x: Expr,
        top_k: Option<u64>,
        min_frequency: u64,
    },
    /// `quantile_boundaries(x, n)`.
    Quantiles { x: Expr, n: u64 },
    /// `most_frequent(x)`.
    MostFrequent(Expr),
    /// `stratum_hashes(key, stratum [, seed])`.
    Strata {
        key: Expr,
        stratum: Expr,
        seed: Option<u64>,
    },
}

impl StatRequest {
    /// What the statistic is computed over: an expression, or for strata
    /// `key BY stratum [SEED n]`.
    pub fn argument(&self) -> String {
        match self {
            Self::MinMax(x) | Self::Moments(x) | Self::Robust(x) | Self::MostFrequent(x) => {
                x.to_string()
            }
            Self::Vocabulary { x, .. } | Self::Quantiles { x, .. } => x.to_string(),
            Self::Strata { key, stratum, seed } => match seed {
                Some(seed) => format!("{key} BY {stratum} SEED {}", *seed as i64),
                None => format!("{key} BY {stratum}"),
            },
        }
    }

    /// The aggregate expression computing this statistic.
    fn aggregate(&self, ctx: &SessionContext) -> DfResult<Expr> {
        let (name, args) = match self {
            Self::MinMax(x) => ("min_max_stats", vec![x.clone()]),
            Self::Moments(x) => ("moments", vec![x.clone()]),
            Self::Robust(x) => ("robust_stats", vec![x.clone()]),
            Self::Vocabulary {
                x,
                top_k,
                min_frequency,
            } => (
                "vocabulary",
                vec![
                    x.clone(),
                    // No limit: a top_k no vocabulary reaches.
                    lit(top_k.map_or(i64::MAX, |k| k as i64)),
                    lit(*min_frequency as i64),
                ],
            ),
            Self::Quantiles { x, n } => ("quantile_boundaries", vec![x.clone(), lit(*n as i64)]),
            Self::MostFrequent(x) => ("most_frequent", vec![x.clone()]),
            Self::Strata { key, stratum, seed } => {
                let mut args = vec![key.clone(), stratum.clone()];
                if let Some(seed) = seed {
                    args.push(lit(*seed as i64));
                }
                ("stratum_hashes", args)
            }
        };
        Ok(ctx.udaf(name)?.call(args))
    }
}

/// A fitted statistic, as the aggregate computed it. Floats are NaN where the
/// statistic had no values.
#[derive(Debug, Clone, PartialEq)]
pub enum Statistic {
    MinMax {
        count: i64,
        nulls: i64,
        non_finite: i64,
        min: f64,
        max: f64,
    },
    Moments {
        count: i64,
        nulls: i64,
        non_finite: i64,
        mean: f64,
        stddev: f64,
        inv_stddev: f64,
    },
    Robust {
        count: i64,
        nulls: i64,
        non_finite: i64,
        median: f64,
        q25: f64,
        q75: f64,
    },
    Vocabulary {
        /// The vocabulary in index order (Utf8 or Int64).
        values: ArrayRef,
        counts: Vec<i64>,
    },
    Quantiles {
        boundaries: Vec<f64>,
    },
    MostFrequent {
        value: ScalarValue,
    },
    /// The strata of a stratified split or sample.
    Strata(Arc<StrataStat>),
}

/// The statistic of the stratified functions: each stratum (in byte order)
/// with its row count, and its rows' key hashes sorted, read by rank.
///
/// After a statistics pass every hash is there. A fitted call reads only a
/// few ranks (its thresholds); those are remembered ([`StrataStat::cuts`])
/// and written to the artifact, so that a loaded artifact can be refitted
/// from its statistics alone ([`StrataStat::from_cuts`]).
#[derive(Debug)]
pub struct StrataStat {
    pub names: Vec<String>,
    pub counts: Vec<u64>,
    hashes: Option<Arc<Strata>>,
    /// (stratum, rank) → hash: the ranks read so far, or those recorded.
    cuts: std::sync::Mutex<std::collections::BTreeMap<(usize, u64), u64>>,
    /// A rank the recorded cuts lack, if one was asked for.
    missing: std::sync::Mutex<Option<(usize, u64)>>,
}

impl PartialEq for StrataStat {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names && self.counts == other.counts
    }
}

impl StrataStat {
    /// The statistic as a statistics pass computed it.
    pub fn from_strata(strata: Arc<Strata>) -> Self {
        Self {
            names: strata.strata.iter().map(|(s, _)| s.clone()).collect(),
            counts: strata.counts().into_iter().map(|(_, n)| n).collect(),
            hashes: Some(strata),
            cuts: Default::default(),
            missing: Default::default(),
        }
    }

    /// The statistic as an artifact records it: only the hashes at the
    /// ranks its fitted calls read.
    pub fn from_cuts(
        names: Vec<String>,
        counts: Vec<u64>,
        cuts: std::collections::BTreeMap<(usize, u64), u64>,
    ) -> Self {
        Self {
            names,
            counts,
            hashes: None,
            cuts: std::sync::Mutex::new(cuts),
            missing: Default::default(),
        }
    }

    /// The hash of rank `rank` in stratum `stratum` (below its count).
    pub fn hash_at(&self, stratum: usize, rank: u64) -> u64 {
        let mut cuts = self.cuts.lock().expect("cuts lock");
        if let Some(h) = cuts.get(&(stratum, rank)) {
            return *h;
        }
        match &self.hashes {
            Some(strata) => {
                let h = strata.strata[stratum].1[rank as usize];
                cuts.insert((stratum, rank), h);
                h
            }
            None => {
                *self.missing.lock().expect("missing lock") = Some((stratum, rank));
                0
            }
        }
    }

    /// The hashes read so far, as (stratum, rank, hash).
    pub fn cuts(&self) -> Vec<(usize, u64, u64)> {
        let cuts = self.cuts.lock().expect("cuts lock");
        cuts.iter().map(|(&(s, r), &h)| (s, r, h)).collect()
    }

    /// A rank a fitted call needed that the recorded cuts lack.
    pub fn missing(&self) -> Option<(usize, u64)> {
        *self.missing.lock().expect("missing lock")
    }
}

/// The distinct statistics `uses` need, in first-use order.
pub(super) fn requests(uses: &[FullPassUse]) -> Vec<StatRequest> {
    let mut out: Vec<StatRequest> = Vec::new();
    for u in uses {
        let r = u.request();
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Computes `requests` over `input` in one aggregate pass; also returns the
/// number of rows of `input`. With a `filter`, the requests (and the row
/// count) are over the rows of `input` it keeps, and the `extra` aggregates
/// over all of them.
pub(super) async fn analyze(
    ctx: &SessionContext,
    input: &LogicalPlan,
    requests: &[StatRequest],
    progress: bool,
    mut extra: Vec<Expr>,
    filter: Option<Expr>,
) -> Result<(Vec<Statistic>, u64, Option<RecordBatch>)> {
    use datafusion::functions_aggregate::count::count;
    use datafusion::logical_expr::ExprFunctionExt;
    let kept = |e: Expr| -> DfResult<Expr> {
        match &filter {
            Some(p) => e.filter(p.clone()).build(),
            None => Ok(e),
        }
    };
    let mut aggregates = requests
        .iter()
        .enumerate()
        .map(|(i, r)| Ok(kept(r.aggregate(ctx)?)?.alias(format!("__skewless_stat_{i}"))))
        .collect::<DfResult<Vec<_>>>()?;
    aggregates.push(kept(count(lit(1)))?.alias("__skewless_rows"));
    // Under a WHERE, the extra aggregates' row count is every row's.
    let all_rows = filter.is_some() && !extra.is_empty();
    if all_rows {
        extra.push(count(lit(1)));
    }
    let extras = extra.len();
    aggregates.extend(
        extra
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.alias(format!("__skewless_extra_{i}"))),
    );
    let plan = LogicalPlanBuilder::from(input.clone())
        .aggregate(Vec::<Expr>::new(), aggregates)?
        .build()?;
    let physical = ctx
        .execute_logical_plan(plan)
        .await?
        .create_physical_plan()
        .await?;
    let _progress = progress.then(|| crate::progress::Progress::start(Arc::clone(&physical)));
    let batches = datafusion::physical_plan::collect(physical, ctx.task_ctx()).await?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| internal("the statistics pass returned no row"))?;
    let rows = batch
        .column(requests.len())
        .as_primitive::<Int64Type>()
        .value(0) as u64;
    let statistics = requests
        .iter()
        .enumerate()
        .map(|(i, r)| decode(r, batch, i).map_err(Into::into))
        .collect::<Result<Vec<_>>>()?;
    // The extra aggregates' values, then the row count (as the profile
    // pass lays its row out).
    let extra = (extras > 0)
        .then(|| {
            let first = requests.len() + 1;
            let mut columns: Vec<ArrayRef> = (first..first + extras)
                .map(|i| Arc::clone(batch.column(i)))
                .collect();
            if !all_rows {
                columns.push(Arc::clone(batch.column(requests.len())));
            }
            RecordBatch::try_new(
                Arc::new(datafusion::arrow::datatypes::Schema::new(
                    (0..columns.len())
                        .map(|i| Field::new(format!("c{i}"), columns[i].data_type().clone(), true))
                        .collect::<Vec<_>>(),
                )),
                columns,
            )
        })
        .transpose()
        .map_err(DataFusionError::from)?;
    Ok((statistics, rows, extra))
}

fn internal(message: &str) -> DataFusionError {
    DataFusionError::Internal(format!("fit: {message}"))
}

fn decode(request: &StatRequest, batch: &RecordBatch, column: usize) -> DfResult<Statistic> {
    let col = batch.column(column);
    Ok(match request {
        StatRequest::MinMax(_) => {
            let s = col.as_struct();
            Statistic::MinMax {
                count: int(s, "count")?,
                nulls: int(s, "nulls")?,
                non_finite: int(s, "non_finite")?,
                min: float(s, "min")?,
                max: float(s, "max")?,
            }
        }
        StatRequest::Moments(_) => {
            let s = col.as_struct();
            Statistic::Moments {
                count: int(s, "count")?,
                nulls: int(s, "nulls")?,
                non_finite: int(s, "non_finite")?,
                mean: float(s, "mean")?,
                stddev: float(s, "stddev")?,
                inv_stddev: float(s, "inv_stddev")?,
            }
        }
        StatRequest::Robust(_) => {
            let s = col.as_struct();
            Statistic::Robust {
                count: int(s, "count")?,
                nulls: int(s, "nulls")?,
                non_finite: int(s, "non_finite")?,
                median: float(s, "median")?,
                q25: float(s, "q25")?,
                q75: float(s, "q75")?,
            }
        }
        StatRequest::Vocabulary { .. } => {
            let entries = col.as_list::<i32>().value(0);
            let entries = entries.as_struct();
            let values = Arc::clone(
                entries
                    .column_by_name("value")
                    .ok_or_else(|| internal("vocabulary has no 'value' field"))?,
            );
            let counts = entries
                .column_by_name("count")
                .ok_or_else(|| internal("vocabulary has no 'count' field"))?
                .as_primitive::<Int64Type>()
                .values()
                .to_vec();
            Statistic::Vocabulary { values, counts }
        }
        StatRequest::Quantiles { .. } => {
            let list = col.as_list::<i32>().value(0);
            Statistic::Quantiles {
                boundaries: list.as_primitive::<Float64Type>().values().to_vec(),
            }
        }
        StatRequest::MostFrequent(_) => Statistic::MostFrequent {
            value: ScalarValue::try_from_array(col, 0)?,
        },
        StatRequest::Strata { .. } => {
            let strata = decode_strata(&col.as_list::<i32>().value(0))?;
            Statistic::Strata(Arc::new(StrataStat::from_strata(Arc::new(strata))))
        }
    })
}

fn field<'a>(s: &'a StructArray, name: &str) -> DfResult<&'a ArrayRef> {
    s.column_by_name(name)
        .ok_or_else(|| internal(&format!("statistic has no '{name}' field")))
}

fn int(s: &StructArray, name: &str) -> DfResult<i64> {
    let a = field(s, name)?.as_primitive::<Int64Type>();
    Ok(if a.is_null(0) { 0 } else { a.value(0) })
}

fn float(s: &StructArray, name: &str) -> DfResult<f64> {
    let a = field(s, name)?.as_primitive::<Float64Type>();
    Ok(if a.is_null(0) { f64::NAN } else { a.value(0) })
}

/// A one-row list literal holding `values`.
pub fn list_literal(values: ArrayRef) -> ScalarValue {
    let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    let offsets = OffsetBuffer::from_lengths([values.len()]);
    ScalarValue::List(Arc::new(ListArray::new(field, offsets, values, None)))
}
