//! Object storage against a real S3-compatible server: s3s-fs, an S3 server
//! backed by a local directory, started in-process on an ephemeral loopback
//! port. The real binary reads Parquet from `s3://`, writes with
//! `COPY … TO 's3://…'`, and reads that back.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;

use crate::common::*;

const ACCESS_KEY: &str = "skewless-test";
const SECRET_KEY: &str = "skewless-test-secret";

/// A running S3 server; stops when dropped.
pub(crate) struct S3Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl S3Server {
    pub(crate) fn start(root: &Path) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fs = s3s_fs::FileSystem::new(root).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Self {
            addr,
            _runtime: runtime,
        }
    }

    /// The binary, configured for this server by the standard AWS variables.
    fn client(&self) -> Command {
        let mut cmd = skewless();
        cmd.envs(self.env());
        cmd
    }

    /// The standard AWS variables that reach this server.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", format!("http://{}", self.addr)),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

/// A server whose bucket "warehouse" holds the census at `census/adult.parquet`
/// (s3s-fs maps a bucket to a directory and keys to files in it).
pub(crate) fn census_warehouse() -> (tempfile::TempDir, S3Server) {
    let storage = tempfile::tempdir().unwrap();
    let census = storage.path().join("warehouse/census");
    std::fs::create_dir_all(&census).unwrap();
    std::fs::copy(adult(), census.join("adult.parquet")).unwrap();
    let server = S3Server::start(storage.path());
    (storage, server)
}

#[test]
fn parquet_round_trip_through_s3() {
    let (storage, server) = census_warehouse();
    let bucket = storage.path().join("warehouse");
    let work = tempfile::tempdir().unwrap();

    // Read from s3:// (a prefix), aggregate, write back to s3://.
    let sql = "CREATE EXTERNAL TABLE census STORED AS PARQUET LOCATION 's3://warehouse/census/';\n\
               SELECT count(*) AS n FROM census;\n\
               COPY (SELECT income_bracket, count(*) AS n, sum(hours_per_week) AS hours \
                     FROM census GROUP BY income_bracket ORDER BY income_bracket) \
               TO 's3://warehouse/out/by_income.parquet';";
    let out = run_sql_with(server.client(), work.path(), sql, &["--format", "csv"]);
    assert_eq!(ok(&out), "n\n32561\n");
    assert!(
        bucket.join("out/by_income.parquet").is_file(),
        "COPY wrote the object into the server's storage"
    );

    // Read it back, as a --table on the s3:// object. Hours summed by DuckDB.
    let out = run_sql_with(
        server.client(),
        work.path(),
        "SELECT * FROM summary ORDER BY income_bracket",
        &[
            "--table",
            "summary=s3://warehouse/out/by_income.parquet",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        ok(&out),
        "income_bracket,n,hours\n<=50K,24720,960130\n>50K,7841,356554\n"
    );

    // A --table on a prefix with the format found from the objects in it.
    let out = run_sql_with(
        server.client(),
        work.path(),
        "SELECT count(*) AS over_50k FROM c WHERE income_bracket = '>50K'",
        &["--table", "c=s3://warehouse/census/", "--format", "csv"],
    );
    assert_eq!(ok(&out), "over_50k\n7841\n");

    // A missing object is a user error naming it.
    let out = run_sql_with(
        server.client(),
        work.path(),
        "SELECT 1",
        &["--table", "x=s3://warehouse/missing/"],
    );
    let err = user_error(&out);
    assert!(err.contains("s3://warehouse/missing/"), "{err}");
}

#[test]
fn fit_locally_apply_on_s3() {
    let (storage, server) = census_warehouse();
    let bucket = storage.path().join("warehouse");
    let work = tempfile::tempdir().unwrap();
    let transform = work.path().join("t.sql");
    std::fs::write(
        &transform,
        "SELECT min_max_scale(age) AS age_s, vocab_index(education) AS edu FROM census",
    )
    .unwrap();
    let artifact = work.path().join("a.json");
    ok(&server
        .client()
        .arg("fit")
        .arg(&transform)
        .args(["--table", "census=s3://warehouse/census/", "--out"])
        .arg(&artifact)
        .output()
        .unwrap());
    ok(&server
        .client()
        .arg("apply")
        .arg(&artifact)
        .args([
            "--table",
            "census=s3://warehouse/census/",
            "--out",
            "s3://warehouse/features/census.parquet",
        ])
        .output()
        .unwrap());
    assert!(bucket.join("features/census.parquet").is_file());
    // Ages 17..90 scale to 0..1; 16 educations → indices 0..15. (The min is
    // compared, not printed: Parquet statistics store a 0.0 minimum as -0.0.)
    let out = run_sql_with(
        server.client(),
        work.path(),
        "SELECT count(*) AS n, min(age_s) = 0.0 AS lo, max(age_s) AS hi, max(edu) AS e FROM f",
        &[
            "--table",
            "f=s3://warehouse/features/census.parquet",
            "--format",
            "csv",
        ],
    );
    assert_eq!(ok(&out), "n,lo,hi,e\n32561,true,1.0,15\n");
}

/// Every file under a bucket directory, as sorted relative paths.
pub(crate) fn objects(bucket: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(bucket, bucket, &mut out);
    out.sort();
    out
}

#[test]
fn writes_to_s3_are_atomic_refused_when_present_and_deterministic() {
    let (storage, server) = census_warehouse();
    let bucket = storage.path().join("warehouse");
    let work = tempfile::tempdir().unwrap();
    let transform = work.path().join("t.sql");
    std::fs::write(
        &transform,
        "SELECT z_score(age) AS age_z, \
         split_of(concat_ws('|', age, fnlwgt, education), 'train', 0.8, 'test', 0.2) AS split \
         FROM census",
    )
    .unwrap();
    let artifact = work.path().join("a.json");
    ok(&server
        .client()
        .arg("fit")
        .arg(&transform)
        .args(["--table", "census=s3://warehouse/census/", "--out"])
        .arg(&artifact)
        .output()
        .unwrap());
    let apply = |out: &str, extra: &[&str]| {
        server
            .client()
            .arg("apply")
            .arg(&artifact)
            .args(["--table", "census=s3://warehouse/census/", "--out", out])
            .args(extra)
            .output()
            .unwrap()
    };
    // A file: refused the second time, replaced with --overwrite, and the
    // same bytes as a local apply.
    ok(&apply("s3://warehouse/f/features.parquet", &[]));
    let err = user_error(&apply("s3://warehouse/f/features.parquet", &[]));
    assert!(
        err.contains("'s3://warehouse/f/features.parquet' already exists; pass --overwrite"),
        "{err}"
    );
    ok(&apply(
        "s3://warehouse/f/features.parquet",
        &["--overwrite"],
    ));
    let local = work.path().join("local.parquet");
    ok(&skewless()
        .arg("apply")
        .arg(&artifact)
        .args(["--table", &format!("census={}", adult()), "--out"])
        .arg(&local)
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read(bucket.join("f/features.parquet")).unwrap(),
        std::fs::read(&local).unwrap()
    );
    // A partitioned directory: stable names, replaced as a whole.
    ok(&apply("s3://warehouse/p/", &["--partition-by", "split"]));
    let err = user_error(&apply("s3://warehouse/p/", &["--partition-by", "split"]));
    assert!(err.contains("already exists"), "{err}");
    std::fs::write(bucket.join("p/stale.parquet"), b"old").unwrap();
    ok(&apply(
        "s3://warehouse/p/",
        &["--partition-by", "split", "--overwrite"],
    ));
    assert_eq!(
        objects(&bucket),
        [
            "census/adult.parquet",
            "f/features.parquet",
            "p/split=test/part-00000.parquet",
            "p/split=train/part-00000.parquet",
        ]
    );
    // A write that fails mid-stream leaves nothing behind.
    let mut text = String::from("age,fnlwgt,education\n");
    for i in 0..30_000 {
        text.push_str(&format!("{},{},HS-grad\n", 20 + i % 50, 1000 + i));
    }
    text.push_str("old,1,HS-grad\n");
    std::fs::create_dir_all(bucket.join("bad")).unwrap();
    std::fs::write(bucket.join("bad/late.csv"), text).unwrap();
    let out = server
        .client()
        .arg("apply")
        .arg(&artifact)
        .args([
            "--table",
            "census=s3://warehouse/bad/late.csv",
            "--out",
            "s3://warehouse/g/features.parquet",
        ])
        .output()
        .unwrap();
    let err = user_error(&out);
    assert!(
        err.contains("file 's3://warehouse/bad/late.csv': Parser error"),
        "{err}"
    );
    assert_eq!(
        objects(&bucket),
        [
            "bad/late.csv",
            "census/adult.parquet",
            "f/features.parquet",
            "p/split=test/part-00000.parquet",
            "p/split=train/part-00000.parquet",
        ]
    );
}
