//! The report as one self-contained HTML page: inline CSS and SVG, no
//! JavaScript, no fonts or anything else to fetch, a few KB per column (the
//! counts, never rows). Anomalous columns come first and open; healthy
//! ones are folded (`<details>`). The same report gives the same bytes.

use std::fmt::Write as _;

use super::{ColumnReport, Report};
use crate::profile::Counts;
use crate::progress::group_digits;
use skewless_udfs::kernel::profile::share;

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;\
margin:2em auto;max-width:60em;padding:0 1em;color:#1b1b1b;background:#fff}\
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.1em;margin:0}\
table{border-collapse:collapse;margin:.6em 0}td,th{padding:.2em .7em;text-align:left;\
border-bottom:1px solid #ddd}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.bad{color:#b00020;font-weight:600}.ok{color:#1a7f37}\
details{border:1px solid #ddd;border-radius:6px;margin:.7em 0;padding:.4em .9em}\
summary{cursor:pointer;font-weight:600}.meta{color:#555}\
svg{display:block;margin:.5em 0}.legend span{display:inline-block;margin-right:1.2em}\
.sw{display:inline-block;width:.9em;height:.9em;vertical-align:-.1em;margin-right:.3em}";

const TRAINING: &str = "#6b8fb8";
const NEW: &str = "#e07b39";
const OUTSIDE: &str = "#f3d4d4";

/// The page.
pub fn page(report: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>skewless validate: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&report.table)
    );
    let verdict = match report.anomalies {
        0 => format!("<span class=\"ok\">{}</span>", esc(&super::verdict(report))),
        _ => format!(
            "<span class=\"bad\">{}</span>",
            esc(&super::verdict(report))
        ),
    };
    let _ = write!(
        h,
        "<h1>{}: {verdict}</h1>\n<p class=\"meta\">{} new rows against the {} profile ({} \
         rows) of artifact <code>{}</code></p>\n",
        esc(&report.table),
        group_digits(report.rows.new as usize),
        report.against,
        group_digits(report.rows.training as usize),
        esc(&report.artifact)
    );
    h.push_str(
        "<table><thead><tr><th>column</th><th>kind</th><th>status</th><th>distance</th>\
         <th>outside training</th><th class=\"n\">NULL share</th><th class=\"n\">NaN share</th>\
         </tr></thead><tbody>\n",
    );
    for c in &report.columns {
        let check = |names: &[&str]| {
            c.checks
                .iter()
                .find(|k| names.contains(&k.check))
                .map_or("–".to_string(), |k| {
                    let v = k.value.map_or("none".to_string(), |v| format!("{v:.4}"));
                    let name = match k.check {
                        "jensen_shannon" => "JS ",
                        "l_infinity" => "L∞ ",
                        "unseen_share" => "unseen ",
                        "out_of_range_share" => "out of range ",
                        _ => "",
                    };
                    if k.anomaly {
                        format!("<span class=\"bad\">{name}{v} &gt; {:.4}</span>", k.limit)
                    } else {
                        format!("{name}{v}")
                    }
                })
        };
        let status = if c.anomaly {
            "<span class=\"bad\">anomaly</span>"
        } else {
            "<span class=\"ok\">ok</span>"
        };
        let distance = match &c.schema {
            Some(problem) => esc(problem),
            None => check(&["jensen_shannon", "l_infinity"]),
        };
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#c-{0}\">{0}</a></td><td>{1}</td><td>{status}</td><td>{distance}\
             </td><td>{2}</td><td class=\"n\">{3}</td><td class=\"n\">{4}</td></tr>",
            esc(&c.name),
            c.kind,
            check(&["out_of_range_share", "unseen_share"]),
            check(&["null_share"]),
            check(&["nan_share"]),
        );
    }
    h.push_str("</tbody></table>\n");
    if !report.vocabularies.is_empty() {
        h.push_str(
            "<table><thead><tr><th>vocabulary output</th><th>reads</th>\
             <th class=\"n\">rows out of vocabulary</th><th class=\"n\">in training</th>\
             </tr></thead><tbody>\n",
        );
        for v in &report.vocabularies {
            let share = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("{x:.4}"));
            let value = if v.anomaly {
                format!("<span class=\"bad\">{}</span>", share(v.value))
            } else {
                share(v.value)
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{value}</td><td class=\"n\">{}</td></tr>",
                esc(&v.output),
                esc(&v.column),
                share(v.expected)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    if let Some(f) = &report.filter {
        let value = format!("{:.4}", f.value);
        let value = if f.anomaly {
            format!("<span class=\"bad\">{value}</span>")
        } else {
            value
        };
        let _ = writeln!(
            h,
            "<p>Rows the transform's <code>WHERE {}</code> drops: {value} (training {:.4})</p>",
            esc(&f.predicate),
            f.expected
        );
    }
    h.push_str(&format!(
        "<p class=\"legend\"><span><i class=\"sw\" style=\"background:{TRAINING}\"></i>\
         {}</span><span><i class=\"sw\" style=\"background:{NEW}\"></i>new data</span>\
         <span><i class=\"sw\" style=\"background:{OUTSIDE}\"></i>outside the training range\
         </span></p>\n",
        report.against
    ));
    for c in &report.columns {
        column(&mut h, c, report.against);
    }
    h.push_str(
        "<p class=\"meta\">Shares are of each side's own rows (NULLs, NaNs) or values. \
         Distances: Jensen-Shannon divergence with logarithm base 2 over the profile's slots \
         (numbers), L-infinity over the categories (categories); formulas in \
         docs/validation.md.</p>\n</body></html>\n",
    );
    h
}

fn column(h: &mut String, c: &ColumnReport, against: &str) {
    let open = if c.anomaly { " open" } else { "" };
    let _ = writeln!(
        h,
        "<details id=\"c-{0}\"{open}><summary>{0} <span class=\"meta\">({1}{2})</span>\
         </summary>",
        esc(&c.name),
        c.kind,
        if c.anomaly { ", anomaly" } else { "" }
    );
    match (&c.training, &c.new) {
        (
            Some(Counts::Numeric {
                edges, slots: p, ..
            }),
            Some(Counts::Numeric { slots: q, .. }),
        ) if !p.is_empty() && p.len() == q.len() => numeric(h, edges, p, q, against),
        (
            Some(Counts::Categorical {
                values,
                other: rest,
                ..
            }),
            Some(Counts::Categorical { values: seen, .. }),
        ) if !values.is_empty() || !seen.is_empty() => {
            categorical(h, values, *rest, seen, &c.top_unseen, against)
        }
        _ => {
            if let Some(problem) = &c.schema {
                let _ = writeln!(h, "<p class=\"bad\">{}</p>", esc(problem));
            } else {
                h.push_str("<p class=\"meta\">summary profile: no histogram</p>\n");
            }
        }
    }
    h.push_str("</details>\n");
}

/// Training and new shares of each slot side by side on one axis, the two
/// out-of-range slots shaded; the counts in a table below.
fn numeric(h: &mut String, edges: &[f64], p: &[u64], q: &[u64], against: &str) {
    let labels: Vec<String> = (0..p.len())
        .map(|i| {
            let last = p.len() - 1;
            match i {
                0 => format!("< {}", num(edges.first().copied().unwrap_or(0.0))),
                i if i == last => format!("> {}", num(edges.last().copied().unwrap_or(0.0))),
                i => {
                    let lo = edges.get(i - 1).copied().unwrap_or(0.0);
                    let hi = edges.get(i).copied().unwrap_or(lo);
                    let close = if i + 1 == last { "]" } else { ")" };
                    format!("[{}, {}{close}", num(lo), num(hi))
                }
            }
        })
        .collect();
    let outside = |i: usize| i == 0 || i + 1 == p.len();
    let (np, nq) = (p.iter().sum(), q.iter().sum());
    bars(h, &labels, p, q, np, nq, &outside);
    table(h, &labels, p, q, np, nq, against);
}

/// The categories whose shares differ most (at most 15), the rest of
/// training and the unseen values as bars; the counts in a table below.
fn categorical(
    h: &mut String,
    values: &[(String, u64)],
    rest: u64,
    seen: &[(String, u64)],
    unseen: &[(String, u64)],
    against: &str,
) {
    let np: u64 = values.iter().map(|(_, n)| n).sum::<u64>() + rest;
    let nq: u64 = seen.iter().map(|(_, n)| n).sum();
    let new_of = |v: &str| seen.iter().find(|(s, _)| s == v).map_or(0, |(_, n)| *n);
    let mut rows: Vec<(String, u64, u64)> = values
        .iter()
        .map(|(v, n)| (v.clone(), *n, new_of(v)))
        .collect();
    // Largest difference first; ties by training order (a stable sort).
    rows.sort_by(|a, b| {
        let d = |r: &(String, u64, u64)| (share(r.1, np) - share(r.2, nq)).abs();
        d(b).total_cmp(&d(a))
    });
    let shown = rows.len().min(15);
    let hidden = rows.len() - shown;
    rows.truncate(shown);
    let listed: u64 = values.iter().map(|(_, n)| n).sum();
    let known_new: u64 = values.iter().map(|(v, _)| new_of(v)).sum();
    let unseen_total = nq - known_new;
    if rest > 0 {
        rows.push(("(beyond the profile's cap)".into(), rest, unseen_total));
    } else {
        rows.push(("(unseen in training)".into(), 0, unseen_total));
    }
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let p: Vec<u64> = rows.iter().map(|r| r.1).collect();
    let q: Vec<u64> = rows.iter().map(|r| r.2).collect();
    let last = rows.len() - 1;
    // Shares are of every value, shown or not.
    bars(h, &labels, &p, &q, np, nq, &|i| i == last);
    table(h, &labels, &p, &q, np, nq, against);
    if hidden > 0 {
        let _ = writeln!(
            h,
            "<p class=\"meta\">{hidden} more categories differ less ({} of {} training values \
             listed)</p>",
            group_digits(listed as usize),
            group_digits(np as usize)
        );
    }
    if !unseen.is_empty() {
        let listed: Vec<String> = unseen
            .iter()
            .map(|(v, n)| format!("<code>{}</code> {}", esc(v), group_digits(*n as usize)))
            .collect();
        let _ = writeln!(h, "<p>Unseen in training: {}</p>", listed.join(", "));
    }
}

/// Paired vertical bars of the shares p/np and q/nq, one pair per label.
fn bars(
    h: &mut String,
    labels: &[String],
    p: &[u64],
    q: &[u64],
    np: u64,
    nq: u64,
    marked: &dyn Fn(usize) -> bool,
) {
    let top = p
        .iter()
        .map(|&a| share(a, np))
        .chain(q.iter().map(|&b| share(b, nq)))
        .fold(0.0, f64::max)
        .max(1e-9);
    let (slot, plot, base) = (44.0, 160.0, 180.0);
    let width = 40.0 + slot * labels.len() as f64;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"230\" \
         viewBox=\"0 0 {width:.0} 230\" role=\"img\" aria-label=\"shares per slot\">"
    );
    let _ = writeln!(
        h,
        "<text x=\"2\" y=\"{:.0}\" font-size=\"10\" fill=\"#555\">{:.1}%</text>\
         <line x1=\"36\" y1=\"{base:.0}\" x2=\"{width:.0}\" y2=\"{base:.0}\" stroke=\"#999\"/>",
        base - plot + 8.0,
        top * 100.0
    );
    for (i, label) in labels.iter().enumerate() {
        let x = 40.0 + slot * i as f64;
        if marked(i) {
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{plot:.1}\" fill=\"{OUTSIDE}\"/>",
                base - plot,
                slot - 4.0
            );
        }
        for (k, (count, n, color)) in [(p[i], np, TRAINING), (q[i], nq, NEW)].iter().enumerate() {
            let height = share(*count, *n) / top * plot;
            let _ = write!(
                h,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"18\" height=\"{height:.1}\" fill=\"{color}\">\
                 <title>{}: {:.4}</title></rect>",
                x + 2.0 + 19.0 * k as f64,
                base - height,
                esc(label),
                share(*count, *n)
            );
        }
        let short: String = label.chars().take(9).collect();
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#333\" \
             transform=\"rotate(35 {:.1} {:.1})\">{}</text>",
            x + 4.0,
            base + 12.0,
            x + 4.0,
            base + 12.0,
            esc(&short)
        );
    }
    h.push_str("</svg>\n");
}

/// The counts and shares under a chart.
fn table(h: &mut String, labels: &[String], p: &[u64], q: &[u64], np: u64, nq: u64, against: &str) {
    let _ = writeln!(
        h,
        "<table><thead><tr><th>slot</th><th class=\"n\">{against}</th><th class=\"n\">share</th>\
         <th class=\"n\">new</th><th class=\"n\">share</th></tr></thead><tbody>"
    );
    for (i, label) in labels.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.4}</td><td class=\"n\">{}\
             </td><td class=\"n\">{:.4}</td></tr>",
            esc(label),
            group_digits(p[i] as usize),
            share(p[i], np),
            group_digits(q[i] as usize),
            share(q[i], nq)
        );
    }
    h.push_str("</tbody></table>\n");
}

/// A number as a short label: integers without a fraction.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Text escaped for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
