//! `skewless apply`: an artifact's fitted transform over new data, in batch.

use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use datafusion::dataframe::DataFrameWriteOptions;

use super::ApplyArgs;
use crate::artifact::Artifact;
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
    // The artifact's SQL runs in a sealed session that holds the inputs
    // and nothing else (see `artifact::check`).
    let ctx = crate::session::sealed_context()?;
    for t in &args.tables.tables {
        crate::location::register_table(&ctx, &t.name, &t.location).await?;
    }
    check_inputs(&ctx, &artifact).await?;
    let plan = crate::artifact::check::plan_fitted(&ctx, &artifact).await?;
    let df = ctx.execute_logical_plan(plan).await?;
    let out = args.out.as_str();
    if FileKind::from_path(out.trim_end_matches('/')) == Some(FileKind::Csv)
        && let Some(nested) = artifact.outputs.iter().find(|o| o.data_type.contains('('))
    {
        return Err(Error::Usage(format!(
            "output '{}' is {}, which CSV cannot hold; write Parquet or NDJSON instead",
            nested.name, nested.data_type
        )));
    }
    for column in &args.partition_by {
        if !artifact.outputs.iter().any(|o| &o.name == column) {
            return Err(Error::Usage(format!(
                "--partition-by {column}: the transform has no output column '{column}' (outputs: {})",
                artifact
                    .outputs
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    if !args.partition_by.is_empty() && FileKind::from_path(out).is_some() {
        return Err(Error::Usage(format!(
            "--partition-by writes a directory of files, but '{out}' names a file; \
             give a directory, e.g. features/"
        )));
    }
    let options = DataFrameWriteOptions::new().with_partition_by(args.partition_by.clone());
    let written = match FileKind::from_path(out.trim_end_matches('/')) {
        Some(FileKind::Csv) => df.write_csv(out, options, None).await?,
        Some(FileKind::Json) => df.write_json(out, options, None).await?,
        // Parquet by extension, and for a directory (partitioned files).
        Some(FileKind::Parquet) | None => df.write_parquet(out, options, None).await?,
    };
    let rows: u64 = written
        .iter()
        .filter_map(|b| {
            b.column_by_name("count").and_then(|c| {
                datafusion::arrow::array::AsArray::as_primitive_opt::<
                    datafusion::arrow::datatypes::UInt64Type,
                >(c.as_ref())
                .map(|c| c.iter().flatten().sum::<u64>())
            })
        })
        .sum();
    super::write_stdout(&format!(
        "applied {} → {}: {} rows in {:.2} s\n",
        args.artifact.display(),
        out,
        group_digits(rows as usize),
        started.elapsed().as_secs_f64()
    ))
}

/// Checks, before any work, that every input table is registered with every
/// column the transform reads, in a compatible type.
async fn check_inputs(
    ctx: &datafusion::prelude::SessionContext,
    artifact: &Artifact,
) -> Result<()> {
    for input in &artifact.inputs {
        let Ok(table) = ctx.table_provider(input.name.as_str()).await else {
            return Err(Error::Usage(format!(
                "the transform reads table '{}': register it with --table {}=LOCATION",
                input.name, input.name
            )));
        };
        let schema = table.schema();
        for column in &input.columns {
            let Ok(field) = schema.field_with_name(&column.name) else {
                return Err(Error::Usage(format!(
                    "table '{}' has no column '{}', which the transform reads (fitted as {})",
                    input.name, column.name, column.data_type
                )));
            };
            let accepted = match column.data_type.parse::<DataType>() {
                Ok(fitted) => crate::artifact::accepts(&fitted, field.data_type()),
                Err(_) => column.data_type == field.data_type().to_string(),
            };
            if !accepted {
                return Err(Error::Usage(format!(
                    "column '{}' of table '{}' is {}, but the transform was fitted on {}",
                    column.name,
                    input.name,
                    field.data_type(),
                    column.data_type
                )));
            }
        }
    }
    Ok(())
}
