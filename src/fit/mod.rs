//! Fitting full-pass functions: one aggregate pass computes every statistic
//! a query's full-pass calls need, then each call becomes its instance-level
//! form with the statistics inlined as literals.
//!
//! `SELECT age, min_max_scale(age) FROM census WHERE …` is planned as usual;
//! [`fit_plan`] finds the plan nodes whose expressions call full-pass
//! functions, runs one `Aggregate` over each such node's input (the relation
//! that feeds the SELECT, after FROM/JOIN/WHERE) computing all their
//! statistics at once, and rewrites the calls, e.g. to
//! `min_max_scale_with(age, 17.0, 90.0)`. The query then runs as ordinary
//! SQL: its input is scanned twice in all (analyze + apply).

mod calls;
mod stats;

use datafusion::common::tree_node::{Transformed, TreeNode};
use std::sync::Arc;

use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{Expr, Filter, LogicalPlan};
use datafusion::prelude::SessionContext;

pub use calls::{FullPassUse, expr_has_full_pass};
pub use stats::{StatRequest, Statistic, StrataStat, list_literal};

use crate::error::{Error, Result};

/// True when any node of `plan` calls a full-pass function.
pub fn has_full_pass(plan: &LogicalPlan) -> bool {
    plan.exists(|node| Ok(node.expressions().iter().any(expr_has_full_pass)))
        .unwrap_or(false)
}

/// A fitted plan and what was learned to fit it.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The plan with every full-pass call replaced by its fitted form.
    pub plan: LogicalPlan,
    /// The statistics, in the order they were computed (innermost plan
    /// level first), each with the calls that use it.
    pub statistics: Vec<FittedStatistic>,
    /// Rows of each relation a statistics pass ran over, in the order of
    /// the passes.
    pub rows_seen: Vec<u64>,
    /// The values of the extra aggregates ([`fit_sharing`]), when a
    /// statistics pass ran over their table's scan.
    pub extra: Option<ExtraValues>,
}

/// The values of [`Extra`]'s aggregates, computed in a statistics pass.
#[derive(Debug, Clone)]
pub struct ExtraValues {
    /// One row: the aggregates in order, then the table's row count (every
    /// row of the table, whatever the WHERE).
    pub batch: datafusion::arrow::array::RecordBatch,
    /// When the statistics were computed under a WHERE over the table (its
    /// predicates AND-ed, outermost first, as SQL) and the rows it kept.
    pub filter: Option<(String, u64)>,
}

/// Aggregates to compute in the same pass as the statistics, when a pass
/// runs over `table`'s rows as they are (its bare scan) or under a WHERE
/// over them (then the statistics' aggregates take the WHERE as a `FILTER`
/// clause and the extra ones see every row): the training profile rides
/// along with the statistics (one scan instead of two).
#[derive(Debug, Clone)]
pub struct Extra {
    pub table: String,
    pub aggregates: Vec<Expr>,
}

/// One computed statistic with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedStatistic {
    /// The full-pass functions that use it (`min_max_scale`, …).
    pub functions: Vec<&'static str>,
    /// The expression it was computed over.
    pub argument: String,
    pub statistic: Statistic,
}

/// Replaces every full-pass call in `plan` by its fitted form, computing the
/// statistics over the input of each node that has such calls. `progress`
/// shows the statistics pass on stderr.
pub async fn fit_plan(
    ctx: &SessionContext,
    plan: LogicalPlan,
    progress: bool,
) -> Result<LogicalPlan> {
    Ok(fit(ctx, plan, progress).await?.plan)
}

/// Like [`fit_plan`], also returning the statistics and their provenance.
pub async fn fit(ctx: &SessionContext, plan: LogicalPlan, progress: bool) -> Result<Fitted> {
    fit_from(
        ctx,
        plan,
        Source::Analyze {
            progress,
            extra: None,
        },
    )
    .await
}

/// [`fit`], also computing `extra` in the first statistics pass over its
/// table's bare scan, if there is one ([`Fitted::extra`]).
pub async fn fit_sharing(
    ctx: &SessionContext,
    plan: LogicalPlan,
    progress: bool,
    extra: Extra,
) -> Result<Fitted> {
    fit_from(
        ctx,
        plan,
        Source::Analyze {
            progress,
            extra: Some(extra),
        },
    )
    .await
}

/// Fits `plan` with statistics already computed — an artifact's, each
/// with the expression it was computed over, in the order [`fit`] gives
/// them — instead of a statistics pass. The same transform and statistics
/// give the same fitted plan: this is how a loaded artifact's fitted SQL is
/// checked against its transform and statistics.
pub async fn refit(
    ctx: &SessionContext,
    plan: LogicalPlan,
    recorded: Vec<(String, Statistic)>,
) -> Result<LogicalPlan> {
    let source = Source::Recorded {
        remaining: recorded.into_iter(),
    };
    Ok(fit_from(ctx, plan, source).await?.plan)
}

/// `input` when it is `table`'s bare scan, or a chain of WHEREs over it
/// (without subqueries): the scan and the WHEREs' predicates, outermost
/// first.
fn scan_under_where<'a>(
    mut input: &'a LogicalPlan,
    table: &str,
) -> Option<(&'a LogicalPlan, Vec<Expr>)> {
    let mut predicates = Vec::new();
    while let LogicalPlan::Filter(filter) = input {
        if filter
            .predicate
            .exists(|e| Ok(is_subquery(e)))
            .unwrap_or(true)
        {
            return None;
        }
        predicates.push(filter.predicate.clone());
        input = filter.input.as_ref();
    }
    match input {
        LogicalPlan::TableScan(scan)
            if scan.table_name.table() == table && scan.filters.is_empty() =>
        {
            Some((input, predicates))
        }
        _ => None,
    }
}

fn is_subquery(e: &Expr) -> bool {
    matches!(
        e,
        Expr::ScalarSubquery(_)
            | Expr::Exists(_)
            | Expr::InSubquery(_)
            | Expr::OuterReferenceColumn(..)
    )
}

/// Where statistics come from.
enum Source {
    /// A statistics pass over the data (with aggregates to share a scan
    /// with, taken by the first pass over their table's bare scan).
    Analyze {
        progress: bool,
        extra: Option<Extra>,
    },
    /// An artifact's statistics, in order.
    Recorded {
        remaining: std::vec::IntoIter<(String, Statistic)>,
    },
}

impl Source {
    async fn statistics(
        &mut self,
        ctx: &SessionContext,
        input: &LogicalPlan,
        requests: &[StatRequest],
        out: &mut Fitted,
    ) -> Result<Vec<Statistic>> {
        match self {
            Source::Analyze { progress, extra } => {
                let shared = match &extra {
                    Some(e) => scan_under_where(input, &e.table),
                    None => None,
                };
                if let Some((scan, predicates)) = shared {
                    let aggregates = extra.take().map(|e| e.aggregates).unwrap_or_default();
                    let filter = conjunction(predicates.clone());
                    match stats::analyze(ctx, scan, requests, *progress, aggregates, filter).await {
                        Ok((statistics, rows, values)) => {
                            out.rows_seen.push(rows);
                            out.extra = match (values, conjunction(predicates)) {
                                (Some(batch), None) => Some(ExtraValues {
                                    batch,
                                    filter: None,
                                }),
                                (Some(batch), Some(p)) => Some(ExtraValues {
                                    batch,
                                    filter: Some((
                                        datafusion::sql::unparser::expr_to_sql(&p)?.to_string(),
                                        rows,
                                    )),
                                }),
                                (None, _) => None,
                            };
                            return Ok(statistics);
                        }
                        // DataFusion drops the rows a FILTER clause does
                        // not keep before it evaluates the arguments, as
                        // the WHERE would; should the shared pass fail all
                        // the same, the statistics get the pass they would
                        // have had without the profile (and the profile one
                        // of its own).
                        Err(_) if !predicates.is_empty() => {}
                        Err(e) => return Err(e),
                    }
                }
                let (statistics, rows, _) =
                    stats::analyze(ctx, input, requests, *progress, Vec::new(), None).await?;
                out.rows_seen.push(rows);
                Ok(statistics)
            }
            Source::Recorded { remaining } => requests
                .iter()
                .map(|request| {
                    let argument = request.argument();
                    match remaining.next() {
                        Some((recorded, statistic)) if recorded == argument => {
                            typed_for(request, input, statistic)
                        }
                        Some((recorded, _)) => Err(Error::Data(format!(
                            "the statistics do not match the transform: the transform needs a \
                             statistic of {argument} where the artifact records one of {recorded}"
                        ))),
                        None => Err(Error::Data(format!(
                            "the statistics do not match the transform: none is recorded for \
                             {argument}"
                        ))),
                    }
                })
                .collect(),
        }
    }
}

/// A recorded statistic with the types its request gives: an empty
/// vocabulary of integers is an Int64 list, not the Utf8 one JSON suggests.
fn typed_for(
    request: &StatRequest,
    input: &LogicalPlan,
    statistic: Statistic,
) -> Result<Statistic> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::ExprSchemable;
    if let (StatRequest::Vocabulary { x, .. }, Statistic::Vocabulary { values, counts }) =
        (request, &statistic)
        && values.is_empty()
        && x.get_type(input.schema())?.is_integer()
    {
        return Ok(Statistic::Vocabulary {
            values: datafusion::arrow::array::new_empty_array(&DataType::Int64),
            counts: counts.clone(),
        });
    }
    Ok(statistic)
}

async fn fit_from(ctx: &SessionContext, plan: LogicalPlan, mut source: Source) -> Result<Fitted> {
    let mut fitted = Fitted {
        plan: LogicalPlan::default(),
        statistics: Vec::new(),
        rows_seen: Vec::new(),
        extra: None,
    };
    fitted.plan = Box::pin(fit_node(ctx, plan, &mut source, &mut fitted)).await?;
    if let Source::Recorded { remaining } = source
        && remaining.len() > 0
    {
        return Err(Error::Data(format!(
            "the statistics do not match the transform: {} recorded statistics are not used by it",
            remaining.len()
        )));
    }
    Ok(fitted)
}

async fn fit_node(
    ctx: &SessionContext,
    plan: LogicalPlan,
    source: &mut Source,
    out: &mut Fitted,
) -> Result<LogicalPlan> {
    if !has_full_pass(&plan) {
        return Ok(plan);
    }
    // In a WHERE, the AND-ed conditions without full-pass calls apply first:
    // `WHERE race = 'White' AND stratified_sample(…)` samples White rows.
    if let LogicalPlan::Filter(filter) = &plan {
        let (with, without): (Vec<Expr>, Vec<Expr>) =
            split_conjunction_owned(filter.predicate.clone())
                .into_iter()
                .partition(expr_has_full_pass);
        if let (Some(with), Some(without)) = (conjunction(with), conjunction(without)) {
            let first = LogicalPlan::Filter(Filter::try_new(without, Arc::clone(&filter.input))?);
            let then = LogicalPlan::Filter(Filter::try_new(with, Arc::new(first))?);
            return Box::pin(fit_node(ctx, then, source, out)).await;
        }
    }
    let mut inputs = Vec::new();
    for input in plan.inputs() {
        inputs.push(Box::pin(fit_node(ctx, input.clone(), source, out)).await?);
    }
    let exprs = plan.expressions();
    if !exprs.iter().any(expr_has_full_pass) {
        return Ok(plan.with_new_exprs(exprs, inputs)?);
    }
    let [input] = inputs.as_slice() else {
        let name = calls::first_full_pass_name(&exprs).unwrap_or_default();
        return Err(Error::DataFusion(datafusion::error::DataFusionError::Plan(
            format!(
                "{name}: full-pass functions can be used in the SELECT list, WHERE, GROUP BY and \
             aggregate arguments of a query over one relation, not in {}",
                plan.display()
            ),
        )));
    };
    let uses = calls::collect(input, &exprs)?;
    let requests = stats::requests(&uses);
    let statistics = source.statistics(ctx, input, &requests, out).await?;
    for (request, statistic) in requests.iter().zip(&statistics) {
        let mut functions: Vec<&'static str> = Vec::new();
        for u in uses.iter().filter(|u| u.request() == *request) {
            if !functions.contains(&u.kind.name()) {
                functions.push(u.kind.name());
            }
        }
        out.statistics.push(FittedStatistic {
            functions,
            argument: request.argument(),
            statistic: statistic.clone(),
        });
    }
    let preserver = NamePreserver::new(&plan);
    let mut fitted = Vec::with_capacity(exprs.len());
    for expr in exprs {
        let saved = preserver.save(&expr);
        let rewritten = expr
            .transform_up(|e| {
                let Some(u) = calls::FullPassUse::of(input, &e)? else {
                    return Ok(Transformed::no(e));
                };
                let i = requests
                    .iter()
                    .position(|r| *r == u.request())
                    .expect("every use has a request");
                Ok(Transformed::yes(u.fitted(ctx, &statistics[i])?))
            })?
            .data;
        fitted.push(saved.restore(rewritten));
    }
    tracing::info!(
        statistics = requests.len(),
        "fitted full-pass calls over {}",
        input.display()
    );
    Ok(plan.with_new_exprs(fitted, inputs)?)
}
