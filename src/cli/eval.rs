//! `skewless eval`: the serving evaluator over JSON lines.

use std::io::{BufRead, BufReader, LineWriter, Write};

use super::EvalArgs;
use crate::error::{Error, Result};
use crate::serving::{Evaluator, write_json_string};

pub(super) fn eval_command(args: &EvalArgs) -> Result<()> {
    let evaluator = Evaluator::load(&args.artifact)?;
    if args.explain {
        print!("{}", evaluator.explain());
        return Ok(());
    }
    if let Some(rounds) = args.latency {
        return latency(&evaluator, args, rounds.max(1));
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
    let (mut lines, mut failed) = (0usize, 0usize);
    let mut text = String::new();
    let mut input = input;
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        let read = input
            .read_until(b'\n', &mut bytes)
            .map_err(|source| Error::Io {
                path: input_name.clone(),
                source,
            })?;
        if read == 0 {
            break;
        }
        lines += 1;
        text.clear();
        let line = std::str::from_utf8(&bytes)
            .map(|l| l.trim_end_matches(['\n', '\r']))
            .map_err(|e| Error::Data(format!("not UTF-8 text: {e}")));
        match line.and_then(|l| evaluator.eval_json(l)) {
            Ok(features) => text.push_str(&features),
            Err(e) => {
                failed += 1;
                text.push_str("{\"error\":");
                write_json_string(&mut text, &format!("line {lines}: {e}"));
                text.push('}');
            }
        }
        text.push('\n');
        if let Err(e) = out.write_all(text.as_bytes()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(stdout_error(e));
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(stdout_error(e)),
        _ => {}
    }
    if failed > 0 {
        eprintln!("skewless eval: {failed} of {lines} lines failed (see their \"error\" fields)");
    }
    Ok(())
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
        println!(
            "{name:<28} median {:>8.3} µs   p99 {:>8.3} µs",
            at(0.5),
            at(0.99)
        );
    };
    println!(
        "{} rows × {rounds} rounds, {} features per row:",
        rows.len(),
        evaluator.outputs().len()
    );
    summary("typed row → features", &mut typed);
    summary("JSON line → JSON line", &mut json);
    Ok(())
}
