//! `skewless run` on the real binary: statements, tables, formats, errors.
//! Expected counts were computed independently with DuckDB 1.x over the same
//! Parquet file (and the data set's README for the label balance).

use std::fs;

use crate::common::*;

const BY_INCOME: &str = "SELECT income_bracket, count(*) AS n FROM census GROUP BY income_bracket ORDER BY income_bracket";

#[test]
fn group_by_over_the_bundled_census() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("census={}", adult());
    let out = run_sql(
        dir.path(),
        &format!("SELECT count(*) AS n FROM census;\n{BY_INCOME};"),
        &["--table", &table, "--format", "csv"],
    );
    assert_eq!(
        ok(&out),
        "n\n32561\nincome_bracket,n\n<=50K,24720\n>50K,7841\n"
    );
}

#[test]
fn output_formats() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("census={}", adult());
    let run = |format: &str| {
        ok(&run_sql(
            dir.path(),
            BY_INCOME,
            &["--table", &table, "--format", format],
        ))
    };
    assert_eq!(
        run("table"),
        "+----------------+-------+\n\
         | income_bracket | n     |\n\
         +----------------+-------+\n\
         | <=50K          | 24720 |\n\
         | >50K           | 7841  |\n\
         +----------------+-------+\n\
         2 rows\n"
    );
    assert_eq!(
        run("json"),
        "[{\"income_bracket\":\"<=50K\",\"n\":24720},{\"income_bracket\":\">50K\",\"n\":7841}]\n"
    );
    assert_eq!(
        run("ndjson"),
        "{\"income_bracket\":\"<=50K\",\"n\":24720}\n{\"income_bracket\":\">50K\",\"n\":7841}\n"
    );
    // Table is the default.
    assert_eq!(
        ok(&run_sql(dir.path(), BY_INCOME, &["--table", &table])),
        run("table")
    );
}

#[test]
fn every_statement_kind_in_one_script() {
    let dir = tempfile::tempdir().unwrap();
    let out_csv = dir.path().join("by_gender.csv");
    let sql = format!(
        "-- a comment; with a semicolon\n\
         SET datafusion.execution.batch_size = 1000;\n\
         CREATE EXTERNAL TABLE census STORED AS PARQUET LOCATION '{adult}';\n\
         CREATE VIEW over_60 AS SELECT * FROM census WHERE age > 60;\n\
         /* a block comment */\n\
         CREATE TABLE by_gender AS SELECT gender, count(*) AS n FROM over_60 GROUP BY gender;\n\
         COPY (SELECT * FROM by_gender ORDER BY gender) TO '{out}';\n\
         CREATE EXTERNAL TABLE back STORED AS CSV LOCATION '{out}' OPTIONS ('format.has_header' 'true');\n\
         SELECT * FROM back ORDER BY gender;\n\
         SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'\n",
        adult = adult(),
        out = out_csv.display()
    );
    let out = run_sql(dir.path(), &sql, &["--format", "csv"]);
    assert_eq!(ok(&out), "gender,n\nFemale,742\nMale,1590\nvalue\n1000\n");
    assert_eq!(
        fs::read_to_string(&out_csv).unwrap(),
        "gender,n\nFemale,742\nMale,1590\n"
    );
    assert!(
        stderr(&out).contains("statement 5 (line 7): 2 rows written"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn script_from_stdin() {
    let mut cmd = skewless();
    cmd.args(["run", "-", "--format", "csv", "--table"])
        .arg(format!("census={}", adult()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n FROM census WHERE income_bracket = '>50K'")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(ok(&out), "n\n7841\n");
}

#[test]
fn directories_globs_hive_partitions_and_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("events");
    fs::create_dir_all(data.join("day=1")).unwrap();
    fs::create_dir_all(data.join("day=2")).unwrap();
    fs::write(data.join("day=1/a.csv"), "user,clicks\nann,3\nbob,4\n").unwrap();
    fs::write(data.join("day=2/b.csv"), "user,clicks\nann,10\n").unwrap();
    let ndjson = dir.path().join("users.ndjson");
    fs::write(
        &ndjson,
        "{\"user\":\"ann\",\"age\":31}\n{\"user\":\"bob\",\"age\":null}\n",
    )
    .unwrap();
    let sql = "SELECT e.day, e.user, e.clicks, u.age FROM events e JOIN users u USING (user) \
               ORDER BY e.day, e.user;\n\
               SELECT count(*) AS n, sum(clicks) AS clicks FROM day1;";
    let out = run_sql(
        dir.path(),
        sql,
        &[
            "--table",
            &format!("events={}", data.display()),
            "--table",
            &format!("users={}", ndjson.display()),
            "--table",
            &format!("day1={}/day=1/*.csv", data.display()),
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        ok(&out),
        "day,user,clicks,age\n1,ann,3,31\n1,bob,4,\n2,ann,10,31\nn,clicks\n2,7\n"
    );
}

#[test]
fn failing_statement_is_named_and_stops_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let after = dir.path().join("after.csv");
    let sql = format!(
        "SELECT 1 AS first;\n\n-- the next one is wrong\nSELECT no_such_column\n  FROM census;\nCOPY (SELECT 2) TO '{}';\n",
        after.display()
    );
    let out = run_sql(
        dir.path(),
        &sql,
        &["--table", &format!("census={}", adult()), "--format", "csv"],
    );
    let err = user_error(&out);
    assert!(
        err.contains("statement 2 (line 4: SELECT no_such_column …) failed"),
        "{err}"
    );
    assert!(err.contains("no_such_column"), "{err}");
    assert_eq!(
        stdout(&out),
        "first\n1\n",
        "statements before the failure ran"
    );
    assert!(!after.exists(), "no statement after the failure ran");
}

#[test]
fn syntax_errors_are_user_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = user_error(&run_sql(dir.path(), "SELEC 1;", &[]));
    assert!(
        err.contains("statement 1 (line 1: SELEC 1) failed"),
        "{err}"
    );
    assert!(
        err.contains(
            "SQL syntax error: Expected: an SQL statement, found: SELEC at Line: 1, Column: 1"
        ),
        "{err}"
    );
    assert!(!err.contains("ParserError("), "no Rust debug forms: {err}");
}

#[test]
fn missing_inputs_name_the_location() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.parquet");
    let err = user_error(&run_sql(
        dir.path(),
        "SELECT 1",
        &["--table", &format!("t={}", missing.display())],
    ));
    assert!(
        err.contains(&format!(
            "table 't' at '{}': no such file or directory",
            missing.display()
        )),
        "{err}"
    );
    let err = user_error(
        &skewless()
            .args(["run", "/no/such/script.sql"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("/no/such/script.sql"), "{err}");
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = user_error(&run_sql(
        dir.path(),
        "SELECT 1",
        &["--table", &format!("t={}", empty.display())],
    ));
    assert!(
        err.contains("no Parquet, CSV or NDJSON files found"),
        "{err}"
    );
}

#[test]
fn corrupt_parquet_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::copy(adult(), data.join("good.parquet")).unwrap();
    fs::write(data.join("zz_bad.parquet"), b"this is not parquet at all").unwrap();
    let bad = data.join("zz_bad.parquet");

    // As a --table directory: the corrupt file among good ones is named.
    let err = user_error(&run_sql(
        dir.path(),
        "SELECT count(*) FROM t",
        &["--table", &format!("t={}", data.display())],
    ));
    assert!(
        err.contains(&format!(
            "file '{}' is not readable as parquet",
            bad.display()
        )),
        "{err}"
    );
    // As a single file.
    let err = user_error(&run_sql(
        dir.path(),
        "SELECT 1",
        &["--table", &format!("t={}", bad.display())],
    ));
    assert!(err.contains(&bad.display().to_string()), "{err}");
    // In CREATE EXTERNAL TABLE inside a script.
    let err = user_error(&run_sql(
        dir.path(),
        &format!(
            "SELECT 1;\nCREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}/';",
            data.display()
        ),
        &[],
    ));
    assert!(err.contains("statement 2 (line 2"), "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
}

#[test]
fn hash_bucket_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    // Documented values of TensorFlow's to_hash_bucket_fast and BigQuery ML's
    // ML.HASH_BUCKETIZE; integers hash as their decimal text; NULL stays NULL.
    let sql = "SELECT v, hash_bucket(v, 3) AS b FROM (VALUES ('a'), ('b'), ('c'), ('d'), (NULL)) t(v);\n\
               SELECT hash_bucket('Car', 11) AS car, hash_bucket('Bus', 11) AS bus, hash_bucket('Tree', 11) AS tree;\n\
               SELECT hash_bucket(39, 1000) = hash_bucket('39', 1000) AS same, \
                      hash_bucket(CAST(39 AS TINYINT), 1000) = hash_bucket('39', 1000) AS same_small;";
    assert_eq!(
        ok(&run_sql(dir.path(), sql, &["--format", "csv"])),
        "v,b\na,0\nb,1\nc,1\nd,2\n,\ncar,bus,tree\n8,4,5\nsame,same_small\ntrue,true\n"
    );
    for (bad, why) in [
        (
            "SELECT hash_bucket('a', 0)",
            "hash_bucket: n must be a positive integer, got 0",
        ),
        (
            "SELECT hash_bucket('a', -2)",
            "hash_bucket: n must be a positive integer, got -2",
        ),
        (
            "SELECT hash_bucket(v, n) FROM (VALUES ('a', 3)) t(v, n)",
            "hash_bucket: n must be a positive integer literal, not a column",
        ),
        (
            "SELECT hash_bucket(1.5, 3)",
            "hash_bucket: expected a string or integer",
        ),
    ] {
        let err = user_error(&run_sql(dir.path(), bad, &[]));
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn configuration_from_environment_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let setting = "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.target_partitions'";
    let mut cmd = skewless();
    cmd.env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "3");
    let out = run_sql_with(
        cmd,
        dir.path(),
        &format!("{setting};\nSET datafusion.execution.target_partitions = 5;\n{setting};"),
        &["--format", "csv"],
    );
    assert_eq!(ok(&out), "value\n3\nvalue\n5\n");
}

#[test]
fn help_documents_exit_codes() {
    let help = ok(&skewless().args(["run", "--help"]).output().unwrap());
    assert!(help.contains("1  user error"), "{help}");
    assert!(help.contains("2  internal error"), "{help}");
    assert!(help.contains("--table <NAME=LOCATION>"), "{help}");
    let err = user_error_or_usage(
        &skewless()
            .args(["run", "x.sql", "--format", "xml"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("xml"), "{err}");
}

/// clap exits with 2 for usage errors by default; skewless maps them to 1.
#[track_caller]
fn user_error_or_usage(out: &std::process::Output) -> String {
    user_error(out)
}

#[test]
fn functions_are_listed_with_docs() {
    let out = ok(&skewless().arg("functions").output().unwrap());
    assert!(
        out.contains("hash_bucket(x, n)") && out.contains("Hashes a value into one of n buckets"),
        "{out}"
    );
}

#[test]
fn logs_and_progress_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("census={}", adult());
    // Not a terminal: no progress line, no logs by default.
    let out = run_sql(dir.path(), BY_INCOME, &["--table", &table]);
    ok(&out);
    assert_eq!(stderr(&out), "");
    // -v: tracing logs.
    let out = run_sql(dir.path(), BY_INCOME, &["--table", &table, "-v"]);
    ok(&out);
    assert!(stderr(&out).contains("INFO"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("registered table"),
        "{}",
        stderr(&out)
    );
    // A long statement with progress forced on reports rows read.
    let slow = "SELECT count(*) AS n FROM census a JOIN census b ON a.education = b.education \
                WHERE a.age + b.age = 100";
    let out = run_sql(
        dir.path(),
        slow,
        &["--table", &table, "--progress", "always"],
    );
    ok(&out);
    assert!(stderr(&out).contains("rows read"), "{}", stderr(&out));
}

#[test]
fn full_pass_functions_scan_the_input_twice() {
    // Four statistics (min/max, moments, vocabulary, quantiles) come from one
    // aggregate pass over the input; the query itself is the second scan.
    let dir = tempfile::tempdir().unwrap();
    let sql = "SELECT count(*) AS n, sum(a) AS a, sum(z) AS z, max(e) AS e, max(q) AS q FROM (\
               SELECT min_max_scale(age) AS a, z_score(hours_per_week) AS z, \
               vocab_index(education) AS e, quantile_bucket(age, 4) AS q, \
               max_abs_scale(age) AS m FROM census)";
    let out = run_sql(
        dir.path(),
        sql,
        &[
            "--table",
            &format!("census={}", adult()),
            "--format",
            "csv",
            "-v",
        ],
    );
    let stdout = ok(&out);
    let log = stderr(&out);
    assert_eq!(
        log.matches("fitted full-pass calls").count(),
        1,
        "one statistics pass: {log}"
    );
    assert!(log.contains("statistics=4"), "{log}");
    // 32,561 rows; 16 educations → max index 15; 4 quantile buckets → max 3.
    assert!(stdout.starts_with("n,a,z,e,q\n32561,"), "{stdout}");
    assert!(stdout.trim_end().ends_with(",15,3"), "{stdout}");
}

#[test]
fn parquet_is_written_with_zstd_unless_configured_otherwise() {
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().unwrap();
    let codec = |env: Option<&str>| {
        let out = dir.path().join("out.parquet");
        let mut cmd = skewless();
        if let Some(codec) = env {
            cmd.env("DATAFUSION_EXECUTION_PARQUET_COMPRESSION", codec);
        }
        ok(&run_sql_with(
            cmd,
            dir.path(),
            &format!(
                "COPY (SELECT age FROM census LIMIT 10) TO '{}';",
                out.display()
            ),
            &["--table", &format!("census={}", adult()), "--overwrite"],
        ));
        let reader = SerializedFileReader::new(fs::File::open(&out).unwrap()).unwrap();
        reader.metadata().row_group(0).column(0).compression()
    };
    // zstd(1) by default (the level is not recorded in the file).
    assert!(matches!(codec(None), Compression::ZSTD(_)));
    assert_eq!(codec(Some("snappy")), Compression::SNAPPY);
}
