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

/// How statements run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Show a progress line on stderr while a statement runs.
    pub progress: bool,
    /// Let `COPY … TO` replace an existing output.
    pub overwrite: bool,
    /// Stops the statement's work when cancelled (the REPL's Ctrl-C).
    pub cancel: Option<crate::cancel::CancelToken>,
}

/// Plans and runs `sql` (one statement) on `ctx`.
///
/// Query results stream into `sink`. `COPY … TO` writes through
/// [`crate::write`]: atomically, refusing an existing output unless
/// `options.overwrite`, with the rows in their input order.
pub async fn execute(
    ctx: &SessionContext,
    sql: &str,
    sink: &mut (dyn ResultSink + Send),
    options: Options,
) -> Result<Outcome> {
    let plan = plan_statement(ctx, sql).await?;
    let planned = plan.clone();
    match execute_plan(ctx, plan, sink, options).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => Err(location::name_culprit(ctx, &planned, e).await),
    }
}

async fn execute_plan(
    ctx: &SessionContext,
    mut plan: LogicalPlan,
    sink: &mut (dyn ResultSink + Send),
    options: Options,
) -> Result<Outcome> {
    let progress = options.progress;
    if crate::fit::has_full_pass(&plan) {
        plan = crate::fit::fit_plan(ctx, plan, progress).await?;
    }
    if let LogicalPlan::Copy(copy) = plan {
        let policy = crate::write::Policy {
            overwrite: options.overwrite,
            progress,
            cancel: options.cancel.clone(),
        };
        let rows = crate::write::write_copy(ctx, copy, policy).await?;
        return Ok(Outcome::Written(rows));
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
    let mut physical = df.create_physical_plan().await?;
    if let Some(token) = &options.cancel {
        physical = crate::cancel::cancellable(physical, token)?;
    }
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

/// Plans one statement. Two things DataFusion leaves to the user are
/// filled in from the location, as for `--table`: `CREATE EXTERNAL TABLE`
/// without `STORED AS`, and `COPY … TO` without `STORED AS` (the format
/// from the extension — `.ndjson` and `.jsonl` included — Parquet for a
/// directory, an error for an extension skewless does not write).
pub async fn plan_statement(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan> {
    plan_statement_guarded(ctx, sql, &|_| Ok(())).await
}

/// What [`plan_statement_guarded`] shows its guard before anything reads a
/// location: the location of a `CREATE EXTERNAL TABLE` without `STORED AS`
/// (before its format is looked up), then the parsed statement.
pub enum Guarded<'a> {
    Location(&'a str),
    Statement(&'a datafusion::sql::parser::Statement),
}

/// [`plan_statement`], with `guard` asked first: an error from it stops the
/// statement before any location is listed or read.
pub async fn plan_statement_guarded(
    ctx: &SessionContext,
    sql: &str,
    guard: &(dyn Fn(Guarded<'_>) -> Result<()> + Sync),
) -> Result<LogicalPlan> {
    use datafusion::sql::parser::Statement;
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let sql = match missing_stored_as(sql, &dialect) {
        Some((at, location)) => {
            guard(Guarded::Location(&location))?;
            let kind = location::kind_of(&state, &location)
                .await
                .map_err(|message| Error::Data(format!("location '{location}': {message}")))?;
            format!(
                "{} STORED AS {} {}",
                &sql[..at],
                kind.stored_as(),
                &sql[at..]
            )
        }
        None => sql.to_string(),
    };
    let mut statement = state.sql_to_statement(&sql, &dialect)?;
    guard(Guarded::Statement(&statement))?;
    if let Statement::CreateExternalTable(create) = &statement {
        for location in &create.locations {
            location::check_one_format(&state, location)
                .await
                .map_err(|message| Error::Data(format!("location '{location}': {message}")))?;
        }
    }
    if let Statement::CopyTo(copy) = &mut statement
        && copy.stored_as.is_none()
    {
        let (kind, _) = crate::write::output_kind(&copy.target)?;
        let ext = copy
            .target
            .trim_end_matches('/')
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| crate::json::format::EXTENSIONS.contains(&e.as_str()));
        copy.stored_as = Some(match (kind, ext) {
            (FileKind::Json, Some(ext)) => ext,
            (kind, _) => kind.stored_as().to_string(),
        });
    }
    Ok(state.statement_to_plan(statement).await?)
}

/// For `CREATE EXTERNAL TABLE … LOCATION '…'` without `STORED AS`: where
/// to insert it (the byte offset of `LOCATION`) and the location.
/// The SQL is read in the session's dialect, as DataFusion then parses it.
fn missing_stored_as(
    sql: &str,
    dialect: &datafusion::common::config::Dialect,
) -> Option<(usize, String)> {
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = datafusion::sql::sqlparser::dialect::dialect_from_str(dialect)?;
    let tokens = Tokenizer::new(dialect.as_ref(), sql)
        .tokenize_with_location()
        .ok()?;
    let words: Vec<(usize, &datafusion::sql::sqlparser::tokenizer::TokenWithSpan)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let is = |i: usize, k: Keyword| matches!(words.get(i), Some((_, t)) if matches!(&t.token, Token::Word(w) if w.keyword == k));
    let external = (0..words.len().min(6)).any(|i| is(i, Keyword::EXTERNAL));
    if !is(0, Keyword::CREATE) || !external || (0..words.len()).any(|i| is(i, Keyword::STORED)) {
        return None;
    }
    let at = (0..words.len()).find(|&i| is(i, Keyword::LOCATION))?;
    let location = match &words.get(at + 1)?.1.token {
        Token::SingleQuotedString(s) => s.clone(),
        _ => return None,
    };
    let offset = byte_offset(sql, words[at].1.span.start)?;
    Some((offset, location))
}

/// A tokenizer's location (1-based line and column, in characters) as a
/// byte offset into `sql`.
fn byte_offset(sql: &str, at: datafusion::sql::sqlparser::tokenizer::Location) -> Option<usize> {
    let line_start: usize = sql
        .split_inclusive('\n')
        .take((at.line as usize).checked_sub(1)?)
        .map(str::len)
        .sum();
    sql[line_start..]
        .char_indices()
        .nth((at.column as usize).checked_sub(1)?)
        .map(|(i, _)| line_start + i)
}

/// `sql` with its `?` placeholders numbered `$1`, `$2`, … in order (JDBC
/// and ADBC write `?`; DataFusion binds by number); None when it has none.
pub fn number_placeholders(
    sql: &str,
    dialect: &datafusion::common::config::Dialect,
) -> Option<String> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = datafusion::sql::sqlparser::dialect::dialect_from_str(dialect)?;
    let tokens = Tokenizer::new(dialect.as_ref(), sql)
        .tokenize_with_location()
        .ok()?;
    let mut out = String::with_capacity(sql.len() + 8);
    let mut copied = 0;
    let mut n = 0;
    for token in &tokens {
        if matches!(&token.token, Token::Placeholder(p) if p == "?") {
            let at = byte_offset(sql, token.span.start)?;
            n += 1;
            out.push_str(&sql[copied..at]);
            out.push_str(&format!("${n}"));
            copied = at + 1;
        }
    }
    if n == 0 {
        return None;
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

#[cfg(test)]
mod placeholder_tests {
    use super::*;

    #[test]
    fn question_marks_are_numbered_outside_strings_and_comments() {
        let generic = datafusion::common::config::Dialect::Generic;
        assert_eq!(
            number_placeholders(
                "SELECT * FROM t WHERE a > ? AND b = '?' AND c = ? -- ?",
                &generic
            )
            .as_deref(),
            Some("SELECT * FROM t WHERE a > $1 AND b = '?' AND c = $2 -- ?")
        );
        assert_eq!(
            number_placeholders("SELECT 'é', ?\n, ?", &generic).as_deref(),
            Some("SELECT 'é', $1\n, $2")
        );
        assert_eq!(number_placeholders("SELECT $1", &generic), None);
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
