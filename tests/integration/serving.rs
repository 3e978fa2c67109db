//! The serving evaluator: parity with batch apply (census data and generated
//! edge-case rows), the request contract, fit-time refusal of what cannot be
//! served, and `skewless eval`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use skewless::serving::{Evaluator, Value};

use crate::common::{adult, ok, root, skewless, stderr, user_error};

pub(crate) fn read_parquet(path: &Path) -> RecordBatch {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = Arc::clone(builder.schema());
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    concat_batches(&schema, &batches).unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// The rows of a batch as JSON lines (NULLs left out, as a client would).
pub(crate) fn write_ndjson(path: &Path, batch: &RecordBatch) {
    let mut w = datafusion::arrow::json::LineDelimitedWriter::new(File::create(path).unwrap());
    w.write(batch).unwrap();
    w.finish().unwrap();
}

fn fit_transform(dir: &Path, sql: &str, table: &str, labels: &[&str]) -> std::path::PathBuf {
    let transform = dir.join("transform.sql");
    std::fs::write(&transform, sql).unwrap();
    let artifact = dir.join("artifact.json");
    let mut cmd = skewless();
    cmd.arg("fit")
        .arg(&transform)
        .args(["--table", table, "--out"])
        .arg(&artifact);
    for l in labels {
        cmd.args(["--label", l]);
    }
    ok(&cmd.output().unwrap());
    artifact
}

/// `skewless apply` in one partition, so the features keep the input's order.
fn apply(dir: &Path, artifact: &Path, table: &str) -> RecordBatch {
    let out = dir.join("features.parquet");
    ok(&skewless()
        .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "1")
        .arg("apply")
        .arg(artifact)
        .args(["--table", table, "--out"])
        .arg(&out)
        .output()
        .unwrap());
    read_parquet(&out)
}

/// `skewless eval` over a file of JSON lines: one parsed object per line.
fn eval_cli(artifact: &Path, rows: &Path) -> Vec<serde_json::Value> {
    let out = skewless()
        .arg("eval")
        .arg(artifact)
        .arg("--input")
        .arg(rows)
        .output()
        .unwrap();
    ok(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A JSON feature as the value the evaluator's output type says it is.
fn json_to_scalar(v: &serde_json::Value, t: &DataType) -> ScalarValue {
    use serde_json::Value as J;
    match (v, t) {
        (J::Null, t) => ScalarValue::try_from(t).unwrap(),
        (J::String(s), DataType::Float64) => ScalarValue::Float64(Some(match s.as_str() {
            "NaN" => f64::NAN,
            "-NaN" => -f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => panic!("unexpected float text {other}"),
        })),
        (J::Number(n), DataType::Float64) => ScalarValue::Float64(n.as_f64()),
        // A Float32 prints in its shortest Float32 form: read it back as f32.
        (J::Number(n), DataType::Float32) => {
            ScalarValue::Float32(Some(n.to_string().parse::<f32>().unwrap()))
        }
        (J::String(_), DataType::Float32) => match json_to_scalar(v, &DataType::Float64) {
            ScalarValue::Float64(f) => ScalarValue::Float32(f.map(|f| f as f32)),
            _ => unreachable!(),
        },
        (J::Number(n), DataType::Int64) => ScalarValue::Int64(n.as_i64()),
        (J::Number(n), DataType::Int32) => ScalarValue::Int32(n.as_i64().map(|i| i as i32)),
        (J::Bool(b), DataType::Boolean) => ScalarValue::Boolean(Some(*b)),
        (J::String(s), t) => ScalarValue::Utf8(Some(s.clone())).cast_to(t).unwrap(),
        (J::Array(items), DataType::List(f)) => {
            let values: Vec<ScalarValue> = items
                .iter()
                .map(|i| json_to_scalar(i, f.data_type()))
                .collect();
            ScalarValue::List(ScalarValue::new_list_nullable(&values, f.data_type()))
        }
        (v, t) => panic!("unexpected JSON {v} for {t}"),
    }
}

/// Same value: floats bit for bit, NULLs in the same places.
fn same(a: &ScalarValue, b: &ScalarValue) -> bool {
    match (a, b) {
        (ScalarValue::Float64(Some(x)), ScalarValue::Float64(Some(y))) => {
            x.to_bits() == y.to_bits()
        }
        (ScalarValue::Float32(Some(x)), ScalarValue::Float32(Some(y))) => {
            x.to_bits() == y.to_bits()
        }
        (ScalarValue::List(x), ScalarValue::List(y)) => {
            x.len() == y.len() && format!("{x:?}") == format!("{y:?}")
        }
        (a, b) if a.is_null() || b.is_null() => a.is_null() && b.is_null(),
        (a, b) => a == b,
    }
}

/// Asserts that `served` (library or eval) equals the batch features on
/// every served column, row by row.
#[track_caller]
fn assert_parity(what: &str, batch: &RecordBatch, served: &RecordBatch) {
    assert_eq!(batch.num_rows(), served.num_rows(), "{what}: row count");
    for field in served.schema().fields() {
        let b = batch.column_by_name(field.name()).unwrap();
        let s = served.column_by_name(field.name()).unwrap();
        assert_eq!(
            b.data_type(),
            s.data_type(),
            "{what}: type of {}",
            field.name()
        );
        for row in 0..batch.num_rows() {
            let (x, y) = (
                ScalarValue::try_from_array(b, row).unwrap(),
                ScalarValue::try_from_array(s, row).unwrap(),
            );
            assert!(
                same(&x, &y),
                "{what}: column {} row {row}: batch {x:?}, served {y:?}",
                field.name()
            );
        }
    }
}

#[track_caller]
fn assert_eval_parity(batch: &RecordBatch, evaluator: &Evaluator, lines: &[serde_json::Value]) {
    assert_eq!(lines.len(), batch.num_rows(), "eval: one line per row");
    for (row, line) in lines.iter().enumerate() {
        let object = line.as_object().unwrap();
        assert!(!object.contains_key("error"), "row {row}: {line}");
        let names: Vec<&String> = object.keys().collect();
        assert_eq!(names.len(), evaluator.outputs().len(), "row {row}: {line}");
        for o in evaluator.outputs() {
            let expected =
                ScalarValue::try_from_array(batch.column_by_name(&o.name).unwrap(), row).unwrap();
            let got = json_to_scalar(&object[&o.name], &o.data_type);
            assert!(
                same(&expected, &got),
                "eval: column {} row {row}: batch {expected:?}, eval {got:?} ({line})",
                o.name
            );
        }
    }
}

#[test]
fn census_wide_deep_is_identical_in_batch_library_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let sql = std::fs::read_to_string(root().join("sql/census_wide_deep.sql")).unwrap();
    let artifact = fit_transform(dir.path(), &sql, &format!("census={}", adult()), &["label"]);
    let test_data = root().join("examples/data/adult/adult_test.parquet");
    let batch = apply(
        dir.path(),
        &artifact,
        &format!("census={}", test_data.display()),
    );
    // Every test row, as in batch: the transform has no WHERE.
    assert_eq!(batch.num_rows(), 16_281);

    let evaluator = Evaluator::load(&artifact).unwrap();
    let names: Vec<&str> = evaluator
        .outputs()
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(names.len(), 15);
    assert!(!names.contains(&"label"), "the label is training only");
    assert!(batch.column_by_name("label").is_some());
    // The label's input is not required at serving.
    let income = evaluator.input_index("income_bracket").unwrap();
    assert!(!evaluator.is_required(income));

    let raw = read_parquet(&test_data);
    let served = evaluator.eval_batch(&raw).unwrap();
    assert_parity("library", &batch, &served);

    // Typed rows: all 15 features are numbers, and evaluating them allocates
    // nothing (counted by the test binary's allocator, on this thread).
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = (0..200)
        .map(|row| {
            let mut buf = Vec::new();
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
            w.write(&raw.slice(row, 1)).unwrap();
            w.finish().unwrap();
            serde_json::from_slice(&buf).unwrap()
        })
        .collect();
    let rows: Vec<Vec<Value>> = objects
        .iter()
        .map(|o| evaluator.row_from_json(o).unwrap())
        .collect();
    let mut out = Vec::with_capacity(evaluator.outputs().len());
    evaluator.eval(&rows[0], &mut out).unwrap(); // warm-up (thread-local cross buffer)
    let before = crate::common::allocations();
    for row in &rows {
        evaluator.eval(row, &mut out).unwrap();
    }
    assert_eq!(
        crate::common::allocations() - before,
        0,
        "allocations in eval"
    );
    for (i, row) in rows.iter().enumerate() {
        evaluator.eval(row, &mut out).unwrap();
        for (o, v) in evaluator.outputs().iter().zip(&out) {
            let expected =
                ScalarValue::try_from_array(served.column_by_name(&o.name).unwrap(), i).unwrap();
            let got = match v {
                Value::Int(x) => ScalarValue::Int64(Some(*x)),
                Value::Float(x) => ScalarValue::Float64(Some(*x)),
                Value::Null => ScalarValue::try_from(&o.data_type).unwrap(),
                other => panic!("unexpected {other:?}"),
            };
            assert!(
                same(&expected, &got),
                "typed row {i} {}: {expected:?} vs {got:?}",
                o.name
            );
        }
    }

    let rows = dir.path().join("rows.ndjson");
    write_ndjson(&rows, &raw);
    let lines = eval_cli(&artifact, &rows);
    assert_eval_parity(&batch, &evaluator, &lines);

    // The first test row, worked out independently: 25, Private, 11th (7),
    // Machine-op-inspct, Own-child, Male, United-States. Vocabulary ids by
    // training frequency (DuckDB counts: Male 21,790 > Female; Husband >
    // Not-in-family > Own-child); crosses are FarmHash Fingerprint64 (PyPI
    // pyfarmhash 0.5.1) of the joined text modulo the bucket count; the
    // z-score is (7 − mean)·(1/σ) with mean and 1/σ from exact sums.
    let first = &lines[0];
    assert_eq!(first["gender_id"], 0);
    assert_eq!(first["relationship_id"], 2);
    assert_eq!(first["age_bucket"], 2);
    assert_eq!(first["education_x_occupation"], 1598); // "11th_Machine-op-inspct"
    assert_eq!(first["native_country_x_occupation"], 2374);
    assert_eq!(first["age_bucket_x_education_x_occupation"], 432_440); // "2_11th_…"
    assert_eq!(
        first["education_num_z"].as_f64().unwrap().to_bits(),
        (-1.1974588179219958f64).to_bits()
    );
}

/// The training data of the property test: x (Float64), n (Int64, not
/// nullable), s (Utf8).
fn train_batch() -> RecordBatch {
    let x = [1.5, -2.0, 0.0, 3.25, 10.0, -0.5, 2.0, 7.75];
    let n = [1, 2, 3, 2, 5, 1, 8, 3];
    let s = ["a", "b", "a", "Ünï", "c", "a b", "b", "d"];
    batch_of(
        x.iter().map(|v| Some(*v)).collect(),
        n.to_vec(),
        s.iter().map(|v| Some(v.to_string())).collect(),
    )
}

fn batch_of(x: Vec<Option<f64>>, n: Vec<i64>, s: Vec<Option<String>>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("n", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(x)),
        Arc::new(Int64Array::from(n)),
        Arc::new(StringArray::from(s)),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Generated request rows: NULL, NaN, ±inf, -0.0, huge and tiny
/// magnitudes, empty and non-ASCII strings, values never seen in fit.
fn generated_rows(count: usize) -> RecordBatch {
    let floats = [
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e308,
        -1e308,
        5e-324,
        -2.2250738585072014e-308,
        1.5,
        -2.0,
        0.1,
        123456.789,
        -0.5,
        2.5,
        1e15 + 0.3,
    ];
    let ints = [
        0,
        1,
        2,
        3,
        -1,
        7,
        -7,
        100,
        i64::MAX,
        i64::MIN,
        1 << 40,
        -(1 << 33),
        42,
    ];
    let strings = [
        "",
        "a",
        "b",
        "Ünï",
        "a b",
        "  padded  ",
        "É",
        "ÉÀ été",
        "日本語",
        "🙂 emoji",
        "never-seen",
        "A%B_c",
        "d",
        "x y z",
    ];
    // A small deterministic generator (64-bit LCG).
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let (mut x, mut n, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..count {
        x.push((next(10) != 0).then(|| floats[next(floats.len())]));
        n.push(ints[next(ints.len())]);
        s.push((next(10) != 0).then(|| strings[next(strings.len())].to_string()));
    }
    batch_of(x, n, s)
}

/// Every kind of expression serving supports, over edge-case inputs.
const PROPERTY_TRANSFORM: &str = "SELECT
  min_max_scale(x) AS x_mm,
  z_score(x) AS x_z,
  robust_scale(x) AS x_robust,
  max_abs_scale(n) AS n_max_abs,
  quantile_bucket(x, 4) AS x_quartile,
  bucketize(x, [-1.0, 0.0, 1.5]) AS x_bucket,
  vocab_index(s) AS s_id,
  vocab_index(n, 3) AS n_id,
  one_hot(s) AS s_one_hot,
  hash_bucket(s, 100) AS s_hash,
  hash_bucket(n, 100) AS n_hash,
  feature_cross(s, n, 1000) AS s_x_n,
  impute(x, 'mean') AS x_imputed,
  impute(s, 'most_frequent') AS s_imputed,
  x * 2.5 + n AS linear,
  n * 3 - 1 AS n_wrapping,
  n % 7 AS n_mod,
  x / n AS ratio,
  -x AS x_neg,
  CASE WHEN x > 0 THEN 'pos' WHEN x < 0 THEN 'neg' ELSE 'zero or null' END AS x_sign,
  CASE s WHEN 'a' THEN 1 WHEN 'b' THEN 2 END AS s_case,
  coalesce(s, 'none') AS s_filled,
  nullif(n, 0) AS n_nonzero,
  CAST(n AS DOUBLE) AS n_double,
  CAST(n AS INT) IS NULL AS n_int_null,
  TRY_CAST(x AS BIGINT) AS x_bigint,
  TRY_CAST(s AS BIGINT) AS s_bigint,
  CAST(x AS VARCHAR) AS x_text,
  CAST(n AS VARCHAR) AS n_text,
  CAST(x AS FLOAT) AS x_float32,
  x IS NULL AS x_is_null,
  s IS NOT NULL AS s_present,
  n IN (1, 2, 3) AS n_small,
  s NOT IN ('a', 'b') AS s_other,
  x BETWEEN -1 AND 1 AS x_unit,
  x = 0 AS x_zero,
  x <> x AS x_not_self,
  s LIKE 'a%' AS s_starts_a,
  s LIKE '%\\_%' AS s_has_underscore,
  s ILIKE '%é%' AS s_has_e_acute,
  NOT (x > 1 AND n < 5) OR s = 'b' AS logic,
  x IS DISTINCT FROM 0.0 AS x_distinct,
  lower(s) AS s_lower,
  upper(s) AS s_upper,
  trim(s) AS s_trim,
  concat(s, '-', n) AS s_concat,
  s || '!' AS s_pipe,
  substr(s, 2, 3) AS s_sub,
  length(s) AS s_len,
  replace(s, 'a', 'A') AS s_replace,
  split_part(s, ' ', 1) AS s_part,
  abs(x) AS x_abs,
  ln(abs(x)) AS x_ln,
  log10(abs(x) + 1) AS x_log10,
  sqrt(abs(x)) AS x_sqrt,
  exp(x) AS x_exp,
  power(x, 2) AS x_sq,
  round(x) AS x_round,
  round(x, 2) AS x_round2,
  floor(x) AS x_floor,
  ceil(x) AS x_ceil,
  abs(n) % 10 AS n_abs,
  n % -1 AS n_mod_minus_one,
  power(x, 3) AS x_cube,
  feature_cross(coalesce(s, '?'), bucketize(x, [0.0, 1.0]), n, 100) AS cross_fast,
  vocab_index(coalesce(s, 'zz')) AS s_filled_id,
  min_max_scale(ln(abs(x) + 1)) AS x_log_scaled,
  z_score(n * 2) AS n2_z,
  z_score(x / 3 - 1) AS x_affine_z
FROM t";

#[test]
fn generated_edge_rows_are_identical_in_batch_library_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.parquet");
    write_parquet(&train, &train_batch());
    let artifact = fit_transform(
        dir.path(),
        PROPERTY_TRANSFORM,
        &format!("t={}", train.display()),
        &[],
    );
    let rows = generated_rows(2000);
    // Rows where i64::MIN would overflow abs() fail in batch as a whole;
    // keep them out of the parity set (the contract test covers errors).
    let keep: BooleanArray = rows
        .column(1)
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .iter()
        .map(|v| Some(v != Some(i64::MIN)))
        .collect();
    let rows = datafusion::arrow::compute::filter_record_batch(&rows, &keep).unwrap();
    let requests = dir.path().join("requests.parquet");
    write_parquet(&requests, &rows);
    let batch = apply(dir.path(), &artifact, &format!("t={}", requests.display()));

    let evaluator = Evaluator::load(&artifact).unwrap();
    let served = evaluator.eval_batch(&rows).unwrap();
    assert_parity("library", &batch, &served);

    let ndjson = dir.path().join("requests.ndjson");
    let mut text = String::new();
    // NaN and infinities as the strings eval accepts (JSON has no such numbers).
    for row in 0..rows.num_rows() {
        let mut object = serde_json::Map::new();
        if let Some(x) = Some(
            rows.column(0)
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>(),
        )
        .filter(|a| !a.is_null(row))
        .map(|a| a.value(row))
        {
            object.insert(
                "x".into(),
                if x.is_nan() {
                    (if x.is_sign_negative() { "-NaN" } else { "NaN" }).into()
                } else if x.is_infinite() {
                    (if x > 0.0 { "Infinity" } else { "-Infinity" }).into()
                } else {
                    x.into()
                },
            );
        }
        object.insert(
            "n".into(),
            rows.column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(row)
                .into(),
        );
        let s = rows.column(2).as_string::<i32>();
        if !s.is_null(row) {
            object.insert("s".into(), s.value(row).into());
        }
        object.insert("unknown_field".into(), serde_json::json!({"ignored": true}));
        text.push_str(&serde_json::Value::Object(object).to_string());
        text.push('\n');
    }
    std::fs::write(&ndjson, text).unwrap();
    let lines = eval_cli(&artifact, &ndjson);
    assert_eval_parity(&batch, &evaluator, &lines);
}

#[test]
fn requests_are_checked_against_the_input_schema() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.parquet");
    write_parquet(&train, &train_batch());
    let artifact = fit_transform(
        dir.path(),
        "SELECT z_score(x) AS x_z, vocab_index(s) AS s_id, n + 1 AS n1, \
         CASE WHEN n > 2 THEN 1 ELSE 0 END AS big FROM t WHERE n > 1",
        &format!("t={}", train.display()),
        &["big"],
    );
    let e = Evaluator::load(&artifact).unwrap();
    // The WHERE does not apply at serving; the label is left out.
    let names: Vec<&str> = e.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["x_z", "s_id", "n1"]);
    // Statistics come from the rows with n > 1: x = -2, 0, 3.25, 10, 2, 7.75
    // (mean 3.5); s = b, a, Ünï, c, b, d (vocabulary by count, then value:
    // b, a, c, d, Ünï).
    let out = e
        .eval_json(r#"{"n": 1, "x": 3.5, "s": "b", "extra": [1, 2]}"#)
        .unwrap();
    assert_eq!(out, r#"{"x_z":0.0,"s_id":0,"n1":2}"#);
    // A missing nullable input is NULL.
    assert_eq!(
        e.eval_json(r#"{"n": 1}"#).unwrap(),
        r#"{"x_z":null,"s_id":null,"n1":2}"#
    );
    // A missing non-nullable input, a wrong type: errors naming the column.
    let err = e.eval_json(r#"{"x": 1.0}"#).unwrap_err().to_string();
    assert_eq!(err, "column 'n' (Int64, not nullable) is missing");
    let err = e.eval_json(r#"{"n": 1.5}"#).unwrap_err().to_string();
    assert_eq!(err, "column 'n': expected Int64, got a number (1.5)");
    let err = e.eval_json(r#"{"n": 1, "s": 7}"#).unwrap_err().to_string();
    assert_eq!(err, "column 's': expected Utf8, got a number (7)");
    let err = e
        .eval_json(r#"{"n": 1, "x": "1.0"}"#)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "column 'x': expected Float64, got a string (\"1.0\")");
    let err = e.eval_json("[1]").unwrap_err().to_string();
    assert!(err.starts_with("not a JSON object"), "{err}");

    // Typed rows.
    let mut row = e.empty_row();
    row[e.input_index("n").unwrap()] = Value::Int(41);
    row[e.input_index("s").unwrap()] = Value::from("a");
    let mut out = Vec::new();
    e.eval(&row, &mut out).unwrap();
    assert!(out[0].is_null());
    assert!(out[1].same(&Value::Int(1)));
    assert!(out[2].same(&Value::Int(42)));
    row[e.input_index("n").unwrap()] = Value::Null;
    let err = e.eval(&row, &mut out).unwrap_err().to_string();
    assert_eq!(err, "column 'n' (Int64, not nullable) is NULL");

    // Record batches: a missing nullable column is NULL; a wrong type is named.
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)])),
        vec![Arc::new(datafusion::arrow::array::Int32Array::from(vec![
            5,
        ]))],
    )
    .unwrap();
    let served = e.eval_batch(&batch).unwrap();
    assert_eq!(served.num_columns(), 3);
    assert!(served.column(0).is_null(0));
    assert_eq!(
        served
            .column(2)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        6
    );
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["5"]))],
    )
    .unwrap();
    let err = e.eval_batch(&batch).unwrap_err().to_string();
    assert_eq!(err, "column 'n': expected Int64, got Utf8");
    // Another type of the family, as apply accepts it: integers for the
    // Float64 x (z = (7 − 3.5)·(1/σ) like a Float64 7.0), unsigned for n.
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("n", DataType::UInt8, false),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(datafusion::arrow::array::UInt8Array::from(vec![200])),
        ],
    )
    .unwrap();
    let served = e.eval_batch(&batch).unwrap();
    let as_json = e.eval_json(r#"{"x": 7.0, "n": 200}"#).unwrap();
    assert_eq!(
        (
            served
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(0),
            served
                .column(2)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
        ),
        (
            serde_json::from_str::<serde_json::Value>(&as_json).unwrap()["x_z"]
                .as_f64()
                .unwrap(),
            201
        )
    );

    // `skewless eval`: a bad line gives an error object and the rest goes on.
    let mut child = skewless()
        .arg("eval")
        .arg(&artifact)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"n\": 1, \"s\": \"a\"}\nnot json\n{\"s\": \"b\"}\n{\"n\": 3}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], r#"{"x_z":null,"s_id":1,"n1":2}"#);
    assert!(
        lines[1].starts_with(r#"{"error":"line 2: not a JSON object"#),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        r#"{"error":"line 3: column 'n' (Int64, not nullable) is missing"}"#
    );
    assert_eq!(lines[3], r#"{"x_z":null,"s_id":null,"n1":4}"#);
    assert!(
        stderr(&out).contains("2 of 4 lines failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn what_cannot_be_served_fails_at_fit() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.parquet");
    write_parquet(&train, &train_batch());
    let table = format!("t={}", train.display());
    let transform = dir.path().join("transform.sql");
    for (sql, expected) in [
        (
            "SELECT x, random() AS r FROM t",
            "serving: function random in random() is not supported at serving",
        ),
        (
            "SELECT x, row_number() OVER (ORDER BY x) AS r FROM t",
            "row_number(…) OVER (…) needs more than one row",
        ),
        (
            "SELECT avg(x) OVER (PARTITION BY s ORDER BY n \
             RANGE BETWEEN 2 PRECEDING AND CURRENT ROW) AS m FROM t",
            "use window_mean(value, ts, length) OVER (PARTITION BY entity), whose window \
             is [t − length, t)",
        ),
        (
            "SELECT s, sum(x) AS total FROM t GROUP BY s",
            "GROUP BY / aggregate step",
        ),
        (
            "SELECT a.x FROM t a JOIN t b ON a.n = b.n",
            "the transform's plan has a JOIN step",
        ),
        (
            "SELECT x FROM t ORDER BY x LIMIT 3",
            "ORDER BY … LIMIT step",
        ),
        (
            "SELECT s LIKE 'a#%' ESCAPE '#' AS l FROM t",
            "ESCAPE other than '\\' is not supported",
        ),
        (
            "SELECT to_hex(n) AS h FROM t",
            "serving: function to_hex in to_hex(t.n) is not supported at serving",
        ),
    ] {
        std::fs::write(&transform, sql).unwrap();
        let out = skewless()
            .arg("fit")
            .arg(&transform)
            .args(["--table", &table, "--out"])
            .arg(dir.path().join("a.json"))
            .output()
            .unwrap();
        let err = user_error(&out);
        assert!(err.contains(expected), "{sql}: {err}");
        assert!(err.contains("--batch-only"), "{err}");
        assert!(
            !dir.path().join("a.json").exists(),
            "{sql}: no artifact written"
        );
    }
    // --batch-only writes it for batch apply.
    std::fs::write(&transform, "SELECT s, sum(x) AS total FROM t GROUP BY s").unwrap();
    ok(&skewless()
        .arg("fit")
        .arg(&transform)
        .args(["--table", &table, "--batch-only", "--out"])
        .arg(dir.path().join("a.json"))
        .output()
        .unwrap());
}

#[test]
fn census_wide_deep_artifact_is_byte_identical_across_partitionings() {
    let dir = tempfile::tempdir().unwrap();
    let mut artifacts = Vec::new();
    for partitions in ["1", "2", "8"] {
        let out = dir.path().join(format!("p{partitions}.json"));
        ok(&skewless()
            .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", partitions)
            .arg("fit")
            .arg(root().join("sql/census_wide_deep.sql"))
            .args([
                "--table",
                &format!("census={}", adult()),
                "--label",
                "label",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap());
        artifacts.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(artifacts[0], artifacts[1]);
    assert_eq!(artifacts[0], artifacts[2]);
}

#[test]
fn eval_latency_times_every_row_of_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let sql = std::fs::read_to_string(root().join("sql/bench_spec.sql")).unwrap();
    let artifact = fit_transform(dir.path(), &sql, &format!("census={}", adult()), &[]);
    let rows = dir.path().join("rows.ndjson");
    let lines: Vec<&str> = [
        r#"{"age": 39, "education": "Bachelors", "occupation": "Adm-clerical", "fnlwgt": 77516, "capital_gain": 2174, "education_num": 13, "hours_per_week": 40}"#,
        r#"{"age": 50, "education": "Masters", "fnlwgt": 1, "capital_gain": 0, "education_num": 14, "hours_per_week": 13, "workclass": "Private"}"#,
    ]
    .to_vec();
    std::fs::write(&rows, lines.join("\n")).unwrap();
    let out = ok(&skewless()
        .arg("eval")
        .arg(&artifact)
        .arg("--input")
        .arg(&rows)
        .args(["--latency", "3"])
        .output()
        .unwrap());
    let report: Vec<&str> = out.lines().collect();
    assert_eq!(
        report[0], "2 rows × 3 rounds, 11 features per row:",
        "{out}"
    );
    assert!(report[1].starts_with("typed row → features") && report[1].contains("p99"));
    assert!(report[2].starts_with("JSON line → JSON line") && report[2].contains("median"));
    let err = user_error(
        &skewless()
            .arg("eval")
            .arg(&artifact)
            .arg("--latency")
            .output()
            .unwrap(),
    );
    assert!(err.contains("eval --latency needs --input"), "{err}");
}
