//! An artifact's SQL is data: it is checked before it is planned over data.
//!
//! `apply`, `eval` and serving run the artifact's fitted SQL. A file can be
//! edited, so before that SQL touches anything it must be exactly what
//! `skewless fit` writes:
//!
//! 1. `sql` and `fitted_sql` are each one SELECT (no DDL, DML, COPY, SET,
//!    EXPLAIN, and not two statements);
//! 2. they plan in a sealed session ([`sealed_context`]) that holds only
//!    the declared input tables, with their declared columns: no other
//!    table, no file path (`FROM '/etc/passwd'`), no table function;
//! 3. `fitted_sql` is what fitting `sql` with the recorded `statistics`
//!    gives ([`crate::fit::refit`]): every literal comes from the
//!    statistics, every expression from the transform;
//! 4. its planned output columns and types are `outputs[]`.
//!
//! Anything else is refused with a message naming what is wrong.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::empty::EmptyTable;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;

use super::{Artifact, InputTable};
use crate::error::{Error, Result};

fn refuse(message: impl Into<String>) -> Error {
    Error::Data(message.into())
}

/// Checks an artifact's SQL as the module documentation says.
pub fn check(artifact: &Artifact) -> Result<()> {
    one_select("sql", &artifact.sql)?;
    one_select("fitted_sql", &artifact.fitted_sql)?;
    let ctx = crate::session::sealed_context()?;
    for input in &artifact.inputs {
        ctx.register_table(input.name.as_str(), empty_table(input)?)?;
    }
    futures::executor::block_on(async {
        let transform = plan(&ctx, artifact, "sql", &artifact.sql).await?;
        let fitted = plan(&ctx, artifact, "fitted_sql", &artifact.fitted_sql).await?;
        let recorded = artifact
            .statistics
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.value
                    .to_statistic()
                    .map(|v| (s.argument.clone(), v))
                    .map_err(|e| refuse(format!("statistics[{i}] ({}): {e}", s.argument)))
            })
            .collect::<Result<Vec<_>>>()?;
        let refitted = crate::fit::refit(&ctx, transform, recorded)
            .await
            .map_err(|e| {
                refuse(format!(
                    "the transform does not refit from its statistics: {e}"
                ))
            })?;
        let expected = datafusion::sql::unparser::plan_to_sql(&refitted)?.to_string();
        if expected != artifact.fitted_sql {
            return Err(refuse(format!(
                "fitted_sql is not what the transform (sql) fitted with the recorded statistics \
                 gives: {}",
                first_difference(&expected, &artifact.fitted_sql)
            )));
        }
        check_outputs(artifact, &fitted)
    })
}

/// Plans the fitted SQL of a checked artifact over `ctx`, a session whose
/// tables are the artifact's inputs ([`sealed_context`] with the real data,
/// or empty tables for serving), checking again that it reads nothing else.
pub async fn plan_fitted(ctx: &SessionContext, artifact: &Artifact) -> Result<LogicalPlan> {
    plan(ctx, artifact, "fitted_sql", &artifact.fitted_sql).await
}

/// An empty table with an input's declared columns.
pub(crate) fn empty_table(input: &InputTable) -> Result<Arc<dyn TableProvider>> {
    Ok(Arc::new(EmptyTable::new(declared_schema(input)?)))
}

/// An input's declared columns, in the types the artifact spells.
pub(crate) fn declared_schema(input: &InputTable) -> Result<SchemaRef> {
    let fields = input
        .columns
        .iter()
        .map(|c| {
            let data_type: DataType = c.data_type.parse().map_err(|e| {
                refuse(format!(
                    "input column '{}' of table '{}' has type '{}', which this version cannot \
                     read: {e}",
                    c.name, input.name, c.data_type
                ))
            })?;
            Ok(Field::new(&c.name, data_type, c.nullable))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// Refuses anything but one query statement.
fn one_select(field: &str, sql: &str) -> Result<()> {
    let statements = DFParser::parse_sql(sql)
        .map_err(|e| refuse(format!("{field} is not valid SQL: {}", Error::from(e))))?;
    let kinds: Vec<String> = statements.iter().map(statement_kind).collect();
    match (statements.len(), statements.front()) {
        (1, Some(DfStatement::Statement(s))) if matches!(**s, Statement::Query(_)) => Ok(()),
        (0, _) => Err(refuse(format!("{field} is empty"))),
        (1, _) => Err(refuse(format!(
            "{field} must be one SELECT, not {}",
            kinds[0]
        ))),
        (n, _) => Err(refuse(format!(
            "{field} must be one SELECT, not {n} statements ({})",
            kinds.join("; ")
        ))),
    }
}

/// What kind of statement this is, for messages (`a COPY`, `a SET`, …).
fn statement_kind(s: &DfStatement) -> String {
    match s {
        DfStatement::Statement(s) => match **s {
            Statement::Query(_) => "a SELECT".into(),
            ref other => {
                let words: Vec<String> = other
                    .to_string()
                    .split_whitespace()
                    .take(2)
                    .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
                    .map(str::to_uppercase)
                    .collect();
                format!("a {} statement", words.join(" "))
            }
        },
        DfStatement::CreateExternalTable(_) => "a CREATE EXTERNAL TABLE statement".into(),
        DfStatement::CopyTo(_) => "a COPY statement".into(),
        DfStatement::Explain(_) => "an EXPLAIN statement".into(),
        DfStatement::Reset(_) => "a RESET statement".into(),
    }
}

/// Plans `sql` in the sealed `ctx` and checks what it reads.
async fn plan(
    ctx: &SessionContext,
    artifact: &Artifact,
    field: &str,
    sql: &str,
) -> Result<LogicalPlan> {
    let plan = ctx.state().create_logical_plan(sql).await.map_err(|e| {
        let root = e.find_root().to_string();
        let reason = match root.split_once("table '") {
            Some((_, rest)) if root.contains("' not found") => {
                let name = rest.split('\'').next().unwrap_or_default();
                format!(
                    "it reads '{}', which is not a declared input",
                    name.trim_start_matches("datafusion.public.")
                )
            }
            _ => Error::from(e).to_string(),
        };
        refuse(format!(
            "{field} does not plan over the declared inputs ({}): {reason}",
            declared_inputs(artifact)
        ))
    })?;
    check_plan(artifact, field, &plan)?;
    Ok(plan)
}

/// The declared inputs, for messages: `census(age, education)`.
fn declared_inputs(artifact: &Artifact) -> String {
    artifact
        .inputs
        .iter()
        .map(|t| {
            let columns: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
            format!("{}({})", t.name, columns.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses plan nodes that do anything but read the declared tables.
fn check_plan(artifact: &Artifact, field: &str, plan: &LogicalPlan) -> Result<()> {
    let mut problem = None;
    plan.apply_with_subqueries(|node| {
        let bad = match node {
            LogicalPlan::TableScan(scan) => {
                let name = scan.table_name.table();
                let declared = artifact.inputs.iter().any(|t| t.name == name)
                    && scan.table_name.schema().is_none_or(|s| s == "public");
                (!declared).then(|| {
                    format!(
                        "it reads '{}', which is not a declared input",
                        scan.table_name
                    )
                })
            }
            LogicalPlan::Ddl(d) => Some(format!("it holds DDL ({})", d.name())),
            LogicalPlan::Dml(d) => Some(format!("it writes ({})", d.op)),
            LogicalPlan::Copy(_) => Some("it writes files (COPY)".into()),
            LogicalPlan::Statement(s) => Some(format!("it holds a statement ({})", s.name())),
            LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => Some("it is an EXPLAIN".into()),
            LogicalPlan::DescribeTable(_) => Some("it is a DESCRIBE".into()),
            LogicalPlan::Extension(e) => {
                Some(format!("it holds a plan extension ({})", e.node.name()))
            }
            _ => None,
        };
        if bad.is_some() {
            problem = bad;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match problem {
        Some(p) => Err(refuse(format!("{field} is refused: {p}"))),
        None => Ok(()),
    }
}

/// The planned columns and types must be the declared outputs.
fn check_outputs(artifact: &Artifact, plan: &LogicalPlan) -> Result<()> {
    let planned: Vec<(String, String)> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect();
    let declared: Vec<(String, String)> = artifact
        .outputs
        .iter()
        .map(|o| (o.name.clone(), o.data_type.clone()))
        .collect();
    // Compared in the artifact's spelling: a string is a string whatever
    // layout this session reads it in (see `artifact::type_name`).
    if planned.len() == declared.len()
        && planned
            .iter()
            .zip(&declared)
            .all(|((pn, pt), (dn, dt))| pn == dn && crate::artifact::same_type_name(pt, dt))
    {
        return Ok(());
    }
    let show = |cols: &[(String, String)]| {
        cols.iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(refuse(format!(
        "fitted_sql gives the columns ({}) but outputs[] declares ({})",
        show(&planned),
        show(&declared)
    )))
}

/// Where two texts first differ, with a little context from each.
fn first_difference(expected: &str, actual: &str) -> String {
    let at = expected
        .char_indices()
        .zip(actual.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(expected.len().min(actual.len()));
    let context = |s: &str| {
        let start = s.floor_char_boundary(at.saturating_sub(30));
        let end = s.ceil_char_boundary((at + 50).min(s.len()));
        format!("…{}…", &s[start..end])
    };
    format!(
        "at character {at}, expected {} but the artifact has {}",
        context(expected),
        context(actual)
    )
}
