//! `skewless fit`: the artifact, its determinism and its integrity.
//! Census figures from DuckDB: 395 rows have age < 18, so the transform below
//! sees 32,166 rows; their ages span 18..90; 16 educations, HS-grad first.

use std::path::Path;

use skewless::artifact::{Artifact, StatisticValue};

use crate::common::*;

const TRANSFORM: &str = "-- a small census transform\n\
    SELECT min_max_scale(age) AS age_s, z_score(hours_per_week) AS hours_z,\n\
           vocab_index(education) AS edu, quantile_bucket(age, 4) AS age_q,\n\
           one_hot(gender) AS gender_1h, bucketize(age, [25, 50]) AS age_b,\n\
           CASE WHEN income_bracket = '>50K' THEN 1 ELSE 0 END AS label\n\
    FROM census WHERE age >= 18\n";

fn fit(dir: &Path, partitions: &str, out: &str) -> std::process::Output {
    let transform = dir.join("transform.sql");
    std::fs::write(&transform, TRANSFORM).unwrap();
    let mut cmd = skewless();
    cmd.env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", partitions)
        .arg("fit")
        .arg(&transform)
        .args(["--table", &format!("census={}", adult())])
        .args(["--label", "label", "--out"])
        .arg(dir.join(out));
    cmd.output().unwrap()
}

#[test]
fn artifact_records_the_fit() {
    let dir = tempfile::tempdir().unwrap();
    let summary = ok(&fit(dir.path(), "2", "a.json"));
    assert!(summary.contains("on 32,166 rows"), "{summary}");
    assert!(
        summary.contains("label                        Int64  (label, training only)"),
        "{summary}"
    );
    let a = Artifact::load(&dir.path().join("a.json"), None).unwrap();
    assert_eq!(a.format_version, 2);
    assert_eq!(a.rows_seen, [32166]);
    // The training profile: every row of the table (serving applies no
    // WHERE), the inputs served outputs read, and what the WHERE keeps
    // (the 32,166 rows of the statistics pass).
    let profile = a.profile.as_ref().expect("a profile");
    assert_eq!(profile.table, "census");
    assert_eq!(profile.rows, 32561);
    let columns: Vec<(&str, bool)> = profile
        .columns
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                matches!(c.counts, skewless::profile::Counts::Categorical { .. }),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [
            ("age", false),
            ("education", true),
            ("gender", true),
            ("hours_per_week", false)
        ]
    );
    let filter = profile.filter.as_ref().expect("the WHERE");
    assert_eq!(
        (filter.predicate.as_str(), filter.kept),
        ("(census.age >= 18)", 32166)
    );
    assert!(a.sql.starts_with("SELECT min_max_scale(age) AS age_s"));
    let names: Vec<_> = a.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "age_s",
            "hours_z",
            "edu",
            "age_q",
            "gender_1h",
            "age_b",
            "label"
        ]
    );
    let types: Vec<_> = a.outputs.iter().map(|o| o.data_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "Float64",
            "Float64",
            "Int64",
            "Int64",
            "List(Float32)",
            "Int64",
            "Int64"
        ]
    );
    assert_eq!(a.outputs[0].reads, ["age"]);
    assert_eq!(a.outputs[6].reads, ["income_bracket"]);
    assert!(a.outputs[6].training_only && !a.outputs[0].training_only);
    assert_eq!(a.inputs.len(), 1);
    assert_eq!(a.inputs[0].name, "census");
    // The columns the transform reads, in the table's order.
    let read: Vec<_> = a.inputs[0]
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        read,
        [
            "age",
            "education",
            "gender",
            "hours_per_week",
            "income_bracket"
        ]
    );
    assert_eq!(a.inputs[0].columns[0].data_type, "Int64");

    // Statistics with provenance.
    assert_eq!(a.statistics.len(), 5);
    assert_eq!(a.statistics[0].functions, ["min_max_scale"]);
    assert_eq!(a.statistics[0].argument, "census.age");
    assert_eq!(
        a.statistics[0].value,
        StatisticValue::MinMax {
            count: 32166,
            nulls: 0,
            non_finite: 0,
            min: Some(18.0),
            max: Some(90.0)
        }
    );
    match &a.statistics[2].value {
        StatisticValue::Vocabulary { values, counts } => {
            assert_eq!(values.len(), 16);
            assert_eq!(values[0], "HS-grad");
            // DuckDB: 10,493 HS-grad rows with age >= 18.
            assert_eq!(counts[0], 10_493);
        }
        other => panic!("not a vocabulary: {other:?}"),
    }
    assert!(
        a.fitted_sql
            .contains("min_max_scale_with(census.age, 18.0, 90.0) AS age_s")
    );
    assert!(
        a.fitted_sql
            .contains("one_hot_with(census.gender, ['Male', 'Female']) AS gender_1h")
    );
}

#[test]
fn the_fitted_sql_runs_and_matches_the_transform() {
    let dir = tempfile::tempdir().unwrap();
    ok(&fit(dir.path(), "2", "a.json"));
    let a = Artifact::load(&dir.path().join("a.json"), None).unwrap();
    let table = format!("census={}", adult());
    let digest = |select: &str| {
        format!(
            "SELECT count(*), sum(age_s), sum(hours_z), sum(edu), sum(age_q), sum(age_b), \
             sum(label), sum(array_sum(gender_1h)) FROM ({select})"
        )
    };
    let original = ok(&run_sql(
        dir.path(),
        &digest(TRANSFORM.trim_start_matches("-- a small census transform\n")),
        &["--table", &table, "--format", "csv"],
    ));
    let fitted = ok(&run_sql(
        dir.path(),
        &digest(&a.fitted_sql),
        &["--table", &table, "--format", "csv"],
    ));
    assert_eq!(original, fitted);
    assert!(original.contains("\n32166,"), "{original}");
}

#[test]
fn refitting_is_byte_identical_across_partitionings() {
    let dir = tempfile::tempdir().unwrap();
    for (partitions, out) in [("1", "p1.json"), ("2", "p2.json"), ("8", "p8.json")] {
        ok(&fit(dir.path(), partitions, out));
    }
    let p1 = std::fs::read(dir.path().join("p1.json")).unwrap();
    assert_eq!(p1, std::fs::read(dir.path().join("p2.json")).unwrap());
    assert_eq!(p1, std::fs::read(dir.path().join("p8.json")).unwrap());
}

#[test]
fn tampered_or_truncated_artifacts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    ok(&fit(dir.path(), "2", "a.json"));
    let path = dir.path().join("a.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("\"max\": 90.0", "\"max\": 91.0", 1);
    assert_ne!(tampered, text);
    std::fs::write(&path, &tampered).unwrap();
    let err = Artifact::load(&path, None).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = Artifact::load(&path, None).unwrap_err().to_string();
    assert!(err.contains("is the file complete?"), "{err}");
}

#[test]
fn fit_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two.sql");
    std::fs::write(&two, "SELECT 1; SELECT 2;").unwrap();
    let err = user_error(
        &skewless()
            .arg("fit")
            .arg(&two)
            .args(["--out", "/dev/null"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("a transform holds exactly one SELECT, found 2 statements"),
        "{err}"
    );
    let transform = dir.path().join("t.sql");
    std::fs::write(&transform, TRANSFORM).unwrap();
    let err = user_error(
        &skewless()
            .arg("fit")
            .arg(&transform)
            .args(["--table", &format!("census={}", adult())])
            .args(["--label", "income", "--out"])
            .arg(dir.path().join("x.json"))
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("--label income: the transform has no output column 'income'"),
        "{err}"
    );
}

fn adult_test() -> String {
    root()
        .join("examples/data/adult/adult_test.parquet")
        .display()
        .to_string()
}

#[test]
fn apply_runs_the_fitted_transform_on_new_data() {
    let dir = tempfile::tempdir().unwrap();
    ok(&fit(dir.path(), "2", "a.json"));
    let features = dir.path().join("test_features.parquet");
    let out = ok(&skewless()
        .arg("apply")
        .arg(dir.path().join("a.json"))
        .args(["--table", &format!("census={}", adult_test())])
        .arg("--out")
        .arg(&features)
        .output()
        .unwrap());
    // DuckDB on adult_test.parquet: 16,081 rows with age >= 18, ages 18..90,
    // 3,846 with income '>50K'.
    assert!(out.contains(": 16,081 rows in"), "{out}");
    // The min is compared, not printed: Parquet statistics may store 0.0 as -0.0.
    let digest =
        "SELECT count(*) AS n, min(age_s) = 0.0 AS lo, max(age_s) AS hi, sum(label) AS l FROM f";
    let got = ok(&run_sql(
        dir.path(),
        digest,
        &[
            "--table",
            &format!("f={}", features.display()),
            "--format",
            "csv",
        ],
    ));
    assert_eq!(got, "n,lo,hi,l\n16081,true,1.0,3846\n");

    // NDJSON by extension: one object per row.
    let apply_to = |path: &std::path::Path| {
        skewless()
            .arg("apply")
            .arg(dir.path().join("a.json"))
            .args(["--table", &format!("census={}", adult_test())])
            .arg("--out")
            .arg(path)
            .output()
            .unwrap()
    };
    let ndjson = dir.path().join("features.ndjson");
    ok(&apply_to(&ndjson));
    let text = std::fs::read_to_string(&ndjson).unwrap();
    assert_eq!(text.lines().count(), 16_081);
    assert!(text.starts_with("{\"age_s\":"), "{}", &text[..100]);
    // CSV cannot hold the one-hot lists: refused before any work.
    let csv = dir.path().join("features.csv");
    let err = user_error(&apply_to(&csv));
    assert!(
        err.contains("output 'gender_1h' is List(Float32), which CSV cannot hold"),
        "{err}"
    );
    assert!(!csv.exists());
}

#[test]
fn apply_checks_the_input_schema_first() {
    let dir = tempfile::tempdir().unwrap();
    ok(&fit(dir.path(), "2", "a.json"));
    let apply = |table: &str| {
        skewless()
            .arg("apply")
            .arg(dir.path().join("a.json"))
            .args(["--table", table, "--out"])
            .arg(dir.path().join("out.parquet"))
            .output()
            .unwrap()
    };
    let missing = dir.path().join("missing.csv");
    std::fs::write(
        &missing,
        "age,hours_per_week,gender,income_bracket\n30,40,Male,>50K\n",
    )
    .unwrap();
    let err = user_error(&apply(&format!("census={}", missing.display())));
    assert!(
        err.contains(
            "table 'census' has no column 'education', which the transform reads (fitted as Utf8)"
        ),
        "{err}"
    );
    let wrong = dir.path().join("wrong.csv");
    std::fs::write(
        &wrong,
        "age,education,hours_per_week,gender,income_bracket\nthirty,HS-grad,40,Male,>50K\n",
    )
    .unwrap();
    let err = user_error(&apply(&format!("census={}", wrong.display())));
    assert!(
        err.contains(
            "column 'age' of table 'census' is Utf8, but the transform was fitted on Int64"
        ),
        "{err}"
    );
    let err = user_error(&apply(&format!("other={}", adult_test())));
    assert!(
        err.contains(
            "the transform reads table 'census': register it with --table census=LOCATION"
        ),
        "{err}"
    );
    assert!(!dir.path().join("out.parquet").exists(), "nothing written");
}

#[test]
fn strings_have_one_spelling_and_older_artifacts_still_apply_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let transform = std::fs::read_to_string(root().join("sql/census_wide_deep.sql")).unwrap();
    let path = crate::common::fit(
        d,
        &transform,
        &format!("census={}", adult()),
        &["--label", "label"],
    );
    let artifact = Artifact::load(&path, None).unwrap();
    // Parquet strings are read as Utf8View here and as Utf8 on a cluster:
    // the artifact says Utf8 either way.
    let education = artifact.inputs[0]
        .columns
        .iter()
        .find(|c| c.name == "education")
        .unwrap();
    assert_eq!(education.data_type, "Utf8");
    assert!(!artifact.to_json().contains("Utf8View"));
    // An artifact written before (strings as Utf8View) loads, applies and
    // serves as before: the same features, the same bytes.
    let mut old = artifact.clone();
    let view = |t: &mut String| {
        if t == "Utf8" {
            *t = "Utf8View".into();
        }
    };
    old.inputs
        .iter_mut()
        .flat_map(|i| i.columns.iter_mut())
        .for_each(|c| view(&mut c.data_type));
    old.outputs.iter_mut().for_each(|o| view(&mut o.data_type));
    if let Some(p) = old.profile.as_mut() {
        p.columns.iter_mut().for_each(|c| view(&mut c.data_type));
    }
    let old_path = d.join("old.json");
    std::fs::write(&old_path, old.to_json()).unwrap();
    assert!(
        std::fs::read_to_string(&old_path)
            .unwrap()
            .contains("\"Utf8View\"")
    );
    let apply = |artifact: &Path, out: &str| {
        ok(&skewless()
            .arg("apply")
            .arg(artifact)
            .args(["--table", &format!("census={}", adult_test()), "--out"])
            .arg(d.join(out))
            .output()
            .unwrap());
        std::fs::read(d.join(out)).unwrap()
    };
    assert!(apply(&path, "new.parquet") == apply(&old_path, "old.parquet"));
    let rows = concat!(
        r#"{"age": 25, "workclass": "Private", "education": "11th", "education_num": 7, "#,
        r#""occupation": "Machine-op-inspct", "relationship": "Own-child", "gender": "Male", "#,
        r#""capital_gain": 0, "capital_loss": 0, "hours_per_week": 40, "native_country": "United-States"}"#,
        "\n"
    );
    let served = ok(&eval_with_input(&path, &[], rows));
    assert!(served.contains("\"education_id\":"), "{served}");
    assert_eq!(ok(&eval_with_input(&old_path, &[], rows)), served);
}
