//! Throughput of the instance-level functions through their Arrow drivers
//! (the batch path), on 1M-value arrays, and of the statistics accumulators.
//!
//! Run: `cargo bench -p skewless-udfs --bench kernels` (see BENCHMARKS.md).
//! Targets (issue #3): ≥ 100M values/s per core for the numeric kernels,
//! ≥ 20M values/s for the hashing ones.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{ArrayRef, Float64Array, StringViewArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

const N: usize = 1 << 20;

fn udf(name: &str) -> Arc<ScalarUDF> {
    skewless_udfs::scalar_functions()
        .into_iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("no function {name}"))
}

fn floats() -> ArrayRef {
    // Census-like ages with a few NULLs; deterministic.
    Arc::new(Float64Array::from_iter((0..N).map(|i| {
        if i % 97 == 0 {
            None
        } else {
            Some(17.0 + ((i * 7919) % 74) as f64)
        }
    })))
}

fn strings() -> ArrayRef {
    const WORDS: [&str; 8] = [
        "HS-grad",
        "Some-college",
        "Bachelors",
        "Masters",
        "Assoc-voc",
        "11th",
        "Assoc-acdm",
        "Prof-specialty-long-value",
    ];
    Arc::new(StringViewArray::from_iter(
        (0..N).map(|i| Some(WORDS[(i * 31) % WORDS.len()])),
    ))
}

fn list(values: Vec<ScalarValue>, t: &DataType) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(&values, t))
}

fn invoke(f: &ScalarUDF, args: Vec<ColumnarValue>, out: DataType) -> ColumnarValue {
    let arg_fields = args
        .iter()
        .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
        .collect();
    f.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: N,
        return_field: Arc::new(Field::new("out", out, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })
    .unwrap()
}

fn scalar(v: f64) -> ColumnarValue {
    ColumnarValue::Scalar(ScalarValue::Float64(Some(v)))
}

fn instance_level(c: &mut Criterion) {
    let x = ColumnarValue::Array(floats());
    let s = ColumnarValue::Array(strings());
    let mut g = c.benchmark_group("instance-level");
    g.throughput(Throughput::Elements(N as u64));

    let f = udf("min_max_scale_with");
    g.bench_function("min_max_scale_with", |b| {
        b.iter(|| {
            invoke(
                &f,
                vec![x.clone(), scalar(17.0), scalar(90.0)],
                DataType::Float64,
            )
        })
    });
    let f = udf("z_score_with");
    g.bench_function("z_score_with", |b| {
        b.iter(|| {
            invoke(
                &f,
                vec![x.clone(), scalar(38.58), scalar(0.0733)],
                DataType::Float64,
            )
        })
    });
    let boundaries = list(
        [18, 25, 30, 35, 40, 45, 50, 55, 60, 65]
            .iter()
            .map(|v| ScalarValue::Float64(Some(*v as f64)))
            .collect(),
        &DataType::Float64,
    );
    let f = udf("bucketize");
    g.bench_function("bucketize (10 boundaries)", |b| {
        b.iter(|| {
            invoke(
                &f,
                vec![x.clone(), ColumnarValue::Scalar(boundaries.clone())],
                DataType::Int64,
            )
        })
    });
    let f = udf("hash_bucket");
    let n = ColumnarValue::Scalar(ScalarValue::Int64(Some(10_000)));
    g.bench_function("hash_bucket (strings)", |b| {
        b.iter(|| invoke(&f, vec![s.clone(), n.clone()], DataType::Int64))
    });
    let f = udf("feature_cross");
    g.bench_function("feature_cross (2 strings)", |b| {
        b.iter(|| invoke(&f, vec![s.clone(), s.clone(), n.clone()], DataType::Int64))
    });
    let vocab = list(
        [
            "HS-grad",
            "Some-college",
            "Bachelors",
            "Masters",
            "Assoc-voc",
            "11th",
        ]
        .iter()
        .map(|v| ScalarValue::Utf8(Some(v.to_string())))
        .collect(),
        &DataType::Utf8,
    );
    let f = udf("vocab_index_with");
    let one = ColumnarValue::Scalar(ScalarValue::Int64(Some(1)));
    g.bench_function("vocab_index_with (6 values)", |b| {
        b.iter(|| {
            invoke(
                &f,
                vec![s.clone(), ColumnarValue::Scalar(vocab.clone()), one.clone()],
                DataType::Int64,
            )
        })
    });
    g.finish();
}

fn statistics(c: &mut Criterion) {
    use skewless_udfs::kernel::stats::{MinMax, Moments, NumericCounts};
    let values: Vec<f64> = (0..N).map(|i| 17.0 + ((i * 7919) % 74) as f64).collect();
    let mut g = c.benchmark_group("statistics");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("min_max update", |b| {
        b.iter(|| {
            let mut s = MinMax::default();
            values.iter().for_each(|&v| s.update(Some(v)));
            black_box(s)
        })
    });
    g.bench_function("moments update (exact sums)", |b| {
        b.iter(|| {
            let mut s = Moments::default();
            values.iter().for_each(|&v| s.update(Some(v)));
            black_box(s.stddev())
        })
    });
    g.bench_function("value counts update", |b| {
        b.iter(|| {
            let mut s = NumericCounts::default();
            values.iter().for_each(|&v| s.update(Some(v)));
            black_box(s.sorted().quantile_boundaries(10))
        })
    });
    g.finish();
}

criterion_group!(benches, instance_level, statistics);
criterion_main!(benches);
