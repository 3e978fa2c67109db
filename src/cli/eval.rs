//! `skewless eval`: the serving evaluator over JSON lines.

use std::io::{BufRead, BufReader, LineWriter, Write};

use super::EvalArgs;
use crate::error::{Error, Result};
use crate::serving::{Evaluator, write_json_string};

pub(super) fn eval_command(args: &EvalArgs) -> Result<()> {
    let key = args
        .verify_key
        .as_deref()
        .map(crate::artifact::SigningKey::from_file)
        .transpose()?;
    let evaluator = Evaluator::load_for(&args.artifact, key.as_ref(), args.requests.as_deref())?;
    let evaluator = if evaluator.has_windows() {
        evaluator.with_limits(crate::serving::OnlineLimits {
            lateness: parse_lateness(&args.lateness)?,
            max_events_per_entity: args.max_events_per_entity,
        })?
    } else {
        evaluator
    };
    if args.explain {
        return super::write_stdout(&evaluator.explain());
    }
    if let Some(rounds) = args.latency {
        return latency(&evaluator, args, rounds.max(1));
    }
    if !args.events.is_empty() {
        replay(&evaluator, &args.events)?;
    }
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(BufReader::new(std::fs::File::open(path).map_err(
            |source| Error::Io {
                path: path.display().to_string(),
                source,
            },
        )?)),
        None => Box::new(std::io::stdin().lock()),
    };
    let input_name = args
        .input
        .as_ref()
        .map_or("<stdin>".to_string(), |p| p.display().to_string());
    // Line by line, flushed per line: a caller may wait for each answer.
    let mut out = LineWriter::new(std::io::stdout().lock());
    let stdout_error = |source| Error::Io {
        path: "<stdout>".into(),
        source,
    };
    let plan = match (args.validate, evaluator.tally_plan()) {
        (false, _) => None,
        (true, Some(plan)) => Some(std::sync::Arc::clone(plan)),
        (true, None) => {
            return Err(Error::Usage(format!(
                "--validate: {} has no training profile of its request table (fitted before \
                 skewless wrote profiles, or with --profile none): fit it again",
                args.artifact.display()
            )));
        }
    };
    let mut tally = plan.as_ref().map(|p| p.tally());
    let (mut lines, mut evaluated, mut failed) = (0usize, 0usize, 0usize);
    let mut text = String::new();
    let mut input = input;
    let mut bytes = Vec::new();
    loop {
        let read =
            read_line(&mut input, &mut bytes, args.max_line_bytes).map_err(|source| Error::Io {
                path: input_name.clone(),
                source,
            })?;
        let line_bytes = match read {
            Line::End => break,
            Line::Complete => bytes.as_slice(),
            Line::TooLong(length) => {
                lines += 1;
                evaluated += 1;
                failed += 1;
                text.clear();
                text.push_str("{\"error\":");
                write_json_string(
                    &mut text,
                    &format!(
                        "line {lines}: {length} bytes, longer than the limit of {} \
                         (--max-line-bytes)",
                        args.max_line_bytes
                    ),
                );
                text.push_str("}\n");
                if !write_line(&mut out, &text).map_err(stdout_error)? {
                    return Ok(());
                }
                continue;
            }
        };
        lines += 1;
        evaluated += 1;
        match evaluator.answer_line_tallied(
            lines,
            line_bytes,
            args.push_requests,
            &mut text,
            tally.as_mut(),
        ) {
            // Blank, or an event: pushed, nothing to answer.
            None => {
                evaluated -= 1;
                continue;
            }
            Some(true) => failed += 1,
            Some(false) => {}
        }
        text.push('\n');
        if !write_line(&mut out, &text).map_err(stdout_error)? {
            return Ok(());
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(stdout_error(e)),
        _ => {}
    }
    if failed > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "skewless eval: {failed} of {evaluated} lines failed (see their \"error\" fields)"
        );
    }
    report_state(&evaluator);
    if let (Some(plan), Some(tally)) = (&plan, &tally) {
        let report = plan.report(tally, &evaluator, &crate::validate::Limits::default());
        if let Some(path) = &args.validate_json {
            crate::write::write_file(path, report.to_json().as_bytes(), true)?;
        }
        let _ = write!(std::io::stderr(), "{}", crate::validate::table(&report));
    }
    Ok(())
}

/// `--lateness`: a duration (`10m`, `2h`, `1d`, `500ms`, `30s`, `0`), or a
/// plain number (units of an integer time column).
pub(super) fn parse_lateness(text: &str) -> Result<crate::serving::Lateness> {
    use crate::serving::Lateness;
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: i64 = number.parse().map_err(|_| {
        Error::Usage(format!(
            "--lateness {text:?}: expected a number with a unit (500ms, 30s, 10m, 2h, 1d) or a plain number"
        ))
    })?;
    let nanos_per: i64 = match unit.trim() {
        "" => return Ok(Lateness::Units(n)),
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        other => {
            return Err(Error::Usage(format!(
                "--lateness {text:?}: unknown unit {other:?} (ns, us, ms, s, m, h, d)"
            )));
        }
    };
    n.checked_mul(nanos_per)
        .map(Lateness::Nanoseconds)
        .ok_or_else(|| Error::Usage(format!("--lateness {text:?} is too long")))
}

/// `--events`: replays event logs into the online state, in time order
/// (merged across tables).
fn replay(evaluator: &Evaluator, events: &[String]) -> Result<()> {
    let started = std::time::Instant::now();
    let pushed = replay_events(evaluator, events)?;
    let _ = writeln!(
        std::io::stderr(),
        "skewless eval: replayed {pushed} events from {} in {:.2} s",
        events.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Replays event logs (`[TABLE=]LOCATION`, as `--events` takes them) into
/// the online state, in time order across tables; returns the number of
/// events pushed. Runs its own query runtime: call it outside one.
pub(crate) fn replay_events(evaluator: &Evaluator, events: &[String]) -> Result<usize> {
    if !evaluator.has_windows() {
        return Err(Error::Usage(format!(
            "--events {}: the transform has no window functions, so it keeps no events",
            events.join(" ")
        )));
    }
    let runtime = super::runtime(Some(2))?;
    let tables = evaluator.event_tables();
    let mut logs: Vec<(String, String)> = Vec::new();
    for arg in events {
        let (table, location) = match arg.split_once('=') {
            Some((t, l)) if tables.contains(&t) => (t.to_string(), l.to_string()),
            _ if tables.len() == 1 => (tables[0].to_string(), arg.clone()),
            _ => {
                return Err(Error::Usage(format!(
                    "--events {arg}: the transform reads several tables ({}): give each log as \
                     TABLE=LOCATION",
                    tables.join(", ")
                )));
            }
        };
        if logs.iter().any(|(t, _)| *t == table) {
            return Err(Error::Usage(format!(
                "--events: two logs for table '{table}'"
            )));
        }
        logs.push((table, location));
    }
    let pushed = runtime.block_on(async {
        let ctx = crate::session::new_context()?;
        let mut sources = Vec::new();
        for (i, (table, location)) in logs.iter().enumerate() {
            let registered = format!("events_{i}");
            crate::location::register_table(&ctx, &registered, location).await?;
            sources.push((registered, table.clone()));
        }
        push_tables(&ctx, evaluator, &sources)
            .await
            .map_err(|e| Error::Data(format!("--events: {e}")))
    })?;
    runtime.shutdown_background();
    Ok(pushed)
}

/// One table's rows in time order, being merged with the others'.
struct Source {
    table: String,
    stream: datafusion::physical_plan::SendableRecordBatchStream,
    batch: Option<datafusion::arrow::array::RecordBatch>,
    /// The replay time of each row of `batch` (i64::MIN: NULL), comparable
    /// across tables (nanoseconds for times).
    times: Vec<i64>,
    row: usize,
}

impl Source {
    /// Moves to the next row with data; false at the end.
    async fn ready(&mut self, order: Option<&str>) -> Result<bool> {
        use futures::StreamExt;
        while self.batch.as_ref().is_none_or(|b| self.row >= b.num_rows()) {
            match self.stream.next().await {
                None => return Ok(false),
                Some(batch) => {
                    let batch = batch?;
                    self.times = replay_times(&batch, order)?;
                    self.batch = Some(batch);
                    self.row = 0;
                }
            }
        }
        Ok(true)
    }
}

/// The times of a batch's rows in its order column, as comparable integers.
fn replay_times(
    batch: &datafusion::arrow::array::RecordBatch,
    order: Option<&str>,
) -> Result<Vec<i64>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
    let Some(column) = order.and_then(|c| batch.column_by_name(c)) else {
        return Ok(vec![0; batch.num_rows()]);
    };
    let target = match column.data_type() {
        t if t.is_integer() => DataType::Int64,
        _ => DataType::Timestamp(TimeUnit::Nanosecond, None),
    };
    let cast = datafusion::arrow::compute::cast(column, &target)
        .and_then(|c| datafusion::arrow::compute::cast(&c, &DataType::Int64))
        .map_err(|e| Error::Data(format!("the time column: {e}")))?;
    let values = cast.as_primitive::<Int64Type>();
    Ok((0..values.len())
        .map(|i| {
            if values.is_null(i) {
                i64::MIN
            } else {
                values.value(i)
            }
        })
        .collect())
}

/// Pushes the rows of registered tables (`(registered name, the
/// transform's table)`) into the online state, each in time order (see
/// [`Evaluator::replay_order`]) and merged by time across tables (at one
/// instant, in the order given); returns the number of rows.
pub(super) async fn push_tables(
    ctx: &datafusion::prelude::SessionContext,
    evaluator: &Evaluator,
    tables: &[(String, String)],
) -> Result<usize> {
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let mut sources = Vec::new();
    let mut orders = Vec::new();
    for (registered, table) in tables {
        let order = evaluator.replay_order(table)?;
        let mut sql = format!("SELECT * FROM {}", quote(registered));
        if !order.is_empty() {
            let keys: Vec<String> = order
                .iter()
                .map(|c| format!("{} NULLS FIRST", quote(c)))
                .collect();
            sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
        }
        let stream = ctx.sql(&sql).await?.execute_stream().await?;
        sources.push(Source {
            table: table.clone(),
            stream,
            batch: None,
            times: Vec::new(),
            row: 0,
        });
        orders.push(order.into_iter().next());
    }
    let mut pushed = 0usize;
    loop {
        // The source whose next row is earliest; it pushes its rows up to
        // the next source's time in one slice.
        let mut live = Vec::new();
        for (i, s) in sources.iter_mut().enumerate() {
            if s.ready(orders[i].as_deref()).await? {
                live.push(i);
            }
        }
        let Some(&first) = live
            .iter()
            .min_by_key(|&&i| (sources[i].times[sources[i].row], i))
        else {
            break;
        };
        let limit = live
            .iter()
            .filter(|&&i| i != first)
            .map(|&i| (sources[i].times[sources[i].row], i))
            .min();
        let s = &mut sources[first];
        let batch = s.batch.as_ref().expect("a ready source has a batch");
        let mut end = s.row + 1;
        while end < batch.num_rows() && limit.is_none_or(|(t, i)| (s.times[end], first) < (t, i)) {
            end += 1;
        }
        let slice = batch.slice(s.row, end - s.row);
        evaluator.push_batch_to(&s.table, &slice)?;
        pushed += end - s.row;
        s.row = end;
    }
    Ok(pushed)
}

/// What the window state holds and counted, on stderr.
fn report_state(evaluator: &Evaluator) {
    for s in evaluator.state_report() {
        let _ = writeln!(
            std::io::stderr(),
            "skewless eval: window state of {}:\n  {} events pushed: {} late but counted, {} \
             dropped (too late for any window), {} without entity or time; {} requests older \
             than the state (answered from what it held); {} idle entities evicted; holding {} \
             events and {} per-hop tiles of {} entities",
            s.windows.join(", "),
            s.counts.pushed,
            s.counts.late,
            s.counts.dropped,
            s.counts.unkeyed,
            s.counts.stale_requests,
            s.counts.evicted,
            s.events_held,
            s.tiles_held,
            s.entities
        );
    }
}

/// How reading one line ended.
enum Line {
    /// A line (with its newline, if any) is in the buffer.
    Complete,
    /// The line was longer than the limit; it was skipped, this long.
    TooLong(usize),
    /// No more input.
    End,
}

/// Reads one line into `buffer`, holding at most `limit` bytes of it: a
/// longer line is consumed and dropped as it is read.
fn read_line(input: &mut dyn BufRead, buffer: &mut Vec<u8>, limit: usize) -> std::io::Result<Line> {
    buffer.clear();
    let mut length = 0usize;
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (length, too_long) {
                (0, _) => Line::End,
                (n, true) => Line::TooLong(n),
                _ => Line::Complete,
            });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let used = chunk.len();
        length += used;
        if !too_long {
            if length > limit + 2 {
                too_long = true;
                buffer.clear();
            } else {
                buffer.extend_from_slice(chunk);
            }
        }
        input.consume(used);
        if done {
            // The limit counts the line without its line ending.
            let ending = if buffer.ends_with(b"\r\n") { 2 } else { 1 };
            let content = length - ending.min(length);
            if too_long || content > limit {
                buffer.clear();
                return Ok(Line::TooLong(content));
            }
            return Ok(Line::Complete);
        }
    }
}

/// Writes one output line; false when the reader has gone away.
fn write_line(out: &mut dyn Write, text: &str) -> std::io::Result<bool> {
    match out.write_all(text.as_bytes()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

/// `eval --latency`: per-row timings of the typed and JSON paths over the
/// input rows, printed as median and p99. Each row is timed alone (the
/// clock's own cost, some 20–40 ns, is included), `rounds` times after a
/// warm-up round, so that p99 reflects rows rather than one cold pass.
fn latency(evaluator: &Evaluator, args: &EvalArgs, rounds: usize) -> Result<()> {
    use std::time::Instant;
    let path = args.input.as_ref().ok_or_else(|| {
        Error::Usage("eval --latency needs --input ROWS.ndjson (rows to time)".into())
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let at_line = |i: usize, e: &dyn std::fmt::Display| {
        Error::Data(format!("{}: line {}: {e}", path.display(), i + 1))
    };
    let objects = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l)
                .map_err(|e| at_line(i, &e))
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = objects
        .iter()
        .enumerate()
        .map(|(i, o)| evaluator.row_from_json(o).map_err(|e| at_line(i, &e)))
        .collect::<Result<Vec<_>>>()?;
    if rows.is_empty() {
        return Err(Error::Usage(format!("{}: no rows to time", path.display())));
    }
    let mut out = Vec::with_capacity(evaluator.outputs().len());
    let mut typed = Vec::with_capacity(rows.len() * rounds);
    let mut json = Vec::with_capacity(rows.len() * rounds);
    for round in 0..=rounds {
        for (row, line) in rows.iter().zip(&lines) {
            let start = Instant::now();
            evaluator.eval(row, &mut out)?;
            let typed_ns = start.elapsed().as_nanos() as u64;
            std::hint::black_box(&out);
            let start = Instant::now();
            let features = evaluator.eval_json(line)?;
            let json_ns = start.elapsed().as_nanos() as u64;
            std::hint::black_box(features);
            if round > 0 {
                typed.push(typed_ns);
                json.push(json_ns);
            }
        }
    }
    let summary = |name: &str, times: &mut Vec<u64>| {
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        format!(
            "{name:<28} median {:>8.3} µs   p99 {:>8.3} µs\n",
            at(0.5),
            at(0.99)
        )
    };
    let mut text = format!(
        "{} rows × {rounds} rounds, {} features per row:\n",
        rows.len(),
        evaluator.outputs().len()
    );
    text.push_str(&summary("typed row → features", &mut typed));
    text.push_str(&summary("JSON line → JSON line", &mut json));
    super::write_stdout(&text)
}
