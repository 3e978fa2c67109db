//! The serving evaluator on the census wide & deep transform.
//!
//! `cargo bench --bench serving --profile dev` (see BENCHMARKS.md). Fits
//! `sql/census_wide_deep.sql` on the bundled census data with the real
//! binary, then measures one row at a time over the rows of
//! adult_test.parquet:
//!
//! - `typed`: a typed row in, a vector of values out (the ≤ 1 µs target);
//! - `json`: a JSON line in, a JSON line out;
//! - `datafusion_one_row_batch`: the same fitted plan's projections as
//!   DataFusion physical expressions evaluated on a one-row RecordBatch
//!   (training-only outputs included: DataFusion computes the whole SELECT).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::empty::EmptyTable;
use datafusion::logical_expr::LogicalPlan;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::physical_expr::PhysicalExpr;
use skewless::artifact::Artifact;
use skewless::serving::{Evaluator, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fit(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("census.json");
    // SKEWLESS_BENCH_TRANSFORM measures another transform over the census.
    let transform = std::env::var("SKEWLESS_BENCH_TRANSFORM")
        .unwrap_or_else(|_| "sql/census_wide_deep.sql".to_string());
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_skewless"))
        .current_dir(root())
        .args([
            "fit",
            transform.as_str(),
            "--table",
            "census=examples/data/adult/adult.parquet",
            "--label",
            "label",
            "--progress",
            "never",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("skewless runs");
    assert!(status.success());
    out
}

fn test_rows() -> RecordBatch {
    let file = File::open(root().join("examples/data/adult/adult_test.parquet")).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = Arc::clone(builder.schema());
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    concat_batches(&schema, &batches).unwrap()
}

/// One projection level of the fitted plan as DataFusion physical
/// expressions, with the Arrow schema of its output.
struct Level {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

/// The fitted plan's projections, innermost first (DataFusion's optimizer
/// may split the SELECT list into levels of common subexpressions), and the
/// scanned columns' indices in the raw batch.
fn physical_levels(artifact: &Artifact, raw: &RecordBatch) -> (Vec<Level>, Vec<usize>) {
    let ctx = skewless::session::new_context().unwrap();
    let provider: Arc<dyn TableProvider> = Arc::new(EmptyTable::new(raw.schema()));
    ctx.register_table("census", provider).unwrap();
    let mut plan = futures::executor::block_on(async {
        ctx.sql(&artifact.fitted_sql)
            .await
            .unwrap()
            .into_optimized_plan()
            .unwrap()
    });
    let mut levels = Vec::new();
    let columns = loop {
        match plan {
            LogicalPlan::Projection(p) => {
                let exprs = p
                    .expr
                    .iter()
                    .map(|e| {
                        ctx.create_physical_expr(e.clone(), p.input.schema())
                            .unwrap()
                    })
                    .collect();
                levels.push(Level {
                    exprs,
                    schema: Arc::clone(p.schema.inner()),
                });
                plan = Arc::unwrap_or_clone(p.input);
            }
            LogicalPlan::TableScan(scan) => {
                break scan
                    .projected_schema
                    .fields()
                    .iter()
                    .map(|f| raw.schema().index_of(f.name()).unwrap())
                    .collect();
            }
            other => panic!("unexpected plan node {other}"),
        }
    };
    levels.reverse();
    (levels, columns)
}

fn serving(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let artifact_path = fit(dir.path());
    let artifact = Artifact::load(&artifact_path, None).unwrap();
    let evaluator = Evaluator::new(&artifact).unwrap();
    let raw = test_rows();
    let n = 1000.min(raw.num_rows());

    // Typed rows, built once (a server would decode its request into one).
    let first = raw.slice(0, n);
    let json_lines: Vec<String> = {
        let mut buf = Vec::new();
        let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
        w.write(&first).unwrap();
        w.finish().unwrap();
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = json_lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let typed: Vec<Vec<Value>> = objects
        .iter()
        .map(|o| evaluator.row_from_json(o).unwrap())
        .collect();

    let mut group = c.benchmark_group("serving_census_wide_deep");
    let mut i = 0;
    let mut out = Vec::with_capacity(evaluator.outputs().len());
    group.bench_function("typed_row", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            evaluator.eval(&typed[i], &mut out).unwrap();
            std::hint::black_box(out.len())
        })
    });
    // The same rows, each decoded just before it is evaluated (as a server
    // does: the request it just parsed is in cache).
    let mut i = 0;
    group.bench_function("typed_row_hot", |b| {
        b.iter(|| {
            i = (i + 1) % 16;
            evaluator.eval(&typed[i], &mut out).unwrap();
            std::hint::black_box(out.len())
        })
    });
    let mut i = 0;
    group.bench_function("json_line", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            std::hint::black_box(evaluator.eval_json(&json_lines[i]).unwrap())
        })
    });
    let (levels, columns) = physical_levels(&artifact, &raw);
    let scan = raw.project(&columns).unwrap();
    let mut i = 0;
    group.bench_function("datafusion_one_row_batch", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            let mut row = scan.slice(i, 1);
            for level in &levels {
                let columns = level
                    .exprs
                    .iter()
                    .map(|e| e.evaluate(&row).unwrap().into_array(1).unwrap())
                    .collect();
                row = RecordBatch::try_new(Arc::clone(&level.schema), columns).unwrap();
            }
            std::hint::black_box(row)
        })
    });
    group.finish();
}

criterion_group!(benches, serving);
criterion_main!(benches);
