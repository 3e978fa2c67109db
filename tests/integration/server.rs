//! `skewless serve`: the real binary on a loopback port, spoken to over
//! real sockets with a raw HTTP/1.1 client (so that malformed and slow
//! requests can be sent as they are). Each server is bounded: it is killed
//! when its test ends, and every socket read has a timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::common::{adult, eval_with_input, ok, root, skewless};
use crate::serving::{read_parquet, write_ndjson};

/// The census transform, fitted once for every test here.
fn census() -> &'static Path {
    static ARTIFACT: OnceLock<PathBuf> = OnceLock::new();
    ARTIFACT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("server-census");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("census.json");
        ok(&skewless()
            .arg("fit")
            .arg(root().join("sql/census_wide_deep.sql"))
            .args(["--table", &format!("census={}", adult())])
            .args(["--label", "label", "--overwrite", "--out"])
            .arg(&out)
            .output()
            .unwrap());
        out
    })
}

/// The first `n` rows of the census test set as JSON lines.
fn test_rows(n: usize) -> String {
    static ROWS: OnceLock<String> = OnceLock::new();
    let all = ROWS.get_or_init(|| {
        let batch = read_parquet(&root().join("examples/data/adult/adult_test.parquet"));
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("server-test-rows.ndjson");
        write_ndjson(&path, &batch.slice(0, 400));
        std::fs::read_to_string(&path).unwrap()
    });
    all.lines().take(n).map(|l| format!("{l}\n")).collect()
}

struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::sync::Arc<Mutex<String>>,
}

impl Server {
    /// Starts `skewless serve ARGS… --bind 127.0.0.1:0` and waits for it to
    /// listen (it prints the address it bound).
    fn start(args: &[&str]) -> Server {
        Self::start_in(Path::new("."), args)
    }

    /// [`Server::start`] with `dir` as the working directory.
    fn start_in(dir: &Path, args: &[&str]) -> Server {
        let mut child = skewless()
            .current_dir(dir)
            .arg("serve")
            .args(args)
            .args(["--bind", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split(';').next().unwrap().to_string();
                        let _ = tx.send(addr);
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start:\n{}", log.lock().unwrap());
            }
        };
        Server { child, addr, log }
    }

    /// Sends raw bytes on a new connection; the response (the server
    /// closes after it: requests say `Connection: close`).
    fn raw(&self, bytes: &[u8]) -> Response {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Response::parse(&out)
    }

    fn request(&self, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Response {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes)
    }

    fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, &[], body.as_bytes())
    }

    fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `error` of a JSON error body, asserting the status.
    #[track_caller]
    fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self:?}");
        self.json()["error"].as_str().unwrap().to_string()
    }
}

/// Equal as `eval` wrote them: numbers by their bits, the rest by value.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits),
        },
        _ => a == b,
    }
}

#[test]
fn every_request_form_answers_what_eval_answers() {
    let artifact = census();
    let rows = test_rows(300);
    let lines: Vec<&str> = rows.lines().collect();
    let expected = ok(&eval_with_input(artifact, &[], &rows));
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(expected.len(), 300);
    let parsed: Vec<serde_json::Map<String, Json>> = expected
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let server = Server::start(&[artifact.to_str().unwrap()]);

    // v1 rows: byte for byte the lines of eval, in batches of 1 and 299.
    for (from, to) in [(0, 1), (1, 300)] {
        let body = format!("{{\"instances\":[{}]}}", lines[from..to].join(","));
        let r = server.post("/v1/models/census:predict", &body);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body,
            format!("{{\"predictions\":[{}]}}", expected[from..to].join(","))
        );
        assert_eq!(r.header("x-skewless-model-version"), Some("1"));
        let checksum = r.header("x-skewless-artifact-checksum").unwrap();
        assert!(checksum.starts_with("sha256:") && checksum.len() == 7 + 64);
    }
    // The same under the version's own path.
    let r = server.post(
        "/v1/models/census/versions/1:predict",
        &format!("{{\"instances\":[{}]}}", lines[0]),
    );
    assert_eq!(r.body, format!("{{\"predictions\":[{}]}}", expected[0]));

    // v1 columns: one array per input column, as the rows hold them (a
    // row without a field gives null, as an absent field reads).
    let objects: Vec<serde_json::Map<String, Json>> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut names: Vec<&String> = objects.iter().flat_map(|o| o.keys()).collect();
    names.sort();
    names.dedup();
    let columns: serde_json::Map<String, Json> = names
        .iter()
        .map(|n| {
            let values = objects
                .iter()
                .map(|o| o.get(*n).cloned().unwrap_or(Json::Null))
                .collect();
            (n.to_string(), Json::Array(values))
        })
        .collect();
    let body = serde_json::json!({ "inputs": columns }).to_string();
    let r = server.post("/v1/models/census:predict", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let outputs = r.json()["outputs"].as_object().unwrap().clone();
    assert_eq!(
        outputs.keys().collect::<Vec<_>>(),
        parsed[0].keys().collect::<Vec<_>>()
    );
    for (name, values) in &outputs {
        let values = values.as_array().unwrap();
        assert_eq!(values.len(), 300);
        for (i, v) in values.iter().enumerate() {
            assert!(
                same(v, &parsed[i][name]),
                "{name} row {i}: {v} vs {}",
                parsed[i][name]
            );
        }
    }

    // v2: one tensor per input column (strings as BYTES, integers INT64).
    // (Only the columns the model reads: v2 refuses a tensor it has no
    // input for.)
    let read: Vec<String> = server.get("/v2/models/census").json()["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    let inputs: Vec<Json> = columns
        .iter()
        .filter(|(name, _)| read.contains(name))
        .map(|(name, data)| {
            let datatype = if data.as_array().unwrap().iter().any(Json::is_string) {
                "BYTES"
            } else {
                "INT64"
            };
            serde_json::json!({"name": name, "shape": [300], "datatype": datatype, "data": data})
        })
        .collect();
    let body = serde_json::json!({"id": "q1", "inputs": inputs}).to_string();
    let r = server.post("/v2/models/census/infer", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answer["model_name"], "census");
    assert_eq!(answer["model_version"], "1");
    assert_eq!(answer["id"], "q1");
    let tensors = answer["outputs"].as_array().unwrap();
    assert_eq!(tensors.len(), 15);
    for t in tensors {
        let name = t["name"].as_str().unwrap();
        assert_eq!(t["shape"], serde_json::json!([300]));
        let float = name.ends_with("_z") || name.ends_with("_scaled");
        assert_eq!(t["datatype"], if float { "FP64" } else { "INT64" });
        for (i, v) in t["data"].as_array().unwrap().iter().enumerate() {
            assert!(same(v, &parsed[i][name]), "{name} row {i}");
        }
    }
    // Asking for some outputs gives those, in the order asked.
    let body = serde_json::json!({
        "inputs": inputs, "outputs": [{"name": "age_z"}, {"name": "gender_id"}]
    })
    .to_string();
    let r = server.post("/v2/models/census/infer", &body);
    let names: Vec<String> = r.json()["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["age_z", "gender_id"]);

    // NDJSON: exactly eval's output, error lines and all.
    let text = format!("{}\n{{\"age\": \"old\"}}\nnot json\n", rows.trim_end());
    let expected_lines = crate::common::stdout(&eval_with_input(artifact, &[], &text));
    let r = server.post("/v1/models/census:eval", &text);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.body, expected_lines);
    assert!(r.body.contains("{\"error\":\"line 302: "), "{}", r.body);

    // Metadata: the read inputs with types, the outputs; no SQL, no vocabulary.
    let meta = server.get("/v1/models/census/metadata");
    assert_eq!(meta.status, 200);
    let m = meta.json();
    assert_eq!(m["model_spec"]["name"], "census");
    let inputs = m["metadata"]["inputs"].as_array().unwrap();
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "age" && i["type"] == "Int64")
    );
    assert!(
        !inputs.iter().any(|i| i["name"] == "income_bracket"),
        "the label's input is not read"
    );
    assert_eq!(m["metadata"]["outputs"].as_array().unwrap().len(), 15);
    assert!(!meta.body.contains("SELECT") && !meta.body.contains("Bachelors"));
    let status = server.get("/v1/models/census").json();
    assert_eq!(status["model_version_status"][0]["state"], "AVAILABLE");
    let v2 = server.get("/v2/models/census").json();
    assert_eq!(v2["versions"], serde_json::json!(["1"]));
    assert_eq!(v2["inputs"].as_array().unwrap().len(), inputs.len());
    assert_eq!(server.get("/v2/models/census/ready").json()["ready"], true);
    assert_eq!(server.get("/v2/health/live").status, 200);
    assert_eq!(server.get("/v2/health/ready").status, 200);
    assert_eq!(server.get("/v2").json()["name"], "skewless");

    // The metrics count what was asked: rows per model and the routes.
    let metrics = server.get("/metrics").body;
    check_exposition(&metrics);
    // 1 + 299 + 1 rows, 300 columnar, 300 + 300 v2, 300 + 2 lines.
    assert!(
        metrics.contains("skewless_model_rows_total{model=\"census\",version=\"1\"} 1503\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("skewless_model_row_errors_total{model=\"census\",version=\"1\"} 2\n")
    );
    assert!(
        metrics.contains("skewless_http_requests_total{route=\"v1_predict\",code=\"200\"} 4\n")
    );
    assert!(metrics.contains("skewless_http_requests_total{route=\"v2_infer\",code=\"200\"} 2\n"));
    assert!(
        metrics.contains("skewless_http_request_duration_seconds_count{route=\"v1_predict\"} 4\n")
    );
}

#[test]
fn each_error_has_its_status_and_names_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let artifact = census();
    let server = Server::start(&[
        &format!("adult={}", artifact.display()),
        "--token-file",
        token.to_str().unwrap(),
        "--max-body-bytes",
        "4000",
        "--max-rows",
        "3",
        "--max-json-depth",
        "4",
        "--max-string-bytes",
        "40",
        "--max-header-bytes",
        "8192",
        "--body-read-timeout",
        "1",
    ]);
    let auth = "authorization: Bearer s3cret";
    let post = |path: &str, body: &str| server.request("POST", path, &[auth], body.as_bytes());
    let row = test_rows(1);
    let row = row.trim();

    // 401 without the token or with another; probes need none.
    let r = server.post(
        "/v1/models/adult:predict",
        &format!("{{\"instances\":[{row}]}}"),
    );
    assert!(r.error(401).contains("bearer token"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = server.request(
        "POST",
        "/v1/models/adult:predict",
        &["authorization: Bearer s3cre"],
        b"{}",
    );
    r.error(401);
    assert_eq!(server.get("/v2/health/ready").status, 200);
    let r = post(
        "/v1/models/adult:predict",
        &format!("{{\"instances\":[{row}]}}"),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // 400: not JSON; not rows; a row of the wrong type, named.
    assert!(
        post("/v1/models/adult:predict", "{\"instances\": [")
            .error(400)
            .contains("not JSON")
    );
    assert!(
        post("/v1/models/adult:predict", "[1]")
            .error(400)
            .contains("JSON object")
    );
    let e = post(
        "/v1/models/adult:predict",
        &format!("{{\"instances\":[{row}, {{\"age\": \"old\"}}]}}"),
    )
    .error(400);
    assert!(
        e.starts_with("instances[1]: ") && e.contains("'age'"),
        "{e}"
    );
    let e = post("/v1/models/adult:predict", "{\"instances\":[{}, 7]}").error(400);
    assert_eq!(e, "instances[1]: expected a JSON object of input columns");
    // A row is read as eval reads a line: a field twice is refused.
    let e = post(
        "/v1/models/adult:predict",
        "{\"instances\":[{\"age\": 1}, {\"age\": 2, \"age\": 3}], \"signature_name\": \"x\"}",
    )
    .error(400);
    assert!(
        e.starts_with("instances[1]: ") && e.contains("field 'age' appears twice"),
        "{e}"
    );
    let e = post("/v1/models/adult:predict", "{\"instances\":[{},{},{}]}");
    assert_eq!(e.status, 200, "{}", e.body);
    let e = post(
        "/v1/models/adult:predict",
        "{\"inputs\":{\"age\":[1,2],\"gender\":[\"Male\"]}}",
    )
    .error(400);
    assert!(
        e.contains("inputs.gender: 1 values, but inputs.age has 2"),
        "{e}"
    );
    let e = post(
        "/v2/models/adult/infer",
        "{\"inputs\":[{\"name\":\"age\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"x\"]}]}",
    )
    .error(400);
    assert!(
        e.contains("inputs[0]: tensor 'age' is BYTES; column 'age' is Int64"),
        "{e}"
    );
    let e = post(
        "/v2/models/adult/infer",
        "{\"inputs\":[{\"name\":\"salary\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":[1]}]}",
    )
    .error(400);
    assert!(
        e.contains("'salary' is not an input of model 'adult'"),
        "{e}"
    );

    // 400: one row past the limit, in each form.
    let e = post("/v1/models/adult:predict", "{\"instances\":[{},{},{},{}]}").error(400);
    assert!(e.contains("4 rows, more than the limit of 3"), "{e}");
    // Three rows pass (every input is nullable: empty rows are rows).
    assert_eq!(
        post("/v1/models/adult:predict", "{\"instances\":[{},{},{}]}").status,
        200
    );
    let e = post(
        "/v1/models/adult:predict",
        "{\"inputs\":{\"age\":[1,2,3,4]}}",
    )
    .error(400);
    assert!(e.contains("4 rows"), "{e}");
    let e = post("/v1/models/adult:eval", "{}\n{}\n{}\n{}\n").error(400);
    assert!(e.contains("lines: 4 rows"), "{e}");
    // Nesting: 4 levels pass the scan, 5 do not.
    let r = post(
        "/v1/models/adult:predict",
        "{\"instances\":[{\"age\":[1]}]}",
    );
    assert!(r.error(400).starts_with("instances[0]: "), "{r:?}");
    let e = post(
        "/v1/models/adult:predict",
        "{\"instances\":[{\"age\":[[[1]]]}]}",
    )
    .error(400);
    assert!(e.contains("nested deeper than the limit of 4"), "{e}");
    // Strings: 40 bytes pass, 41 do not.
    let r = post(
        "/v1/models/adult:predict",
        &format!("{{\"instances\":[{{\"gender\":\"{}\"}}]}}", "x".repeat(40)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let e = post(
        "/v1/models/adult:predict",
        &format!("{{\"instances\":[{{\"gender\":\"{}\"}}]}}", "x".repeat(41)),
    )
    .error(400);
    assert!(e.contains("a string of 41 bytes"), "{e}");

    // 404 naming the models; a version that is not served; 405 with Allow.
    let e = post("/v1/models/census:predict", "{}").error(404);
    assert_eq!(e, "model 'census' is not served; models: adult");
    let e = post("/v1/models/adult/versions/2:predict", "{}").error(404);
    assert_eq!(e, "model 'adult' serves version 1, not 2");
    assert!(
        server
            .request("GET", "/nothing", &[auth], b"")
            .error(404)
            .contains("models: adult")
    );
    let r = server.request("GET", "/v1/models/adult:predict", &[auth], b"");
    r.error(405);
    assert_eq!(r.header("allow"), Some("POST"));

    // 413 from Content-Length, before the body is sent.
    let r = server.raw(
        format!(
            "POST /v1/models/adult:predict HTTP/1.1\r\nhost: t\r\n{auth}\r\n\
             content-length: 4001\r\nconnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(
        r.error(413)
            .contains("4001 bytes, more than the limit of 4000")
    );
    // 413 while reading a chunked body that grows past the limit; 4000 pass.
    let chunked = |n: usize| {
        let frame = "{\"instances\":[],\"pad\":\"\"}".len();
        let body = format!("{{\"instances\":[],\"pad\":\"{}\"}}", " ".repeat(n - frame));
        assert_eq!(body.len(), n);
        let mut raw = format!(
            "POST /v1/models/adult:predict HTTP/1.1\r\nhost: t\r\n{auth}\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        for chunk in body.as_bytes().chunks(1000) {
            raw.push_str(&format!(
                "{:x}\r\n{}\r\n",
                chunk.len(),
                std::str::from_utf8(chunk).unwrap()
            ));
        }
        raw.push_str("0\r\n\r\n");
        raw
    };
    // (Strings over 40 bytes fail the shape check, after the size passes.)
    assert!(
        server
            .raw(chunked(4000).as_bytes())
            .error(400)
            .contains("a string of")
    );
    assert!(
        server
            .raw(chunked(4001).as_bytes())
            .error(413)
            .contains("more than the limit of 4000")
    );

    // 431: a head over the header limit.
    let r = server.raw(
        format!(
            "GET /v2/health/live HTTP/1.1\r\nhost: t\r\nx-pad: {}\r\nconnection: close\r\n\r\n",
            "p".repeat(9000)
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 431, "{r:?}");

    // 408: a body that stops arriving.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!(
            "POST /v1/models/adult:predict HTTP/1.1\r\nhost: t\r\n{auth}\r\n\
             content-length: 100\r\n\r\n{{\"instances\""
        )
        .as_bytes(),
    )
    .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let r = Response::parse(&out);
    assert!(r.error(408).contains("did not arrive within 1s"));
    assert!(started.elapsed() < Duration::from_secs(5));

    let metrics = server.request("GET", "/metrics", &[auth], b"").body;
    assert!(
        metrics.contains("skewless_http_rejections_total{reason=\"unauthorized\"} 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains("skewless_http_rejections_total{reason=\"body_size\"} 2\n"));
    assert!(metrics.contains("skewless_http_rejections_total{reason=\"body_timeout\"} 1\n"));
}

#[test]
fn a_slow_client_is_cut_off_while_others_are_served() {
    let server = Server::start(&[census().to_str().unwrap(), "--header-read-timeout", "1"]);
    // Slowloris: a request head sent a few bytes at a time, never finished.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    slow.write_all(b"POST /v1/models/census:predict HTTP/1.1\r\n")
        .unwrap();
    let row = test_rows(1);
    let body = format!("{{\"instances\":[{}]}}", row.trim());
    let mut answered = 0;
    let mut closed = None;
    for i in 0..30 {
        // Others are answered meanwhile.
        let r = server.post("/v1/models/census:predict", &body);
        assert_eq!(r.status, 200);
        answered += 1;
        if slow
            .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            closed = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The server closed the slow connection (reading gives its end).
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let elapsed = closed.unwrap_or(started.elapsed());
    assert!(
        elapsed < Duration::from_secs(4),
        "cut off after {elapsed:?}"
    );
    assert!(answered >= 5, "{answered} requests answered meanwhile");
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("listening on"), "{log}");
}

#[test]
fn sighup_serves_the_newest_version_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("census");
    std::fs::create_dir_all(models.join("1")).unwrap();
    std::fs::copy(census(), models.join("1/census.json")).unwrap();
    let server = Server::start(&[models.to_str().unwrap()]);
    let row = test_rows(1);
    let body = format!("{{\"instances\":[{}]}}", row.trim());
    let r = server.post("/v1/models/census:predict", &body);
    assert_eq!(r.header("x-skewless-model-version"), Some("1"));

    // Version 2: another transform (one feature).
    let v2 = dir.path().join("v2");
    std::fs::create_dir_all(&v2).unwrap();
    let artifact = crate::common::fit(
        &v2,
        "SELECT z_score(age) AS age_z FROM census",
        &format!("census={}", adult()),
        &[],
    );
    std::fs::create_dir_all(models.join("2")).unwrap();
    std::fs::copy(&artifact, models.join("2/census.json")).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let r = server.post("/v1/models/census:predict", &body);
        assert_eq!(r.status, 200, "{}", r.body);
        if r.header("x-skewless-model-version") == Some("2") || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.header("x-skewless-model-version"), Some("2"));
    let expected = ok(&eval_with_input(&artifact, &[], &row));
    assert_eq!(r.body, format!("{{\"predictions\":[{}]}}", expected.trim()));

    // Version 3 does not load: 2 stays, and the failure is counted.
    std::fs::create_dir_all(models.join("3")).unwrap();
    std::fs::write(models.join("3/census.json"), "{not an artifact").unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.get("/metrics").body.contains("result=\"error\"} 1") {
        assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = server.post("/v1/models/census:predict", &body);
    assert_eq!(r.header("x-skewless-model-version"), Some("2"));
    let metrics = server.get("/metrics").body;
    assert!(metrics.contains("skewless_model_reloads_total{model=\"census\",result=\"ok\"} 1\n"));
}

#[test]
fn startup_fails_with_exit_1_naming_the_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{}").unwrap();
    let out = skewless()
        .args(["serve", bad.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    let e = crate::common::user_error(&out);
    assert!(e.contains("broken.json"), "{e}");
    let out = skewless()
        .args(["serve", census().to_str().unwrap(), "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(crate::common::user_error(&out).contains("add --public"));
}

#[test]
fn sigterm_drains_and_exits() {
    let mut server = Server::start(&[census().to_str().unwrap(), "--drain-timeout", "3"]);
    // An idle keep-alive connection does not hold the shutdown up.
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET /v2/health/ready HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let started = Instant::now();
    server.signal("TERM");
    server.exits_cleanly_within(Duration::from_secs(8));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log.lock().unwrap().contains("draining") {
        assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn requests_over_the_in_flight_limit_are_shed_with_503() {
    let server = Server::start(&[
        census().to_str().unwrap(),
        "--max-in-flight",
        "1",
        "--max-connections",
        "3",
        "--body-read-timeout",
        "5",
    ]);
    // A request whose body is slow to come holds the one in-flight slot.
    let mut holder = TcpStream::connect(server.addr).unwrap();
    holder
        .write_all(b"POST /v1/models/census:eval HTTP/1.1\r\nhost: t\r\ncontent-length: 3\r\n\r\n{")
        .unwrap();
    // Once the server has it in flight (metrics answer over the limit),
    // the next request is shed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .get("/metrics")
        .body
        .contains("skewless_http_requests_in_flight 1\n")
    {
        assert!(Instant::now() < deadline, "the held request never came in");
        std::thread::sleep(Duration::from_millis(20));
    }
    let shed = server.post("/v1/models/census:predict", "{\"instances\":[]}");
    assert!(shed.error(503).contains("--max-in-flight"), "{shed:?}");
    assert_eq!(shed.header("retry-after"), Some("1"));
    // Probes and metrics are answered all the same.
    assert_eq!(server.get("/v2/health/live").status, 200);
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("skewless_http_requests_in_flight 1\n"),
        "{}",
        metrics.body
    );
    // Connections past the limit: answered 503 and closed. (The holder is
    // one; two more idle ones fill the limit of 3.) First, wait until the
    // server has seen the earlier requests' connections close: only the
    // holder and the connection asking are open.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .get("/metrics")
        .body
        .contains("skewless_http_connections_open 2\n")
    {
        assert!(Instant::now() < deadline, "connections never closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _a = TcpStream::connect(server.addr).unwrap();
    let _b = TcpStream::connect(server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let r = server.get("/v2/health/live");
    assert!(r.error(503).contains("--max-connections"), "{r:?}");
    // The held request finishes; the slot frees.
    holder.write_all(b"}\n").unwrap();
    holder
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 12];
    holder.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop((_a, _b, holder));
    // Until the server has seen them close, connections may still be
    // refused: count those, the metrics must say as many.
    let mut refused = 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server.post("/v1/models/census:predict", "{\"instances\":[]}");
        if r.status == 200 {
            assert_eq!(r.body, "{\"predictions\":[]}");
            break;
        }
        assert!(r.error(503).contains("--max-connections"), "{r:?}");
        refused += 1;
        assert!(Instant::now() < deadline, "{r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains(&format!(
            "skewless_http_rejections_total{{reason=\"connections\"}} {refused}\n"
        )),
        "{metrics}"
    );
}

impl Server {
    /// Sends SIGTERM and waits (bounded) for a clean exit.
    fn stop(&mut self) {
        self.signal("TERM");
        self.exits_cleanly_within(Duration::from_secs(15));
    }

    /// Waits for the process to exit, at most `limit`, and asserts exit 0.
    #[track_caller]
    fn exits_cleanly_within(&mut self, limit: Duration) {
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(started.elapsed() < limit, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status:?}: {}", self.log.lock().unwrap());
    }
}

/// Window features over HTTP: the state started from an event log, events
/// pushed by `:events` and by `:eval`'s event lines, saved at SIGTERM and
/// read back at the next start, every answer equal to `eval`'s on the same
/// sequence of requests and events.
#[test]
fn window_features_serve_what_eval_serves_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flights = root().join("examples/data/nycflights13/flights.parquet");
    let table = format!("flights={}", flights.display());
    ok(&crate::common::run_sql(
        d,
        &format!(
            "COPY (SELECT * FROM flights WHERE sched_dep >= TIMESTAMP '2013-12-25T00:00:00Z' \
                   AND sched_dep < TIMESTAMP '2013-12-31T00:00:00Z') TO '{0}/history.parquet'; \
             COPY (SELECT * FROM flights WHERE sched_dep >= TIMESTAMP '2013-12-31T00:00:00Z' \
                   ORDER BY sched_dep, carrier, flight) TO '{0}/day.ndjson';",
            d.display()
        ),
        &["--table", &table],
    ));
    let artifact = crate::common::fit(
        d,
        "SELECT tailnum, sched_dep, flight, carrier, \
           window_mean(dep_delay, sched_dep, INTERVAL '24 hours') OVER w AS mean_delay_24h, \
           window_count(dep_delay, sched_dep, INTERVAL '1 hour', INTERVAL '5 minutes') OVER w \
             AS flights_1h, \
           window_distinct_count(dest, sched_dep, INTERVAL '7 days') OVER w AS destinations_7d, \
           window_max(dep_delay, sched_dep, INTERVAL '1 day', INTERVAL '1 day', 'hopping') \
             OVER w AS max_prev_day \
         FROM flights WINDOW w AS (PARTITION BY tailnum ORDER BY sched_dep)",
        &table,
        &[],
    );
    let day = std::fs::read_to_string(d.join("day.ndjson")).unwrap();
    let lines: Vec<&str> = day.lines().collect();
    assert_eq!(lines.len(), 932);
    // eval: each flight answered, then pushed (its own row is not in its
    // windows; the next flights of its aircraft see it).
    let out = skewless()
        .arg("eval")
        .arg(&artifact)
        .args(["--events", "history.parquet", "--push-requests"])
        .args(["--input", "day.ndjson"])
        .current_dir(d)
        .output()
        .unwrap();
    let expected = ok(&out);
    let expected: Vec<Json> = expected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), 932);
    let equal = |got: &Json, want: &Json| {
        let (Json::Object(g), Json::Object(w)) = (got, want) else {
            return false;
        };
        g.len() == w.len() && g.iter().all(|(k, v)| w.get(k).is_some_and(|x| same(v, x)))
    };
    let state = d.join("state.bin");
    let model = format!("w={}", artifact.display());
    let args = [
        model.as_str(),
        "--events",
        "history.parquet",
        "--state",
        state.to_str().unwrap(),
        "--drain-timeout",
        "5",
    ];
    let start = || Server::start_in(d, &args);
    // First half: :predict, then the flight pushed by :events (NDJSON).
    let mut server = start();
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .contains("window state: 5216 events from history.parquet"),
        "{}",
        server.log.lock().unwrap()
    );
    for (i, line) in lines[..466].iter().enumerate() {
        let r = server.post(
            "/v1/models/w:predict",
            &format!("{{\"instances\":[{line}]}}"),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            equal(&r.json()["predictions"][0], &expected[i]),
            "flight {i}: {}",
            r.body
        );
        let r = server.post("/v1/models/w:events", &format!("{line}\n"));
        assert_eq!((r.status, r.body.as_str()), (200, "{\"pushed\":1}"));
    }
    // A bad event among good ones pushes none of them, and names itself.
    let e = server
        .post(
            "/v1/models/w:events",
            &format!(
                "{{\"instances\":[{},{{\"sched_dep\":\"noon\"}}]}}",
                lines[466]
            ),
        )
        .error(400);
    assert!(
        e.starts_with("instances[1]: ") && e.contains("sched_dep"),
        "{e}"
    );
    assert!(e.contains("no event of this request was pushed"), "{e}");
    server.stop();
    assert!(state.exists());
    let saved = std::fs::read(&state).unwrap();

    // Second half, after a restart from the saved state: each flight sent
    // to :eval as eval's protocol has it, a request line then an event.
    let mut server = start();
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("window state read from"), "{log}");
    assert!(log.contains("--events not replayed"), "{log}");
    for (i, line) in lines.iter().enumerate().skip(466) {
        if i == 700 {
            // A reload of the same transform carries the state over.
            server.signal("HUP");
            let deadline = Instant::now() + Duration::from_secs(20);
            while !server
                .log
                .lock()
                .unwrap()
                .contains("window state carried over")
            {
                assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let r = server.post(
            "/v1/models/w:eval",
            &format!("{line}\n{{\"event\":{line}}}\n"),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let got: Json = serde_json::from_str(r.body.trim_end()).unwrap();
        assert!(equal(&got, &expected[i]), "flight {i}: {}", r.body);
    }
    // DuckDB 2.0.1 over the same files: 5,216 flights from 25 to 30
    // December (5 without a tail number) and 932 on 31 December (12).
    let metrics = server.get("/metrics").body;
    check_exposition(&metrics);
    for series in [
        "skewless_window_events_total{model=\"w\",version=\"1\",stream=\"0\"} 6148\n",
        "skewless_window_unkeyed_events_total{model=\"w\",version=\"1\",stream=\"0\"} 17\n",
        "skewless_window_dropped_events_total{model=\"w\",version=\"1\",stream=\"0\"} 0\n",
    ] {
        assert!(metrics.contains(series), "{series}{metrics}");
    }
    // Over the row limit, counted exactly, nothing pushed.
    let e = server
        .post("/v1/models/w:events", &"{}\n".repeat(10_002))
        .error(400);
    assert_eq!(
        e,
        "lines: 10002 rows, more than the limit of 10000 per request (--max-rows)"
    );
    // Without a time, a request and an event happen now (the server's
    // clock): an aircraft never seen before, one event, then a request.
    let r = server.post(
        "/v1/models/w:events",
        "{\"instances\":[{\"tailnum\":\"CLOCK1\",\"dep_delay\":5.5,\"dest\":\"BOS\"}]}",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    std::thread::sleep(Duration::from_millis(5));
    let r = server.post(
        "/v1/models/w:predict",
        "{\"instances\":[{\"tailnum\":\"CLOCK1\"}]}",
    );
    let p = &r.json()["predictions"][0];
    assert_eq!(
        (
            &p["mean_delay_24h"],
            &p["flights_1h"],
            &p["destinations_7d"]
        ),
        (&Json::from(5.5), &Json::from(1), &Json::from(1)),
        "{}",
        r.body
    );
    let year: i32 = p["sched_dep"].as_str().unwrap()[..4].parse().unwrap();
    assert!(year >= 2026, "{p}");
    server.stop();
    // The state went on from where it was saved: larger now.
    assert!(std::fs::read(&state).unwrap().len() > saved.len());

    // A model without windows takes no events.
    let census = Server::start(&[census().to_str().unwrap()]);
    let e = census.post("/v1/models/census:events", "{}").error(400);
    assert!(e.contains("no window functions"), "{e}");
}

/// A keep-alive HTTP/1.1 client: requests one after another on one
/// connection, each response read to its Content-Length.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// The response, or the I/O error (a connection the server closed).
    fn post(&mut self, path: &str, body: &str) -> std::io::Result<Response> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body.as_bytes())?;
        self.read_response()
    }

    fn read_response(&mut self) -> std::io::Result<Response> {
        let mut chunk = [0u8; 16384];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if self.buf.len() >= end + 4 + length {
                    let rest = self.buf.split_off(end + 4 + length);
                    let response = Response::parse(&self.buf);
                    self.buf = rest;
                    return Ok(response);
                }
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("closed after {} bytes of a response", self.buf.len()),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Reload under load: clients send requests without pause while two
/// versions are swapped in. Every response is a 200, and equal to what
/// `eval` answers for the version its header names.
#[test]
fn reloads_under_load_drop_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("census");
    std::fs::create_dir_all(models.join("1")).unwrap();
    std::fs::copy(census(), models.join("1/census.json")).unwrap();
    let v2 = dir.path().join("v2");
    std::fs::create_dir_all(&v2).unwrap();
    let other = crate::common::fit(
        &v2,
        "SELECT z_score(age) AS age_z, quantile_bucket(hours_per_week, 4) AS hours_q FROM census",
        &format!("census={}", adult()),
        &[],
    );
    let rows = test_rows(50);
    let lines: Vec<String> = rows.lines().map(str::to_string).collect();
    let expected_of = |artifact: &Path| -> Vec<String> {
        ok(&eval_with_input(artifact, &[], &rows))
            .lines()
            .map(|l| format!("{{\"predictions\":[{l}]}}"))
            .collect()
    };
    // Versions 1 and 3 are the census transform, 2 the other one.
    let census_answers = expected_of(census());
    let other_answers = expected_of(&other);
    let server = Server::start(&[models.to_str().unwrap()]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, lines) = (std::sync::Arc::clone(&stop), lines.clone());
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut seen = Vec::new();
                let mut i = c;
                let started = Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && started.elapsed() < Duration::from_secs(60)
                {
                    let row = i % lines.len();
                    let body = format!("{{\"instances\":[{}]}}", lines[row]);
                    let r = client.post("/v1/models/census:predict", &body).unwrap();
                    seen.push((row, r));
                    i += 4;
                }
                seen
            })
        })
        .collect();
    let wait_for = |version: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server
            .get("/v1/models/census")
            .body
            .contains(&format!("\"version\":\"{version}\""))
        {
            assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(200));
    std::fs::create_dir_all(models.join("2")).unwrap();
    std::fs::copy(&other, models.join("2/census.json")).unwrap();
    server.signal("HUP");
    wait_for("2");
    std::fs::create_dir_all(models.join("3")).unwrap();
    std::fs::copy(census(), models.join("3/census.json")).unwrap();
    server.signal("HUP");
    wait_for("3");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut by_version = [0usize; 4];
    for client in clients {
        for (row, r) in client.join().unwrap() {
            assert_eq!(r.status, 200, "{}", r.body);
            let version: usize = r
                .header("x-skewless-model-version")
                .unwrap()
                .parse()
                .unwrap();
            let expected = match version {
                1 | 3 => &census_answers[row],
                2 => &other_answers[row],
                v => panic!("version {v}"),
            };
            assert_eq!(&r.body, expected, "version {version}, row {row}");
            by_version[version] += 1;
        }
    }
    // Every version answered some of them.
    assert!(by_version[1..].iter().all(|&n| n > 0), "{by_version:?}");
}

/// SIGTERM under load: a request whose body is still arriving when the
/// signal comes is answered; clients on keep-alive connections get only
/// whole 200s, then a closed connection; the process exits 0.
#[test]
fn sigterm_under_load_answers_every_request_begun() {
    let mut server = Server::start(&[census().to_str().unwrap(), "--drain-timeout", "10"]);
    let rows = test_rows(20);
    let lines: Vec<String> = rows.lines().map(str::to_string).collect();
    let expected: Vec<String> = ok(&eval_with_input(census(), &[], &rows))
        .lines()
        .map(|l| format!("{{\"predictions\":[{l}]}}"))
        .collect();
    // A request begun: its head and half its body are in when SIGTERM comes.
    let body = format!("{{\"instances\":[{}]}}", lines[0]);
    let mut slow = Client::connect(server.addr);
    let head = format!(
        "POST /v1/models/census:predict HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    slow.stream.write_all(head.as_bytes()).unwrap();
    slow.stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .unwrap();
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let lines = lines.clone();
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut answered = Vec::new();
                let started = Instant::now();
                for i in (c..).step_by(3) {
                    assert!(started.elapsed() < Duration::from_secs(30));
                    let row = i % lines.len();
                    let body = format!("{{\"instances\":[{}]}}", lines[row]);
                    match client.post("/v1/models/census:predict", &body) {
                        Ok(r) => answered.push((row, r)),
                        // Closed by the drain, between two responses.
                        Err(e) => return (answered, e.to_string()),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    slow.stream
        .write_all(&body.as_bytes()[body.len() / 2..])
        .unwrap();
    let r = slow.read_response().unwrap();
    assert_eq!((r.status, &r.body), (200, &expected[0]));
    let mut total = 0;
    for client in clients {
        let (answered, end) = client.join().unwrap();
        assert!(
            end.contains("closed after 0 bytes")
                || end.contains("reset")
                || end.contains("Broken pipe"),
            "{end}"
        );
        for (row, r) in answered {
            assert_eq!((r.status, &r.body), (200, &expected[row]));
            total += 1;
        }
    }
    assert!(total > 10, "{total}");
    server.exits_cleanly_within(Duration::from_secs(15));
}

/// A seeded, bounded fuzz test of the whole request path, in memory (the
/// same code as a socket: hyper's HTTP/1.1, the limits, the routes, the
/// handlers): valid requests of every kind, mutated. Every answer is a
/// well-formed response with an expected status, never a 500 (a caught
/// panic); every error response made by skewless has a JSON error body.
/// (`fuzz/` has the same path as a `cargo fuzz` target for long runs.)
#[test]
fn fuzzed_requests_get_well_formed_answers() {
    use skewless::server::{Limits, harness::Harness};
    let dir = tempfile::tempdir().unwrap();
    // A model with window functions too (integer times), for `:events`.
    let windows = crate::common::fit(
        dir.path(),
        "SELECT workclass, fnlwgt, \
           window_mean(hours_per_week, fnlwgt, 1000) OVER (PARTITION BY workclass) AS m, \
           window_distinct_count(education, fnlwgt, 5000, 1000) OVER (PARTITION BY workclass) AS d \
         FROM census",
        &format!("census={}", adult()),
        &[],
    );
    let limits = Limits {
        max_body_bytes: 64 << 10,
        max_rows: 50,
        max_json_depth: 16,
        max_string_bytes: 1024,
        ..Limits::default()
    };
    let census_spec = census().display().to_string();
    let windows_spec = format!("w={}", windows.display());
    let harness = Harness::new(&[&census_spec, &windows_spec], limits, None).unwrap();
    let rows = test_rows(3);
    let row: Vec<&str> = rows.lines().collect();
    let request = |method: &str, path: &str, body: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nhost: f\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let corpus: Vec<String> = vec![
        request(
            "POST",
            "/v1/models/census:predict",
            &format!("{{\"instances\":[{},{}]}}", row[0], row[1]),
        ),
        request(
            "POST",
            "/v1/models/census:predict",
            "{\"inputs\":{\"age\":[39,50],\"workclass\":[\"State-gov\",null]}}",
        ),
        request(
            "POST",
            "/v2/models/census/infer",
            "{\"id\":\"x\",\"inputs\":[{\"name\":\"age\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[39,50]},\
             {\"name\":\"education\",\"datatype\":\"BYTES\",\"shape\":[2,1],\"data\":[\"Bachelors\",\"HS-grad\"]}],\
             \"outputs\":[{\"name\":\"age_bucket\"}]}",
        ),
        request(
            "POST",
            "/v1/models/census:eval",
            &format!("{}\n\n{}\n", row[0], row[2]),
        ),
        request(
            "POST",
            "/v1/models/w:events",
            "{\"instances\":[{\"workclass\":\"Private\",\"fnlwgt\":10,\"hours_per_week\":40,\"education\":\"HS-grad\"}]}",
        ),
        request(
            "POST",
            "/v1/models/w:events",
            "{\"workclass\":\"Private\",\"fnlwgt\":20,\"hours_per_week\":45.5,\"education\":\"Masters\"}\n",
        ),
        request(
            "POST",
            "/v1/models/w:predict",
            "{\"instances\":[{\"workclass\":\"Private\",\"fnlwgt\":900}]}",
        ),
        request(
            "POST",
            "/v1/models/w:eval",
            "{\"event\":{\"workclass\":\"Private\",\"fnlwgt\":30,\"hours_per_week\":1}}\n{\"workclass\":\"Private\",\"fnlwgt\":31}\n",
        ),
        request("GET", "/v1/models/census/metadata", ""),
        request("GET", "/v2/models/w", ""),
        request("GET", "/v1/models/census/versions/1", ""),
        request("GET", "/metrics", ""),
        request("GET", "/v2/health/ready", ""),
        format!(
            "POST /v1/models/census:predict HTTP/1.1\r\nhost: f\r\ntransfer-encoding: chunked\r\n\r\n\
             5\r\n{{\"ins\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            format!("tances\":[{}]}}", row[0]).len(),
            format!("tances\":[{}]}}", row[0])
        ),
        format!(
            "{}{}",
            request("GET", "/v2/health/live", "")
                .replace("\r\n\r\n", "\r\nconnection: keep-alive\r\n\r\n"),
            request(
                "POST",
                "/v1/models/census:predict",
                &format!("{{\"instances\":[{}]}}", row[1])
            )
        ),
    ];
    let tokens: [&[u8]; 22] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b",",
        b":",
        b"null",
        b"\\u0000",
        b"\\ud800",
        b"99999999999999999999999",
        b"-1e400",
        b"\"NaN\"",
        b"1.5",
        b"\r\n",
        b"\r\n\r\n",
        b"\xff\xfe",
        b"content-length: 7\r\n",
        b"transfer-encoding: chunked\r\n",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"/v1/models/w:events",
        b"\x00",
    ];
    let mut rng = 0x5DEECE66Du64 ^ 0x2545F4914F6CDD1D;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut statuses = std::collections::BTreeMap::new();
    let started = Instant::now();
    let cases = 20_000;
    for case in 0..cases {
        let base = corpus[(next() % corpus.len() as u64) as usize].as_bytes();
        let mut input = base.to_vec();
        // Mostly in the body (what handlers read), sometimes in the head.
        let body_start = input
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |p| p + 4);
        for _ in 0..1 + next() % 3 {
            let from = if next() % 4 == 0 {
                0
            } else {
                body_start.min(input.len())
            };
            let at = from + (next() % ((input.len() - from) as u64 + 1)) as usize;
            match next() % 7 {
                0 if !input.is_empty() => {
                    let i = at.min(input.len() - 1);
                    input[i] = next() as u8;
                }
                1 => {
                    let t = tokens[(next() % tokens.len() as u64) as usize];
                    input.splice(at..at, t.iter().copied());
                }
                2 => {
                    let end = (at + (next() % 16) as usize).min(input.len());
                    input.drain(at..end);
                }
                3 => input.truncate(at),
                4 => {
                    let end = (at + (next() % 64) as usize).min(input.len());
                    let copy = input[at..end].to_vec();
                    input.splice(at..at, copy);
                }
                5 => {
                    // A content-length that lies.
                    let text = String::from_utf8_lossy(&input).to_string();
                    if let Some(i) = text.find("content-length: ") {
                        let digits = text[i + 16..].find("\r\n").unwrap_or(0);
                        let lie = match next() % 4 {
                            0 => (70_000 + next() % 1_000_000).to_string(),
                            _ => (next() % 300).to_string(),
                        };
                        input.splice(i + 16..i + 16 + digits, lie.bytes());
                    }
                }
                _ => {
                    // Deep nesting in the body.
                    let depth = 1 + (next() % 40) as usize;
                    let nest = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
                    input.splice(at..at, nest.bytes());
                }
            }
        }
        let out = harness.exchange(&input);
        let context = || {
            format!(
                "case {case}\ninput: {:?}\noutput: {:?}",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&out)
            )
        };
        // Every response in the output, one after another.
        let mut rest: &[u8] = &out;
        while !rest.is_empty() {
            let end = rest
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or_else(|| panic!("a response without its head's end: {}", context()));
            let head =
                std::str::from_utf8(&rest[..end]).unwrap_or_else(|_| panic!("{}", context()));
            let status: u16 = head
                .strip_prefix("HTTP/1.1 ")
                .and_then(|h| h.get(..3))
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("not a status line: {}", context()));
            assert!(
                [200, 400, 401, 404, 405, 408, 413, 431, 503, 505].contains(&status),
                "status {status}: {}",
                context()
            );
            let lower = head.to_ascii_lowercase();
            let length: usize = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let body = rest
                .get(end + 4..end + 4 + length)
                .unwrap_or_else(|| panic!("a body shorter than its content-length: {}", context()));
            if status >= 400 {
                if body.is_empty() {
                    // hyper's own answer to a request it cannot parse.
                    assert!([400, 431, 505].contains(&status), "{}", context());
                } else {
                    let json: Json = serde_json::from_slice(body)
                        .unwrap_or_else(|e| panic!("{e}: {}", context()));
                    assert!(json["error"].is_string(), "{}", context());
                }
            } else if lower.contains("application/json") {
                serde_json::from_slice::<Json>(body)
                    .unwrap_or_else(|e| panic!("{e}: {}", context()));
            }
            let kind = if body.is_empty() { "empty" } else { "skewless" };
            *statuses.entry((status, kind)).or_insert(0usize) += 1;
            rest = &rest[end + 4 + length..];
        }
    }
    // The mutations reach both the handlers and the limits.
    for status in [
        (200, "skewless"),
        (400, "skewless"),
        (413, "skewless"),
        (400, "empty"),
    ] {
        assert!(
            statuses.get(&status).is_some_and(|&n| n > 20),
            "{statuses:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
    eprintln!(
        "{cases} fuzzed requests in {:?}: {statuses:?}",
        started.elapsed()
    );
}

/// The skew counters: NULLs per input, keys a vocabulary does not hold,
/// numbers outside a min-max scaler's fitted range, counted as requests
/// are answered, by column and never by value.
#[test]
fn skew_counters_count_what_training_did_not_see() {
    let server = Server::start(&[census().to_str().unwrap()]);
    let rows = test_rows(300);
    let body = format!(
        "{{\"instances\":[{}]}}",
        rows.lines().collect::<Vec<_>>().join(",")
    );
    assert_eq!(server.post("/v1/models/census:predict", &body).status, 200);
    // A row of values training never saw: an education not in the
    // vocabulary, a capital gain far beyond the largest (99,999).
    let odd = "{\"age\":30,\"workclass\":\"Private\",\"education\":\"Doctorate-XYZ\",\
               \"education_num\":16,\"occupation\":\"Sales\",\"relationship\":\"Husband\",\
               \"gender\":\"Male\",\"capital_gain\":1000000000,\"capital_loss\":0,\
               \"hours_per_week\":40,\"native_country\":\"United-States\"}";
    let r = server.post(
        "/v1/models/census:predict",
        &format!("{{\"instances\":[{odd}]}}"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let metrics = server.get("/metrics").body;
    check_exposition(&metrics);
    let count = |kind: &str, column: &str, output: &str| -> u64 {
        let prefix = format!(
            "skewless_model_skew_total{{model=\"census\",version=\"1\",kind=\"{kind}\",\
             column=\"{column}\",output=\"{output}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    // DuckDB 2.0.1 over the first 300 rows of adult_test.parquet: 19 NULL
    // occupations, 19 NULL workclasses, 5 NULL native countries, no other
    // NULL; every category and capital gain and loss within training's.
    assert_eq!(count("null", "occupation", ""), 19);
    assert_eq!(count("null", "workclass", ""), 19);
    assert_eq!(count("null", "native_country", ""), 5);
    for column in [
        "age",
        "education",
        "education_num",
        "relationship",
        "gender",
        "capital_gain",
        "capital_loss",
        "hours_per_week",
    ] {
        assert_eq!(count("null", column, ""), 0, "{column}");
        assert_eq!(count("non_finite", column, ""), 0, "{column}");
    }
    assert_eq!(count("unseen", "education", "education_id"), 1);
    assert_eq!(count("unseen", "native_country", "native_country_id"), 0);
    assert_eq!(count("unseen", "occupation", "occupation_id"), 0);
    assert_eq!(
        count("out_of_range", "capital_gain", "capital_gain_scaled"),
        1
    );
    assert_eq!(
        count("out_of_range", "capital_loss", "capital_loss_scaled"),
        0
    );
    // No value ever becomes a label.
    assert!(!metrics.contains("Doctorate-XYZ") && !metrics.contains("1000000000"));
}

/// Live skew: the rows a server answers, by any request form, are counted
/// over the training profile; `GET …/validation` reports them as
/// `eval --validate` reports the same rows, and the metrics carry each
/// check. The report covers about the last --validation-rows rows.
#[test]
fn the_validation_endpoint_reports_what_eval_validate_reports() {
    let server = Server::start(&[census().to_str().unwrap()]);
    let rows = test_rows(400);
    let lines: Vec<&str> = rows.lines().collect();
    let instances = format!("{{\"instances\":[{}]}}", lines[..250].join(","));
    assert_eq!(
        server.post("/v1/models/census:predict", &instances).status,
        200
    );
    let tail: String = lines[250..].iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(server.post("/v1/models/census:eval", &tail).status, 200);
    // A failed request counts nothing.
    let bad = "{\"instances\":[{\"age\":\"old\"}]}";
    assert_eq!(server.post("/v1/models/census:predict", bad).status, 400);
    let live = server.get("/v1/models/census/validation");
    assert_eq!(live.status, 200, "{}", live.body);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eval.json");
    let out = eval_with_input(
        census(),
        &["--validate", "--validate-json", json.to_str().unwrap()],
        &rows,
    );
    ok(&out);
    assert_eq!(live.body, std::fs::read_to_string(&json).unwrap());
    let report: Json = serde_json::from_str(&live.body).unwrap();
    assert_eq!(report["rows"]["new"], 400);
    let metrics = server.get("/metrics").body;
    check_exposition(&metrics);
    assert!(
        metrics.contains("skewless_model_validation_rows{model=\"census\",version=\"1\"} 400"),
        "{metrics}"
    );
    let age = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "age")
        .unwrap();
    let jsd = age["checks"][0]["value"].as_f64().unwrap();
    assert!(metrics.contains(&format!(
        "skewless_model_validation_value{{model=\"census\",version=\"1\",column=\"age\",\
         check=\"jensen_shannon\"}} {jsd}"
    )));
    drop(server);
    // Seconds older than the last --validation-rows rows are dropped.
    let server = Server::start(&[census().to_str().unwrap(), "--validation-rows", "100"]);
    assert_eq!(
        server.post("/v1/models/census:predict", &instances).status,
        200
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(server.post("/v1/models/census:eval", &tail).status, 200);
    let report: Json =
        serde_json::from_str(&server.get("/v1/models/census/validation").body).unwrap();
    assert_eq!(report["rows"]["new"], 150);
}

/// A panic in a handler is a 500 with a JSON error, and the server goes on
/// answering (in memory: the harness can make one handler panic).
#[test]
fn a_panic_is_a_500_and_the_server_goes_on() {
    use skewless::server::{Limits, harness::Harness};
    let spec = census().display().to_string();
    let harness = Harness::new(&[&spec], Limits::default(), None)
        .unwrap()
        .panic_on("/v1/models/census/metadata");
    let get = |path: &str| {
        let out = harness.exchange(
            format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").as_bytes(),
        );
        Response::parse(&out)
    };
    for _ in 0..3 {
        let e = get("/v1/models/census/metadata").error(500);
        assert!(e.contains("internal error"), "{e}");
        assert_eq!(get("/v1/models/census").status, 200);
    }
    let metrics = get("/metrics").body;
    assert!(
        metrics.contains("skewless_http_requests_total{route=\"v1_metadata\",code=\"500\"} 3\n"),
        "{metrics}"
    );
}

/// `--poll`: a new version dropped into the directory is served without a
/// signal; a broken one is tried once (not at every look) and the old
/// version stays.
#[test]
fn polling_serves_a_new_version_and_tries_a_broken_one_once() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("census");
    std::fs::create_dir_all(models.join("1")).unwrap();
    std::fs::copy(census(), models.join("1/census.json")).unwrap();
    let server = Server::start(&[models.to_str().unwrap(), "--poll", "0.1"]);
    let version = || {
        server.get("/v1/models/census").json()["model_version_status"][0]["version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(version(), "1");
    std::fs::create_dir_all(models.join("2")).unwrap();
    std::fs::copy(census(), models.join("2/census.json")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while version() != "2" {
        assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::create_dir_all(models.join("3")).unwrap();
    std::fs::write(models.join("3/census.json"), "{not an artifact").unwrap();
    let errors =
        |m: &str| m.contains("skewless_model_reloads_total{model=\"census\",result=\"error\"} 1\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !errors(&server.get("/metrics").body) {
        assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Ten more looks at the same broken file: no new attempt.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(errors(&server.get("/metrics").body));
    assert_eq!(version(), "2");
}

/// Checks a `/metrics` body against the Prometheus text format 0.0.4 the
/// way `promtool check metrics` does: HELP and TYPE before a family's
/// samples, each family's lines together, valid names, labels and values,
/// no series twice, counters named `_total` and not negative, histogram
/// buckets cumulative up to a `+Inf` bucket equal to `_count`.
#[track_caller]
fn check_exposition(text: &str) {
    use std::collections::{BTreeMap, HashSet};
    let name_ok = |n: &str| {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut seen: HashSet<String> = HashSet::new();
    // (family, labels without le) → [(le, value)], and → _count.
    let mut buckets: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<(String, String), f64> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(name_ok(name), "bad name in {line:?}");
            if kind == "TYPE" {
                let t = parts.next().unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "{line:?}"
                );
                assert!(
                    types.insert(name.to_string(), t.to_string()).is_none(),
                    "TYPE twice: {line:?}"
                );
                if t == "counter" {
                    assert!(
                        name.ends_with("_total"),
                        "a counter not named _total: {line:?}"
                    );
                }
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    finished.insert(c);
                }
                assert!(!finished.contains(name), "family {name} split: {line:?}");
                current = Some(name.to_string());
            }
            continue;
        }
        assert!(!line.is_empty(), "an empty line");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"))),
            None => (series, ""),
        };
        assert!(name_ok(name), "bad name in {line:?}");
        let mut pairs = Vec::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line:?}"));
            assert!(name_ok(k) && !k.contains(':'), "bad label name in {line:?}");
            let mut v = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('\\' | '"'))) => v.push(c),
                        Some((_, 'n')) => v.push('\n'),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => v.push(c),
                    None => panic!("unterminated label in {line:?}"),
                }
            };
            pairs.push((k.to_string(), v));
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        let family = types
            .keys()
            .filter(|f| {
                name == f.as_str()
                    || (types[*f] == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name.strip_suffix(s) == Some(f.as_str())))
            })
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("a sample before its TYPE: {line:?}"))
            .clone();
        assert_eq!(
            current.as_deref(),
            Some(family.as_str()),
            "family split: {line:?}"
        );
        assert!(seen.insert(series.to_string()), "a series twice: {line:?}");
        if types[&family] == "counter" {
            assert!(value >= 0.0, "a negative counter: {line:?}");
        }
        if types[&family] == "histogram" {
            let others: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k != "le")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let key = (family.clone(), others.join(","));
            if name.ends_with("_bucket") {
                let le = &pairs.iter().find(|(k, _)| k == "le").expect("le").1;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                buckets.entry(key).or_default().push((le, value));
            } else if name.ends_with("_count") {
                counts.insert(key, value);
            }
        }
    }
    for (key, b) in &buckets {
        assert!(
            b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{key:?}: {b:?}"
        );
        let last = b.last().unwrap();
        assert!(last.0.is_infinite(), "{key:?}: no +Inf bucket");
        assert_eq!(
            Some(&last.1),
            counts.get(key),
            "{key:?}: +Inf bucket against _count"
        );
    }
}

#[test]
fn the_exposition_checker_refuses_what_promtool_refuses() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n\
                # HELP h H.\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 3\n\
                h_sum 0.5\nh_count 3\n";
    check_exposition(good);
    for bad in [
        good.replace("a_total{x=\"1\"} 2", "a_total{x=\"1\"} -2"),
        good.replace("h_count 3", "h_count 4"),
        good.replace("le=\"0.1\"} 1", "le=\"0.1\"} 5"),
        good.replace("# TYPE a_total counter\n", ""),
        good.replace("a_total{x=\"1\"}", "a_total{x=1}"),
        format!("{good}a_total{{x=\"2\"}} 1\n"),
        good.replace("a_total counter", "a counter")
            .replace("a_total{", "a{"),
    ] {
        assert!(
            std::panic::catch_unwind(|| check_exposition(&bad)).is_err(),
            "{bad}"
        );
    }
}

/// A reload to a version with other windows cannot take the old state: it
/// starts again from `--events` (and says so), answering as `eval` does
/// from the same log; a reload with the same windows carries pushes over.
#[test]
fn a_reload_with_other_windows_starts_its_state_from_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("census={}", adult());
    let fit = |name: &str, window: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        crate::common::fit(
            &d,
            &format!(
                "SELECT workclass, fnlwgt, {window} OVER (PARTITION BY workclass) AS w FROM census"
            ),
            &table,
            &[],
        )
    };
    let mean = fit("mean", "window_mean(hours_per_week, fnlwgt, 1000)");
    let count = fit("count", "window_count(hours_per_week, fnlwgt, 5000)");
    let models = dir.path().join("m");
    std::fs::create_dir_all(models.join("1")).unwrap();
    std::fs::copy(&mean, models.join("1/m.json")).unwrap();
    let server = Server::start(&[models.to_str().unwrap(), "--events", &adult()]);
    // After every census row's fnlwgt (the largest is 1,484,705): the
    // state answers requests at or after its newest event.
    let request = "{\"workclass\":\"Private\",\"fnlwgt\":2000000}";
    let ask = || {
        server.post(
            "/v1/models/m:predict",
            &format!("{{\"instances\":[{request}]}}"),
        )
    };
    let from_log = |artifact: &Path| {
        let out = eval_with_input(artifact, &["--events", &adult()], &format!("{request}\n"));
        format!("{{\"predictions\":[{}]}}", ok(&out).trim())
    };
    assert_eq!(ask().body, from_log(&mean));
    // An event pushed now is the window's only one (hours 99 at 1,999,999).
    let event = "{\"workclass\":\"Private\",\"fnlwgt\":1999999,\"hours_per_week\":99}";
    assert_eq!(server.post("/v1/models/m:events", event).status, 200);
    let pushed = ask().body;
    assert!(pushed.contains("\"w\":99.0"), "{pushed}");
    assert!(from_log(&mean).contains("\"w\":null"));
    // Version 2: the same windows (the same artifact): the push stays.
    std::fs::create_dir_all(models.join("2")).unwrap();
    std::fs::copy(&mean, models.join("2/m.json")).unwrap();
    server.signal("HUP");
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.log.lock().unwrap().contains(text) {
            assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("version 2 (");
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .contains("window state carried over")
    );
    assert_eq!(ask().body, pushed);
    // Version 3: other windows; the state starts again from the log.
    std::fs::create_dir_all(models.join("3")).unwrap();
    std::fs::copy(&count, models.join("3/m.json")).unwrap();
    server.signal("HUP");
    wait_for("window state started again (32561 events from");
    let r = ask();
    assert_eq!(r.header("x-skewless-model-version"), Some("3"));
    assert_eq!(r.body, from_log(&count));
}
