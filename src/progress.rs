//! Progress of long scans and writes on stderr.
//!
//! A background task samples the running physical plan's metrics: rows and
//! bytes produced by its leaves (the scans), rows written by its sinks. It
//! prints one line, rewritten in place, only after the statement has run for
//! a moment, and erases it when the statement ends. Nothing is printed when
//! stderr is not a terminal, unless asked for.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use datafusion::physical_plan::ExecutionPlan;

/// When to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ProgressMode {
    /// When stderr is a terminal.
    #[default]
    Auto,
    /// Always (also when stderr is redirected).
    Always,
    /// Never.
    Never,
}

impl ProgressMode {
    pub fn enabled(self) -> bool {
        match self {
            Self::Auto => std::io::stderr().is_terminal(),
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// Delay before the first progress line: quick statements print nothing.
const FIRST_REPORT: Duration = Duration::from_millis(500);
const INTERVAL: Duration = Duration::from_millis(200);

/// Reports a running plan's progress until dropped.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    printed: Arc<AtomicBool>,
}

impl Progress {
    /// Starts reporting on `plan`, which must be executing (or about to).
    pub fn start(plan: Arc<dyn ExecutionPlan>) -> Self {
        let printed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&printed);
        let started = Instant::now();
        let task = tokio::spawn(async move {
            tokio::time::sleep(FIRST_REPORT).await;
            loop {
                let line = Counts::of(plan.as_ref()).describe(started.elapsed());
                {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                }
                flag.store(true, Ordering::Release);
                tokio::time::sleep(INTERVAL).await;
            }
        });
        Self { task, printed }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        if self.printed.load(Ordering::Acquire) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// What a plan has done so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows produced by the scans.
    pub rows_read: usize,
    /// Bytes read by the scans (where the source reports it).
    pub bytes_read: usize,
    /// Rows written by sinks (COPY, INSERT).
    pub rows_written: usize,
}

impl Counts {
    /// Sums the metrics of the plan's leaves and sinks.
    pub fn of(plan: &dyn ExecutionPlan) -> Self {
        let mut counts = Self::default();
        counts.add(plan);
        counts
    }

    fn add(&mut self, plan: &dyn ExecutionPlan) {
        let children = plan.children();
        if let Some(metrics) = plan.metrics() {
            if children.is_empty() {
                self.rows_read += metrics.output_rows().unwrap_or(0);
                self.bytes_read += metrics
                    .sum_by_name("bytes_scanned")
                    .map_or(0, |m| m.as_usize());
            } else if plan.name() == "DataSinkExec" {
                self.rows_written += metrics.output_rows().unwrap_or(0);
            }
        }
        for child in children {
            self.add(child.as_ref());
        }
    }

    /// One progress line.
    pub fn describe(&self, elapsed: Duration) -> String {
        let mut line = format!("{} rows read", group_digits(self.rows_read));
        if self.bytes_read > 0 {
            line.push_str(&format!(", {}", human_bytes(self.bytes_read)));
        }
        if self.rows_written > 0 {
            line.push_str(&format!(
                ", {} rows written",
                group_digits(self.rows_written)
            ));
        }
        line.push_str(&format!(", {:.1} s", elapsed.as_secs_f64()));
        line
    }
}

/// `1234567` → `1,234,567`.
pub fn group_digits(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(32561), "32,561");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn line() {
        let c = Counts {
            rows_read: 32561,
            bytes_read: 2048,
            rows_written: 10,
        };
        assert_eq!(
            c.describe(Duration::from_millis(1250)),
            "32,561 rows read, 2.0 KiB, 10 rows written, 1.2 s"
        );
    }
}
