//! The report as an aligned table on stdout: anomalous columns first, each
//! check's value with its limit when it is crossed.

use std::fmt::Write as _;

use super::{Check, Report};
use crate::progress::group_digits;

/// The table `skewless validate` prints.
pub fn table(report: &Report) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{}: {} rows against the {} profile ({} rows) of {}",
        report.table,
        group_digits(report.rows.new as usize),
        report.against,
        group_digits(report.rows.training as usize),
        report.artifact
    );
    let _ = writeln!(text, "{}\n", super::verdict(report));
    let header = [
        "status", "column", "kind", "distance", "outside", "nulls", "NaNs",
    ];
    let mut rows: Vec<[String; 7]> = vec![header.map(String::from)];
    for c in &report.columns {
        let find = |names: &[&str]| c.checks.iter().find(|k| names.contains(&k.check));
        let cell = |check: Option<&Check>, with_name: bool| match check {
            None => "-".to_string(),
            Some(k) => {
                let name = match k.check {
                    "jensen_shannon" => "JS ",
                    "l_infinity" => "L∞ ",
                    "out_of_range_share" => "out of range ",
                    "unseen_share" => "unseen ",
                    _ => "",
                };
                let value = k.value.map_or("none".to_string(), |v| format!("{v:.4}"));
                let limit = if k.anomaly {
                    format!(" > {:.4}", k.limit)
                } else {
                    String::new()
                };
                let name = if with_name { name } else { "" };
                format!("{name}{value}{limit}")
            }
        };
        let status = if c.anomaly { "ANOMALY" } else { "ok" };
        let shares = |name: &str| {
            find(&[name]).map_or("-".to_string(), |k| {
                let value = k.value.map_or("none".to_string(), |v| format!("{v:.4}"));
                let mark = if k.anomaly { " !" } else { "" };
                format!("{value} ({:.4}){mark}", k.expected)
            })
        };
        rows.push([
            status.to_string(),
            c.name.clone(),
            c.kind.to_string(),
            match &c.schema {
                Some(problem) => problem.clone(),
                None => cell(find(&["jensen_shannon", "l_infinity"]), true),
            },
            cell(find(&["out_of_range_share", "unseen_share"]), true),
            shares("null_share"),
            shares("nan_share"),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(text, "{}", line.trim_end());
    }
    if !report.vocabularies.is_empty() {
        text.push_str("\nvocabulary outputs, rows out of vocabulary: new (training)\n");
        let width = report
            .vocabularies
            .iter()
            .map(|v| v.output.chars().count() + v.column.chars().count() + 3)
            .max()
            .unwrap_or(0);
        for v in &report.vocabularies {
            let share = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.4}"));
            let name = format!("{} ({})", v.output, v.column);
            let _ = writeln!(
                text,
                "  {name:<width$}  {} ({}){}",
                share(v.value),
                share(v.expected),
                if v.anomaly { "  ANOMALY" } else { "" }
            );
        }
    }
    if let Some(f) = &report.filter {
        let _ = writeln!(
            text,
            "\nrows the WHERE drops: {:.4} ({:.4}){}\n  WHERE {}",
            f.value,
            f.expected,
            if f.anomaly { "  ANOMALY" } else { "" },
            f.predicate
        );
    }
    for c in report.columns.iter().filter(|c| !c.top_unseen.is_empty()) {
        let listed: Vec<String> = c
            .top_unseen
            .iter()
            .map(|(v, n)| format!("{v:?} {}", group_digits(*n as usize)))
            .collect();
        let _ = writeln!(
            text,
            "\n{}: unseen in training: {}",
            c.name,
            listed.join(", ")
        );
    }
    text.push_str(
        "\n(NULL and NaN shares: new (training), ! when grown past the limit; '> x': the limit \
         a value crosses; formulas in docs/validation.md)\n",
    );
    text
}
