//! Batch outputs: how skewless writes files (`apply`, `COPY … TO` in `run`
//! and the REPL; `fit` writes its artifact with [`write_file`]).
//!
//! Three promises, whatever fails and however many threads run:
//!
//! - **Atomic**: the output is written beside its target under a temporary
//!   name and moved into place only when complete ([`target`]). A failure
//!   or an interrupt leaves no partial output and the old one untouched.
//! - **No silent overwrite or append**: an existing target (a file, or a
//!   directory that is not empty) is refused unless `--overwrite` is given,
//!   and then replaced as a whole; an output that is also an input of the
//!   same command is refused.
//! - **The same bytes every time**: rows keep the input's order and the
//!   files their names ([`ordered`]), so the same input gives the same
//!   output, byte for byte, whatever the target partitions.

pub mod ordered;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::UInt64Type;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::file_format::format_as_file_type;
use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source_as_provider;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::dml::CopyTo;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::location::FileKind;
use target::{Place, Target};

/// How a write treats an existing target.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Replace an existing target instead of refusing it.
    pub overwrite: bool,
    /// Show progress on stderr.
    pub progress: bool,
    /// Stops the write when cancelled (its temporary is removed).
    pub cancel: Option<crate::cancel::CancelToken>,
}

/// The format of an output named `location`: from its extension, Parquet
/// for a directory (no extension, or a trailing `/`). An extension skewless
/// does not write is an error.
pub fn output_kind(location: &str) -> Result<(FileKind, bool)> {
    let trimmed = location.trim_end_matches('/');
    let directory = location.ends_with('/');
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    match name.rsplit_once('.') {
        _ if directory => Ok((FileKind::Parquet, true)),
        None => Ok((FileKind::Parquet, true)),
        Some((_, ext)) => match FileKind::from_path(name) {
            Some(kind) => Ok((kind, false)),
            None => Err(Error::Usage(format!(
                "'{location}': '.{ext}' is not an output format skewless writes; use .parquet, \
                 .csv, .json, .ndjson or .jsonl, or a directory (a trailing '/') of Parquet files"
            ))),
        },
    }
}

/// Whether an output location names a directory: a trailing `/`, or no
/// extension in its last part (as DataFusion decides).
fn is_directory_name(location: &str) -> bool {
    if location.ends_with('/') {
        return true;
    }
    let name = location.rsplit('/').next().unwrap_or(location);
    !name.contains('.')
}

/// The extension of the files an output named `location` holds:
/// `parquet` (also for a directory), `csv`, or its NDJSON extension.
pub(crate) fn output_extension(location: &str) -> Result<String> {
    let (kind, _) = output_kind(location)?;
    Ok(match kind {
        FileKind::Parquet => "parquet".to_string(),
        FileKind::Csv => "csv".to_string(),
        FileKind::Json => location
            .trim_end_matches('/')
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| crate::json::format::EXTENSIONS.contains(&e.as_str()))
            .unwrap_or_else(|| "json".into()),
    })
}

/// Writes the rows of `input` to `location` (format from its extension,
/// [`output_kind`]), one hive directory per value of `partition_by`.
pub async fn write_query(
    ctx: &SessionContext,
    input: LogicalPlan,
    location: &str,
    partition_by: Vec<String>,
    policy: Policy,
) -> Result<u64> {
    let ext = output_extension(location)?;
    let state = ctx.state();
    let factory = state
        .get_file_format_factory(&ext)
        .ok_or_else(|| Error::Internal(format!("no file format registered for '{ext}'")))?;
    let copy = CopyTo::new(
        Arc::new(input),
        location.to_string(),
        partition_by,
        format_as_file_type(factory),
        HashMap::new(),
    );
    write_copy(ctx, copy, policy).await
}

/// [`write_query`] on the cluster `ctx` runs on (see
/// [`crate::cluster::write`]): the executors write the parts in parallel
/// and move them into place; the client touches no storage. Partitioned
/// (`partition_by`) outputs are not written on a cluster yet.
pub async fn write_query_on_cluster(
    ctx: &SessionContext,
    input: LogicalPlan,
    location: &str,
    partition_by: Vec<String>,
    policy: Policy,
) -> Result<u64> {
    if !partition_by.is_empty() {
        return Err(Error::Usage(format!(
            "--partition-by is not available on a cluster yet: write '{location}' without it, \
             or run without --cluster"
        )));
    }
    let (_, directory) = output_kind(location)?;
    let target = Target::parse(location, directory)?;
    refuse_overlap(&target, &input)?;
    crate::cluster::write::write(ctx, input, target, policy.overwrite).await
}

/// Refuses an output that is, holds or is inside an input of `plan`.
fn refuse_overlap(target: &Target, plan: &LogicalPlan) -> Result<()> {
    for (table, place) in input_places(plan)? {
        if target.overlaps(&place) {
            return Err(Error::Usage(format!(
                "cannot write '{}': it is (or holds, or is inside) the location of input table \
                 '{table}', which this command reads; write the output elsewhere",
                target.display
            )));
        }
    }
    Ok(())
}

/// Runs a COPY (planned by DataFusion) the skewless way: see the module.
pub async fn write_copy(ctx: &SessionContext, copy: CopyTo, policy: Policy) -> Result<u64> {
    let single = copy
        .options
        .get("single_file_output")
        .map(|v| v.trim() == "true");
    let directory = !copy.partition_by.is_empty()
        || single.map_or_else(|| is_directory_name(&copy.output_url), |single| !single);
    let target = Target::parse(&copy.output_url, directory)?;
    refuse_overlap(&target, &copy.input)?;
    if !policy.overwrite && target.exists(ctx).await? {
        return Err(target::exists_error(&target.display));
    }
    let temp = target.temporary()?;
    if let Place::Store { url, .. } = &temp.place {
        temp.set_store(ctx.runtime_env().object_store(url)?);
    }
    let mut options = copy.options.clone();
    options.insert("single_file_output".into(), (!directory).to_string());
    let plan = LogicalPlan::Copy(CopyTo::new(
        copy.input,
        temp.url(),
        copy.partition_by,
        copy.file_type,
        options,
    ));
    let rows = execute_write(ctx, &plan, &policy).await?;
    temp.commit(ctx, policy.overwrite).await?;
    Ok(rows)
}

/// Plans a write deterministically ([`ordered`]) and runs it; the number of
/// rows written.
async fn execute_write(ctx: &SessionContext, plan: &LogicalPlan, policy: &Policy) -> Result<u64> {
    let mut state = ctx.state();
    ordered::configure(&mut state);
    let mut physical = deterministic_plan(&state, plan).await?;
    if let Some(token) = &policy.cancel {
        physical = crate::cancel::cancellable(physical, token)?;
    }
    tracing::debug!(
        "write plan:\n{}",
        datafusion::physical_plan::displayable(physical.as_ref()).indent(true)
    );
    let _progress = policy
        .progress
        .then(|| crate::progress::Progress::start(Arc::clone(&physical)));
    let task = Arc::new(datafusion::execution::TaskContext::from(&state));
    let batches = datafusion::physical_plan::collect(physical, task).await?;
    Ok(batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .flat_map(|c| c.iter().flatten())
        .sum())
}

/// The physical plan of a write whose output does not depend on timing.
pub async fn deterministic_plan(
    state: &SessionState,
    plan: &LogicalPlan,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut state = state.clone();
    ordered::configure(&mut state);
    let physical = state.create_physical_plan(plan).await?;
    if let Some(sink) = physical.downcast_ref::<DataSinkExec>()
        && let Some(input) = ordered::units(Arc::clone(sink.input()), &state).await?
    {
        return Ok(
            datafusion::physical_plan::execution_plan::replace_children_if_necessary(
                Arc::clone(&physical),
                vec![input],
            )?,
        );
    }
    state.config_mut().options_mut().execution.target_partitions = 1;
    let physical = state.create_physical_plan(plan).await?;
    Ok(ordered::single_partition(physical)?)
}

/// The tables a plan reads, each with its location (through views).
fn input_places(plan: &LogicalPlan) -> Result<Vec<(String, Place)>> {
    let mut places = Vec::new();
    collect_places(plan, &mut places)?;
    Ok(places)
}

fn collect_places(plan: &LogicalPlan, out: &mut Vec<(String, Place)>) -> Result<()> {
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
        {
            provider_places(&scan.table_name.to_string(), provider, out)?;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

fn provider_places(
    name: &str,
    provider: Arc<dyn TableProvider>,
    out: &mut Vec<(String, Place)>,
) -> datafusion::common::Result<()> {
    let any: &dyn std::any::Any = provider.as_ref();
    if let Some(listing) = any.downcast_ref::<ListingTable>() {
        for url in listing.table_paths() {
            out.push((name.to_string(), place_of(url)));
        }
    } else if let Some(plan) = provider.get_logical_plan() {
        collect_places(&plan, out)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    }
    Ok(())
}

/// A table location as a [`Place`].
fn place_of(url: &ListingTableUrl) -> Place {
    if url.scheme() == "file" {
        Place::Local(target::normalize_local(std::path::Path::new(&format!(
            "/{}",
            url.prefix()
        ))))
    } else {
        Place::Store {
            url: url.object_store(),
            path: url.prefix().clone(),
        }
    }
}

/// Refuses an output at `location` that is (or holds, or is inside) one of
/// `inputs` (table name, location), as [`write_copy`] does for a plan.
pub fn refuse_inputs(location: &str, directory: bool, inputs: &[(String, String)]) -> Result<()> {
    let target = Target::parse(location, directory)?;
    for (table, input) in inputs {
        let Ok(url) = ListingTableUrl::parse(input) else {
            continue;
        };
        if target.overlaps(&place_of(&url)) {
            return Err(Error::Usage(format!(
                "cannot write '{location}': it is the location of input table '{table}' \
                 ('{input}'), which this command reads; write the output elsewhere"
            )));
        }
    }
    Ok(())
}

/// Writes a small local file (an artifact) atomically, with the same
/// policy: an existing file is refused unless `overwrite`.
pub fn write_file(path: &std::path::Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    let display = path.display().to_string();
    let target = Target::parse(&display, false)?;
    if !overwrite && std::fs::symlink_metadata(path).is_ok() {
        return Err(Error::Usage(format!(
            "'{display}' already exists; pass --overwrite to replace it"
        )));
    }
    let temp = target.temporary()?;
    let Place::Local(temp_path) = &temp.place else {
        return Err(Error::Internal("a local file's temporary is local".into()));
    };
    std::fs::write(temp_path, bytes).map_err(|source| Error::Io {
        path: display.clone(),
        source,
    })?;
    temp.commit_local(overwrite)
}

#[cfg(test)]
mod tests {
    use super::is_directory_name;

    #[test]
    fn directory_names() {
        assert!(is_directory_name("out/"));
        assert!(is_directory_name("s3://bucket/features"));
        assert!(is_directory_name("/tmp/x.d/features"));
        assert!(!is_directory_name("/tmp/x.d/features.csv"));
        assert!(!is_directory_name("features.csv.gz"));
        assert!(!is_directory_name("s3://bucket/f.parquet"));
    }
}
