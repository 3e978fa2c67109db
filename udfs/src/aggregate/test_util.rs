//! Test helpers for the aggregates: partial-state round trips and SQL through
//! a session with every skewless function registered.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Accumulator, Documentation};
use datafusion::prelude::{SessionConfig, SessionContext};

/// Merges the partial states of `parts` (one state row each, in one
/// `merge_batch` call) into `fresh`, and returns it.
pub(crate) fn merged_through_state<'a, A: Accumulator + 'a>(
    mut fresh: A,
    parts: impl IntoIterator<Item = &'a mut A>,
) -> A {
    let states: Vec<Vec<ScalarValue>> = parts.into_iter().map(|p| p.state().unwrap()).collect();
    let columns: Vec<ArrayRef> = (0..states[0].len())
        .map(|c| ScalarValue::iter_to_array(states.iter().map(|s| s[c].clone())).unwrap())
        .collect();
    fresh.merge_batch(&columns).unwrap();
    fresh
}

/// A session with skewless's functions and the table `parts`, split over two
/// partitions so that GROUP BY merges partial states of each group:
///
/// | g | x    | s    | i    |
/// |---|------|------|------|
/// | a | 1.0  | b    | 5    |
/// | a | NULL | a    | 3    |
/// | b | -2.5 | c    | 5    |
/// | a | NaN  | a    | NULL |
/// | — partition 2 — |
/// | a | 5.0  | b    | 3    |
/// | b | 10.0 | NULL | 7    |
/// | b | +inf | d    | 7    |
/// | a | 3.0  | a    | 5    |
pub(crate) fn session() -> Result<SessionContext> {
    let mut ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    crate::register_all(&mut ctx)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("g", DataType::Utf8, false),
        Field::new("x", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("i", DataType::Int64, true),
    ]));
    let batch = |g: Vec<&str>, x: Vec<Option<f64>>, s: Vec<Option<&str>>, i: Vec<Option<i64>>| {
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(g)),
                Arc::new(Float64Array::from(x)),
                Arc::new(StringArray::from(s)),
                Arc::new(Int64Array::from(i)),
            ],
        )
    };
    let first = batch(
        vec!["a", "a", "b", "a"],
        vec![Some(1.0), None, Some(-2.5), Some(f64::NAN)],
        vec![Some("b"), Some("a"), Some("c"), Some("a")],
        vec![Some(5), Some(3), Some(5), None],
    )?;
    let second = batch(
        vec!["a", "b", "b", "a"],
        vec![Some(5.0), Some(10.0), Some(f64::INFINITY), Some(3.0)],
        vec![Some("b"), None, Some("d"), Some("a")],
        vec![Some(3), Some(7), Some(7), Some(5)],
    )?;
    let table = MemTable::try_new(schema, vec![vec![first], vec![second]])?;
    ctx.register_table("parts", Arc::new(table))?;
    Ok(ctx)
}

/// Runs a query and returns its rows, columns joined by `|`, values as the
/// table printer shows them.
pub(crate) async fn run_sql(sql: &str) -> Vec<String> {
    try_sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"))
}

/// Runs a query that must fail and returns the error message.
pub(crate) async fn run_sql_err(sql: &str) -> String {
    match try_sql(sql).await {
        Ok(rows) => panic!("{sql}\nshould fail, returned {rows:?}"),
        Err(e) => e.to_string(),
    }
}

async fn try_sql(sql: &str) -> Result<Vec<String>> {
    let batches = session()?.sql(sql).await?.collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, row))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.push(values.join("|"));
        }
    }
    Ok(rows)
}

/// Runs the SQL example of a function's documentation and checks that its
/// output is the table the documentation shows (else returns both).
pub(crate) async fn check_doc_example(doc: &Documentation) -> std::result::Result<(), String> {
    let example = doc.sql_example.as_deref().expect("an SQL example");
    let mut sql = String::new();
    let mut table = Vec::new();
    for line in example.lines() {
        if let Some(first) = line.strip_prefix("> ") {
            sql.push_str(first);
        } else if line.starts_with('+') || line.starts_with('|') {
            table.push(line);
        } else if !line.starts_with("```") {
            sql.push('\n');
            sql.push_str(line);
        }
    }
    let sql = sql.trim().trim_end_matches(';');
    let batches = session()
        .unwrap()
        .sql(sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let shown = pretty_format_batches(&batches).unwrap().to_string();
    let documented = table.join("\n");
    if shown == documented {
        Ok(())
    } else {
        Err(format!(
            "{sql}\ndocumented:\n{documented}\nactual:\n{shown}"
        ))
    }
}
