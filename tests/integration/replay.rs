//! Window features served from online state equal batch apply's, value for
//! value, floats bit for bit: a generated event log is fitted and applied
//! in batch, then replayed through `skewless eval` (events pushed, rows
//! requested at their time) and the two compared row by row.

use std::collections::HashMap;
use std::path::Path;

use crate::common::{ok, run_sql, skewless, stderr};
use crate::outputs::sha256;

/// A deterministic xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One row of the log: an event (a value) or a label (a request only).
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    a: Option<&'static str>,
    b: Option<i64>,
    ts: Option<i64>,
    arrived: Option<i64>,
    v: Option<String>,
    s: Option<&'static str>,
    kind: &'static str,
}

/// Times in milliseconds around the epoch (a third before 1970), with
/// bursts on 5-second tile edges, ties, labels exactly on window edges,
/// NULL/NaN/±inf/−0.0 values, magnitudes from 1e-3 to 1e16, late arrivals
/// (up to 30 s) and a few events far too late to count.
fn generate() -> Vec<Row> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let entities: [(Option<&str>, Option<i64>); 7] = [
        (Some("hot"), Some(1)),
        (Some("hot"), Some(2)),
        (Some("x"), Some(1)),
        (Some("y"), None),
        (None, Some(1)),
        (Some("x"), Some(2)),
        (Some("hot"), Some(1)),
    ];
    let strings = ["p", "q", "r", "", "é"];
    let mut rows = Vec::new();
    let mut t: i64 = -60_000;
    while rows.len() < 2_500 {
        t += match rng.below(10) {
            0..=2 => 0,
            3..=6 => rng.below(400) as i64,
            _ => rng.below(3_000) as i64,
        };
        // Bursts on a tile edge.
        let ts = if rng.below(12) == 0 {
            t - t.rem_euclid(5_000)
        } else {
            t
        };
        let (a, b) = entities[rng.below(entities.len() as u64) as usize];
        let v = match rng.below(20) {
            0 => None,
            1 => Some("NaN".to_string()),
            2 => Some("inf".to_string()),
            3 => Some("-inf".to_string()),
            4 => Some("-0.0".to_string()),
            5 => Some("0.0".to_string()),
            _ => {
                let scale = [1e-3, 1.0, 1e9, 1e16][rng.below(4) as usize];
                Some(format!("{:?}", (rng.below(2_001) as f64 - 1_000.0) * scale))
            }
        };
        let delay = match rng.below(10) {
            0..=5 => 0,
            6..=8 => rng.below(30_000) as i64,
            // Far too late for any window still asked for.
            _ if rng.below(20) == 0 => 600_000,
            _ => rng.below(2_000) as i64,
        };
        let id = rows.len() as i64;
        rows.push(Row {
            id,
            a,
            b,
            ts: (rng.below(150) != 0).then_some(ts),
            arrived: Some(ts + delay),
            v,
            s: (rng.below(7) != 0).then(|| strings[rng.below(5) as usize]),
            kind: "event",
        });
        // Labels: on the window edges of this event, or anywhere.
        if rng.below(4) == 0 {
            let at = match rng.below(4) {
                0 => ts + 10_000,
                1 => ts + 30_000,
                2 => ts,
                _ => ts + rng.below(20_000) as i64,
            };
            let id = rows.len() as i64;
            rows.push(Row {
                id,
                a,
                b,
                ts: Some(at),
                arrived: Some(at),
                v: None,
                s: None,
                kind: "label",
            });
        }
    }
    rows
}

fn json_str(v: Option<&str>) -> String {
    v.map_or("null".into(), |s| serde_json::to_string(s).unwrap())
}

fn json_int(v: Option<i64>) -> String {
    v.map_or("null".into(), |i| i.to_string())
}

/// The row as the input columns of the transform, in JSON: times as
/// integers in milliseconds (the column's unit), floats as JSON numbers or
/// the strings of NaN and the infinities.
fn row_json(r: &Row) -> String {
    let v = match r.v.as_deref() {
        None => "null".to_string(),
        Some("NaN") => "\"NaN\"".into(),
        Some("inf") => "\"Infinity\"".into(),
        Some("-inf") => "\"-Infinity\"".into(),
        Some(x) => x.to_string(),
    };
    format!(
        "{{\"id\":{},\"a\":{},\"b\":{},\"ts\":{},\"arrived\":{},\"v\":{v},\"s\":{},\"kind\":\"{}\"}}",
        r.id,
        json_str(r.a),
        json_int(r.b),
        json_int(r.ts),
        json_int(r.arrived),
        json_str(r.s),
        r.kind
    )
}

/// Writes the rows as a Parquet event log (through NDJSON of strings and a
/// COPY with explicit types, so that every type is as written).
fn write_log(dir: &Path, rows: &[Row]) -> std::path::PathBuf {
    write_table(dir, &rows.iter().collect::<Vec<_>>(), "events")
}

/// Writes `rows` as Parquet `dir/NAME.parquet`, columns typed as written.
fn write_table(dir: &Path, rows: &[&Row], name: &str) -> std::path::PathBuf {
    let mut text = String::new();
    for r in rows {
        let s = |v: Option<String>| v.map_or("null".into(), |x| serde_json::to_string(&x).unwrap());
        text.push_str(&format!(
            "{{\"id\":{},\"a\":{},\"b\":{},\"ts\":{},\"arrived\":{},\"v\":{},\"s\":{},\"kind\":\"{}\"}}\n",
            s(Some(r.id.to_string())),
            json_str(r.a),
            s(r.b.map(|b| b.to_string())),
            s(r.ts.map(|t| t.to_string())),
            s(r.arrived.map(|t| t.to_string())),
            s(r.v.clone()),
            json_str(r.s),
            r.kind
        ));
    }
    let raw = dir.join(format!("{name}_raw.ndjson"));
    std::fs::write(&raw, text).unwrap();
    let log = dir.join(format!("{name}.parquet"));
    ok(&run_sql(
        dir,
        &format!(
            "COPY (SELECT CAST(id AS BIGINT) AS id, a, CAST(b AS BIGINT) AS b, \
             to_timestamp_millis(CAST(ts AS BIGINT)) AS ts, \
             to_timestamp_millis(CAST(arrived AS BIGINT)) AS arrived, \
             CAST(v AS DOUBLE) AS v, s, kind FROM raw ORDER BY id) TO '{}';",
            log.display()
        ),
        &["--table", &format!("raw={}", raw.display())],
    ));
    log
}

const TRANSFORM: &str = "
SELECT id, kind,
  window_sum(v, ts, INTERVAL '10 seconds') OVER k AS sum_10s,
  window_mean(v, ts, INTERVAL '30 seconds', INTERVAL '5 seconds') OVER k AS mean_30s,
  window_var(v, ts, INTERVAL '20 seconds', INTERVAL '20 seconds', 'hopping') OVER k AS var_20s,
  window_stddev(v, ts, INTERVAL '1 minute', INTERVAL '10 seconds') OVER k AS sd_1m,
  window_min(v, ts, INTERVAL '7 seconds') OVER k AS min_7s,
  window_max(v, ts, INTERVAL '1 minute', INTERVAL '10 seconds', 'hopping') OVER k AS max_1m,
  window_last(v, ts, INTERVAL '15 seconds') OVER k AS last_15s,
  window_distinct_count(s, ts, INTERVAL '25 seconds') OVER k AS strings_25s,
  window_distinct_count(v, ts, INTERVAL '25 seconds') OVER k AS values_25s,
  window_count(v, ts, INTERVAL '3 seconds') OVER (PARTITION BY a) AS a_3s,
  window_count(v, ts, INTERVAL '10 seconds', NULL, 'sliding', arrived) OVER k AS known_10s,
  window_mean(v, ts, INTERVAL '30 seconds', INTERVAL '10 seconds', 'sawtooth', arrived) OVER k AS known_mean_30s
FROM events
WINDOW k AS (PARTITION BY a, b ORDER BY ts)
";

const KNOWN: [&str; 2] = ["known_10s", "known_mean_30s"];

/// Each output line by its id: field name → the field's JSON text.
fn by_id(lines: &str) -> HashMap<i64, Vec<(String, String)>> {
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let id = object["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("no id: {l}"));
            let fields = object
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            (id, fields)
        })
        .collect()
}

/// Runs `eval` over the lines with `--lateness`, returning stdout and stderr.
fn eval(artifact: &Path, lines: &str, lateness: &str) -> (String, String) {
    let out = crate::common::eval_with_input(artifact, &["--lateness", lateness], lines);
    assert!(out.status.success(), "{}", stderr(&out));
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The protocol lines of a replay: each row pushed as an event at `push`
/// time and requested at its ts; at one instant, pushes first. Rows
/// without a time go first.
fn protocol(rows: &[Row], push: impl Fn(&Row) -> Option<i64>) -> String {
    protocol_of(rows, push, |_| true, |r| Some(row_json(r)), "")
}

/// [`protocol`] over chosen rows: `event` gives a row's event object
/// (None: not an event), `table` is appended to event lines
/// (`,"table":"…"`), `request` says which rows are requests.
fn protocol_of(
    rows: &[Row],
    push: impl Fn(&Row) -> Option<i64>,
    request: impl Fn(&Row) -> bool,
    event: impl Fn(&Row) -> Option<String>,
    table: &str,
) -> String {
    let mut actions: Vec<(i64, u8, usize)> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if event(r).is_some() {
            actions.push((push(r).unwrap_or(i64::MIN), 0, i));
        }
        if request(r) {
            actions.push((r.ts.unwrap_or(i64::MIN), 1, i));
        }
    }
    actions.sort();
    let mut text = String::new();
    for (_, what, i) in actions {
        if what == 0 {
            let row = event(&rows[i]).expect("an event");
            text.push_str(&format!("{{\"event\":{row}{table}}}\n"));
        } else {
            text.push_str(&row_json(&rows[i]));
            text.push('\n');
        }
    }
    text
}

#[test]
fn replayed_events_serve_the_batch_features_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generate();
    let log = write_log(dir.path(), &rows);
    let table = format!("events={}", log.display());
    let artifact = crate::common::fit(dir.path(), TRANSFORM, &table, &[]);

    // Batch: the same bytes at 1, 2 and 8 partitions.
    let mut batch = String::new();
    let mut digests = Vec::new();
    for partitions in ["1", "2", "8"] {
        let out = dir.path().join(format!("batch_{partitions}.ndjson"));
        ok(&skewless()
            .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", partitions)
            .arg("apply")
            .arg(&artifact)
            .args(["--table", &table, "--out"])
            .arg(&out)
            .output()
            .unwrap());
        digests.push(sha256(&out));
        batch = std::fs::read_to_string(&out).unwrap();
    }
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
    let batch = by_id(&batch);
    assert_eq!(batch.len(), rows.len());

    // Served in time order (each event pushed at its own time): every
    // feature equals batch's.
    let (served, report) = eval(&artifact, &protocol(&rows, |r| r.ts), "0");
    let served = by_id(&served);
    assert_eq!(served.len(), rows.len(), "{report}");
    let mut compared = 0;
    for (id, fields) in &batch {
        assert_eq!(&served[id], fields, "row {id}: {:?}", rows[*id as usize]);
        compared += fields.len();
    }
    assert_eq!(compared, rows.len() * 14);
    assert!(report.contains(" 0 dropped"), "{report}");

    // Served in arrival order: the knowledge-time features equal batch's;
    // the others see fewer events than the finished log shows.
    let (served, report) = eval(&artifact, &protocol(&rows, |r| r.arrived), "40s");
    let served = by_id(&served);
    let mut differ = 0;
    for (id, fields) in &batch {
        for ((name, expected), (_, got)) in fields.iter().zip(&served[id]) {
            if KNOWN.contains(&name.as_str()) {
                assert_eq!(got, expected, "row {id} {name}: {:?}", rows[*id as usize]);
            } else if got != expected {
                differ += 1;
            }
        }
    }
    assert!(differ > 100, "{differ}");
    // Late events were accepted and counted; the far-too-late ones dropped.
    let late_events = rows
        .iter()
        .filter(|r| r.ts.is_some() && r.arrived != r.ts)
        .count();
    assert!(late_events > 500, "{late_events}");
    assert!(!report.contains(" 0 late"), "{report}");
    assert!(!report.contains(" 0 dropped"), "{report}");
}

/// The point-in-time pattern: events in one table, labels in another, one
/// relation by UNION ALL; each label row gets the window features of the
/// events strictly before its time. Served, the labels are the requests
/// (the WHERE that keeps them says so) and the events are pushed with
/// their table's name.
const PIT: &str = "
SELECT id, y, sum_10s, mean_30s, last_15s, strings_25s, known_10s FROM (
  SELECT id, y, is_label,
    window_sum(v, ts, INTERVAL '10 seconds') OVER k AS sum_10s,
    window_mean(v, ts, INTERVAL '30 seconds', INTERVAL '5 seconds') OVER k AS mean_30s,
    window_last(v, ts, INTERVAL '15 seconds') OVER k AS last_15s,
    window_distinct_count(s, ts, INTERVAL '25 seconds') OVER k AS strings_25s,
    window_count(v, ts, INTERVAL '10 seconds', NULL, 'sliding', arrived) OVER k AS known_10s
  FROM (SELECT id, a, b, ts, arrived, v, s, CAST(NULL AS VARCHAR) AS y, false AS is_label
        FROM events
        UNION ALL
        SELECT id, a, b, ts, ts AS known, CAST(NULL AS DOUBLE), CAST(NULL AS VARCHAR), kind, true
        FROM labels)
  WINDOW k AS (PARTITION BY a, b))
WHERE is_label
";

#[test]
fn labels_in_their_own_table_are_served_their_point_in_time_features() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generate();
    let events: Vec<&Row> = rows.iter().filter(|r| r.kind == "event").collect();
    let labels: Vec<&Row> = rows.iter().filter(|r| r.kind == "label").collect();
    let events_log = write_table(dir.path(), &events, "events");
    let labels_log = write_table(dir.path(), &labels, "labels");
    let tables = [
        format!("events={}", events_log.display()),
        format!("labels={}", labels_log.display()),
    ];
    let artifact = crate::common::fit(
        dir.path(),
        PIT,
        &tables[0],
        &["--table", &tables[1], "--label", "y"],
    );
    let out = dir.path().join("batch.ndjson");
    ok(&skewless()
        .arg("apply")
        .arg(&artifact)
        .args(["--table", &tables[0], "--table", &tables[1], "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let batch = by_id(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(batch.len(), labels.len());
    // The label column is training only: served rows do not have it.
    let batch: HashMap<i64, Vec<(String, String)>> = batch
        .into_iter()
        .map(|(id, f)| (id, f.into_iter().filter(|(k, _)| k != "y").collect()))
        .collect();
    let event_object = |r: &Row| (r.kind == "event").then(|| row_json(r));
    let in_time = |r: &Row| r.ts;
    let on_arrival = |r: &Row| r.arrived;
    for (arrival_order, lateness) in [(false, "0"), (true, "40s")] {
        let is_label = |r: &Row| r.kind == "label";
        let table = ",\"table\":\"events\"";
        let lines = if arrival_order {
            protocol_of(&rows, on_arrival, is_label, event_object, table)
        } else {
            protocol_of(&rows, in_time, is_label, event_object, table)
        };
        let (served, report) = eval(&artifact, &lines, lateness);
        let served = by_id(&served);
        assert_eq!(served.len(), labels.len(), "{report}");
        let mut differ = 0;
        for (id, fields) in &batch {
            for ((name, expected), (_, got)) in fields.iter().zip(&served[id]) {
                if !arrival_order || name == "known_10s" || name == "id" {
                    assert_eq!(got, expected, "label {id} {name}: {:?}", rows[*id as usize]);
                } else if got != expected {
                    differ += 1;
                }
            }
        }
        if arrival_order {
            assert!(differ > 20, "{differ}");
        }
    }
}
