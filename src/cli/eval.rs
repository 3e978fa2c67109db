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
