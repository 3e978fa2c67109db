//! `skewless validate`: the census transform's training profile against the
//! census test set, a deliberately skewed copy of it, a copy missing a
//! column, and an earlier profile; the reports' numbers against oracles
//! computed outside skewless (DuckDB's counts, the published formulas in
//! Python: see each test).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{adult, fit, ok, root, run_sql, skewless, stderr, stdout};

#[test]
fn the_profile_rides_along_with_the_statistics_pass() {
    // The census transform's statistics are computed over the table as it
    // is: its profile is counted in the same pass. Under a WHERE, the
    // statistics take it as a FILTER clause in that same pass (and the
    // profile counts every row). Statistics over a subquery's columns take
    // a pass of their own, and the profile another. All three give the
    // same profile, and the WHERE's statistics are those of a fit without
    // a profile (the statistics pass as it always was).
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.sql");
    let run = |sql: &str, out: &str, extra: &[&str]| {
        std::fs::write(&t, sql).unwrap();
        let out = dir.path().join(out);
        let text = ok(&skewless()
            .arg("fit")
            .arg(&t)
            .args(["--table", &format!("census={}", adult()), "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap());
        (text, json(&out))
    };
    let along = "training profile: 2 columns of census (counted in the statistics pass)";
    let apart = "training profile: 2 columns of census (counted in a pass of its own)";
    let (text, a1) = run(
        "SELECT z_score(age) AS a, vocab_index(education) AS e FROM census",
        "1.json",
        &[],
    );
    assert!(text.contains(along), "{text}");
    let p1 = &a1["profile"];
    assert_eq!(p1["rows"], 32561);
    assert_eq!(p1["filter"], serde_json::Value::Null);

    let under_where = "SELECT z_score(age) AS a, vocab_index(education) AS e \
                       FROM census WHERE age < 60";
    let (text, a2) = run(under_where, "2.json", &[]);
    assert!(text.contains(along), "{text}");
    let p2 = &a2["profile"];
    assert_eq!(p1["columns"], p2["columns"]);
    assert_eq!(p2["rows"], 32561);
    // DuckDB: 2,644 of the 32,561 rows have age >= 60.
    assert_eq!(p2["filter"]["predicate"], "(census.age < 60)");
    assert_eq!(p2["filter"]["kept"], 32561 - 2644);
    let (text, a3) = run(under_where, "3.json", &["--profile", "none"]);
    assert!(!text.contains("training profile"), "{text}");
    assert_eq!(a3["profile"], serde_json::Value::Null);
    assert_eq!(a2["statistics"], a3["statistics"]);
    assert_eq!(a2["fitted_sql"], a3["fitted_sql"]);
    // DuckDB: avg(age) over the 29,917 rows with age < 60.
    assert!(
        a2["fitted_sql"]
            .as_str()
            .unwrap()
            .contains("36.1242103152054"),
        "{}",
        a2["fitted_sql"]
    );

    let (text, a4) = run(
        "SELECT z_score(a) AS a, vocab_index(education) AS e \
         FROM (SELECT age AS a, education FROM census WHERE age < 60) AS s",
        "4.json",
        &[],
    );
    assert!(text.contains(apart), "{text}");
    assert_eq!(p1["columns"], a4["profile"]["columns"]);
}

#[test]
fn a_statistic_that_would_fail_on_a_row_the_where_drops_rides_along() {
    // Under the WHERE as a FILTER clause the statistic's argument is not
    // evaluated on the rows it drops ('n/a' is never cast): the same
    // statistics as the WHERE gives, in the one pass.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("t.parquet");
    ok(&run_sql(
        dir.path(),
        &format!(
            "COPY (SELECT * FROM (VALUES ('1', 'a'), ('3', 'b'), ('n/a', 'a')) AS v(s, k)) \
             TO '{}' STORED AS PARQUET",
            data.display()
        ),
        &[],
    ));
    let t = dir.path().join("t.sql");
    std::fs::write(
        &t,
        "SELECT z_score(CAST(s AS DOUBLE)) AS z, vocab_index(k) AS k_id FROM t WHERE s <> 'n/a'",
    )
    .unwrap();
    let out = dir.path().join("a.json");
    let text = ok(&skewless()
        .arg("fit")
        .arg(&t)
        .args(["--table", &format!("t={}", data.display()), "--out"])
        .arg(&out)
        .output()
        .unwrap());
    assert!(
        text.contains("training profile: 2 columns of t (counted in the statistics pass)"),
        "{text}"
    );
    let a = json(&out);
    // Mean 2, population stddev 1 over the two kept rows.
    let fitted = a["fitted_sql"].as_str().unwrap();
    assert!(
        fitted.contains("z_score_with(CAST(t.s AS DOUBLE), 2.0, 1.0)"),
        "{fitted}"
    );
    assert_eq!(a["profile"]["rows"], 3);
    assert_eq!(a["profile"]["filter"]["kept"], 2);
}

fn census_artifact(dir: &Path) -> PathBuf {
    let transform = std::fs::read_to_string(root().join("sql/census_wide_deep.sql")).unwrap();
    fit(
        dir,
        &transform,
        &format!("census={}", adult()),
        &["--label", "label"],
    )
}

fn test_set() -> String {
    root()
        .join("examples/data/adult/adult_test.parquet")
        .display()
        .to_string()
}

/// The census test set as `select` (over `census`) makes it, written to
/// `dir/name` (Parquet).
fn copy_of_test_set(dir: &Path, name: impl AsRef<Path>, select: &str) -> PathBuf {
    let out = dir.join(name);
    ok(&run_sql(
        dir,
        &format!("COPY ({select}) TO '{}';", out.display()),
        &["--table", &format!("census={}", test_set())],
    ));
    out
}

fn validate(artifact: &Path, table: &str, extra: &[&str]) -> Output {
    skewless()
        .arg("validate")
        .arg(artifact)
        .args(["--table", &format!("census={table}")])
        .args(extra)
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn column<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn check(column: &serde_json::Value, name: &str) -> f64 {
    column["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {column}"))["value"]
        .as_f64()
        .unwrap()
}

#[test]
fn the_census_test_set_has_no_anomalies() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = census_artifact(dir.path());
    let report = dir.path().join("report.json");
    let html = dir.path().join("report.html");
    let out = validate(
        &artifact,
        &test_set(),
        &[
            "--json",
            report.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let text = ok(&out);
    assert!(text.contains("no anomalies in 11 columns"), "{text}");
    let r = json(&report);
    assert_eq!(r["anomalies"], 0);
    assert_eq!(r["rows"]["training"], 32561);
    assert_eq!(r["rows"]["new"], 16281);
    // DuckDB: age counted into the profile's slots (edges 17, 22, …, 58, 90)
    // in both files; the divergence of the two by the published formula
    // (Python, math.log2 and math.fsum): 0.00010406039215685499.
    let age = column(&r, "age");
    assert_eq!(
        age["training"]["slots"],
        serde_json::json!([
            0, 3130, 3281, 3300, 2577, 3535, 3295, 3082, 3299, 3697, 3365, 0
        ])
    );
    assert_eq!(
        age["new"]["slots"],
        serde_json::json!([
            0, 1589, 1627, 1588, 1279, 1788, 1642, 1489, 1667, 1844, 1768, 0
        ])
    );
    assert_eq!(check(age, "jensen_shannon"), 0.00010406039215685499);
    // DuckDB: workclass counts by value in both files (NULLs apart); the
    // largest difference of shares, 0.006863079869766087.
    assert_eq!(
        check(column(&r, "workclass"), "l_infinity"),
        0.006863079869766087
    );
    // The same report, byte for byte, whatever the partitioning.
    for partitions in ["1", "8"] {
        let again = dir.path().join(format!("again{partitions}.json"));
        let again_html = dir.path().join(format!("again{partitions}.html"));
        ok(&skewless()
            .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", partitions)
            .arg("validate")
            .arg(&artifact)
            .args(["--table", &format!("census={}", test_set())])
            .arg("--json")
            .arg(&again)
            .arg("--html")
            .arg(&again_html)
            .output()
            .unwrap());
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(&report).unwrap()
        );
        assert_eq!(
            std::fs::read(&again_html).unwrap(),
            std::fs::read(&html).unwrap()
        );
    }
    // No paths and no times in the reports.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains(dir.path().to_str().unwrap()));
    assert!(!page.contains("<script"));
    well_formed(&page);
    assert!(page.len() < 11 * 8 * 1024, "{} bytes", page.len());
}

#[test]
fn a_skewed_copy_is_found_out() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = census_artifact(dir.path());
    // Ages shifted by 20 years, and a workclass no training row has in one
    // row of 20 (fnlwgt divisible by 20).
    let skewed = copy_of_test_set(
        dir.path(),
        "skewed.parquet",
        "SELECT * REPLACE (age + 20 AS age, CASE WHEN fnlwgt % 20 = 0 THEN 'Space-force' ELSE workclass END AS workclass) FROM census",
    );
    let report = dir.path().join("report.json");
    let out = validate(
        &artifact,
        skewed.to_str().unwrap(),
        &["--json", report.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("3 anomalies found"),
        "{}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("2 of 11 columns and 1 transform check anomalous"),
        "{text}"
    );
    assert!(
        text.contains("workclass: unseen in training: \"Space-force\" 843"),
        "{text}"
    );
    let r = json(&report);
    assert_eq!(r["anomalies"], 3);
    // Transform-aware: workclass_id = vocab_index(coalesce(workclass, '?'))
    // sends the 843 new values to its out-of-vocabulary bucket: 843 of the
    // 16,281 rows; none in training (its vocabulary holds every training
    // value). The other vocabularies stay at 0.
    let vocabularies = r["vocabularies"].as_array().unwrap();
    let oov = |output: &str| {
        vocabularies
            .iter()
            .find(|v| v["output"] == output)
            .unwrap_or_else(|| panic!("no {output}"))
    };
    assert_eq!(oov("workclass_id")["value"], 843.0 / 16281.0);
    assert_eq!(oov("workclass_id")["expected"], 0.0);
    assert_eq!(oov("workclass_id")["anomaly"], true);
    assert_eq!(oov("occupation_id")["value"], 0.0);
    assert_eq!(vocabularies.len(), 6);
    // Anomalies first, in the profile's order; nothing else flagged.
    let flagged: Vec<&str> = r["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["anomaly"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, ["age", "workclass"]);
    assert_eq!(r["columns"][0]["name"], "age");
    // DuckDB: the shifted ages over the training edges
    // [0, 0, 0, 0, 0, 0, 1213, 1649, 1942, 3489, 7660, 328]: 328 above 90,
    // 328 / 16,281 = 0.02014618266691235 outside; divergence (Python, the
    // published formula) 0.35820776749444566.
    let age = column(&r, "age");
    assert_eq!(check(age, "jensen_shannon"), 0.35820776749444566);
    assert_eq!(check(age, "out_of_range_share"), 0.02014618266691235);
    // DuckDB: 843 of the 15,370 non-NULL workclasses are the new value.
    let workclass = column(&r, "workclass");
    assert_eq!(check(workclass, "unseen_share"), 843.0 / 15370.0);
    assert_eq!(check(workclass, "l_infinity"), 0.054847104749512036);
    assert_eq!(
        workclass["top_unseen"],
        serde_json::json!([["Space-force", 843]])
    );
    // Live: the same rows served one by one through `eval --validate` give
    // the same report, byte for byte.
    let lines = dir.path().join("skewed.ndjson");
    let script = dir.path().join("rows.sql");
    std::fs::write(&script, "SELECT * FROM census").unwrap();
    let rows = ok(&skewless()
        .arg("run")
        .arg(&script)
        .args([
            "--table",
            &format!("census={}", skewed.display()),
            "--format",
            "ndjson",
        ])
        .output()
        .unwrap());
    std::fs::write(&lines, rows).unwrap();
    let live = dir.path().join("live.json");
    let served = skewless()
        .arg("eval")
        .arg(&artifact)
        .arg("--input")
        .arg(&lines)
        .arg("--validate")
        .arg("--validate-json")
        .arg(&live)
        .output()
        .unwrap();
    ok(&served);
    assert!(
        stderr(&served).contains("2 of 11 columns and 1 transform check anomalous"),
        "{}",
        stderr(&served)
    );
    assert_eq!(
        std::fs::read_to_string(&live).unwrap(),
        std::fs::read_to_string(&report).unwrap()
    );
    // --fail-on never: the same report, exit 0.
    ok(&validate(
        &artifact,
        skewed.to_str().unwrap(),
        &["--fail-on", "never"],
    ));
    // A looser threshold and a larger allowed share clear them.
    ok(&validate(
        &artifact,
        skewed.to_str().unwrap(),
        &[
            "--threshold",
            "age=0.4",
            "--max-out-of-range",
            "0.05",
            "--max-unseen",
            "0.06",
        ],
    ));
}

#[test]
fn a_missing_column_is_a_schema_anomaly() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = census_artifact(dir.path());
    let partial = copy_of_test_set(
        dir.path(),
        "partial.parquet",
        "SELECT * EXCLUDE (hours_per_week) FROM census",
    );
    let report = dir.path().join("report.json");
    let out = validate(
        &artifact,
        partial.to_str().unwrap(),
        &["--json", report.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = json(&report);
    let c = column(&r, "hours_per_week");
    assert_eq!(c["kind"], "schema");
    assert_eq!(c["schema"], "missing (fitted as Int64)");
    assert_eq!(r["anomalies"], 1);
}

#[test]
fn an_earlier_profile_is_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = census_artifact(dir.path());
    let profile = dir.path().join("test-profile.json");
    ok(&validate(
        &artifact,
        &test_set(),
        &["--profile-out", profile.to_str().unwrap()],
    ));
    // The test set against its own profile: every distance and share as
    // expected without skew.
    let report = dir.path().join("drift.json");
    ok(&validate(
        &artifact,
        &test_set(),
        &[
            "--baseline",
            profile.to_str().unwrap(),
            "--json",
            report.to_str().unwrap(),
        ],
    ));
    let r = json(&report);
    assert_eq!(r["against"], "baseline");
    assert_eq!(r["rows"]["training"], 16281);
    for c in r["columns"].as_array().unwrap() {
        for k in c["checks"].as_array().unwrap() {
            assert_eq!(k["value"], k["expected"], "{c}");
        }
    }
    // The profile written has the training edges.
    let p = json(&profile);
    let age = p["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "age")
        .unwrap();
    assert_eq!(
        age["edges"],
        serde_json::json!([
            17.0, 22.0, 26.0, 30.0, 33.0, 37.0, 41.0, 45.0, 50.0, 58.0, 90.0
        ])
    );
    // An artifact without a profile is refused, naming the way out.
    let bare = dir.path().join("bare.json");
    let transform = std::fs::read_to_string(root().join("sql/census_wide_deep.sql")).unwrap();
    let t = dir.path().join("t.sql");
    std::fs::write(&t, transform).unwrap();
    ok(&skewless()
        .arg("fit")
        .arg(&t)
        .args([
            "--table",
            &format!("census={}", adult()),
            "--profile",
            "none",
        ])
        .arg("--out")
        .arg(&bare)
        .output()
        .unwrap());
    let err = crate::common::user_error(&validate(&bare, &test_set(), &[]));
    assert!(err.contains("has no training profile"), "{err}");
    // A threshold for a column the profile lacks is a usage error.
    let err = crate::common::user_error(&validate(
        &artifact,
        &test_set(),
        &["--threshold", "agee=0.2"],
    ));
    assert!(err.contains("the profile has no column 'agee'"), "{err}");
}

/// Checks that `page` is well-formed: every element closed in order (void
/// elements aside), attributes quoted, no stray `<`.
fn well_formed(page: &str) {
    const VOID: [&str; 4] = ["meta", "br", "img", "line"];
    let body = page
        .strip_prefix("<!DOCTYPE html>\n")
        .expect("a doctype first");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find('<') {
        let end = rest[at..].find('>').expect("a tag closes") + at;
        let tag = &rest[at + 1..end];
        assert!(!tag.contains('<'), "a '<' inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "<{open}> closed by </{name}>");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap().to_string();
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes in <{tag}>"
            );
            if !VOID.contains(&name.as_str()) {
                stack.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn the_html_report_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = census_artifact(dir.path());
    let skewed = copy_of_test_set(
        dir.path(),
        "skewed.parquet",
        "SELECT * REPLACE (age + 20 AS age) FROM census",
    );
    let html = dir.path().join("report.html");
    let out = validate(
        &artifact,
        skewed.to_str().unwrap(),
        &["--html", html.to_str().unwrap(), "--fail-on", "never"],
    );
    ok(&out);
    let png = dir.path().join("report.png");
    let profile = tempfile::tempdir().unwrap();
    let shot = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1000,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let (width, height, pixels) = decode_png(&std::fs::read(&png).unwrap());
    assert_eq!((width, height), (1000, 1400));
    // Not blank: the page's text, table rules, the red of the anomaly and
    // the two bar colours (training #6b8fb8, new data #e07b39) are there.
    let count = |rgb: [u8; 3]| pixels.iter().filter(|p| **p == rgb).count();
    let white = count([255, 255, 255]);
    assert!(
        white < pixels.len() * 97 / 100,
        "{white} of {} white",
        pixels.len()
    );
    assert!(count([0x6b, 0x8f, 0xb8]) > 1000, "no training bars");
    assert!(count([0xe0, 0x7b, 0x39]) > 1000, "no new-data bars");
    let distinct: std::collections::BTreeSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(distinct.len() > 50, "{} colours", distinct.len());
}

/// Chromium, installed with apt-get when missing (Debian's package, as
/// root): the test needs a real browser.
fn chromium() -> &'static str {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let found = || {
        std::process::Command::new("chromium")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    INSTALL.call_once(|| {
        if !found() {
            let status = std::process::Command::new("sh")
                .args([
                    "-c",
                    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
                     || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
                     apt-get install -y -q chromium >/dev/null)",
                ])
                .status();
            assert!(
                status.is_ok_and(|s| s.success()) && found(),
                "this test renders the HTML report in Chromium: install Debian's chromium \
                 package (apt-get install chromium)"
            );
        }
    });
    "chromium"
}

/// The pixels of an 8-bit RGB or RGBA PNG, as RGB, row by row.
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    use std::io::Read;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut at, mut width, mut height, mut channels) = (8, 0, 0, 0);
    let mut data = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let body = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(body[0..4].try_into().unwrap());
                height = u32::from_be_bytes(body[4..8].try_into().unwrap());
                assert_eq!(body[8], 8, "8-bit samples");
                assert_eq!(body[12], 0, "not interlaced");
                channels = match body[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => data.extend_from_slice(body),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&data[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width as usize * channels;
    let mut pixels = Vec::with_capacity((width * height) as usize);
    let mut previous = vec![0u8; stride];
    for row in raw.chunks_exact(stride + 1) {
        let (filter, line) = (row[0], &row[1..]);
        let mut out = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { out[i - channels] } else { 0 };
            let b = previous[i];
            let c = if i >= channels {
                previous[i - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            out[i] = line[i].wrapping_add(predicted);
        }
        pixels.extend(out.chunks_exact(channels).map(|p| [p[0], p[1], p[2]]));
        previous = out;
    }
    assert_eq!(pixels.len(), (width * height) as usize);
    (width, height, pixels)
}

#[test]
fn the_share_the_where_drops_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = fit(
        dir.path(),
        "SELECT z_score(age) AS age_z, vocab_index(coalesce(workclass, '?')) AS workclass_id \
         FROM census WHERE age < 60",
        &format!("census={}", adult()),
        &[],
    );
    let skewed = copy_of_test_set(
        dir.path(),
        "older.parquet",
        "SELECT * REPLACE (age + 20 AS age) FROM census",
    );
    let report = dir.path().join("report.json");
    let out = validate(
        &artifact,
        skewed.to_str().unwrap(),
        &["--json", report.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = json(&report);
    // DuckDB: 2,644 of the 32,561 training rows have age >= 60; 7,161 of
    // the 16,281 test rows once 20 years older.
    assert_eq!(r["filter"]["predicate"], "(census.age < 60)");
    assert_eq!(r["filter"]["expected"], 2644.0 / 32561.0);
    assert_eq!(r["filter"]["value"], 7161.0 / 16281.0);
    assert_eq!(r["filter"]["anomaly"], true);
    // The test set as it is: 1,411 of 16,281, within 0.05 of training.
    let r2 = dir.path().join("plain.json");
    let plain = validate(&artifact, &test_set(), &["--json", r2.to_str().unwrap()]);
    ok(&plain);
    let r2 = json(&r2);
    assert_eq!(r2["filter"]["value"], 1411.0 / 16281.0);
    assert_eq!(r2["filter"]["anomaly"], false);
}

#[test]
fn profiles_of_parts_add_up_to_the_profile_of_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = census_artifact(dir.path());
    let mut parts = Vec::new();
    for (name, predicate) in [("even", "fnlwgt % 2 = 0"), ("odd", "fnlwgt % 2 = 1")] {
        let data = copy_of_test_set(
            dir.path(),
            format!("{name}.parquet"),
            &format!("SELECT * FROM census WHERE {predicate}"),
        );
        let profile = dir.path().join(format!("{name}-profile.json"));
        ok(&validate(
            &artifact,
            data.to_str().unwrap(),
            &["--profile-out", profile.to_str().unwrap()],
        ));
        parts.push(profile);
    }
    let whole = dir.path().join("whole-profile.json");
    ok(&validate(
        &artifact,
        &test_set(),
        &["--profile-out", whole.to_str().unwrap()],
    ));
    let read = |p: &Path| -> skewless::profile::Profile {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let mut merged = read(&parts[0]);
    merged.merge(&read(&parts[1])).unwrap();
    assert_eq!(merged, read(&whole));
    assert_eq!(merged.rows, 16281);
}
