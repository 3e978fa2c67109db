//! Instance selection and partitioning (issue 5, first part): deterministic
//! splits written per directory by `run` and `apply`, training-only in
//! artifacts and at serving.
//!
//! Expected counts: `split_of(fnlwgt, 'train', 0.7, 'eval', 0.2, 'test', 0.1)`
//! over the census, computed with PyPI pyfarmhash 0.5.1 (see
//! tests/slt/split_of.slt): train 22,598, eval 6,593, test 3,370.

use crate::common::*;

const SPLIT: &str = "split_of(fnlwgt, 'train', 0.7, 'eval', 0.2, 'test', 0.1)";

/// Rows per split of a directory written with `split=…/` subdirectories.
fn counts(dir: &std::path::Path, location: &std::path::Path) -> String {
    ok(&run_sql(
        dir,
        "SELECT split, count(*) AS n FROM s GROUP BY split ORDER BY split;",
        &[
            "--table",
            &format!("s={}", location.display()),
            "--format",
            "csv",
        ],
    ))
}

/// `skewless fit TRANSFORM --table census=… --out ARTIFACT`; its summary.
fn fit_census(transform: &std::path::Path, artifact: &std::path::Path) -> String {
    ok(&skewless()
        .arg("fit")
        .arg(transform)
        .args(["--table", &format!("census={}", adult()), "--out"])
        .arg(artifact)
        .output()
        .unwrap())
}

/// `skewless apply ARTIFACT --table census=… --partition-by split --out OUT/`.
fn apply_by_split(artifact: &std::path::Path, out: &std::path::Path) {
    ok(&skewless()
        .arg("apply")
        .arg(artifact)
        .args([
            "--table",
            &format!("census={}", adult()),
            "--partition-by",
            "split",
            "--out",
        ])
        .arg(format!("{}/", out.display()))
        .output()
        .unwrap());
}

#[test]
fn run_writes_each_split_to_its_own_directory_the_same_for_any_partitioning() {
    let dir = tempfile::tempdir().unwrap();
    for partitions in ["1", "2", "8"] {
        let out = dir.path().join(format!("p{partitions}"));
        let mut cmd = skewless();
        cmd.env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", partitions);
        let sql = format!(
            "COPY (SELECT *, {SPLIT} AS split FROM census) TO '{}/' \
             STORED AS PARQUET PARTITIONED BY (split);",
            out.display()
        );
        ok(&run_sql_with(
            cmd,
            dir.path(),
            &sql,
            &["--table", &format!("census={}", adult())],
        ));
        let mut subdirs: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        subdirs.sort();
        assert_eq!(subdirs, ["split=eval", "split=test", "split=train"]);
        assert_eq!(
            counts(dir.path(), &out),
            "split,n\neval,6593\ntest,3370\ntrain,22598\n",
            "partitions {partitions}"
        );
    }
}

#[test]
fn split_outputs_are_training_only_and_apply_writes_them_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("transform.sql");
    std::fs::write(
        &transform,
        format!("SELECT z_score(age) AS age_z, {SPLIT} AS split FROM census"),
    )
    .unwrap();
    let artifact = dir.path().join("a.json");
    let summary = fit_census(&transform, &artifact);
    assert!(
        summary.contains("split") && summary.contains("(training only)"),
        "{summary}"
    );
    let a = skewless::artifact::Artifact::load(&artifact, None).unwrap();
    let flags: Vec<(&str, bool)> = a
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.training_only))
        .collect();
    assert_eq!(flags, [("age_z", false), ("split", true)]);
    let e = skewless::serving::Evaluator::new(&a).unwrap();
    assert_eq!(e.outputs().len(), 1);
    assert_eq!(
        e.skipped(),
        [("split".to_string(), "uses split_of".to_string())]
    );
    assert!(!e.is_required(e.input_index("fnlwgt").unwrap()));
    assert_eq!(e.eval_json(r#"{"age": 40}"#).unwrap().split(':').count(), 2);

    let out = dir.path().join("features");
    apply_by_split(&artifact, &out);
    assert_eq!(
        counts(dir.path(), &out),
        "split,n\neval,6593\ntest,3370\ntrain,22598\n"
    );

    // Errors name the option and the column.
    let err = user_error(
        &skewless()
            .arg("apply")
            .arg(&artifact)
            .args(["--table", &format!("census={}", adult())])
            .args(["--partition-by", "fold", "--out"])
            .arg(dir.path().join("x/"))
            .output()
            .unwrap(),
    );
    assert!(
        err.contains(
            "--partition-by fold: the transform has no output column 'fold' (outputs: age_z, split)"
        ),
        "{err}"
    );
    let err = user_error(
        &skewless()
            .arg("apply")
            .arg(&artifact)
            .args(["--table", &format!("census={}", adult())])
            .args(["--partition-by", "split", "--out"])
            .arg(dir.path().join("x.parquet"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("names a file"), "{err}");
}

/// Every census column joined with '|': a key unique but for 24 duplicated
/// rows.
const KEY: &str = "concat_ws('|', age, workclass, fnlwgt, education, education_num, \
                   marital_status, occupation, relationship, race, gender, capital_gain, \
                   capital_loss, hours_per_week, native_country, income_bracket)";

fn adult_test() -> String {
    root()
        .join("examples/data/adult/adult_test.parquet")
        .display()
        .to_string()
}

#[test]
fn split_of_is_stable_when_rows_are_appended() {
    // The census rows keep their split when the 16,281 test rows are added:
    // the same counts and the same rows (sum of fnlwgt per split).
    let dir = tempfile::tempdir().unwrap();
    let query = |from: &str| {
        format!(
            "SELECT {SPLIT} AS split, count(*) AS n, sum(fnlwgt) AS w FROM ({from}) \
             WHERE src = 'old' GROUP BY split ORDER BY split;"
        )
    };
    let alone = ok(&run_sql(
        dir.path(),
        &query("SELECT 'old' AS src, * FROM census"),
        &["--table", &format!("census={}", adult()), "--format", "csv"],
    ));
    let appended = ok(&run_sql(
        dir.path(),
        &query("SELECT 'old' AS src, * FROM census UNION ALL SELECT 'new' AS src, * FROM more"),
        &[
            "--table",
            &format!("census={}", adult()),
            "--table",
            &format!("more={}", adult_test()),
            "--format",
            "csv",
        ],
    ));
    assert!(alone.starts_with("split,n,w\neval,6593,"), "{alone}");
    assert_eq!(alone, appended);
}

#[test]
fn stratified_splits_and_samples_are_the_same_for_any_partitioning() {
    // Counts and fnlwgt sums from Python over DuckDB's rows hashed with
    // pyfarmhash (see tests/slt/stratified.slt).
    let dir = tempfile::tempdir().unwrap();
    let sql = format!(
        "CREATE VIEW keyed AS SELECT {KEY} AS id, * FROM census;
         SELECT 'split' AS what, income_bracket || ' ' || s AS part, count(*) AS n, sum(fnlwgt) AS w
         FROM (SELECT income_bracket, fnlwgt,
                      stratified_split(id, income_bracket, 'train', 0.7, 'eval', 0.3) AS s
               FROM keyed)
         GROUP BY 1, 2
         UNION ALL
         SELECT 'sample', race, count(*), sum(fnlwgt) FROM keyed
         WHERE stratified_sample(id, race, 1400, 42, 'White', 9, 'Black', 2, 'Asian-Pac-Islander', 3)
         GROUP BY 1, 2
         UNION ALL
         SELECT 'oversample', income_bracket, sum(c), sum(c * fnlwgt)
         FROM (SELECT *, oversample(id, income_bracket, 42) AS c FROM keyed)
         GROUP BY 1, 2
         ORDER BY 1, 2;"
    );
    let expected = "what,part,n,w\n\
        oversample,<=50K,24720,4705226187\n\
        oversample,>50K,24720,4645016381\n\
        sample,Asian-Pac-Islander,300,48283496\n\
        sample,Black,200,45940426\n\
        sample,White,900,167026521\n\
        split,<=50K eval,7416,1403551047\n\
        split,<=50K train,17304,3301675140\n\
        split,>50K eval,2352,442913051\n\
        split,>50K train,5489,1031234154\n";
    for partitions in ["1", "2", "8"] {
        let mut cmd = skewless();
        cmd.env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", partitions)
            .env("DATAFUSION_EXECUTION_BATCH_SIZE", "1000");
        let out = ok(&run_sql_with(
            cmd,
            dir.path(),
            &sql,
            &["--table", &format!("census={}", adult()), "--format", "csv"],
        ));
        assert_eq!(out, expected, "partitions {partitions}");
    }
}

#[test]
fn a_transform_that_splits_and_oversamples_fits_applies_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("transform.sql");
    std::fs::write(
        &transform,
        format!(
            "WITH keyed AS (SELECT {KEY} AS id, * FROM census),
             sampled AS (
               SELECT z_score(age) AS age_z, income_bracket AS label,
                      stratified_split(id, income_bracket, 'train', 0.7, 'eval', 0.3) AS split,
                      oversample(id, income_bracket, 42) AS copies
               FROM keyed)
             SELECT age_z, label, split, unnest(range(copies)) AS copy FROM sampled"
        ),
    )
    .unwrap();
    let artifact = dir.path().join("a.json");
    let summary = fit_census(&transform, &artifact);
    assert!(
        summary.contains(
            "oversample of keyed.id BY keyed.income_bracket SEED 42: 2 strata ('<=50K' 24720, \
             '>50K' 7841)"
        ),
        "{summary}"
    );
    let a = skewless::artifact::Artifact::load(&artifact, None).unwrap();
    let flags: Vec<(&str, bool)> = a
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.training_only))
        .collect();
    assert_eq!(
        flags,
        [
            ("age_z", false),
            ("label", false),
            ("split", true),
            ("copy", true)
        ]
    );
    // Serving ignores the split and the copies: one request, one row.
    let e = skewless::serving::Evaluator::new(&a).unwrap();
    assert_eq!(
        e.skipped(),
        [
            (
                "split".to_string(),
                "uses stratified_split_with".to_string()
            ),
            ("copy".to_string(), "uses sample_with".to_string())
        ]
    );
    // age 40: (40 − 38.58164675532078) · (1 / 13.640223092304277).
    assert_eq!(
        e.eval_json(r#"{"age": 40, "income_bracket": ">50K"}"#)
            .unwrap(),
        r#"{"age_z":0.10398314126397556,"label":">50K"}"#
    );

    // Batch: the split is exact and every '>50K' row appears 3 or 4 times
    // (1,197 of them 4 times: 832 in train, 365 in eval, from Python).
    let out = dir.path().join("features");
    apply_by_split(&artifact, &out);
    let counts = ok(&run_sql(
        dir.path(),
        "SELECT split, label, count(*) AS n, max(copy) AS m FROM s GROUP BY 1, 2 ORDER BY 1, 2;",
        &[
            "--table",
            &format!("s={}", out.display()),
            "--format",
            "csv",
        ],
    ));
    assert_eq!(
        counts,
        "split,label,n,m\n\
         eval,<=50K,7416,0\n\
         eval,>50K,7421,3\n\
         train,<=50K,17304,0\n\
         train,>50K,17299,3\n"
    );

    // UNNEST next to other computed columns is not written back faithfully
    // by DataFusion's SQL writer: fit refuses rather than write a wrong
    // artifact.
    std::fs::write(
        &transform,
        format!(
            "WITH keyed AS (SELECT {KEY} AS id, * FROM census)
             SELECT z_score(age) AS age_z, unnest(range(oversample(id, income_bracket, 42))) AS copy
             FROM keyed"
        ),
    )
    .unwrap();
    let err = user_error(
        &skewless()
            .arg("fit")
            .arg(&transform)
            .args([
                "--batch-only",
                "--table",
                &format!("census={}", adult()),
                "--out",
            ])
            .arg(dir.path().join("b.json"))
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("cannot be written back as SQL that plans the same"),
        "{err}"
    );
    assert!(!dir.path().join("b.json").exists());
}

#[test]
fn the_census_splits_script_runs_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = skewless();
    cmd.current_dir(dir.path());
    let out = ok(&cmd
        .arg("run")
        .arg(root().join("sql/census_splits.sql"))
        .args(["--table", &format!("census={}", adult()), "--format", "csv"])
        .output()
        .unwrap());
    // allocate() by hand: 24,720 × (0.7, 0.2, 0.1) = 17,304 / 4,944 / 2,472;
    // 7,841 × … = 5,488.7 / 1,568.2 / 784.1 → 5,489 / 1,568 / 784.
    assert_eq!(
        out,
        "split,income_bracket,n\n\
         eval,<=50K,4944\neval,>50K,1568\ntest,<=50K,2472\ntest,>50K,784\n\
         train,<=50K,17304\ntrain,>50K,5489\n\
         income_bracket,n,most_copies\n<=50K,17304,1\n>50K,17304,4\n"
    );
    let sample = ok(&run_sql(
        dir.path(),
        "SELECT race, count(*) AS n FROM s GROUP BY race ORDER BY race;",
        &[
            "--table",
            &format!(
                "s={}",
                dir.path().join("target/census_sample.parquet").display()
            ),
            "--format",
            "csv",
        ],
    ));
    assert_eq!(
        sample,
        "race,n\nAsian-Pac-Islander,300\nBlack,200\nWhite,900\n"
    );
    assert_eq!(
        counts(dir.path(), &dir.path().join("target/census_splits")),
        "split,n\neval,6512\ntest,3256\ntrain,22793\n"
    );
    // Run again: the outputs exist, so the script stops at its first COPY
    // (nothing duplicated); with --overwrite it replaces them.
    let mut cmd = skewless();
    cmd.current_dir(dir.path());
    let err = user_error(
        &cmd.arg("run")
            .arg(root().join("sql/census_splits.sql"))
            .args(["--table", &format!("census={}", adult())])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("'target/census_splits/' already exists; pass --overwrite to replace it"),
        "{err}"
    );
    let mut cmd = skewless();
    cmd.current_dir(dir.path());
    ok(&cmd
        .arg("run")
        .arg(root().join("sql/census_splits.sql"))
        .args(["--table", &format!("census={}", adult()), "--overwrite"])
        .output()
        .unwrap());
    assert_eq!(
        counts(dir.path(), &dir.path().join("target/census_splits")),
        "split,n\neval,6512\ntest,3256\ntrain,22793\n"
    );
}

#[test]
fn a_fitted_sample_applied_to_new_data_keeps_its_strata_and_thresholds() {
    // Fit: 100 White rows (the other races have weight 0). Applied to the
    // 16,281 test rows, rows are kept by the same threshold: 47 White rows
    // (fnlwgt sum 8,867,306, from Python: test keys salted with seed 7 below
    // the 101st smallest salted hash of the census's White rows), and no row
    // of another race, even one hashing below every fitted hash.
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("sample.sql");
    std::fs::write(
        &transform,
        format!(
            "WITH keyed AS (SELECT {KEY} AS id, * FROM census)
             SELECT race, fnlwgt FROM keyed
             WHERE stratified_sample(id, race, 100, 7, 'White', 1)"
        ),
    )
    .unwrap();
    let artifact = dir.path().join("sample.json");
    fit_census(&transform, &artifact);
    let out = dir.path().join("sampled.parquet");
    ok(&skewless()
        .arg("apply")
        .arg(&artifact)
        .args(["--table", &format!("census={}", adult_test()), "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let counts = ok(&run_sql(
        dir.path(),
        "SELECT race, count(*) AS n, sum(fnlwgt) AS w FROM s GROUP BY race;",
        &[
            "--table",
            &format!("s={}", out.display()),
            "--format",
            "csv",
        ],
    ));
    assert_eq!(counts, "race,n,w\nWhite,47,8867306\n");
}
