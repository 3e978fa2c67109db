//! Window aggregations through the real binary, on the bundled nycflights13
//! data (the function semantics are specified in tests/slt/window.slt).

use std::path::Path;

use crate::common::{ok, root, run_sql, skewless, stderr, user_error};
use crate::outputs::sha256;

fn flights() -> String {
    root()
        .join("examples/data/nycflights13/flights.parquet")
        .display()
        .to_string()
}

fn query(dir: &Path, table: &str, file: &Path, sql: &str) -> String {
    ok(&run_sql(
        dir,
        sql,
        &[
            "--table",
            &format!("{table}={}", file.display()),
            "--format",
            "csv",
        ],
    ))
}

#[test]
fn the_flights_window_script_gives_duckdbs_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = skewless()
        .current_dir(dir.path())
        .arg("run")
        .arg(root().join("sql/flights_windows.sql"))
        .args(["--table", &format!("flights={}", flights())])
        .output()
        .unwrap();
    ok(&out);
    let hourly = dir.path().join("target/flights_hourly_delays.parquet");
    let aircraft = dir.path().join("target/flights_aircraft_features.parquet");
    // Expected from DuckDB 2.0.1 over the same file: the same windows by a
    // self-join (e.sched_dep in [lo, t) for the same tailnum), for every one
    // of the 336,776 flights; avg(dep_delay) agreed to the last bit. The
    // 2,512 flights without a tailnum belong to no aircraft: NULL.
    assert_eq!(
        query(
            dir.path(),
            "a",
            &aircraft,
            "SELECT count(*) AS n, sum(flights_1h) AS f1h, count(mean_delay_24h) AS m24, \
             sum(destinations_7d) AS d7, sum(CASE WHEN tailnum IS NULL AND \
             flights_1h IS NULL THEN 1 ELSE 0 END) AS no_aircraft FROM a;"
        ),
        "n,f1h,m24,d7,no_aircraft\n336776,306,161704,930839,2512\n"
    );
    // The tumbling table: 19,486 (origin, hour) buckets (DuckDB's
    // time_bucket). Standard deviations are the square roots of the exactly
    // rounded variances (Python over fractions); DuckDB's stddev_pop gives
    // 82.94773957137107 and 153.68280270138828 for EWR and JFK.
    assert_eq!(
        query(dir.path(), "h", &hourly, "SELECT count(*) AS n FROM h;"),
        "n\n19486\n"
    );
    assert_eq!(
        query(
            dir.path(),
            "h",
            &hourly,
            "SELECT origin, departures, mean_delay, max_delay, stddev_delay FROM h \
             WHERE hour = CAST('2013-06-27T21:00:00Z' AS TIMESTAMP) ORDER BY origin;"
        ),
        "origin,departures,mean_delay,max_delay,stddev_delay\n\
         EWR,20,91.85,334.0,82.94773957137109\n\
         JFK,26,67.5,790.0,153.6828027013883\n\
         LGA,20,95.3,426.0,144.75292743153764\n"
    );
    // The same bytes with another partitioning.
    let before = [sha256(&hourly), sha256(&aircraft)];
    let out = skewless()
        .current_dir(dir.path())
        .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "3")
        .arg("run")
        .arg(root().join("sql/flights_windows.sql"))
        .args(["--table", &format!("flights={}", flights()), "--overwrite"])
        .output()
        .unwrap();
    ok(&out);
    assert_eq!([sha256(&hourly), sha256(&aircraft)], before);
}

/// Each NDJSON line as its fields' JSON text, by the flight's key.
fn lines_by_flight(text: &str) -> std::collections::HashMap<String, Vec<(String, String)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let o: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            let key = ["carrier", "flight", "origin", "sched_dep"]
                .map(|k| o[k].to_string())
                .join("|");
            let fields = o
                .into_iter()
                .filter(|(k, _)| k != "late_arrival")
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            (key, fields)
        })
        .collect()
}

fn weather() -> String {
    root()
        .join("examples/data/nycflights13/weather.parquet")
        .display()
        .to_string()
}

/// Writes the bundled flights scheduled before `from` (a UTC date) to
/// `d/history.parquet`, and those from it (to `until`, if given) to
/// `d/day.ndjson` in schedule order.
fn split_flights(d: &Path, from: &str, until: Option<&str>) {
    let until = until.map_or(String::new(), |u| {
        format!("AND sched_dep < TIMESTAMP '{u}T00:00:00Z'")
    });
    ok(&run_sql(
        d,
        &format!(
            "COPY (SELECT * FROM flights WHERE sched_dep < TIMESTAMP '{from}T00:00:00Z') \
               TO '{0}/history.parquet'; \
             COPY (SELECT * FROM flights WHERE sched_dep >= TIMESTAMP '{from}T00:00:00Z' {until} \
                   ORDER BY sched_dep, carrier, flight) TO '{0}/day.ndjson';",
            d.display()
        ),
        &["--table", &format!("flights={}", flights())],
    ));
}

#[test]
fn the_flights_features_served_by_replay_equal_batch_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    split_flights(d, "2013-12-30", Some("2013-12-31"));
    let flights_table = format!("flights={}", flights());
    let weather_table = format!("weather={}", weather());
    let transform = std::fs::read_to_string(root().join("sql/flights_features.sql")).unwrap();
    let artifact = crate::common::fit(
        d,
        &transform,
        &flights_table,
        &["--table", &weather_table, "--label", "late_arrival"],
    );
    ok(&skewless()
        .arg("apply")
        .arg(&artifact)
        .args(["--table", &flights_table, "--table", &weather_table])
        .args(["--out", "batch.ndjson"])
        .current_dir(d)
        .output()
        .unwrap());
    let out = skewless()
        .arg("eval")
        .arg(&artifact)
        .args(["--events", "flights=history.parquet"])
        .args(["--events", &weather_table])
        .args(["--lateness", "1d", "--push-requests"])
        .args(["--input", "day.ndjson"])
        .current_dir(d)
        .output()
        .unwrap();
    let served = ok(&out);
    let report = crate::common::stderr(&out);
    // 334,880 flights before 30 December and 26,115 weather readings.
    assert!(report.contains("replayed 360995 events"), "{report}");
    // The day's flights came after the day's weather readings: the 902
    // scheduled before their airport's last reading (23:00 UTC) are late
    // for the airport stream, but within the lateness, so counted.
    assert!(report.contains(" 902 late but counted"), "{report}");
    let batch = lines_by_flight(&std::fs::read_to_string(d.join("batch.ndjson")).unwrap());
    let served = lines_by_flight(&served);
    // The 964 flights of 30 December, every feature as batch computed it.
    assert_eq!(served.len(), 964);
    for (key, fields) in &served {
        assert_eq!(fields, &batch[key], "{key}");
    }
    // DuckDB 2.0.1, by correlated subqueries over the same files: 18,397
    // departures in the hour before each, at its airport; 609 flights whose
    // aircraft flew in the 2 days before; all 964 with a temperature read
    // in the 3 hours before, 37,730.84 °F in all.
    let field = |f: &Vec<(String, String)>, name: &str| {
        f.iter().find(|(k, _)| k == name).unwrap().1.clone()
    };
    let departures: i64 = served
        .values()
        .map(|f| field(f, "airport_departures_1h").parse::<i64>().unwrap())
        .sum();
    assert_eq!(departures, 18_397);
    let with_previous = served
        .values()
        .filter(|f| field(f, "aircraft_previous_delay") != "null")
        .count();
    assert_eq!(with_previous, 609);
    let temps: Vec<f64> = served
        .values()
        .map(|f| field(f, "temp_f").parse::<f64>().unwrap())
        .collect();
    assert_eq!(temps.len(), 964);
    let total: f64 = temps.iter().sum();
    assert!((total - 37_730.84).abs() < 1e-6, "{total}");
}

#[test]
fn serving_windows_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run_sql(
        d,
        &format!(
            "COPY (SELECT * FROM (VALUES ('a', TIMESTAMP '2024-01-01 10:00:00', 5.0), \
               ('a', TIMESTAMP '2024-01-01 10:05:00', 7.0)) AS t(u, ts, amount)) \
               TO '{0}/purchases.parquet'; \
             COPY (SELECT * FROM (VALUES ('a', TIMESTAMP '2024-01-01 10:06:00', true)) \
               AS t(u, ts, churned)) TO '{0}/labels.parquet';",
            d.display()
        ),
        &[],
    ));
    let purchases = format!("purchases={}", d.join("purchases.parquet").display());
    let labels = format!("labels={}", d.join("labels.parquet").display());
    let union = |filter: &str| {
        format!(
            "SELECT u, ts, churned, n FROM (
               SELECT u, ts, churned, is_label,
                      window_count(amount, ts, INTERVAL '10 minutes') OVER (PARTITION BY u) AS n
               FROM (SELECT u, ts, amount, CAST(NULL AS BOOLEAN) AS churned, false AS is_label
                     FROM purchases
                     UNION ALL
                     SELECT u, ts, CAST(NULL AS DOUBLE), churned, true FROM labels)) {filter}"
        )
    };
    let fit = |sql: &str| {
        std::fs::write(d.join("t.sql"), sql).unwrap();
        let label: &[&str] = if sql.contains("churned") {
            &["--label", "churned"]
        } else {
            &[]
        };
        skewless()
            .arg("fit")
            .arg(d.join("t.sql"))
            .args(["--table", &purchases, "--table", &labels])
            .args(label)
            .args(["--overwrite", "--out"])
            .arg(d.join("a.json"))
            .output()
            .unwrap()
    };
    // Without the WHERE, rows of both tables reach the output: which are
    // the requests is not known.
    let err = user_error(&fit(&union("")));
    assert!(
        err.contains("rows of several tables (purchases, labels) reach the output"),
        "{err}"
    );
    assert!(err.contains("--batch-only"), "{err}");
    // A window over another window's result is refused.
    let err = user_error(&fit(
        "SELECT u, window_sum(CAST(n AS DOUBLE), ts, INTERVAL '1 hour') OVER (PARTITION BY u) AS s \
         FROM (SELECT u, ts, window_count(amount, ts, INTERVAL '1 hour') OVER (PARTITION BY u) AS n \
               FROM purchases)",
    ));
    assert!(
        err.contains("a window function over another window function's result is not served"),
        "{err}"
    );
    ok(&fit(&union("WHERE is_label")));
    let artifact = d.join("a.json");
    // Requests: labels (the WHERE keeps them); events of purchases.
    let out = crate::common::eval_with_input(
        &artifact,
        &[],
        "{\"event\": {\"u\": \"a\", \"ts\": \"2024-01-01T10:00:00\", \"amount\": 5}, \"table\": \"purchases\"}\n\
         {\"table\": \"purchases\", \"event\": {\"u\": \"a\", \"ts\": \"2024-01-01T10:05:00\", \"amount\": 7}}\n\
         {\"u\": \"a\", \"ts\": \"2024-01-01T10:06:00\"}\n\
         {\"u\": \"a\", \"ts\": \"2024-01-01T10:06:00Z\"}\n\
         {\"event\": {\"u\": \"a\", \"ts\": \"2024-01-01T10:07:00\"}, \"table\": \"nope\"}\n\
         {\"event\": {\"u\": \"a\", \"ts\": \"2024-01-01T10:07:00\"}, \"other\": 1}\n\
         {\"event\": {\"u\": \"a\", \"ts\": \"2024-01-01T10:07:00\", \"amount\": \"x\"}, \"table\": \"purchases\"}\n",
    );
    let lines: Vec<String> = ok(&out).lines().map(str::to_string).collect();
    assert_eq!(
        lines[0],
        "{\"u\":\"a\",\"ts\":\"2024-01-01T10:06:00\",\"n\":2}"
    );
    assert!(
        lines[1].contains("column 'ts': expected Timestamp(ns), got \\\"2024-01-01T10:06:00Z\\\": the column has no time zone"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("event of 'nope': the transform reads no table 'nope'; events come from: purchases, labels"),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains("an event line is"), "{}", lines[3]);
    assert!(
        lines[4].contains("event of 'purchases': column 'amount': expected Float64, got a string"),
        "{}",
        lines[4]
    );
    assert_eq!(lines.len(), 5);
    // --events names each table's log; --requests must name a table whose
    // rows reach the output.
    let err = user_error(&crate::common::eval_with_input(
        &artifact,
        &[
            "--events",
            &d.join("purchases.parquet").display().to_string(),
        ],
        "",
    ));
    assert!(err.contains("give each log as TABLE=LOCATION"), "{err}");
    let err = user_error(&crate::common::eval_with_input(
        &artifact,
        &["--requests", "purchases"],
        "",
    ));
    assert!(
        err.contains("rows of table 'purchases' do not reach the transform's output"),
        "{err}"
    );
    let err = user_error(&crate::common::eval_with_input(
        &artifact,
        &["--lateness", "5 parsecs"],
        "",
    ));
    assert!(err.contains("--lateness \"5 parsecs\""), "{err}");
    // A timestamp time takes a duration, not a plain number.
    let err = user_error(&crate::common::eval_with_input(
        &artifact,
        &["--lateness", "5"],
        "",
    ));
    assert!(err.contains("give a duration, e.g. 5s or 5m"), "{err}");
    // Replayed by table, merged by time: the label sees both purchases.
    let out = crate::common::eval_with_input(
        &artifact,
        &["--events", &purchases, "--events", &labels],
        "{\"u\": \"a\", \"ts\": \"2024-01-01T10:06:00\"}\n",
    );
    assert_eq!(
        ok(&out).trim(),
        "{\"u\":\"a\",\"ts\":\"2024-01-01T10:06:00\",\"n\":2}"
    );
    assert!(
        stderr(&out).contains("replayed 3 events"),
        "{}",
        stderr(&out)
    );
}

/// Full-pass functions over window features: fitted over the rows the
/// transform outputs, served with the same numbers.
#[test]
fn full_pass_functions_over_window_features_serve_the_batch_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    split_flights(d, "2013-12-31", None);
    let table = format!("flights={}", flights());
    let transform = "SELECT carrier, flight, origin, sched_dep, m, z_score(m) AS m_z, \
                            min_max_scale(n) AS n_scaled \
                     FROM (SELECT carrier, flight, origin, sched_dep, \
                                  window_mean(dep_delay, sched_dep, INTERVAL '24 hours') \
                                    OVER (PARTITION BY tailnum) AS m, \
                                  window_count(dep_delay, sched_dep, INTERVAL '24 hours') \
                                    OVER (PARTITION BY tailnum) AS n \
                           FROM flights)";
    let artifact = crate::common::fit(d, transform, &table, &[]);
    let text = std::fs::read_to_string(&artifact).unwrap();
    // The statistics are those of the window values of every flight:
    // DataFusion's avg of them gives 11.799755623443666 (its float sum),
    // the exact mean is within a few units in the last place of it.
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stats = json["statistics"].to_string();
    assert!(stats.contains("11.79975562344365"), "{stats}");
    ok(&skewless()
        .arg("apply")
        .arg(&artifact)
        .args(["--table", &table, "--out", "batch.ndjson"])
        .current_dir(d)
        .output()
        .unwrap());
    let out = skewless()
        .arg("eval")
        .arg(&artifact)
        .args(["--events", "history.parquet", "--push-requests"])
        .args(["--input", "day.ndjson"])
        .current_dir(d)
        .output()
        .unwrap();
    let served = lines_by_flight(&ok(&out));
    let batch = lines_by_flight(&std::fs::read_to_string(d.join("batch.ndjson")).unwrap());
    assert_eq!(served.len(), 932);
    let mut scaled = 0;
    for (key, fields) in &served {
        assert_eq!(fields, &batch[key], "{key}");
        scaled += usize::from(fields.iter().any(|(k, v)| k == "m_z" && v != "null"));
    }
    assert!(scaled > 100, "{scaled}");
}
