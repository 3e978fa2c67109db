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
    let summary = ok(&skewless()
        .arg("fit")
        .arg(&transform)
        .args(["--table", &format!("census={}", adult()), "--out"])
        .arg(&artifact)
        .output()
        .unwrap());
    assert!(
        summary.contains("split") && summary.contains("(training only)"),
        "{summary}"
    );
    let a = skewless::artifact::Artifact::load(&artifact).unwrap();
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
    ok(&skewless()
        .arg("apply")
        .arg(&artifact)
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
