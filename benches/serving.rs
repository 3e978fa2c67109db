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
    fit_census(
        Path::new(&transform),
        "census=examples/data/adult/adult.parquet",
        &out,
    );
    out
}

/// Fits a transform over a census table (NAME=LOCATION), label `label`.
fn fit_census(transform: &Path, table: &str, out: &Path) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_skewless"))
        .current_dir(root())
        .arg("fit")
        .arg(transform)
        .args([
            "--table",
            table,
            "--label",
            "label",
            "--progress",
            "never",
            "--out",
        ])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("skewless runs");
    assert!(status.success());
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
    // The same, each row also counted over the training profile (live
    // skew, `eval --validate` and the server's validation endpoint).
    let plan = Arc::clone(evaluator.tally_plan().expect("the artifact has a profile"));
    let mut tally = plan.tally();
    let mut i = 0;
    group.bench_function("typed_row_tallied", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            evaluator.eval(&typed[i], &mut out).unwrap();
            plan.count(&typed[i], &out, &mut tally);
            std::hint::black_box(out.len())
        })
    });
    // The count alone (of rows evaluated beforehand).
    let evaluated: Vec<Vec<Value<'static>>> = typed
        .iter()
        .map(|row| {
            let mut out = Vec::new();
            evaluator.eval(row, &mut out).unwrap();
            out
        })
        .collect();
    let mut i = 0;
    group.bench_function("tally_only", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            plan.count(&typed[i], &evaluated[i], &mut tally);
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

/// The census transform plus four window features over a synthetic event
/// stream: each census row an event of one of 200 users, 30 s apart (so a
/// user has an event every 100 minutes, some 14 in a day).
const WINDOWS: &str = "
  window_mean(CAST(capital_gain AS DOUBLE), ts, INTERVAL '1 day') OVER u AS gain_mean_1d,
  window_count(age, ts, INTERVAL '6 hours') OVER u AS events_6h,
  window_max(hours_per_week, ts, INTERVAL '1 day', INTERVAL '1 hour') OVER u AS hours_max_1d,
  window_distinct_count(occupation, ts, INTERVAL '1 day') OVER u AS occupations_1d,
";

fn fit_windows(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let events = dir.join("census_events.parquet");
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skewless"))
            .current_dir(root())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("skewless runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    };
    run(
        &[
            "run",
            "-",
            "--table",
            "census=examples/data/adult/adult.parquet",
        ],
        &format!(
            "COPY (SELECT *, CAST(n % 200 AS BIGINT) AS user, \
             to_timestamp_seconds(CAST(n AS BIGINT) * 30) AS ts \
             FROM (SELECT *, row_number() OVER () AS n FROM census) ORDER BY n) TO '{}';",
            events.display()
        ),
    );
    let census = std::fs::read_to_string(root().join("sql/census_wide_deep.sql")).unwrap();
    let select: String = census
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let transform = select.replacen("SELECT", &format!("SELECT {WINDOWS}"), 1)
        + "\nWINDOW u AS (PARTITION BY user)";
    let sql = dir.join("census_windows.sql");
    std::fs::write(&sql, transform).unwrap();
    let out = dir.join("census_windows.json");
    fit_census(&sql, &format!("census={}", events.display()), &out);
    (out, events)
}

fn windows(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (artifact_path, events_path) = fit_windows(dir.path());
    let evaluator = Evaluator::load(&artifact_path).unwrap();
    let file = File::open(&events_path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = Arc::clone(builder.schema());
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    let events = concat_batches(&schema, &batches).unwrap();
    // The state: every event, in time order (the file is).
    evaluator.push_batch(&events).unwrap();
    let rows = events.num_rows();
    // Typed rows of every event, through JSON as a server decodes them.
    let typed: Vec<Vec<Value<'static>>> = {
        let mut buf = Vec::new();
        let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
        w.write(&events).unwrap();
        w.finish().unwrap();
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| {
                let o: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(l).unwrap();
                evaluator
                    .row_from_json(&o)
                    .unwrap()
                    .into_iter()
                    .map(Value::into_owned)
                    .collect()
            })
            .collect()
    };
    let ts = evaluator.input_index("ts").unwrap();
    let mut group = c.benchmark_group("serving_windows");
    // A request of each of the last 1,000 events' users, just after the
    // stream's end: four windows over their last day plus the census
    // features.
    let n = 1000;
    let mut requests: Vec<Vec<Value<'static>>> = typed[rows - n..].to_vec();
    let end = time_of(&typed[rows - 1][ts]) + 1;
    for r in &mut requests {
        r[ts] = Value::Int(end);
    }
    let mut out = Vec::with_capacity(evaluator.outputs().len());
    let mut i = 0;
    group.bench_function("request_4_windows_and_census", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            evaluator.eval(&requests[i], &mut out).unwrap();
            std::hint::black_box(out.len())
        })
    });
    // Pushes: the events again, a stream later, in time order.
    let span = end - time_of(&typed[0][ts]) + 1;
    let mut i = 0;
    let mut lap = 1;
    let times: Vec<i64> = typed.iter().map(|r| time_of(&r[ts])).collect();
    let mut rows_now = typed.clone();
    group.bench_function("push", |b| {
        b.iter(|| {
            rows_now[i][ts] = Value::Int(times[i] + lap * span);
            evaluator.push(&rows_now[i]).unwrap();
            i += 1;
            if i == rows {
                i = 0;
                lap += 1;
            }
        })
    });
    // Two threads at once, each pushing an event and answering a request
    // in turn (its own half of the users): time per push + request pair,
    // both threads together.
    // Users are n % 200: thread 0 takes the events of even users, thread 1
    // of odd ones (each in time order), so they share no entity.
    let mut halves: [Vec<(i64, Vec<Value<'static>>)>; 2] = [Vec::new(), Vec::new()];
    for (i, row) in typed.iter().enumerate() {
        halves[i % 2].push((times[i], row.clone()));
    }
    let mut lap = 1_000;
    group.bench_function("two_threads_push_and_request_pair", |b| {
        b.iter_custom(|iters| {
            lap += 1;
            let start = std::time::Instant::now();
            std::thread::scope(|scope| {
                for half in halves.iter_mut() {
                    let evaluator = &evaluator;
                    scope.spawn(move || {
                        let mut out = Vec::with_capacity(evaluator.outputs().len());
                        let n = half.len();
                        for k in 0..iters.div_ceil(2) as usize {
                            let (time, row) = &mut half[k % n];
                            let lapped = *time + (lap + (k / n) as i64) * span;
                            row[ts] = Value::Int(lapped);
                            evaluator.push(row).unwrap();
                            row[ts] = Value::Int(lapped + 1);
                            evaluator.eval(row, &mut out).unwrap();
                        }
                    });
                }
            });
            lap += (iters / rows as u64) as i64 + 1;
            start.elapsed()
        })
    });
    group.finish();
    // State size: entities and events held after the stream, per stream.
    for r in evaluator.state_report() {
        eprintln!(
            "state: {} entities, {} events held, {} bytes per event, at most {} events per entity",
            r.entities, r.events_held, r.bytes_per_event, r.counts.peak
        );
    }
}

fn time_of(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(t) => *t,
        other => panic!("not a time: {other}"),
    }
}

criterion_group!(benches, serving, windows);
criterion_main!(benches);
