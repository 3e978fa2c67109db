//! `skewless apply`: an artifact's fitted transform over new data, in batch.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, col, lit};
use datafusion::prelude::SessionContext;

use super::ApplyArgs;
use crate::artifact::{Artifact, InputTable};
use crate::error::{Error, Result};
use crate::location::FileKind;
use crate::progress::group_digits;

pub(super) async fn apply_command(args: ApplyArgs) -> Result<()> {
    let started = Instant::now();
    let key = args
        .verify_key
        .as_deref()
        .map(crate::artifact::SigningKey::from_file)
        .transpose()?;
    let artifact = Artifact::load(&args.artifact, key.as_ref())?;
    let out = args.out.as_str();
    let (kind, _) = crate::write::output_kind(out)?;
    // The artifact's SQL runs in a sealed session that holds the inputs
    // and nothing else (see `artifact::check`).
    let cluster = args.cluster.cluster.as_ref();
    let ctx = match cluster {
        None => crate::session::sealed_context()?,
        Some(cluster) => crate::cluster::sealed_client_context(cluster).await?,
    };
    let missing = register_inputs(&ctx, &artifact, &args).await?;
    let plan = crate::artifact::check::plan_fitted(&ctx, &artifact).await?;
    let plan = written_strings(served_only(&artifact, plan, &missing)?)?;
    let written: Vec<&str> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    if kind == FileKind::Csv
        && let Some(nested) = artifact
            .outputs
            .iter()
            .find(|o| o.data_type.contains('(') && written.contains(&o.name.as_str()))
    {
        return Err(Error::Usage(format!(
            "output '{}' is {}, which CSV cannot hold; write Parquet or NDJSON instead",
            nested.name, nested.data_type
        )));
    }
    for column in &args.partition_by {
        if !written.contains(&column.as_str()) {
            return Err(Error::Usage(format!(
                "--partition-by {column}: the transform has no output column '{column}' (outputs: {})",
                written.join(", ")
            )));
        }
    }
    if !args.partition_by.is_empty() && FileKind::from_path(out.trim_end_matches('/')).is_some() {
        return Err(Error::Usage(format!(
            "--partition-by writes a directory of files, but '{out}' names a file; \
             give a directory, e.g. features/"
        )));
    }
    let policy = crate::write::Policy {
        overwrite: args.overwrite,
        progress: args.progress.enabled(),
        cancel: None,
    };
    let planned = plan.clone();
    let partition_by = args.partition_by.clone();
    let written = match cluster {
        None => crate::write::write_query(&ctx, plan, out, partition_by, policy).await,
        Some(_) => {
            crate::write::write_query_on_cluster(&ctx, plan, out, partition_by, policy).await
        }
    };
    let rows = match written {
        Ok(rows) => rows,
        Err(e) => return Err(crate::location::name_culprit(&ctx, &planned, e).await),
    };
    super::write_stdout(&format!(
        "applied {} → {}: {} rows in {:.2} s\n",
        args.artifact.display(),
        out,
        group_digits(rows as usize),
        started.elapsed().as_secs_f64()
    ))
}

/// A column the input lacks that only training-only outputs read.
struct Missing {
    table: String,
    column: String,
}

/// Registers each input table of the artifact under its name, as a view
/// that gives its columns the fitted types (a cast within the type's family,
/// as serving takes them), after checking that every column the transform
/// reads is there in a compatible type. Columns that only training-only
/// outputs read (labels) may be absent: they are NULL, and returned.
async fn register_inputs(
    ctx: &SessionContext,
    artifact: &Artifact,
    args: &ApplyArgs,
) -> Result<Vec<Missing>> {
    let served_reads: Vec<&str> = artifact
        .outputs
        .iter()
        .filter(|o| !o.training_only)
        .flat_map(|o| o.reads.iter().map(String::as_str))
        .collect();
    // An artifact without `reads` (an older or unusual plan) cannot tell.
    let reads_known = artifact.outputs.iter().any(|o| !o.reads.is_empty());
    let mut missing = Vec::new();
    for input in &artifact.inputs {
        let Some(arg) = args.tables.tables.iter().find(|t| t.name == input.name) else {
            return Err(Error::Usage(format!(
                "the transform reads table '{}': register it with --table {}=LOCATION",
                input.name, input.name
            )));
        };
        let hidden = format!("__skewless_input_{}", input.name);
        if args.cluster.cluster.is_some() {
            // The client plans over the declared columns and reads nothing.
            crate::location::register_declared(ctx, &hidden, &arg.location, declared(input)?)?;
        } else {
            crate::location::register_table(ctx, &hidden, &arg.location).await?;
        }
        let provider = ctx.table_provider(hidden.as_str()).await?;
        ctx.deregister_table(hidden.as_str())?;
        let view = typed_view(input, provider, &served_reads, reads_known, &mut missing)?;
        ctx.register_table(input.name.as_str(), Arc::new(view))?;
    }
    for t in &args.tables.tables {
        if !artifact.inputs.iter().any(|i| i.name == t.name) {
            tracing::warn!(table = t.name, "the transform does not read this table");
        }
    }
    Ok(missing)
}

/// An input's declared columns, strings as `Utf8View` (as DataFusion reads
/// Parquet strings on one machine, where skewless's string kernels are
/// fastest; Ballista would read `Utf8`).
fn declared(input: &InputTable) -> Result<datafusion::arrow::datatypes::SchemaRef> {
    use crate::artifact::{canonical_type, written_type};
    let schema = crate::artifact::check::declared_schema(input)?;
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            f.as_ref()
                .clone()
                .with_data_type(written_type(&canonical_type(f.data_type())))
        })
        .collect();
    Ok(Arc::new(datafusion::arrow::datatypes::Schema::new(fields)))
}

fn typed_view(
    input: &InputTable,
    provider: Arc<dyn TableProvider>,
    served_reads: &[&str],
    reads_known: bool,
    missing: &mut Vec<Missing>,
) -> Result<ViewTable> {
    let schema = provider.schema();
    let mut columns: Vec<Expr> = Vec::with_capacity(input.columns.len());
    for column in &input.columns {
        let fitted: DataType = column.data_type.parse().map_err(|e| {
            Error::Data(format!(
                "input column '{}' has type '{}', which this version cannot read: {e}",
                column.name, column.data_type
            ))
        })?;
        match schema.field_with_name(&column.name) {
            Ok(field) => {
                if !crate::artifact::accepts(&fitted, field.data_type()) {
                    return Err(Error::Usage(format!(
                        "column '{}' of table '{}' is {}, but the transform was fitted on {}",
                        column.name,
                        input.name,
                        field.data_type(),
                        column.data_type
                    )));
                }
                let expr = col(datafusion::common::Column::new_unqualified(&column.name));
                // Strings stay in the layout the input has (Utf8View here,
                // Utf8 on a cluster): the same values, no copy.
                let expr = if crate::artifact::canonical_type(field.data_type())
                    == crate::artifact::canonical_type(&fitted)
                {
                    expr
                } else {
                    cast(expr, fitted)
                };
                columns.push(expr.alias(&column.name));
            }
            Err(_) if reads_known && !served_reads.contains(&column.name.as_str()) => {
                missing.push(Missing {
                    table: input.name.clone(),
                    column: column.name.clone(),
                });
                let null = ScalarValue::try_from(&fitted)?;
                columns.push(lit(null).alias(&column.name));
            }
            Err(_) => {
                return Err(Error::Usage(format!(
                    "table '{}' has no column '{}', which the transform reads (fitted as {})",
                    input.name, column.name, column.data_type
                )));
            }
        }
    }
    let plan = LogicalPlanBuilder::scan(input.name.as_str(), provider_as_source(provider), None)?
        .project(columns)?
        .build()?;
    Ok(ViewTable::new(plan, None))
}

/// The plan with its columns in their written types
/// ([`crate::artifact::written_type`]: strings as `Utf8View`): the files a
/// cluster writes (where Ballista reads `Utf8`) carry the same schema as
/// those written on one machine, so the same bytes.
fn written_strings(plan: LogicalPlan) -> Result<LogicalPlan> {
    let schema = Arc::clone(plan.schema());
    let written = |t: &DataType| crate::artifact::written_type(t) == *t;
    if schema.fields().iter().all(|f| written(f.data_type())) {
        return Ok(plan);
    }
    let columns: Vec<Expr> = schema
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(datafusion::common::Column::from((qualifier, field)));
            if written(field.data_type()) {
                column
            } else {
                let t = crate::artifact::written_type(field.data_type());
                cast(column, t).alias(field.name())
            }
        })
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(columns)?.build()?)
}

/// With inputs missing, the served outputs only — and the transform must
/// not filter on a missing column, which would drop every row.
fn served_only(artifact: &Artifact, plan: LogicalPlan, missing: &[Missing]) -> Result<LogicalPlan> {
    if missing.is_empty() {
        return Ok(plan);
    }
    let names: Vec<&str> = missing.iter().map(|m| m.column.as_str()).collect();
    let mut filtered = None;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Filter(f) = node
            && let Some(c) = f
                .predicate
                .column_refs()
                .into_iter()
                .find(|c| names.contains(&c.name.as_str()))
        {
            filtered = Some(c.name.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if let Some(column) = filtered {
        return Err(Error::Usage(format!(
            "the input has no column '{column}', and the transform's WHERE reads it: \
             add the column, or apply a transform without that condition"
        )));
    }
    let served: Vec<&str> = artifact
        .outputs
        .iter()
        .filter(|o| !o.training_only)
        .map(|o| o.name.as_str())
        .collect();
    let skipped: Vec<&str> = artifact
        .outputs
        .iter()
        .filter(|o| o.training_only)
        .map(|o| o.name.as_str())
        .collect();
    let absent: Vec<String> = missing
        .iter()
        .map(|m| format!("'{}' of table '{}'", m.column, m.table))
        .collect();
    let _ = writeln_stderr(&format!(
        "note: the input has no {} (read only by training-only outputs): writing the {} served \
         outputs, without {}",
        absent.join(", "),
        served.len(),
        skipped.join(", ")
    ));
    let columns: Vec<Expr> = served
        .iter()
        .map(|n| col(datafusion::common::Column::new_unqualified(*n)))
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(columns)?.build()?)
}

fn writeln_stderr(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{text}")
}
