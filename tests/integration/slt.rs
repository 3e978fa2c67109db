//! The SQL specification: every `tests/slt/*.slt` file runs in a fresh
//! skewless session (our functions registered, the census data as `census`),
//! through the same statement executor as `skewless run`, so full-pass
//! functions are fitted exactly as users see them.
//!
//! To write expected results for new queries, run
//! `SKEWLESS_SLT_COMPLETE=1 cargo test --test integration slt`, then review
//! the diff: the results must be the ones worked out independently.

use std::path::PathBuf;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use skewless::exec::{self, Outcome};
use skewless::output::ResultSink;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

use crate::common::{adult, root};

struct SkewlessDb {
    ctx: SessionContext,
}

/// Collects a query's rows as sqllogictest strings.
#[derive(Default)]
struct Collect {
    types: Vec<DefaultColumnType>,
    rows: Vec<Vec<String>>,
}

impl ResultSink for Collect {
    fn begin(&mut self, schema: &SchemaRef) -> skewless::Result<()> {
        self.types = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                t if t.is_integer() => DefaultColumnType::Integer,
                t if t.is_floating() => DefaultColumnType::FloatingPoint,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                    DefaultColumnType::Text
                }
                _ => DefaultColumnType::Any,
            })
            .collect();
        Ok(())
    }

    fn batch(&mut self, batch: &RecordBatch) -> skewless::Result<()> {
        let options = FormatOptions::default().with_null("NULL");
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| skewless::Error::DataFusion(e.into()))?;
        for row in 0..batch.num_rows() {
            self.rows.push(
                formatters
                    .iter()
                    .map(|f| match f.value(row).to_string() {
                        s if s.is_empty() => "(empty)".to_string(),
                        s => s,
                    })
                    .collect(),
            );
        }
        Ok(())
    }

    fn end(&mut self, _rows: usize) -> skewless::Result<()> {
        Ok(())
    }
}

#[async_trait]
impl AsyncDB for SkewlessDb {
    type Error = skewless::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Self::Error> {
        let mut sink = Collect::default();
        Ok(
            match exec::execute(&self.ctx, sql, &mut sink, Default::default()).await? {
                Outcome::Rows(_) => DBOutput::Rows {
                    types: sink.types,
                    rows: sink.rows,
                },
                Outcome::Written(n) => DBOutput::StatementComplete(n),
                Outcome::Done => DBOutput::StatementComplete(0),
            },
        )
    }

    async fn shutdown(&mut self) {}
}

async fn session() -> skewless::Result<SkewlessDb> {
    let ctx = skewless::session::new_context()?;
    skewless::location::register_table(&ctx, "census", &adult()).await?;
    Ok(SkewlessDb { ctx })
}

fn slt_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/slt"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn sql_specification() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let complete = std::env::var_os("SKEWLESS_SLT_COMPLETE").is_some();
    let mut failures = Vec::new();
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files in tests/slt");
    for file in &files {
        let mut runner = Runner::new(|| async { session().await });
        let result = runtime.block_on(async {
            if complete {
                runner
                    .update_test_file(
                        file,
                        " ",
                        sqllogictest::default_validator,
                        sqllogictest::default_normalizer,
                        sqllogictest::default_column_validator,
                    )
                    .await
                    .map_err(|e| e.to_string())
            } else {
                runner.run_file_async(file).await.map_err(|e| e.to_string())
            }
        });
        if let Err(e) = result {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} .slt files failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
