//! A small feature service that embeds skewless's serving evaluator.
//!
//! It loads a fitted artifact once and answers HTTP requests with std only
//! (one thread per connection; the evaluator is shared, `&self` to evaluate):
//!
//! - `POST /features`: a body of raw rows, one JSON object per line → one
//!   JSON object of features per line, in order (a bad row gives
//!   `{"error": "…"}` on its line, status 200 all the same);
//! - `GET /schema`: the inputs the transform reads and the features it serves;
//! - `GET /health`: `ok`.
//!
//! ```sh
//! skewless fit sql/census_wide_deep.sql --table census=examples/data/adult/adult.parquet \
//!     --label label --out census.json
//! cargo run --example serve -- census.json 127.0.0.1:8080 &
//! curl -s 127.0.0.1:8080/features -d '{"age": 39, "education": "Bachelors", "gender": "Male"}'
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use skewless::serving::{Evaluator, write_json_string};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(artifact), addr) = (args.next(), args.next()) else {
        eprintln!("usage: serve ARTIFACT.json [ADDR (default 127.0.0.1:8080)]");
        std::process::exit(1);
    };
    let evaluator = Arc::new(Evaluator::load(artifact.as_ref())?);
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&addr)?;
    eprintln!(
        "serving {} features of {artifact} on http://{}",
        evaluator.outputs().len(),
        listener.local_addr()?
    );
    for stream in listener.incoming() {
        let evaluator = Arc::clone(&evaluator);
        std::thread::spawn(move || {
            if let Err(e) = stream.and_then(|s| handle(s, &evaluator)) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

/// One request per connection.
fn handle(stream: TcpStream, evaluator: &Evaluator) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let (status, text) = match (parts.next(), parts.next()) {
        (Some("POST"), Some("/features")) => match String::from_utf8(body) {
            Ok(rows) => ("200 OK", features(evaluator, &rows)),
            Err(_) => ("400 Bad Request", "the body is not UTF-8\n".to_string()),
        },
        (Some("GET"), Some("/schema")) => ("200 OK", schema(evaluator)),
        (Some("GET"), Some("/health")) => ("200 OK", "ok\n".to_string()),
        _ => (
            "404 Not Found",
            "POST /features, GET /schema, GET /health\n".to_string(),
        ),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

/// One line of features per line of rows.
fn features(evaluator: &Evaluator, rows: &str) -> String {
    let mut out = String::new();
    for line in rows.lines().filter(|l| !l.trim().is_empty()) {
        match evaluator.eval_json(line) {
            Ok(features) => out.push_str(&features),
            Err(e) => {
                out.push_str("{\"error\":");
                write_json_string(&mut out, &e.to_string());
                out.push('}');
            }
        }
        out.push('\n');
    }
    out
}

fn schema(evaluator: &Evaluator) -> String {
    let mut out = String::from("{\"inputs\":[");
    let required = evaluator
        .inputs()
        .iter()
        .enumerate()
        .filter(|(i, _)| evaluator.is_required(*i));
    for (n, (_, c)) in required.enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        write_json_string(&mut out, &c.name);
        out.push_str(&format!(
            ",\"type\":\"{}\",\"nullable\":{}}}",
            c.data_type, c.nullable
        ));
    }
    out.push_str("],\"outputs\":[");
    for (n, o) in evaluator.outputs().iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        write_json_string(&mut out, &o.name);
        out.push_str(&format!(",\"type\":\"{}\"}}", o.data_type));
    }
    out.push_str("]}\n");
    out
}
