//! Query results on stdout: aligned tables, CSV, JSON or NDJSON.
//!
//! Machine formats stream batch by batch; the table format keeps the first
//! rows (40 by default, `--max-rows`) to align their columns and counts the
//! rest, so a result of any size prints in bounded memory.

use std::io::Write;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::pretty::pretty_format_batches_with_schema;
use clap::ValueEnum;

use crate::error::{Error, Result};

/// How query results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned table with a row count.
    #[default]
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects per result.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Receives the rows of one query result.
pub trait ResultSink {
    /// True when rows are written as they arrive (so a progress line on the
    /// same terminal must stop first); false when they are held until `end`.
    fn streams(&self) -> bool {
        true
    }
    fn begin(&mut self, schema: &SchemaRef) -> Result<()>;
    fn batch(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Called once after the last batch, with the total number of rows.
    fn end(&mut self, rows: usize) -> Result<()>;
}

/// A sink that drops every row (for statements whose result nobody reads).
pub struct Discard;

impl ResultSink for Discard {
    fn begin(&mut self, _: &SchemaRef) -> Result<()> {
        Ok(())
    }
    fn batch(&mut self, _: &RecordBatch) -> Result<()> {
        Ok(())
    }
    fn end(&mut self, _: usize) -> Result<()> {
        Ok(())
    }
}

/// Rows the table format shows unless told otherwise (as DuckDB and
/// datafusion-cli do).
pub const DEFAULT_MAX_ROWS: usize = 40;

enum Writer<W: Write> {
    Table {
        schema: Option<SchemaRef>,
        /// The first rows, up to the printer's limit.
        batches: Vec<RecordBatch>,
        kept: usize,
        out: W,
    },
    Csv(Box<arrow::csv::Writer<W>>),
    Json(Box<arrow::json::ArrayWriter<W>>),
    Ndjson(Box<arrow::json::LineDelimitedWriter<W>>),
    /// Between results: the writer is rebuilt at the next `begin`.
    Idle(W),
    Poisoned,
}

/// Prints results to a writer in one [`Format`].
pub struct Printer<W: Write> {
    format: Format,
    writer: Writer<W>,
    /// When set, a table's row count is followed by the time since then.
    pub timed_since: Option<std::time::Instant>,
    /// Rows the table format shows at most (0: all of them).
    pub max_rows: usize,
}

impl<W: Write> Printer<W> {
    pub fn new(format: Format, out: W) -> Self {
        Self {
            format,
            writer: Writer::Idle(out),
            timed_since: None,
            max_rows: DEFAULT_MAX_ROWS,
        }
    }

    /// Gives back the underlying writer.
    pub fn into_inner(self) -> Option<W> {
        match self.writer {
            Writer::Idle(w) => Some(w),
            _ => None,
        }
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::Io {
        path: "<stdout>".into(),
        source: e,
    }
}

fn arrow_err(e: arrow::error::ArrowError) -> Error {
    match e {
        arrow::error::ArrowError::IoError(_, source) => io_err(source),
        other => Error::DataFusion(other.into()),
    }
}

impl<W: Write> ResultSink for Printer<W> {
    fn streams(&self) -> bool {
        self.format != Format::Table
    }

    fn begin(&mut self, schema: &SchemaRef) -> Result<()> {
        let out = match std::mem::replace(&mut self.writer, Writer::Poisoned) {
            Writer::Idle(out) => out,
            _ => unreachable!("begin called twice without end"),
        };
        self.writer = match self.format {
            Format::Table => Writer::Table {
                schema: Some(Arc::clone(schema)),
                batches: Vec::new(),
                kept: 0,
                out,
            },
            Format::Csv => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out);
                // Writing an empty batch prints the header even for no rows.
                w.write(&RecordBatch::new_empty(Arc::clone(schema)))
                    .map_err(arrow_err)?;
                Writer::Csv(Box::new(w))
            }
            Format::Json => Writer::Json(Box::new(crate::json::writer_builder().build(out))),
            Format::Ndjson => Writer::Ndjson(Box::new(crate::json::writer_builder().build(out))),
        };
        Ok(())
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        match &mut self.writer {
            Writer::Table { batches, kept, .. } => {
                let room = if self.max_rows == 0 {
                    batch.num_rows()
                } else {
                    self.max_rows.saturating_sub(*kept)
                };
                let take = room.min(batch.num_rows());
                if take > 0 {
                    batches.push(batch.slice(0, take));
                    *kept += take;
                }
            }
            Writer::Csv(w) => w.write(batch).map_err(arrow_err)?,
            Writer::Json(w) => w.write(batch).map_err(arrow_err)?,
            Writer::Ndjson(w) => w.write(batch).map_err(arrow_err)?,
            Writer::Idle(_) | Writer::Poisoned => unreachable!("batch outside begin/end"),
        }
        Ok(())
    }

    fn end(&mut self, rows: usize) -> Result<()> {
        let out = match std::mem::replace(&mut self.writer, Writer::Poisoned) {
            Writer::Table {
                schema,
                batches,
                kept,
                mut out,
            } => {
                let schema = schema.expect("table writer has a schema");
                if !schema.fields().is_empty() {
                    let table =
                        pretty_format_batches_with_schema(schema, &batches).map_err(arrow_err)?;
                    writeln!(out, "{table}").map_err(io_err)?;
                }
                let noun = if rows == 1 { "row" } else { "rows" };
                let shown = if kept < rows {
                    format!(
                        " ({} shown; --max-rows N shows more, 0 all, or use --format csv)",
                        kept
                    )
                } else {
                    String::new()
                };
                match self.timed_since {
                    Some(t) => writeln!(
                        out,
                        "{rows} {noun}{shown} in {:.3} s",
                        t.elapsed().as_secs_f64()
                    ),
                    None => writeln!(out, "{rows} {noun}{shown}"),
                }
                .map_err(io_err)?;
                out
            }
            Writer::Csv(w) => w.into_inner(),
            Writer::Json(mut w) => {
                w.finish().map_err(arrow_err)?;
                let mut out = w.into_inner();
                writeln!(out).map_err(io_err)?;
                out
            }
            Writer::Ndjson(mut w) => {
                w.finish().map_err(arrow_err)?;
                w.into_inner()
            }
            Writer::Idle(_) | Writer::Poisoned => unreachable!("end without begin"),
        };
        let mut out = out;
        out.flush().map_err(io_err)?;
        self.writer = Writer::Idle(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a,b"), None])),
                Arc::new(Float64Array::from(vec![Some(0.1), Some(-2.5e-300)])),
            ],
        )
        .unwrap()
    }

    fn print(format: Format, batches: &[RecordBatch]) -> String {
        let mut p = Printer::new(format, Vec::new());
        p.begin(&batches[0].schema()).unwrap();
        let mut rows = 0;
        for b in batches {
            p.batch(b).unwrap();
            rows += b.num_rows();
        }
        p.end(rows).unwrap();
        String::from_utf8(p.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn every_format() {
        let b = sample();
        assert_eq!(
            print(Format::Csv, std::slice::from_ref(&b)),
            "id,name,x\n1,\"a,b\",0.1\n2,,-2.5e-300\n"
        );
        assert_eq!(
            print(Format::Ndjson, std::slice::from_ref(&b)),
            "{\"id\":1,\"name\":\"a,b\",\"x\":0.1}\n{\"id\":2,\"name\":null,\"x\":-2.5e-300}\n"
        );
        assert_eq!(
            print(Format::Json, std::slice::from_ref(&b)),
            "[{\"id\":1,\"name\":\"a,b\",\"x\":0.1},{\"id\":2,\"name\":null,\"x\":-2.5e-300}]\n"
        );
        let table = print(Format::Table, &[b]);
        assert!(
            table.starts_with("+----+------+-----------+\n| id | name | x"),
            "{table}"
        );
        assert!(
            table.ends_with("+----+------+-----------+\n2 rows\n"),
            "{table}"
        );
    }

    #[test]
    fn tables_show_the_first_rows_and_count_the_rest() {
        let b = sample();
        let mut p = Printer::new(Format::Table, Vec::new());
        p.max_rows = 3;
        p.begin(&b.schema()).unwrap();
        for _ in 0..5 {
            p.batch(&b).unwrap();
        }
        p.end(10).unwrap();
        let text = String::from_utf8(p.into_inner().unwrap()).unwrap();
        assert_eq!(text.matches("a,b").count(), 2, "{text}");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("| ")).count(),
            4,
            "{text}"
        );
        assert!(
            text.ends_with(
                "10 rows (3 shown; --max-rows N shows more, 0 all, or use --format csv)\n"
            ),
            "{text}"
        );
        let mut p = Printer::new(Format::Table, Vec::new());
        p.max_rows = 0;
        p.begin(&b.schema()).unwrap();
        for _ in 0..30 {
            p.batch(&b).unwrap();
        }
        p.end(60).unwrap();
        let text = String::from_utf8(p.into_inner().unwrap()).unwrap();
        assert!(text.ends_with("\n60 rows\n"), "{text}");
    }

    #[test]
    fn empty_results_keep_their_shape() {
        let empty = RecordBatch::new_empty(sample().schema());
        assert_eq!(
            print(Format::Csv, std::slice::from_ref(&empty)),
            "id,name,x\n"
        );
        assert_eq!(print(Format::Json, std::slice::from_ref(&empty)), "[]\n");
        assert_eq!(print(Format::Ndjson, std::slice::from_ref(&empty)), "");
        assert!(print(Format::Table, &[empty]).ends_with("0 rows\n"));
    }
}
