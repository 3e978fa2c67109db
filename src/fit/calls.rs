//! Finding full-pass calls in expressions, and their fitted forms.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan, lit};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::prelude::SessionContext;
use skewless_udfs::kernel::sample::{Copies, targets};
use skewless_udfs::kernel::scale::z_score_scale;
use skewless_udfs::kernel::split::split_thresholds_by;
use skewless_udfs::scalar::{FullPassCall, FullPassKind, ImputeStrategy};

use super::stats::{StatRequest, Statistic, StrataStat, list_literal};

/// The full-pass function an expression calls at its root, if any.
fn full_pass_kind(e: &Expr) -> Option<(FullPassKind, &ScalarFunction)> {
    match e {
        Expr::ScalarFunction(f) => FullPassKind::from_name(f.func.name()).map(|k| (k, f)),
        _ => None,
    }
}

/// True when `expr` calls a full-pass function anywhere.
pub fn expr_has_full_pass(expr: &Expr) -> bool {
    expr.exists(|e| Ok(full_pass_kind(e).is_some()))
        .unwrap_or(false)
}

/// The name of the first full-pass function called in `exprs`.
pub(super) fn first_full_pass_name(exprs: &[Expr]) -> Option<&'static str> {
    let mut found = None;
    for expr in exprs {
        let _ = expr.apply(|e| {
            if let Some((k, _)) = full_pass_kind(e) {
                found = Some(k.name());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if found.is_some() {
            break;
        }
    }
    found
}

/// One full-pass call: which function, its literal arguments, its input.
#[derive(Debug, Clone, PartialEq)]
pub struct FullPassUse {
    pub kind: FullPassKind,
    pub call: FullPassCall,
    /// The expression the statistic is computed over (the key of the
    /// stratified functions).
    pub x: Expr,
    /// The type of `x` in the input relation.
    pub x_type: DataType,
    /// The stratum of the stratified functions.
    pub by: Option<Expr>,
}

impl FullPassUse {
    /// Reads a full-pass call at the root of `e`, folding its literal
    /// arguments (so `-1` or `2 * 5` are literals) before checking them.
    pub fn of(input: &LogicalPlan, e: &Expr) -> Result<Option<Self>> {
        let Some((kind, f)) = full_pass_kind(e) else {
            return Ok(None);
        };
        let expressions = kind.expression_args().min(f.args.len());
        for arg in &f.args[..expressions] {
            if expr_has_full_pass(arg) {
                let inner = first_full_pass_name(std::slice::from_ref(arg)).unwrap_or_default();
                return plan_err!(
                    "{}: its argument calls another full-pass function ({inner}); compute that \
                     in a subquery first",
                    kind.name()
                );
            }
        }
        let x = f.args[0].clone();
        let by = (expressions == 2).then(|| f.args[1].clone());
        let simplifier = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_schema(Arc::clone(input.schema()))
                .build(),
        );
        let folded = f.args[expressions..]
            .iter()
            .map(|a| simplifier.simplify(a.clone()))
            .collect::<Result<Vec<_>>>()?;
        let literals: Vec<Option<&ScalarValue>> = std::iter::repeat_n(None, expressions)
            .chain(folded.iter().map(|a| match a {
                Expr::Literal(v, _) => Some(v),
                _ => None,
            }))
            .collect();
        let call = FullPassCall::parse(kind, &literals)?;
        let x_type = x.get_type(input.schema())?;
        if let FullPassCall::Impute { strategy } = &call
            && *strategy != ImputeStrategy::MostFrequent
            && !is_numeric(&x_type)
        {
            return plan_err!(
                "impute: strategy '{}' needs a numeric x, got {x_type}; use 'most_frequent' for strings",
                if *strategy == ImputeStrategy::Mean {
                    "mean"
                } else {
                    "median"
                }
            );
        }
        Ok(Some(Self {
            kind,
            call,
            x,
            x_type,
            by,
        }))
    }

    /// The stratum expression of a stratified call (an empty string for
    /// the others, which have none).
    fn stratum(&self) -> Expr {
        self.by.clone().unwrap_or_else(|| lit(""))
    }

    /// The statistic this call needs.
    pub fn request(&self) -> StatRequest {
        let x = self.x.clone();
        match &self.call {
            FullPassCall::MinMaxScale { .. } | FullPassCall::MaxAbsScale => StatRequest::MinMax(x),
            FullPassCall::ZScore => StatRequest::Moments(x),
            FullPassCall::RobustScale => StatRequest::Robust(x),
            FullPassCall::VocabIndex {
                top_k,
                min_frequency,
                ..
            }
            | FullPassCall::OneHot {
                top_k,
                min_frequency,
            } => StatRequest::Vocabulary {
                x,
                top_k: *top_k,
                min_frequency: *min_frequency,
            },
            FullPassCall::QuantileBucket { n } => StatRequest::Quantiles { x, n: *n },
            FullPassCall::Impute { strategy } => match strategy {
                ImputeStrategy::Mean => StatRequest::Moments(x),
                ImputeStrategy::Median => StatRequest::Robust(x),
                ImputeStrategy::MostFrequent => StatRequest::MostFrequent(x),
            },
            FullPassCall::StratifiedSplit { .. } => StatRequest::Strata {
                key: x,
                stratum: self.stratum(),
                seed: None,
            },
            FullPassCall::Sample { seed, .. } => StatRequest::Strata {
                key: x,
                stratum: self.stratum(),
                seed: Some(*seed),
            },
        }
    }

    /// The instance-level expression with the statistic inlined.
    pub fn fitted(&self, ctx: &SessionContext, stat: &Statistic) -> Result<Expr> {
        let call = |name: &str, args: Vec<Expr>| -> Result<Expr> {
            Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
                ctx.udf(name)?,
                args,
            )))
        };
        let x = self.x.clone();
        match (&self.call, stat) {
            (FullPassCall::MinMaxScale { range }, Statistic::MinMax { min, max, .. }) => {
                let mut args = vec![x, lit(*min), lit(*max)];
                if let Some((lo, hi)) = range {
                    args.extend([lit(*lo), lit(*hi)]);
                }
                call("min_max_scale_with", args)
            }
            (
                FullPassCall::MaxAbsScale,
                Statistic::MinMax {
                    min, max, count, ..
                },
            ) => {
                let max_abs = if *count == 0 {
                    0.0
                } else {
                    min.abs().max(max.abs())
                };
                call("max_abs_scale_with", vec![x, lit(max_abs)])
            }
            (
                FullPassCall::ZScore,
                Statistic::Moments {
                    mean,
                    stddev,
                    inv_stddev,
                    ..
                },
            ) => call(
                "z_score_with",
                vec![x, lit(*mean), lit(z_score_scale(*stddev, *inv_stddev))],
            ),
            (
                FullPassCall::RobustScale,
                Statistic::Robust {
                    median, q25, q75, ..
                },
            ) => call("robust_scale_with", vec![x, lit(*median), lit(q75 - q25)]),
            (
                FullPassCall::VocabIndex {
                    num_oov_buckets, ..
                },
                Statistic::Vocabulary { values, .. },
            ) => call(
                "vocab_index_with",
                vec![
                    x,
                    Expr::Literal(list_literal(Arc::clone(values)), None),
                    lit(*num_oov_buckets as i64),
                ],
            ),
            (FullPassCall::OneHot { .. }, Statistic::Vocabulary { values, .. }) => call(
                "one_hot_with",
                vec![x, Expr::Literal(list_literal(Arc::clone(values)), None)],
            ),
            (FullPassCall::QuantileBucket { .. }, Statistic::Quantiles { boundaries }) => {
                let values = Arc::new(datafusion::arrow::array::Float64Array::from(
                    boundaries.clone(),
                ));
                call(
                    "bucketize",
                    vec![x, Expr::Literal(list_literal(values), None)],
                )
            }
            (FullPassCall::Impute { .. }, stat) => {
                // No values to learn from (NaN): the NULL stays NULL.
                let known = |v: f64| ScalarValue::Float64((!v.is_nan()).then_some(v));
                let value = match stat {
                    Statistic::Moments { mean, .. } => known(*mean),
                    Statistic::Robust { median, .. } => known(*median),
                    Statistic::MostFrequent { value } => value.clone(),
                    other => return plan_err!("impute: unexpected statistic {other:?}"),
                };
                let x = if is_numeric(&self.x_type) {
                    Expr::Cast(Cast::new(Box::new(x), DataType::Float64))
                } else {
                    x
                };
                let value = if is_numeric(&self.x_type) {
                    value.cast_to(&DataType::Float64)?
                } else {
                    value.cast_to(&self.x_type)?
                };
                call("coalesce", vec![x, Expr::Literal(value, None)])
            }
            (FullPassCall::StratifiedSplit { names, proportions }, Statistic::Strata(strata)) => {
                let thresholds: Vec<Option<i64>> = strata
                    .counts
                    .iter()
                    .enumerate()
                    .flat_map(|(i, count)| {
                        split_thresholds_by(*count, proportions, |rank| strata.hash_at(i, rank))
                    })
                    .map(|t| t.map(|t| t as i64))
                    .collect();
                check_cuts(strata, self.kind.name())?;
                call(
                    "stratified_split_with",
                    vec![
                        x,
                        self.stratum(),
                        strings_literal(strata.names.iter().map(String::as_str)),
                        ints_literal(thresholds),
                        strings_literal(names.iter().map(String::as_str)),
                    ],
                )
            }
            (FullPassCall::Sample { seed, size, shares }, Statistic::Strata(strata)) => {
                let name = self.kind.name();
                let replacement = self.kind == FullPassKind::Oversample;
                let counts: Vec<(&str, u64)> = strata
                    .names
                    .iter()
                    .map(String::as_str)
                    .zip(strata.counts.iter().copied())
                    .collect();
                let targets = targets(&counts, size, shares, replacement).map_err(|e| {
                    datafusion::error::DataFusionError::Plan(format!("{name}: {e}"))
                })?;
                let copies: Vec<Copies> = strata
                    .counts
                    .iter()
                    .zip(&targets)
                    .enumerate()
                    .map(|(i, (count, t))| {
                        Copies::by_rank(*count, *t, |rank| strata.hash_at(i, rank))
                    })
                    .collect();
                check_cuts(strata, name)?;
                let sample = call(
                    "sample_with",
                    vec![
                        x,
                        self.stratum(),
                        lit(*seed as i64),
                        strings_literal(strata.names.iter().map(String::as_str)),
                        ints_literal(copies.iter().map(|c| Some(c.base as i64)).collect()),
                        ints_literal(copies.iter().map(|c| Some(c.threshold as i64)).collect()),
                    ],
                )?;
                Ok(if replacement {
                    sample
                } else {
                    sample.gt(lit(0i64))
                })
            }
            (call, stat) => plan_err!(
                "{}: statistic {stat:?} does not fit call {call:?}",
                self.kind.name()
            ),
        }
    }
}

/// Refuses a refit whose recorded strata lack a hash a call needs.
fn check_cuts(strata: &StrataStat, name: &str) -> Result<()> {
    match strata.missing() {
        None => Ok(()),
        Some((stratum, rank)) => plan_err!(
            "{name}: the statistics have no key hash at rank {rank} of stratum '{}'",
            strata.names.get(stratum).map_or("?", String::as_str)
        ),
    }
}

/// A list literal of strings.
fn strings_literal<'a>(values: impl Iterator<Item = &'a str>) -> Expr {
    let values = datafusion::arrow::array::StringArray::from_iter_values(values);
    Expr::Literal(list_literal(Arc::new(values)), None)
}

/// A list literal of BIGINTs (NULL where None).
fn ints_literal(values: Vec<Option<i64>>) -> Expr {
    let values = datafusion::arrow::array::Int64Array::from(values);
    Expr::Literal(list_literal(Arc::new(values)), None)
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Null)
}

/// Every full-pass call in `exprs`, outermost first.
pub(super) fn collect(
    input: &LogicalPlan,
    exprs: &[Expr],
) -> crate::error::Result<Vec<FullPassUse>> {
    let mut uses = Vec::new();
    for expr in exprs {
        expr.apply(|e| {
            if let Some(u) = FullPassUse::of(input, e)? {
                uses.push(u);
                // Nested calls were rejected by `of`.
                return Ok(TreeNodeRecursion::Jump);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
    }
    Ok(uses)
}
