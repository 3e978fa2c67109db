//! `skewless validate`: new data against a training profile (skew) or an
//! earlier profile (drift), column by column, with the formulas of
//! `docs/validation.md`: a distance between the two distributions over the
//! profile's slots (Jensen-Shannon divergence for numbers, L-infinity for
//! categories), the shares of values out of the training range and unseen
//! in training, and the growth of the NULL and NaN shares. Every number is
//! computed from exact integer counts ([`crate::profile`]) by
//! [`skewless_udfs::kernel::profile`], so the same data gives the same
//! report whatever the partitioning or machine.

pub mod html;
mod text;

use std::collections::BTreeMap;

use serde::Serialize;
use skewless_udfs::kernel::profile::{jensen_shannon, l_infinity, share};

use crate::profile::{ColumnProfile, Counts, Profile};

pub use text::table;

/// A distance between two distributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Jensen-Shannon divergence, logarithm base 2 (0 to 1).
    JensenShannon,
    /// The largest difference of one slot's share (0 to 1).
    LInfinity,
}

impl Metric {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "jensen_shannon" | "js" | "jsd" => Some(Metric::JensenShannon),
            "l_infinity" | "linf" => Some(Metric::LInfinity),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::JensenShannon => "jensen_shannon",
            Metric::LInfinity => "l_infinity",
        }
    }

    fn of(self, p: &[u64], q: &[u64]) -> Option<f64> {
        match self {
            Metric::JensenShannon => jensen_shannon(p, q),
            Metric::LInfinity => l_infinity(p, q),
        }
    }
}

/// The limits beyond which a check is an anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// The distance threshold of every column (BigQuery ML's 0.3) …
    pub distance: f64,
    /// … and of named ones.
    pub distances: BTreeMap<String, f64>,
    /// A metric for every column (None: by kind) and for named ones.
    pub metric: Option<Metric>,
    pub metrics: BTreeMap<String, Metric>,
    pub out_of_range: f64,
    pub unseen: f64,
    /// The most the NULL and the NaN shares may grow.
    pub null_increase: f64,
    pub nan_increase: f64,
    /// The most the share of rows the WHERE drops may change, either way.
    pub where_change: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            distance: 0.3,
            distances: BTreeMap::new(),
            metric: None,
            metrics: BTreeMap::new(),
            out_of_range: 0.01,
            unseen: 0.01,
            null_increase: 0.05,
            nan_increase: 0.05,
            where_change: 0.05,
        }
    }
}

/// The report: what `--json` writes (format in `docs/validation.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub format_version: u32,
    /// The artifact's checksum.
    pub artifact: String,
    pub table: String,
    /// `training` (skew) or `baseline` (drift, `--baseline`).
    pub against: &'static str,
    pub rows: Rows,
    /// Columns with at least one anomalous check (schema anomalies
    /// included), plus anomalous vocabulary checks.
    pub anomalies: usize,
    /// Anomalous columns first, then in the profile's order.
    pub columns: Vec<ColumnReport>,
    /// Transform-aware: per vocabulary output, the share of rows whose key
    /// goes to its out-of-vocabulary buckets, in training and now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vocabularies: Vec<VocabularyCheck>,
    /// Transform-aware: the share of rows the transform's WHERE drops, in
    /// training and now (batch only: serving applies no WHERE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterCheck>,
}

/// The share of rows the transform's WHERE drops.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterCheck {
    pub predicate: String,
    pub value: f64,
    pub expected: f64,
    /// The largest change either way (`--max-where-change`).
    pub allowed: f64,
    pub anomaly: bool,
}

/// The out-of-vocabulary share of one vocabulary output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VocabularyCheck {
    pub output: String,
    /// The input its key reads.
    pub column: String,
    /// The share of the new rows whose key the vocabulary does not hold
    /// (None: the profile lists only part of the values).
    pub value: Option<f64>,
    /// The same share in the baseline.
    pub expected: Option<f64>,
    /// The value beyond which it is an anomaly: the baseline share plus
    /// `--max-unseen`.
    pub limit: Option<f64>,
    pub anomaly: bool,
}

/// The vocabulary checks from the out-of-vocabulary shares of the
/// baseline and of the new data ([`crate::serving::Evaluator::oov_shares`],
/// in the same order).
pub fn vocabulary_checks(
    baseline: &[(String, String, Option<f64>)],
    new: &[(String, String, Option<f64>)],
    limits: &Limits,
) -> Vec<VocabularyCheck> {
    baseline
        .iter()
        .zip(new)
        .map(|((output, column, expected), (_, _, value))| {
            let limit = expected.map(|e| e + limits.unseen);
            VocabularyCheck {
                output: output.clone(),
                column: column.clone(),
                value: *value,
                expected: *expected,
                limit,
                anomaly: matches!((value, expected), (Some(v), Some(e)) if v - e > limits.unseen),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rows {
    pub training: u64,
    pub new: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnReport {
    pub name: String,
    /// `numeric`, `categorical`, or `schema` for a column the new data
    /// lacks or holds with another type.
    pub kind: &'static str,
    pub anomaly: bool,
    /// What is wrong with the column's schema, for `schema` columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub checks: Vec<Check>,
    /// The most frequent values new data holds that training did not, with
    /// their counts (at most 10).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_unseen: Vec<(String, u64)>,
    /// The two sides' counts, as profiles write them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<Counts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Counts>,
}

/// One check of a column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// `jensen_shannon`, `l_infinity`, `out_of_range_share`,
    /// `unseen_share`, `null_share` or `nan_share`.
    pub check: &'static str,
    /// The value on the new data (None: no values to compare).
    pub value: Option<f64>,
    /// The value expected without skew: 0 for distances and for the
    /// out-of-range and unseen shares, the training share for NULLs/NaNs.
    pub expected: f64,
    /// The value beyond which (strictly) the check is an anomaly.
    pub limit: f64,
    pub anomaly: bool,
}

impl Check {
    fn new(check: &'static str, value: Option<f64>, expected: f64, allowed: f64) -> Self {
        let anomaly = value.is_some_and(|v| v - expected > allowed);
        Self {
            check,
            value,
            expected,
            limit: expected + allowed,
            anomaly,
        }
    }
}

/// A column of the new data that cannot be compared: missing, or of a type
/// the transform does not accept.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaProblem {
    pub column: String,
    pub message: String,
}

/// Compares `new` (counted over `baseline`'s slots by
/// [`crate::profile::count_new`]) with `baseline`.
pub fn compare(
    artifact: &str,
    baseline: &Profile,
    against: &'static str,
    new: &Profile,
    schema: &[SchemaProblem],
    vocabularies: Vec<VocabularyCheck>,
    limits: &Limits,
) -> Report {
    let mut columns: Vec<ColumnReport> = schema
        .iter()
        .map(|p| ColumnReport {
            name: p.column.clone(),
            kind: "schema",
            anomaly: true,
            schema: Some(p.message.clone()),
            checks: Vec::new(),
            top_unseen: Vec::new(),
            training: None,
            new: None,
        })
        .collect();
    for b in &baseline.columns {
        let Some(n) = new.columns.iter().find(|c| c.name == b.name) else {
            continue;
        };
        columns.push(compare_column(b, baseline.rows, n, new.rows, limits));
    }
    // Anomalies first; a stable sort keeps the profile's order within.
    columns.sort_by_key(|c| !c.anomaly);
    let filter = match (&baseline.filter, &new.filter) {
        (Some(b), Some(n)) if b.predicate == n.predicate => {
            let expected = share(baseline.rows - b.kept.min(baseline.rows), baseline.rows);
            let value = share(new.rows - n.kept.min(new.rows), new.rows);
            Some(FilterCheck {
                predicate: b.predicate.clone(),
                value,
                expected,
                allowed: limits.where_change,
                anomaly: (value - expected).abs() > limits.where_change,
            })
        }
        _ => None,
    };
    Report {
        format: "skewless-validation",
        format_version: 1,
        artifact: artifact.to_string(),
        table: baseline.table.clone(),
        against,
        rows: Rows {
            training: baseline.rows,
            new: new.rows,
        },
        anomalies: columns.iter().filter(|c| c.anomaly).count()
            + vocabularies.iter().filter(|v| v.anomaly).count()
            + usize::from(filter.as_ref().is_some_and(|f| f.anomaly)),
        columns,
        vocabularies,
        filter,
    }
}

fn compare_column(
    b: &ColumnProfile,
    b_rows: u64,
    n: &ColumnProfile,
    n_rows: u64,
    limits: &Limits,
) -> ColumnReport {
    let threshold = *limits.distances.get(&b.name).unwrap_or(&limits.distance);
    let metric = limits.metrics.get(&b.name).copied().or(limits.metric);
    let null_check = Check::new(
        "null_share",
        Some(share(n.counts.nulls(), n_rows)),
        share(b.counts.nulls(), b_rows),
        limits.null_increase,
    );
    let mut checks = Vec::new();
    let mut top_unseen = Vec::new();
    let kind = match (&b.counts, &n.counts) {
        (
            Counts::Numeric {
                slots: p,
                nan: b_nan,
                ..
            },
            Counts::Numeric {
                slots: q,
                nan: n_nan,
                count,
                ..
            },
        ) => {
            if !p.is_empty() && p.len() == q.len() {
                let metric = metric.unwrap_or(Metric::JensenShannon);
                checks.push(Check::new(metric.name(), metric.of(p, q), 0.0, threshold));
                let outside = q[0] + q[q.len() - 1];
                checks.push(Check::new(
                    "out_of_range_share",
                    (*count > 0).then(|| share(outside, *count)),
                    0.0,
                    limits.out_of_range,
                ));
            }
            checks.push(null_check);
            checks.push(Check::new(
                "nan_share",
                Some(share(*n_nan, n_rows)),
                share(*b_nan, b_rows),
                limits.nan_increase,
            ));
            "numeric"
        }
        (
            Counts::Categorical {
                values: known,
                other,
                distinct: Some(_),
                ..
            },
            Counts::Categorical {
                values: seen,
                count,
                distinct: Some(_),
                ..
            },
        ) => {
            // Slots: the training values, the rest of training (beyond its
            // cap), values training did not hold.
            let index: BTreeMap<&str, usize> = known
                .iter()
                .enumerate()
                .map(|(i, (v, _))| (v.as_str(), i))
                .collect();
            let mut p: Vec<u64> = known.iter().map(|(_, c)| *c).collect();
            p.extend([*other, 0]);
            let mut q = vec![0u64; p.len()];
            let capped = *other > 0;
            for (v, c) in seen {
                match index.get(v.as_str()) {
                    Some(&i) => q[i] += c,
                    // Beyond a capped training profile a value may be one
                    // training summed: it counts as "the rest".
                    None if capped => q[known.len()] += c,
                    None => {
                        q[known.len() + 1] += c;
                        if top_unseen.len() < 10 {
                            top_unseen.push((v.clone(), *c));
                        }
                    }
                }
            }
            let metric = metric.unwrap_or(Metric::LInfinity);
            checks.push(Check::new(metric.name(), metric.of(&p, &q), 0.0, threshold));
            if !capped {
                checks.push(Check::new(
                    "unseen_share",
                    (*count > 0).then(|| share(q[known.len() + 1], *count)),
                    0.0,
                    limits.unseen,
                ));
            }
            checks.push(null_check);
            "categorical"
        }
        (Counts::Categorical { .. }, Counts::Categorical { .. }) => {
            checks.push(null_check);
            "categorical"
        }
        _ => {
            checks.push(null_check);
            "numeric"
        }
    };
    ColumnReport {
        name: b.name.clone(),
        kind,
        anomaly: checks.iter().any(|c| c.anomaly),
        schema: None,
        checks,
        top_unseen,
        training: Some(b.counts.clone()),
        new: Some(n.counts.clone()),
    }
}

/// The report in one line: "no anomalies in 11 columns", "2 of 11 columns
/// anomalous", "2 of 11 columns and 1 transform check anomalous" (transform
/// checks: vocabulary outputs and the WHERE).
pub fn verdict(report: &Report) -> String {
    let columns = report.columns.iter().filter(|c| c.anomaly).count();
    let vocabularies = report.vocabularies.iter().filter(|v| v.anomaly).count()
        + usize::from(report.filter.as_ref().is_some_and(|f| f.anomaly));
    let n = report.columns.len();
    let outputs = match vocabularies {
        0 => String::new(),
        1 => " and 1 transform check".to_string(),
        v => format!(" and {v} transform checks"),
    };
    match (columns, vocabularies) {
        (0, 0) => format!("no anomalies in {n} columns"),
        (0, t) => format!("no column of {n} anomalous; {t} transform check(s) anomalous"),
        (c, _) => format!("{c} of {n} columns{outputs} anomalous"),
    }
}

impl Report {
    /// The JSON report (pretty, with a final newline): the same data gives
    /// the same bytes.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports serialize");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn categorical(values: &[(&str, u64)], other: u64) -> ColumnProfile {
        ColumnProfile {
            name: "c".into(),
            data_type: "Utf8".into(),
            counts: Counts::Categorical {
                count: values.iter().map(|(_, n)| n).sum::<u64>() + other,
                nulls: 0,
                distinct: Some(values.len() as u64),
                values: values.iter().map(|(v, n)| (v.to_string(), *n)).collect(),
                other,
            },
        }
    }

    fn profile(column: ColumnProfile) -> Profile {
        Profile {
            table: "t".into(),
            rows: column.counts.values() + column.counts.nulls(),
            bins: 10,
            cap: 1000,
            columns: vec![column],
            filter: None,
        }
    }

    #[test]
    fn the_issue_categorical_example() {
        // {a: 50, b: 30, c: 20} vs {a: 30, b: 30, c: 25, d: 15}: L∞ 0.2
        // (a: 0.5 vs 0.3), unseen share 0.15 (d).
        let training = profile(categorical(&[("a", 50), ("b", 30), ("c", 20)], 0));
        let new = profile(categorical(
            &[("a", 30), ("b", 30), ("c", 25), ("d", 15)],
            0,
        ));
        let r = compare(
            "sha256:x",
            &training,
            "training",
            &new,
            &[],
            Vec::new(),
            &Limits::default(),
        );
        let c = &r.columns[0];
        assert_eq!(c.checks[0].check, "l_infinity");
        assert_eq!(c.checks[0].value, Some(0.2));
        assert!(!c.checks[0].anomaly);
        assert_eq!(c.checks[1].check, "unseen_share");
        assert_eq!(c.checks[1].value, Some(0.15));
        assert!(c.checks[1].anomaly);
        assert_eq!(c.top_unseen, [("d".to_string(), 15)]);
        assert_eq!(r.anomalies, 1);
        // Identical data: every distance 0, no anomaly.
        let same = compare(
            "x",
            &training,
            "training",
            &training,
            &[],
            Vec::new(),
            &Limits::default(),
        );
        assert_eq!(same.anomalies, 0);
        assert!(
            same.columns[0]
                .checks
                .iter()
                .all(|c| c.value == Some(c.expected))
        );
    }

    #[test]
    fn the_issue_numeric_example() {
        let numeric = |slots: Vec<u64>, count: u64| ColumnProfile {
            name: "x".into(),
            data_type: "Int64".into(),
            counts: Counts::Numeric {
                count,
                nulls: 0,
                nan: 0,
                pos_inf: 0,
                neg_inf: 0,
                min: Some(1.0),
                max: Some(255.0),
                edges: vec![1.0, 64.0, 128.0, 192.0, 255.0],
                slots,
            },
        };
        let training = profile(numeric(vec![0, 63, 64, 64, 64, 0], 255));
        let new = profile(numeric(vec![0, 63, 64, 64, 64, 245], 500));
        let r = compare(
            "x",
            &training,
            "training",
            &new,
            &[],
            Vec::new(),
            &Limits::default(),
        );
        let checks = &r.columns[0].checks;
        assert_eq!(
            (checks[0].check, checks[0].value),
            ("jensen_shannon", Some(0.3034009788996591))
        );
        assert!(checks[0].anomaly); // > 0.3
        assert_eq!(
            (checks[1].check, checks[1].value),
            ("out_of_range_share", Some(0.49))
        );
        // Disjoint data: the divergence is 1.
        let disjoint = profile(numeric(vec![7, 0, 0, 0, 0, 0], 7));
        let r = compare(
            "x",
            &training,
            "training",
            &disjoint,
            &[],
            Vec::new(),
            &Limits::default(),
        );
        assert_eq!(r.columns[0].checks[0].value, Some(1.0));
    }
}
