//! The server's counters, and `/metrics` in the Prometheus text format
//! (version 0.0.4). Labels are routes, status codes, reasons and model
//! names and versions, never values from requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds: from
/// 10 µs, since a request answered from memory takes tens of them.
pub const BUCKETS: [f64; 16] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative), then the overflow.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// Counts of one model version's rows.
#[derive(Default, Clone, Copy)]
pub struct RowCounts {
    pub rows: u64,
    pub row_errors: u64,
}

#[derive(Default)]
pub struct Metrics {
    /// (route, status code) → requests.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    /// Reason → requests or connections refused.
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    /// (model, version) → rows.
    rows: Mutex<BTreeMap<(String, u64), RowCounts>>,
    /// (model, version) → seconds its load took.
    loads: Mutex<BTreeMap<(String, u64), f64>>,
    /// (model, "ok" | "error") → reloads.
    reloads: Mutex<BTreeMap<(String, &'static str), u64>>,
    pub in_flight: AtomicU64,
    pub connections: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn request(&self, route: &'static str, code: u16, took: Duration) {
        *lock(&self.requests).entry((route, code)).or_default() += 1;
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        let mut latency = lock(&self.latency);
        let h = latency.entry(route).or_default();
        h.counts[bucket] += 1;
        h.sum += seconds;
        h.count += 1;
    }

    pub fn reject(&self, reason: &'static str) {
        *lock(&self.rejections).entry(reason).or_default() += 1;
    }

    pub fn rows(&self, model: &str, version: u64, rows: u64, errors: u64) {
        let mut m = lock(&self.rows);
        let c = m.entry((model.to_string(), version)).or_default();
        c.rows += rows;
        c.row_errors += errors;
    }

    pub fn loaded(&self, model: &str, version: u64, took: Duration) {
        lock(&self.loads).insert((model.to_string(), version), took.as_secs_f64());
    }

    pub fn reloaded(&self, model: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        *lock(&self.reloads)
            .entry((model.to_string(), result))
            .or_default() += 1;
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "skewless_http_requests_total",
            "counter",
            "HTTP requests answered, by route and status code.",
        );
        for ((route, code), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "skewless_http_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}"
            );
        }
        family(
            &mut out,
            "skewless_http_request_duration_seconds",
            "histogram",
            "Time from a request's headers read to its response, by route.",
        );
        for (route, h) in lock(&self.latency).iter() {
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "skewless_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "skewless_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 skewless_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 skewless_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        family(
            &mut out,
            "skewless_http_requests_in_flight",
            "gauge",
            "Requests being answered.",
        );
        let _ = writeln!(
            out,
            "skewless_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "skewless_http_connections_open",
            "gauge",
            "Client connections open.",
        );
        let _ = writeln!(
            out,
            "skewless_http_connections_open {}",
            self.connections.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "skewless_http_rejections_total",
            "counter",
            "Requests or connections refused before evaluation, by reason.",
        );
        for (reason, n) in lock(&self.rejections).iter() {
            let _ = writeln!(
                out,
                "skewless_http_rejections_total{{reason=\"{reason}\"}} {n}"
            );
        }
        family(
            &mut out,
            "skewless_model_rows_total",
            "counter",
            "Rows evaluated, by model and version.",
        );
        let rows = lock(&self.rows);
        for ((model, version), c) in rows.iter() {
            let _ = writeln!(
                out,
                "skewless_model_rows_total{{model=\"{model}\",version=\"{version}\"}} {}",
                c.rows
            );
        }
        family(
            &mut out,
            "skewless_model_row_errors_total",
            "counter",
            "Rows that failed (bad input), by model and version.",
        );
        for ((model, version), c) in rows.iter() {
            let _ = writeln!(
                out,
                "skewless_model_row_errors_total{{model=\"{model}\",version=\"{version}\"}} {}",
                c.row_errors
            );
        }
        drop(rows);
        family(
            &mut out,
            "skewless_model_load_seconds",
            "gauge",
            "Time to load, verify and compile a model version.",
        );
        for ((model, version), s) in lock(&self.loads).iter() {
            let _ = writeln!(
                out,
                "skewless_model_load_seconds{{model=\"{model}\",version=\"{version}\"}} {s}"
            );
        }
        family(
            &mut out,
            "skewless_model_reloads_total",
            "counter",
            "Reloads of a model, by result (a failed one keeps the old version serving).",
        );
        for ((model, result), n) in lock(&self.reloads).iter() {
            let _ = writeln!(
                out,
                "skewless_model_reloads_total{{model=\"{model}\",result=\"{result}\"}} {n}"
            );
        }
        if let Some((cpu, rss)) = process_usage() {
            family(
                &mut out,
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time of the process.",
            );
            let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
            family(
                &mut out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory of the process.",
            );
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out
    }
}

/// The window state of each model's version being served: one series per
/// (model, version, stream), the stream numbered in the order of
/// `eval --explain`.
pub fn render_windows(out: &mut String, models: &[(&str, u64, Vec<crate::serving::StreamReport>)]) {
    if models.iter().all(|(_, _, streams)| streams.is_empty()) {
        return;
    }
    type Pick = fn(&crate::serving::StreamReport) -> u64;
    let series: [(&str, &str, &str, Pick); 8] = [
        (
            "skewless_window_events_total",
            "counter",
            "Events pushed into the window state (NULL entity or time included).",
            |s| s.counts.pushed,
        ),
        (
            "skewless_window_late_events_total",
            "counter",
            "Events older than their entity's newest, accepted within the lateness.",
            |s| s.counts.late,
        ),
        (
            "skewless_window_dropped_events_total",
            "counter",
            "Events too old for any window that can still be asked for.",
            |s| s.counts.dropped,
        ),
        (
            "skewless_window_unkeyed_events_total",
            "counter",
            "Events with a NULL entity or time (in no window).",
            |s| s.counts.unkeyed,
        ),
        (
            "skewless_window_stale_requests_total",
            "counter",
            "Requests older than their entity's newest event minus the lateness.",
            |s| s.counts.stale_requests,
        ),
        (
            "skewless_window_evicted_entities_total",
            "counter",
            "Entities removed after being idle longer than any window reaches.",
            |s| s.counts.evicted,
        ),
        (
            "skewless_window_entities",
            "gauge",
            "Entities held in the window state.",
            |s| s.entities as u64,
        ),
        (
            "skewless_window_events_held",
            "gauge",
            "Events held one by one in the window state.",
            |s| s.events_held as u64,
        ),
    ];
    for (name, kind, help, pick) in series {
        family(out, name, kind, help);
        for (model, version, streams) in models {
            for (i, s) in streams.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{model=\"{model}\",version=\"{version}\",stream=\"{i}\"}} {}",
                    pick(s)
                );
            }
        }
    }
}

/// The skew counts of each model's version being served: what its
/// evaluator saw outside the training data's reach, by kind and column.
pub fn render_skew(out: &mut String, models: &[(&str, u64, Vec<crate::serving::SkewCount>)]) {
    if models.iter().all(|(_, _, counts)| counts.is_empty()) {
        return;
    }
    family(
        out,
        "skewless_model_skew_total",
        "counter",
        "Values the evaluator saw outside what training fitted: kind null or non_finite (an \
         input), unseen (by a vocabulary), out_of_range (of a min-max scaler's fitted min and max).",
    );
    for (model, version, counts) in models {
        for c in counts {
            let _ = writeln!(
                out,
                "skewless_model_skew_total{{model=\"{model}\",version=\"{version}\",kind=\"{}\",\
                 column=\"{}\",output=\"{}\"}} {}",
                c.kind,
                label(&c.column),
                label(&c.output),
                c.count
            );
        }
    }
}

/// A label value escaped as the exposition format asks.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// CPU seconds and resident bytes of this process, from `/proc` (Linux;
/// None elsewhere). Clock ticks are taken as 100 per second and pages as
/// 4 KiB, Linux's values on the platforms we build for.
fn process_usage() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line; 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split(' ').nth(1)?.parse().ok()?;
    Some((ticks as f64 / 100.0, pages * 4096))
}

/// Live skew per model: the rows the validation report covers, its
/// anomalous columns, and each check's value and whether it is anomalous
/// (the formulas of `skewless validate`; labels name columns and checks,
/// never values).
pub fn render_validation(out: &mut String, models: &[(&str, u64, crate::validate::Report)]) {
    if models.is_empty() {
        return;
    }
    type Pick = fn(&crate::validate::Report) -> usize;
    let gauges: [(&str, &str, Pick); 2] = [
        (
            "skewless_model_validation_rows",
            "Served rows the validation report covers (about the last --validation-rows).",
            |r| r.rows.new as usize,
        ),
        (
            "skewless_model_validation_anomalous_columns",
            "Columns and transform checks of the recent served rows anomalous against the \
             training profile.",
            |r| r.anomalies,
        ),
    ];
    for (name, help, pick) in gauges {
        family(out, name, "gauge", help);
        for (model, version, r) in models {
            let _ = writeln!(
                out,
                "{name}{{model=\"{model}\",version=\"{version}\"}} {}",
                pick(r)
            );
        }
    }
    family(
        out,
        "skewless_model_validation_value",
        "gauge",
        "A check's value on the recent served rows (distance or share; docs/validation.md).",
    );
    for (model, version, r) in models {
        for c in &r.columns {
            for k in &c.checks {
                if let Some(value) = k.value {
                    let _ = writeln!(
                        out,
                        "skewless_model_validation_value{{model=\"{model}\",version=\"{version}\",column=\"{}\",check=\"{}\"}} {value}",
                        label(&c.name),
                        k.check
                    );
                }
            }
        }
    }
    family(
        out,
        "skewless_model_validation_anomaly",
        "gauge",
        "1 when a check of the recent served rows is beyond its limit, else 0.",
    );
    for (model, version, r) in models {
        for c in &r.columns {
            for k in &c.checks {
                let _ = writeln!(
                    out,
                    "skewless_model_validation_anomaly{{model=\"{model}\",version=\"{version}\",column=\"{}\",check=\"{}\"}} {}",
                    label(&c.name),
                    k.check,
                    u8::from(k.anomaly)
                );
            }
        }
    }
}
