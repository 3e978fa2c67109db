//! Running one SQL statement: plan it, execute it with progress, and hand
//! query rows to a [`ResultSink`].

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::UInt64Type;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::location::{self, FileKind};
use crate::output::ResultSink;
use crate::progress::Progress;

/// What a statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A query; its rows went to the sink.
    Rows(usize),
    /// COPY or INSERT; the number of rows written.
    Written(u64),
    /// DDL or SET: nothing to show.
    Done,
}

/// Plans and runs `sql` (one statement) on `ctx`.
///
/// Query results stream into `sink`; `progress` shows a progress line on
/// stderr while the statement runs.
pub async fn execute(
    ctx: &SessionContext,
    sql: &str,
    sink: &mut (dyn ResultSink + Send),
    progress: bool,
) -> Result<Outcome> {
    let mut plan = ctx.state().create_logical_plan(sql).await?;
    if crate::fit::has_full_pass(&plan) {
        plan = crate::fit::fit_plan(ctx, plan, progress).await?;
    }
    let kind = match &plan {
        LogicalPlan::Copy(_) | LogicalPlan::Dml(_) => Kind::Write,
        LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) => Kind::Command,
        _ => Kind::Query,
    };
    let external = match &plan {
        LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
            Some((cmd.locations.clone(), cmd.file_type.clone()))
        }
        _ => None,
    };
    let df = match ctx.execute_logical_plan(plan).await {
        Ok(df) => df,
        Err(e) => {
            if let Some((locations, file_type)) = external {
                for location in locations {
                    if let Some(culprit) = diagnose(ctx, &location, &file_type).await {
                        return Err(Error::Data(culprit));
                    }
                }
            }
            return Err(e.into());
        }
    };
    if kind == Kind::Command {
        df.collect().await?;
        return Ok(Outcome::Done);
    }
    let physical = df.create_physical_plan().await?;
    let mut progress = progress.then(|| Progress::start(Arc::clone(&physical)));
    let mut stream = execute_stream(Arc::clone(&physical), ctx.task_ctx())?;
    match kind {
        Kind::Query => {
            sink.begin(&physical.schema())?;
            let mut rows = 0;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                if sink.streams() {
                    // Rows are about to show: the progress line steps aside.
                    progress.take();
                }
                sink.batch(&batch)?;
            }
            progress.take();
            sink.end(rows)?;
            Ok(Outcome::Rows(rows))
        }
        _ => {
            let mut written = 0;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                if let Some(count) = batch.column_by_name("count")
                    && let Some(count) = count.as_primitive_opt::<UInt64Type>()
                {
                    written += count.iter().flatten().sum::<u64>();
                }
            }
            Ok(Outcome::Written(written))
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Query,
    Write,
    Command,
}

/// After a failed CREATE EXTERNAL TABLE: the file at fault, if one is.
async fn diagnose(ctx: &SessionContext, location: &str, file_type: &str) -> Option<String> {
    let kind = FileKind::from_stored_as(file_type)?;
    let state = ctx.state();
    let url = datafusion::datasource::listing::ListingTableUrl::parse(location).ok()?;
    let extension = FileKind::from_path(location)
        .and(location.rsplit_once('.'))
        .map(|(_, e)| format!(".{e}"))
        .unwrap_or_else(|| kind.format(&state).get_ext());
    let format = kind.format(&state);
    location::diagnose(&state, &url, &format, &extension)
        .await
        .map(|m| format!("location '{location}': {m}"))
}
