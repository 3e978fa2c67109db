//! What skewless writes (issue 11): atomic outputs, no silent overwrite or
//! append, the same bytes every time, batch apply of unlabeled data, one
//! JSON convention, formats as documented — through the real binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

fn test_set() -> String {
    root()
        .join("examples/data/adult/adult_test.parquet")
        .display()
        .to_string()
}

/// sha256 of a file, by the system's sha256sum (an independent tool).
pub(crate) fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Every entry of a directory, recursively, as sorted relative paths (hidden
/// ones included): what a write left behind.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            out.push(path.strip_prefix(base).unwrap().display().to_string());
            if path.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn run_in(dir: &Path, sql: &str, args: &[&str]) -> Output {
    let mut cmd = skewless();
    cmd.current_dir(dir);
    run_sql_with(cmd, dir, sql, args)
}

fn apply(artifact: &Path, table: &str, out: &Path, extra: &[&str]) -> Output {
    skewless()
        .arg("apply")
        .arg(artifact)
        .args(["--table", table])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn apply_env(artifact: &Path, table: &str, out: &Path, partitions: &str) -> Output {
    let mut cmd = skewless();
    cmd.env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", partitions)
        .arg("apply")
        .arg(artifact)
        .args(["--table", table, "--overwrite"])
        .arg("--out")
        .arg(out);
    cmd.output().unwrap()
}

/// A CSV whose row 40,000 does not parse as the integer the first rows
/// say the column is: reading fails well into the file.
fn late_bad_csv(dir: &Path) -> PathBuf {
    let path = dir.join("late_bad.csv");
    let mut text = String::from("age,hours\n");
    for i in 0..60_000 {
        if i == 40_000 {
            text.push_str("forty,40\n");
        } else {
            text.push_str(&format!("{},{}\n", 17 + i % 70, 1 + i % 99));
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_failed_write_leaves_no_partial_output_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "age,hours\n20,40\n30,50\n").unwrap();
    let bad = late_bad_csv(dir.path());
    let a = fit(
        dir.path(),
        "SELECT min_max_scale(age) AS age_s, hours FROM t",
        &format!("t={}", good.display()),
        &[],
    );
    let out = dir.path().join("out").join("features.parquet");
    // Input that fails mid-stream: nothing at all is written.
    let err = user_error(&apply(&a, &format!("t={}", bad.display()), &out, &[]));
    assert!(
        err.contains(&format!(
            "file '{}': Parser error: Error while parsing value 'forty' as type 'Int64' for \
             column 0 at line 40002",
            bad.display()
        )),
        "the file and its line (header = line 1): {err}"
    );
    assert_eq!(tree(&dir.path().join("out")), Vec::<String>::new());
    // A good output, then a failed --overwrite over it: the old one stays.
    ok(&apply(&a, &format!("t={}", good.display()), &out, &[]));
    let before = sha256(&out);
    user_error(&apply(
        &a,
        &format!("t={}", bad.display()),
        &out,
        &["--overwrite"],
    ));
    assert_eq!(sha256(&out), before);
    assert_eq!(tree(&dir.path().join("out")), ["features.parquet"]);
    // The same through COPY in a script.
    let copy = format!(
        "COPY (SELECT age * 2 AS a FROM t) TO '{}';",
        dir.path().join("out/copy.csv").display()
    );
    user_error(&run_in(
        dir.path(),
        &copy,
        &["--table", &format!("t={}", bad.display())],
    ));
    assert_eq!(tree(&dir.path().join("out")), ["features.parquet"]);
}

#[test]
fn existing_outputs_are_refused_unless_overwrite_then_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let census = format!("census={}", adult());
    let a = fit(
        dir.path(),
        "SELECT age, split_of(concat_ws('|', age, fnlwgt, education, occupation, hours_per_week), \
         'train', 0.8, 'test', 0.2) AS split FROM census",
        &census,
        &[],
    );
    let count = |location: &Path| -> String {
        ok(&run_sql(
            dir.path(),
            "SELECT count(*) AS n FROM o;",
            &[
                "--table",
                &format!("o={}", location.display()),
                "--format",
                "csv",
            ],
        ))
    };
    // A file, a directory of files, a partitioned directory.
    for (out, extra) in [
        (dir.path().join("f.csv"), vec![]),
        (dir.path().join("d/"), vec![]),
        (dir.path().join("p/"), vec!["--partition-by", "split"]),
    ] {
        ok(&apply(&a, &census, &out, &extra));
        let err = user_error(&apply(&a, &census, &out, &extra));
        assert!(
            err.contains(&format!(
                "'{}' already exists; pass --overwrite to replace it",
                out.display()
            )),
            "{err}"
        );
        let mut again = extra.clone();
        again.push("--overwrite");
        ok(&apply(&a, &census, &out, &again));
        // Replaced, not appended: the census has 32,561 rows.
        assert_eq!(count(&out), "n\n32561\n", "{}", out.display());
    }
    assert_eq!(tree(&dir.path().join("d")), ["part-00000.parquet"]);
    let mut p = tree(&dir.path().join("p"));
    p.sort();
    assert_eq!(
        p,
        [
            "split=test",
            "split=test/part-00000.parquet",
            "split=train",
            "split=train/part-00000.parquet"
        ]
    );
    // COPY in a script, and an artifact.
    let sql = "COPY (SELECT age FROM census) TO 'c/' STORED AS PARQUET;";
    ok(&run_in(dir.path(), sql, &["--table", &census]));
    let err = user_error(&run_in(dir.path(), sql, &["--table", &census]));
    assert!(
        err.contains("'c/' already exists; pass --overwrite to replace it"),
        "{err}"
    );
    ok(&run_in(
        dir.path(),
        sql,
        &["--table", &census, "--overwrite"],
    ));
    assert_eq!(count(&dir.path().join("c")), "n\n32561\n");
    let t = dir.path().join("t.sql");
    std::fs::write(&t, "SELECT z_score(age) AS z FROM census").unwrap();
    let artifact = dir.path().join("z.json");
    let fit_z = |extra: &[&str]| {
        skewless()
            .arg("fit")
            .arg(&t)
            .args(["--table", &census, "--out"])
            .arg(&artifact)
            .args(extra)
            .output()
            .unwrap()
    };
    ok(&fit_z(&[]));
    let err = user_error(&fit_z(&[]));
    assert!(err.contains("already exists; pass --overwrite"), "{err}");
    ok(&fit_z(&["--overwrite"]));
}

#[test]
fn an_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.parquet");
    std::fs::copy(adult(), &data).unwrap();
    let before = sha256(&data);
    let table = format!("census={}", data.display());
    let a = fit(
        dir.path(),
        "SELECT z_score(age) AS z FROM census",
        &table,
        &[],
    );
    let err = user_error(&apply(&a, &table, &data, &["--overwrite"]));
    assert!(
        err.contains("it is (or holds, or is inside) the location of input table 'census'"),
        "{err}"
    );
    let sql = format!(
        "COPY (SELECT * FROM census) TO '{}' STORED AS PARQUET;",
        data.display()
    );
    let err = user_error(&run_in(
        dir.path(),
        &sql,
        &["--table", &table, "--overwrite"],
    ));
    assert!(err.contains("input table 'census'"), "{err}");
    // A directory input, written into.
    let inputs = dir.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::copy(adult(), inputs.join("a.parquet")).unwrap();
    let sql = format!(
        "COPY (SELECT * FROM t) TO '{}';",
        inputs.join("more.parquet").display()
    );
    let err = user_error(&run_in(
        dir.path(),
        &sql,
        &["--table", &format!("t={}", inputs.display())],
    ));
    assert!(err.contains("input table 't'"), "{err}");
    // fit over its own input.
    let t = dir.path().join("t.sql");
    std::fs::write(&t, "SELECT z_score(a) AS z FROM j").unwrap();
    let json = dir.path().join("j.json");
    std::fs::write(&json, "{\"a\": 1}\n{\"a\": 2}\n").unwrap();
    let err = user_error(
        &skewless()
            .arg("fit")
            .arg(&t)
            .args([
                "--table",
                &format!("j={}", json.display()),
                "--overwrite",
                "--out",
            ])
            .arg(&json)
            .output()
            .unwrap(),
    );
    assert!(err.contains("input table 'j'"), "{err}");
    assert_eq!(sha256(&data), before);
    assert_eq!(
        std::fs::read_to_string(&json).unwrap(),
        "{\"a\": 1}\n{\"a\": 2}\n"
    );
}

#[test]
fn outputs_are_byte_identical_across_runs_and_partitions_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    // 13 × the census (423,293 rows) with a row number, in row groups of
    // 50,000 rows: the write is cut into several units.
    let data = dir.path().join("big.parquet");
    ok(&run_in(
        dir.path(),
        &format!(
            "COPY (SELECT CAST(row_number() OVER () AS BIGINT) AS id, c.* \
             FROM generate_series(1, 13) AS g CROSS JOIN census c) TO '{}' \
             OPTIONS ('format.max_row_group_size' '50000');",
            data.display()
        ),
        &["--table", &format!("census={}", adult())],
    ));
    let table = format!("census={}", data.display());
    let a = fit(
        dir.path(),
        "SELECT id, min_max_scale(age) AS age_s, z_score(fnlwgt) AS fnlwgt_z, \
         vocab_index(education) AS edu, feature_cross(education, occupation, 1000) AS x, \
         CAST(hours_per_week AS DOUBLE) / 0.0 AS inf_or_nan \
         FROM census WHERE age > 20",
        &table,
        &[],
    );
    for ext in ["parquet", "csv", "ndjson"] {
        let mut digests = Vec::new();
        for (i, partitions) in ["1", "2", "8", "2", "2"].iter().enumerate() {
            let out = dir.path().join(format!("f{i}.{ext}"));
            ok(&apply_env(&a, &table, &out, partitions));
            digests.push(sha256(&out));
        }
        assert!(
            digests.iter().all(|d| *d == digests[0]),
            "{ext}: {digests:?}"
        );
    }
    // The rows keep the input's order (ids ascending, the WHERE's gaps
    // aside): the output's ids, read in file order, are sorted.
    let mut one = skewless();
    one.env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "1");
    let ids = ok(&run_sql_with(
        one,
        dir.path(),
        "SELECT count(*) AS n, \
         sum(CASE WHEN id > prev THEN 1 ELSE 0 END) AS ascending \
         FROM (SELECT id, lag(id, 1, 0) OVER () AS prev FROM o);",
        &[
            "--table",
            &format!("o={}", dir.path().join("f0.parquet").display()),
            "--format",
            "csv",
        ],
    ));
    // 30,151 census rows have age > 20 (counted in Python over the CSV
    // export); 13 × 30,151 = 391,963, every one after a smaller id.
    assert_eq!(ids, "n,ascending\n391963,391963\n");
}

#[test]
fn apply_of_unlabeled_data_writes_the_served_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let census = format!("census={}", adult());
    let a = fit(
        dir.path(),
        "SELECT z_score(age) AS age_z, vocab_index(education) AS edu, \
         CASE WHEN income_bracket = '>50K' THEN 1 ELSE 0 END AS label, \
         split_of(concat_ws('|', age, fnlwgt), 'train', 0.5, 'test', 0.5) AS split \
         FROM census",
        &census,
        &["--label", "label"],
    );
    // The test set without its label column.
    let unlabeled = dir.path().join("unlabeled.parquet");
    ok(&run_in(
        dir.path(),
        &format!(
            "COPY (SELECT age, education, fnlwgt FROM t) TO '{}';",
            unlabeled.display()
        ),
        &["--table", &format!("t={}", test_set())],
    ));
    let out = dir.path().join("served.csv");
    let result = apply(&a, &format!("census={}", unlabeled.display()), &out, &[]);
    let summary = ok(&result);
    assert!(summary.contains("16,281 rows"), "{summary}");
    assert!(
        stderr(&result).contains(
            "note: the input has no 'income_bracket' of table 'census' (read only by \
             training-only outputs): writing the 2 served outputs, without label, split"
        ),
        "{}",
        stderr(&result)
    );
    // The same values as the labeled apply's served columns.
    let labeled = dir.path().join("labeled.csv");
    ok(&apply(&a, &format!("census={}", test_set()), &labeled, &[]));
    let served = std::fs::read_to_string(&out).unwrap();
    let full = std::fs::read_to_string(&labeled).unwrap();
    let first_two = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(served.lines().next(), Some("age_z,edu"));
    assert_eq!(first_two(&served), first_two(&full));
    // A column a served output reads is still required.
    let no_age = dir.path().join("no_age.parquet");
    ok(&run_in(
        dir.path(),
        &format!("COPY (SELECT education FROM t) TO '{}';", no_age.display()),
        &["--table", &format!("t={}", test_set())],
    ));
    let err = user_error(&apply(
        &a,
        &format!("census={}", no_age.display()),
        &dir.path().join("x.csv"),
        &[],
    ));
    assert!(
        err.contains("table 'census' has no column 'age', which the transform reads"),
        "{err}"
    );
    // A WHERE on the missing label would drop every row: refused.
    let b = fit(
        dir.path(),
        "SELECT z_score(age) AS age_z, income_bracket AS label FROM census \
         WHERE income_bracket IS NOT NULL",
        &census,
        &["--label", "label"],
    );
    let err = user_error(&apply(
        &b,
        &format!("census={}", unlabeled.display()),
        &dir.path().join("y.csv"),
        &[],
    ));
    assert!(
        err.contains(
            "the input has no column 'income_bracket', and the transform's WHERE reads it"
        ),
        "{err}"
    );
}

#[test]
fn one_json_convention_for_batch_and_serving() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.ndjson");
    std::fs::write(
        &rows,
        "{\"x\": 1.5, \"n\": 2}\n{\"x\": \"NaN\", \"n\": 0}\n{\"x\": null, \"n\": 3}\n\
         {\"x\": \"-Infinity\", \"n\": 1}\n{\"x\": 1e300, \"n\": 0}\n",
    )
    .unwrap();
    let table = format!("t={}", rows.display());
    // The float strings are read back as floats.
    let types = ok(&run_sql(
        dir.path(),
        "SELECT arrow_typeof(x) AS t, count(*) AS n FROM t GROUP BY 1;",
        &["--table", &table, "--format", "csv"],
    ));
    assert_eq!(types, "t,n\nFloat64,5\n");
    let a = fit(
        dir.path(),
        "SELECT x, impute(x, 'mean') AS filled, x / n AS ratio FROM t",
        &table,
        &[],
    );
    // Batch NDJSON.
    let out = dir.path().join("features.ndjson");
    ok(&apply(&a, &table, &out, &[]));
    let batch = std::fs::read_to_string(&out).unwrap();
    // Serving, line by line, on the same rows.
    let served = ok(&skewless()
        .arg("eval")
        .arg(&a)
        .arg("--input")
        .arg(&rows)
        .output()
        .unwrap());
    assert_eq!(batch, served);
    // mean of the finite values 1.5 and 1e300 = 5e299; NaN/0 = NaN,
    // -inf/1 = -inf, 1e300/0 = inf.
    assert_eq!(
        batch,
        "{\"x\":1.5,\"filled\":1.5,\"ratio\":0.75}\n\
         {\"x\":\"NaN\",\"filled\":\"NaN\",\"ratio\":\"NaN\"}\n\
         {\"x\":null,\"filled\":5e+299,\"ratio\":null}\n\
         {\"x\":\"-Infinity\",\"filled\":\"-Infinity\",\"ratio\":\"-Infinity\"}\n\
         {\"x\":1e+300,\"filled\":1e+300,\"ratio\":\"Infinity\"}\n"
    );
    // run --format ndjson and json follow it too, NULL fields present.
    let sql = "SELECT x, CAST(NULL AS DOUBLE) AS y FROM t WHERE n = 0;";
    assert_eq!(
        ok(&run_sql(
            dir.path(),
            sql,
            &["--table", &table, "--format", "ndjson"]
        )),
        "{\"x\":\"NaN\",\"y\":null}\n{\"x\":1e+300,\"y\":null}\n"
    );
    assert_eq!(
        ok(&run_sql(
            dir.path(),
            sql,
            &["--table", &table, "--format", "json"]
        )),
        "[{\"x\":\"NaN\",\"y\":null},{\"x\":1e+300,\"y\":null}]\n"
    );
    // Batch output read back: the same values.
    let back = ok(&run_sql(
        dir.path(),
        "SELECT count(*) AS n, sum(CASE WHEN isnan(filled) THEN 1 ELSE 0 END) AS nans, \
         arrow_typeof(max(ratio)) AS t FROM f;",
        &[
            "--table",
            &format!("f={}", out.display()),
            "--format",
            "csv",
        ],
    ));
    assert_eq!(back, "n,nans,t\n5,1,Float64\n");
    // A column NULL in the first 1,500 lines (more than DataFusion samples)
    // is typed by its first value, not as Null.
    let sparse = dir.path().join("sparse.ndjson");
    let mut lines = "{\"k\": 1, \"v\": null}\n".repeat(1500);
    lines.push_str("{\"k\": 2, \"v\": 2.5}\n");
    std::fs::write(&sparse, lines).unwrap();
    let read = ok(&run_sql(
        dir.path(),
        "SELECT arrow_typeof(v) AS t, count(v) AS n, sum(v) AS s, count(*) AS rows FROM s GROUP BY 1;",
        &[
            "--table",
            &format!("s={}", sparse.display()),
            "--format",
            "csv",
        ],
    ));
    assert_eq!(read, "t,n,s,rows\nFloat64,1,2.5,1501\n");
}

#[test]
fn formats_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let census = format!("census={}", adult());
    // COPY to .ndjson and .jsonl without STORED AS.
    for ext in ["ndjson", "jsonl"] {
        let sql = format!("COPY (SELECT age FROM census LIMIT 2) TO 'x.{ext}';");
        ok(&run_in(dir.path(), &sql, &["--table", &census]));
        let text = std::fs::read_to_string(dir.path().join(format!("x.{ext}"))).unwrap();
        assert_eq!(text, "{\"age\":39}\n{\"age\":50}\n", "{ext}");
    }
    // CREATE EXTERNAL TABLE without STORED AS: a file and a directory.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(adult(), data.join("a.parquet")).unwrap();
    let sql = format!(
        "CREATE EXTERNAL TABLE f LOCATION '{}';\nCREATE EXTERNAL TABLE d\n  LOCATION '{}/';\n\
         SELECT (SELECT count(*) FROM f) AS f, (SELECT count(*) FROM d) AS d;",
        adult(),
        data.display()
    );
    assert_eq!(
        ok(&run_in(dir.path(), &sql, &["--format", "csv"])),
        "f,d\n32561,32561\n"
    );
    // Unknown output extensions are errors, not silent Parquet.
    for name in ["x.txt", "x.parqet"] {
        let err = user_error(&run_in(
            dir.path(),
            &format!("COPY (SELECT 1 AS a) TO '{name}';"),
            &[],
        ));
        let ext = name.split_once('.').unwrap().1;
        assert!(
            err.contains(&format!(
                "'{name}': '.{ext}' is not an output format skewless writes"
            )),
            "{err}"
        );
        assert!(!dir.path().join(name).exists());
        let a = fit(
            dir.path(),
            "SELECT z_score(age) AS z FROM census",
            &census,
            &[],
        );
        let err = user_error(&apply(&a, &census, &dir.path().join(name), &[]));
        assert!(
            err.contains("is not an output format skewless writes"),
            "{err}"
        );
    }
    // A directory mixing formats is an error naming them.
    std::fs::write(data.join("b.csv"), "age\n1\n").unwrap();
    let err = user_error(&run_in(
        dir.path(),
        "SELECT count(*) FROM t;",
        &["--table", &format!("t={}", data.display())],
    ));
    assert!(
        err.contains(&format!(
            "the directory mixes data files: 1 Parquet file (.parquet, e.g. '{}'), 1 CSV file \
             (.csv, e.g. '{}')",
            data.join("a.parquet").display(),
            data.join("b.csv").display()
        )),
        "{err}"
    );
    let err = user_error(&run_in(
        dir.path(),
        &format!(
            "CREATE EXTERNAL TABLE m STORED AS PARQUET LOCATION '{}/';",
            data.display()
        ),
        &[],
    ));
    assert!(err.contains("the directory mixes data files"), "{err}");
}

#[test]
fn the_census_features_script_writes_under_target() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = skewless();
        cmd.current_dir(dir.path())
            .arg("run")
            .arg(root().join("sql/census_features.sql"))
            .args(["--table", &format!("census={}", adult())])
            .args(extra)
            .output()
            .unwrap()
    };
    ok(&run(&[]));
    let out = dir.path().join("target/census_features.parquet");
    let count = ok(&run_sql(
        dir.path(),
        "SELECT count(*) AS n, max(education_id) AS e FROM f;",
        &[
            "--table",
            &format!("f={}", out.display()),
            "--format",
            "csv",
        ],
    ));
    // 32,561 census rows; 16 educations → ids 0..15.
    assert_eq!(count, "n,e\n32561,15\n");
    let before = sha256(&out);
    user_error(&run(&[]));
    ok(&run(&["--overwrite"]));
    assert_eq!(sha256(&out), before, "the same bytes when run again");
}
