//! Embedding skewless as a library: a DataFusion session with skewless's
//! functions, a table registered from the bundled census data, one query.
//!
//! Run from the repository root:
//! `cargo run --example session`

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = skewless::session::new_context()?;
    skewless::location::register_table(&ctx, "census", "examples/data/adult/adult.parquet").await?;

    let batches: Vec<RecordBatch> = ctx
        .sql(
            "SELECT hash_bucket(occupation, 4) AS bucket, count(*) AS n \
             FROM census WHERE occupation IS NOT NULL GROUP BY 1 ORDER BY 1",
        )
        .await?
        .collect()
        .await?;
    let mut total = 0;
    for batch in &batches {
        let buckets = batch.column(0).as_primitive::<Int64Type>();
        let counts = batch.column(1).as_primitive::<Int64Type>();
        for (bucket, n) in buckets.iter().zip(counts.iter()) {
            println!("bucket {}: {} rows", bucket.unwrap(), n.unwrap());
            total += n.unwrap();
        }
    }
    // 32,561 rows, 1,843 of them without an occupation.
    assert_eq!(total, 32_561 - 1_843);
    println!("{total} rows with an occupation");
    Ok(())
}
