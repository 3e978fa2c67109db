//! Artifacts are data, never code: an edited artifact whose checksum was
//! recomputed is still refused unless its SQL is exactly what fitting its
//! transform with its statistics gives; signatures; checksums that survive
//! reformatting and say what changed.

use std::path::{Path, PathBuf};

use skewless::artifact::Artifact;

use crate::common::*;

const TRANSFORM: &str = "SELECT min_max_scale(age) AS age_s, vocab_index(education) AS edu, \
     z_score(hours_per_week) AS hours_z, \
     CASE WHEN income_bracket = '>50K' THEN 1 ELSE 0 END AS label FROM census";

fn fit(dir: &Path, extra: &[&str]) -> PathBuf {
    let table = format!("census={}", adult());
    let extra: Vec<&str> = ["--label", "label"].iter().chain(extra).copied().collect();
    crate::common::fit(dir, TRANSFORM, &table, &extra)
}

/// Edits an artifact as an attacker would: the struct changed, then
/// written back with valid digests and checksum.
fn tamper(path: &Path, edit: impl FnOnce(&mut Artifact)) {
    let mut a: Artifact = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut a);
    std::fs::write(path, a.to_json()).unwrap();
}

fn apply(dir: &Path, artifact: &Path, extra: &[&str]) -> std::process::Output {
    skewless()
        .arg("apply")
        .arg(artifact)
        .args(["--table", &format!("census={}", adult())])
        .arg("--out")
        .arg(dir.join("features.parquet"))
        .args(extra)
        .output()
        .unwrap()
}

fn eval(artifact: &Path, extra: &[&str]) -> std::process::Output {
    crate::common::eval_with_input(
        artifact,
        extra,
        "{\"age\": 40, \"education\": \"Bachelors\", \"hours_per_week\": 40}\n",
    )
}

/// Both `apply` and `eval` refuse the artifact, with `message` in the error,
/// and nothing is written.
#[track_caller]
fn refused_everywhere(dir: &Path, artifact: &Path, message: &str) {
    let err = user_error(&apply(dir, artifact, &[]));
    assert!(err.contains("refused") && err.contains(message), "{err}");
    assert!(!dir.join("features.parquet").exists());
    let err = user_error(&eval(artifact, &[]));
    assert!(err.contains("refused") && err.contains(message), "{err}");
}

#[test]
fn fitted_sql_that_writes_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = fit(dir.path(), &[]);
    let target = dir.path().join("pwned.csv");
    tamper(&a, |a| {
        a.fitted_sql = format!("COPY (SELECT 1 AS x) TO '{}'", target.display());
    });
    refused_everywhere(
        dir.path(),
        &a,
        "fitted_sql must be one SELECT, not a COPY statement",
    );
    assert!(!target.exists(), "the COPY must not run");
}

#[test]
fn fitted_sql_that_reads_other_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = fit(dir.path(), &[]);
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "age,education,hours_per_week\n1,x,2\n").unwrap();
    // DDL that would register a file under the input's name.
    tamper(&a, |a| {
        a.fitted_sql = format!(
            "CREATE EXTERNAL TABLE census STORED AS CSV LOCATION '{}'",
            secret.display()
        );
    });
    refused_everywhere(
        dir.path(),
        &a,
        "fitted_sql must be one SELECT, not a CREATE EXTERNAL TABLE statement",
    );
    // A file path as a table.
    let a = fit(dir.path(), &[]);
    tamper(&a, |a| {
        a.fitted_sql = a
            .fitted_sql
            .replace("FROM census", &format!("FROM '{}'", secret.display()));
    });
    refused_everywhere(dir.path(), &a, "secret.csv', which is not a declared input");
    // A table function.
    let a = fit(dir.path(), &[]);
    tamper(&a, |a| {
        a.fitted_sql = a.fitted_sql.replace(
            "FROM census",
            "FROM census CROSS JOIN generate_series(1, 3)",
        );
    });
    refused_everywhere(
        dir.path(),
        &a,
        "fitted_sql does not plan over the declared inputs (census(age, education, \
         hours_per_week, income_bracket)): table function \
         'generate_series' not found",
    );
    // Two statements.
    let a = fit(dir.path(), &[]);
    tamper(&a, |a| {
        a.fitted_sql
            .push_str("; SET datafusion.execution.batch_size = 1")
    });
    refused_everywhere(
        dir.path(),
        &a,
        "fitted_sql must be one SELECT, not 2 statements (a SELECT; a SET statement)",
    );
}

#[test]
fn fitted_sql_must_follow_from_the_transform_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    // SELECT * although outputs[] says otherwise.
    let a = fit(dir.path(), &[]);
    tamper(&a, |a| a.fitted_sql = "SELECT * FROM census".into());
    refused_everywhere(
        dir.path(),
        &a,
        "fitted_sql is not what the transform (sql) fitted with the recorded statistics gives",
    );
    // A literal changed: the census ages span 17..90.
    let a = fit(dir.path(), &[]);
    let text = std::fs::read_to_string(&a).unwrap();
    assert!(
        text.contains("min_max_scale_with(census.age, 17.0, 90.0)"),
        "{text}"
    );
    tamper(&a, |a| {
        a.fitted_sql = a.fitted_sql.replace("17.0, 90.0", "0.0, 90.0");
    });
    refused_everywhere(dir.path(), &a, "expected …");
    // The statistic changed to match: consistent data, so accepted — this
    // is what a signature is for.
    let a = fit(dir.path(), &[]);
    tamper(&a, |a| {
        a.fitted_sql = a.fitted_sql.replace("17.0, 90.0", "0.0, 90.0");
        if let skewless::artifact::StatisticValue::MinMax { min, .. } = &mut a.statistics[0].value {
            *min = Some(0.0);
        }
    });
    ok(&apply(dir.path(), &a, &[]));
    std::fs::remove_file(dir.path().join("features.parquet")).unwrap();
    // The transform itself changed to read a column it did not declare.
    let a = fit(dir.path(), &[]);
    tamper(&a, |a| {
        a.sql = a.sql.replace("z_score(hours_per_week)", "z_score(fnlwgt)")
    });
    refused_everywhere(dir.path(), &a, "Schema error: No field named fnlwgt");
    // Outputs that do not match the plan.
    let a = fit(dir.path(), &[]);
    tamper(&a, |a| a.outputs[1].data_type = "Utf8".into());
    refused_everywhere(
        dir.path(),
        &a,
        "fitted_sql gives the columns (age_s Float64, edu Int64,",
    );
}

#[test]
fn signatures_detect_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let other = dir.path().join("other");
    std::fs::write(&other, "fedcba9876543210fedcba9876543210").unwrap();
    let k = key.to_str().unwrap();
    let a = fit(dir.path(), &["--sign-key", k]);
    let text = std::fs::read_to_string(&a).unwrap();
    assert!(text.contains("\"signature\": \"hmac-sha256:"), "{text}");
    ok(&apply(dir.path(), &a, &["--verify-key", k]));
    let out = eval(&a, &["--verify-key", k]);
    assert!(ok(&out).starts_with("{\"age_s\":"), "{}", stdout(&out));
    // The key from the environment.
    let out = eval(&a, &[]);
    ok(&out);
    // Another key.
    let err = user_error(&eval(&a, &["--verify-key", other.to_str().unwrap()]));
    assert!(err.contains("the signature does not verify"), "{err}");
    // A consistent edit with a recomputed checksum: the signature fails.
    tamper(&a, |a| {
        a.fitted_sql = a.fitted_sql.replace("17.0, 90.0", "0.0, 90.0");
        if let skewless::artifact::StatisticValue::MinMax { min, .. } = &mut a.statistics[0].value {
            *min = Some(0.0);
        }
    });
    let err = user_error(&apply(dir.path(), &a, &["--verify-key", k]));
    assert!(err.contains("the signature does not verify"), "{err}");
    // An unsigned artifact is refused when a key is given.
    let unsigned = fit(dir.path(), &[]);
    let err = user_error(&apply(dir.path(), &unsigned, &["--verify-key", k]));
    assert!(err.contains("the artifact is not signed"), "{err}");
    let mut cmd = skewless();
    cmd.env("SKEWLESS_VERIFY_KEY", &key);
    let err = user_error(&cmd.arg("eval").arg(&unsigned).output().unwrap());
    assert!(err.contains("the artifact is not signed"), "{err}");
    // A key too short to be a secret.
    let short = dir.path().join("short");
    std::fs::write(&short, "secret\n").unwrap();
    let err = user_error(&apply(
        dir.path(),
        &unsigned,
        &["--verify-key", short.to_str().unwrap()],
    ));
    assert!(
        err.contains("a signing key needs at least 16 bytes, this one has 6"),
        "{err}"
    );
}

#[test]
fn checksums_survive_reformatting_and_name_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let a = fit(dir.path(), &[]);
    let text = std::fs::read_to_string(&a).unwrap();
    // Compact (as `jq -c` writes it), keys reordered, and CRLF line ends.
    let compact = dir.path().join("compact.json");
    let script = format!(
        "import json; d = json.load(open('{}')); \
         open('{}', 'w').write(json.dumps(d, sort_keys=True, separators=(',', ':')))",
        a.display(),
        compact.display()
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    ok(&eval(&compact, &[]));
    let crlf = dir.path().join("crlf.json");
    std::fs::write(&crlf, text.replace('\n', "\r\n")).unwrap();
    ok(&eval(&crlf, &[]));
    if let Ok(out) = std::process::Command::new("jq")
        .arg("-c")
        .arg(".")
        .arg(&a)
        .output()
    {
        // jq 1.6 rewrites numbers (17.0 → 17, 17 digits for others).
        let jq = dir.path().join("jq.json");
        std::fs::write(&jq, &out.stdout).unwrap();
        ok(&eval(&jq, &[]));
    }
    // An edited value without a new checksum: the field is named.
    let edited = text.replacen("\"max\": 90.0", "\"max\": 91.0", 1);
    assert_ne!(edited, text);
    std::fs::write(&a, &edited).unwrap();
    let err = user_error(&eval(&a, &[]));
    assert!(
        err.contains("checksum mismatch (changed since it was written: statistics[0])"),
        "{err}"
    );
    let edited = text.replacen("\"sql\": \"SELECT", "\"sql\": \"SELECT  ", 1);
    std::fs::write(&a, &edited).unwrap();
    let err = user_error(&eval(&a, &[]));
    assert!(err.contains("changed since it was written: sql)"), "{err}");
    // A key given twice.
    let twice = text.replacen(
        "\"format_version\": 2,",
        "\"format_version\": 2, \"format_version\": 2,",
        1,
    );
    std::fs::write(&a, &twice).unwrap();
    let err = user_error(&eval(&a, &[]));
    assert!(err.contains("key 'format_version' appears twice"), "{err}");
}

#[test]
fn version_1_artifacts_still_load() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let a = fit(dir.path(), &[]);
    // A version 1 artifact: no digests, a checksum over the file's bytes.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.insert("format_version".into(), 1.into());
    o.remove("digests");
    o.insert("checksum".into(), "".into());
    let mut text = serde_json::to_string_pretty(&v).unwrap();
    text.push('\n');
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let text = text.replace(
        "\"checksum\": \"\"",
        &format!("\"checksum\": \"sha256:{hex}\""),
    );
    std::fs::write(&a, &text).unwrap();
    ok(&eval(&a, &[]));
    std::fs::write(&a, text.replace("90.0", "91.0")).unwrap();
    let err = user_error(&eval(&a, &[]));
    assert!(
        err.contains("the (version 1) artifact was modified or damaged"),
        "{err}"
    );
}
