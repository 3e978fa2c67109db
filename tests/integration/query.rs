//! `skewless query-server`: the real server process on a free loopback
//! port, queried by the real clients: the Python ADBC Flight SQL driver
//! (installed from PyPI into target/adbc-venv on first use) and `skewless
//! repl --connect` / `run --connect`. Every server is killed when its test
//! ends; every client runs under a time limit.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{adult, ok, root, run_sql, skewless, stderr, stdout};

/// A running query server.
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Self::start_env(args, &[])
    }

    fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = skewless()
            .args(["query-server", "--bind", "127.0.0.1:0"])
            .args(["--table", &format!("census={}", adult())])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line
                    .split_once("listening on grpc")
                    .and_then(|(_, r)| r.split_once("://127.0.0.1:"))
                    .map(|(_, r)| r)
                {
                    let port: u16 = rest.split(' ').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
                lines.lock().unwrap().push_str(&line);
                lines.lock().unwrap().push('\n');
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start:\n{}", log.lock().unwrap());
            }
        };
        Server { child, port, log }
    }

    fn url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// CPU time the server process has used, in clock ticks (1/100 s).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// CPU the server uses over `window` (ticks), after it.
    fn cpu_over(&self, window: Duration) -> u64 {
        let before = self.cpu_ticks();
        std::thread::sleep(window);
        self.cpu_ticks() - before
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// A Python with the ADBC Flight SQL driver and pyarrow, pinned, in
/// target/adbc-venv (made once).
fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = root().join("target/adbc-venv");
            let python = venv.join("bin/python");
            let ready = |p: &Path| {
                Command::new(p)
                    .args(["-c", "import adbc_driver_flightsql.dbapi, pyarrow"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if !ready(&python) {
                let made = Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv)
                    .output()
                    .expect("python3 runs");
                assert!(made.status.success(), "python3 -m venv: {made:?}");
                let pip = Command::new(venv.join("bin/pip"))
                    .args([
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "adbc-driver-flightsql==1.13.0",
                        "pyarrow==26.0.1",
                    ])
                    .output()
                    .expect("pip runs");
                assert!(
                    pip.status.success(),
                    "pip install adbc-driver-flightsql pyarrow:\n{}",
                    String::from_utf8_lossy(&pip.stderr)
                );
                assert!(ready(&python), "the ADBC driver does not import");
            }
            python
        })
        .clone()
}

const PRELUDE: &str = r#"
import json, os, sys, threading, time
import adbc_driver_flightsql.dbapi as flight
import adbc_driver_flightsql as fsql

URL = sys.argv[1]

def connect(token=None):
    kwargs = {}
    if token is not None:
        kwargs["db_kwargs"] = {fsql.DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer " + token}
    return flight.connect(URL, autocommit=True, **kwargs)

def query(conn, sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, parameters=params)
    return cur.fetch_arrow_table()

def failure(f):
    try:
        f()
    except Exception as e:
        return str(e)
    return None
"#;

/// Runs a Python client script (the prelude, then `body`) with the server's
/// URL and `args`; killed after 120 s.
fn client(server: &Server, dir: &Path, body: &str, args: &[&str]) -> Output {
    let script = dir.join(format!("client{}.py", rand_suffix()));
    std::fs::write(&script, format!("{PRELUDE}\n{body}")).unwrap();
    let child = Command::new(python())
        .arg(&script)
        .arg(server.url())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, Duration::from_secs(120))
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "a client ran over {limit:?}:\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The REPL on `server`, fed `input` on stdin.
fn repl(server: &Server, input: &str, extra: &[&str]) -> Output {
    let mut child = skewless()
        .args(["repl", "--connect", &server.url()])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_bounded(child, Duration::from_secs(60))
}

const FEATURES: &str = "SELECT age, gender, hash_bucket(occupation, 100) AS occupation_bucket, \
    min_max_scale(hours_per_week) AS hours, z_score(capital_gain) AS gain, \
    vocab_index(education) AS education_id, \
    feature_cross(gender, race, 50) AS gender_x_race FROM census";

#[test]
fn adbc_gets_what_a_local_run_gives_with_prepared_statements_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[]);
    // The same query locally, as NDJSON (floats shortest round-trip).
    let local = run_sql(
        dir.path(),
        &format!("{FEATURES};"),
        &[
            "--table",
            &format!("census={}", adult()),
            "--format",
            "ndjson",
        ],
    );
    let local_rows = dir.path().join("local.ndjson");
    std::fs::write(&local_rows, ok(&local)).unwrap();
    let prepared_local = ok(&run_sql(
        dir.path(),
        "SELECT count(*) AS n FROM census WHERE age > 40 AND gender = 'Female';",
        &["--table", &format!("census={}", adult()), "--format", "csv"],
    ));
    let body = r#"
conn = connect()
table = query(conn, sys.argv[2])
local = [json.loads(line) for line in open(sys.argv[3])]
rows = table.to_pylist()
assert len(rows) == len(local), (len(rows), len(local))
canon = lambda r: json.dumps(r, sort_keys=True)
assert sorted(map(canon, rows)) == sorted(map(canon, local)), "rows differ"
print("rows", len(rows))
print("schema", ", ".join(f"{f.name}:{f.type}" for f in table.schema))
n = query(conn, "SELECT count(*) AS n FROM census WHERE age > $1 AND gender = $2", (40, "Female"))
print("prepared", n.column(0)[0].as_py())
n = query(conn, "SELECT count(*) AS n FROM census WHERE age > ? AND gender = ?", (60, "Male"))
print("prepared again", n.column(0)[0].as_py())
objects = conn.adbc_get_objects(depth="columns").read_all().to_pylist()
for catalog in objects:
    for schema in catalog["catalog_db_schemas"]:
        for t in schema["db_schema_tables"]:
            print("table", catalog["catalog_name"], schema["db_schema_name"], t["table_name"], t["table_type"])
print("types", sorted(conn.adbc_get_table_types()))
schema = conn.adbc_get_table_schema("census")
print("census columns", len(schema), schema.field("education").type)
info = conn.adbc_get_info()
print("vendor", info["vendor_name"], info["vendor_version"].split(" (")[0])
"#;
    let out = client(
        &server,
        dir.path(),
        body,
        &[FEATURES, local_rows.to_str().unwrap()],
    );
    let text = ok(&out);
    assert!(text.contains("rows 32561\n"), "{text}");
    // What the driver reads: plain strings (not views), the local types.
    assert!(
        text.contains(
            "schema age:int64, gender:string, occupation_bucket:int64, hours:double, \
             gain:double, education_id:int64, gender_x_race:int64\n"
        ),
        "{text}"
    );
    let expected = prepared_local.lines().nth(1).unwrap();
    assert!(
        text.contains(&format!("prepared {expected}\n")),
        "{text}\n{expected}"
    );
    let expected = ok(&run_sql(
        dir.path(),
        "SELECT count(*) AS n FROM census WHERE age > 60 AND gender = 'Male';",
        &["--table", &format!("census={}", adult()), "--format", "csv"],
    ));
    let expected = expected.lines().nth(1).unwrap();
    assert!(
        text.contains(&format!("prepared again {expected}\n")),
        "{text}"
    );
    assert!(
        text.contains("table datafusion public census TABLE\n"),
        "{text}"
    );
    assert!(
        text.contains("types ['LOCAL TEMPORARY', 'TABLE', 'VIEW']\n"),
        "{text}"
    );
    assert!(text.contains("census columns 15 string\n"), "{text}");
    assert!(text.contains("vendor skewless skewless 0.1.0\n"), "{text}");
}

#[test]
fn sessions_are_isolated_and_the_repl_runs_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[]);
    let body = r#"
a, b = connect(), connect()
# Both at once: each makes its own view and setting under the same names.
def work(conn, who, size, out):
    query(conn, f"CREATE VIEW mine AS SELECT '{who}' AS who, count(*) AS n FROM census WHERE gender = '{who}'")
    query(conn, f"SET datafusion.execution.batch_size = {size}")
    time.sleep(0.2)
    out[who] = (query(conn, "SELECT who, n FROM mine").to_pylist(),
                query(conn, "SHOW datafusion.execution.batch_size").column(1)[0].as_py())
out = {}
threads = [threading.Thread(target=work, args=(a, "Female", 1000, out)),
           threading.Thread(target=work, args=(b, "Male", 2000, out))]
[t.start() for t in threads]
[t.join() for t in threads]
print("a", out["Female"])
print("b", out["Male"])
c = connect()
print("c", failure(lambda: query(c, "SELECT * FROM mine")))
# Updates (JDBC's executeUpdate, ADBC's execute_update): DDL, and a
# prepared one with a parameter.
import adbc_driver_manager
stmt = adbc_driver_manager.AdbcStatement(c.adbc_connection)
stmt.set_sql_query("CREATE VIEW upd AS SELECT age FROM census WHERE age > 85")
print("update ddl:", stmt.execute_update())
print("update view:", query(c, "SELECT count(*) AS n FROM upd").column(0)[0].as_py())
stmt.set_sql_query("SELECT age FROM census WHERE age > ?")
stmt.prepare()
import pyarrow
stmt.bind(pyarrow.record_batch([pyarrow.array([88])], names=["p"]))
print("update rows:", stmt.execute_update())
stmt.close()
print("c batch", query(c, "SHOW datafusion.execution.batch_size").column(1)[0].as_py())
"#;
    let text = ok(&client(&server, dir.path(), body, &[]));
    assert!(
        text.contains("a ([{'who': 'Female', 'n': 10771}], '1000')"),
        "{text}"
    );
    assert!(
        text.contains("b ([{'who': 'Male', 'n': 21790}], '2000')"),
        "{text}"
    );
    assert!(text.contains("table 'mine' not found"), "{text}");
    assert!(text.contains("c batch 8192"), "{text}");
    assert!(text.contains("update ddl: 0"), "{text}");
    // 48 people are over 85 in the census, 43 of them 90 (its top code).
    assert!(text.contains("update view: 48"), "{text}");
    assert!(text.contains("update rows: 43"), "{text}");

    // The REPL: the same table output as a local REPL, its commands
    // answered from the server.
    let input = "SELECT gender, count(*) AS n\n  FROM census\n  GROUP BY gender ORDER BY gender;\n\\timing\n\\d\n\\d census\nCREATE VIEW adults AS SELECT * FROM census WHERE age >= 18;\n\\d\nSELECT nope;\nSELECT count(*) AS n FROM adults;\n";
    let remote = repl(&server, input, &[]);
    let local = {
        let mut child = skewless()
            .args(["repl", "--table", &format!("census={}", adult())])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        wait_bounded(child, Duration::from_secs(60))
    };
    let remote_text = ok(&remote);
    let local_text = ok(&local);
    assert!(
        remote_text.starts_with("connected to skewless 0.1.0 (functions "),
        "{remote_text}"
    );
    // Past the greeting and the first result's timing (\timing turns it
    // off after), the output is the local REPL's but for the string type
    // names of \d census (the server sends plain Utf8).
    let tail = |t: &str| {
        let from = t.find("\ntiming is off").unwrap();
        t[from..]
            .replace("Utf8View", "Utf8")
            .replace([' ', '-'], "")
    };
    assert_eq!(tail(&remote_text), tail(&local_text));
    assert!(remote_text.contains("| Female | 10771 |"), "{remote_text}");
    assert!(remote_text.contains("| adults | view |"), "{remote_text}");
    // 32,561 rows, 395 of them aged 17.
    assert!(remote_text.contains("| 32166 |"), "{remote_text}");
    assert!(
        stderr(&remote).contains("No field named nope"),
        "{}",
        stderr(&remote)
    );

    // `run --connect`: a script, printed as `run` prints it.
    let script = "SELECT education, count(*) AS n FROM census GROUP BY education ORDER BY n DESC, education LIMIT 3;";
    let remote = run_sql(
        dir.path(),
        script,
        &["--connect", &server.url(), "--format", "csv"],
    );
    let local = run_sql(
        dir.path(),
        script,
        &["--table", &format!("census={}", adult()), "--format", "csv"],
    );
    assert_eq!(ok(&remote), ok(&local));
    assert_eq!(
        ok(&remote),
        "education,n\nHS-grad,10501\nSome-college,7291\nBachelors,5355\n"
    );
    // A failing statement names its place in the script, as locally.
    let failed = run_sql(
        dir.path(),
        "SELECT 1;\nSELECT nope;",
        &["--connect", &server.url()],
    );
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).contains(
            "statement 2 (line 2: SELECT nope) failed: Schema error: No field named nope"
        ),
        "{}",
        stderr(&failed)
    );
}

/// A query that keeps two cores busy for minutes: a cross join of the
/// census with itself, filtered so that it returns one row at the end.
const ENDLESS: &str = "SELECT count(*) AS n FROM census a CROSS JOIN census b CROSS JOIN (SELECT age FROM census LIMIT 50) c WHERE a.age + b.age + c.age = 500";

#[test]
fn a_cancelled_or_abandoned_query_frees_the_server_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--max-concurrent-queries", "1", "--max-queued-queries", "1"]);
    let idle = server.cpu_over(Duration::from_millis(500));
    // Ctrl-C in the REPL cancels the statement on the server too.
    let mut child = skewless()
        .args(["repl", "--connect", &server.url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{ENDLESS};\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let busy = server.cpu_over(Duration::from_millis(1000));
    assert!(
        busy >= 20,
        "the cross join should keep the server busy: {busy} ticks in 1 s"
    );
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    std::thread::sleep(Duration::from_millis(300));
    // The next statement gets the server's one query slot at once.
    let asked = Instant::now();
    stdin
        .write_all(b"SELECT count(*) AS n FROM census;\n")
        .unwrap();
    drop(stdin);
    let out = wait_bounded(child, Duration::from_secs(30));
    let answered = asked.elapsed();
    let text = ok(&out);
    assert!(
        stderr(&out).contains("query cancelled after"),
        "{}",
        stderr(&out)
    );
    assert!(text.contains("| 32561 |"), "{text}");
    assert!(
        answered < Duration::from_secs(5),
        "answered after {answered:?}"
    );
    let after = server.cpu_over(Duration::from_millis(1000));
    assert!(
        after <= idle + 15,
        "the server still works after the cancel: {after} ticks in 1 s (idle: {idle} in 0.5 s)\n{}",
        server.log()
    );

    // A client killed while rows stream to it: the server stops the query
    // and goes on.
    let body = r#"
conn = connect()
cur = conn.cursor()
cur.execute("SELECT a.*, b.age AS age_b FROM census a CROSS JOIN census b")
reader = cur.fetch_record_batch()
reader.read_next_batch()
print("streaming", flush=True)
time.sleep(60)
"#;
    let script = dir.path().join("killed.py");
    std::fs::write(&script, format!("{PRELUDE}\n{body}")).unwrap();
    let mut killed = Command::new(python())
        .arg(&script)
        .arg(server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(killed.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "streaming\n");
    killed.kill().unwrap();
    killed.wait().unwrap();
    let asked = Instant::now();
    let out = repl(&server, "SELECT count(*) AS n FROM census;\n", &[]);
    assert!(ok(&out).contains("| 32561 |"));
    assert!(asked.elapsed() < Duration::from_secs(10));
    let after = server.cpu_over(Duration::from_millis(1000));
    assert!(
        after <= idle + 15,
        "{after} ticks in 1 s after the kill\n{}",
        server.log()
    );
    let mut server = server;
    assert!(server.alive());
    let log = server.log();
    assert!(log.contains("query cancelled"), "{log}");
    assert!(
        log.contains("session ended: the client disconnected"),
        "{log}"
    );
}

#[test]
fn the_limits_refuse_wait_stop_and_fail_one_query_alone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "--max-concurrent-queries",
        "1",
        "--max-queued-queries",
        "0",
        "--query-timeout",
        "2",
        "--query-memory",
        "16MiB",
    ]);
    let body = format!(
        r#"
endless = {ENDLESS:?}
out = {{}}
def long():
    out["long"] = failure(lambda: query(connect(), endless))
t = threading.Thread(target=long)
t.start()
time.sleep(0.7)
other = connect()
print("busy:", failure(lambda: query(other, "SELECT 1 AS one")))
t.join()
print("long:", out["long"])
print("after:", query(other, "SELECT count(*) AS n FROM census").column(0)[0].as_py())
big = "SELECT max(length(a.p) + length(b.q)) AS m FROM (SELECT fnlwgt, repeat(education, 100) AS p FROM census) a JOIN (SELECT fnlwgt, repeat(education, 100) AS q FROM census) b ON a.fnlwgt = b.fnlwgt"
print("big:", failure(lambda: query(connect(), big)))
print("small:", query(other, "SELECT gender, count(*) AS n FROM census GROUP BY gender ORDER BY gender").to_pylist())
"#
    );
    let text = ok(&client(&server, dir.path(), &body, &[]));
    assert!(
        text.contains("] the query server runs its maximum of 1 queries and 0 more wait")
            && text.contains("(ResourceExhausted; "),
        "{text}"
    );
    assert!(
        text.contains(
            "] the query ran longer than the server allows (2 s, --query-timeout) and was stopped (DeadlineExceeded; "
        ),
        "{text}"
    );
    assert!(text.contains("after: 32561"), "{text}");
    assert!(
        text.contains("] the query needs more memory than the server allows (each query may hold 16 MiB, --query-memory): Resources exhausted")
            && text.contains("HashJoinInput"),
        "{text}"
    );
    assert!(
        text.contains("small: [{'gender': 'Female', 'n': 10771}, {'gender': 'Male', 'n': 21790}]"),
        "{text}"
    );
}

#[test]
fn tokens_locations_and_shared_tables_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ps3cret\n").unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::copy(adult(), allowed.join("mine.parquet")).unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::copy(adult(), outside.join("secret.parquet")).unwrap();
    let server = Server::start(&[
        "--token-file",
        token.to_str().unwrap(),
        "--allow-location",
        allowed.to_str().unwrap(),
    ]);
    let body = r#"
print("none:", failure(lambda: query(connect(), "SELECT 1")))
print("wrong:", failure(lambda: query(connect("t0ps3cre"), "SELECT 1")))
conn = connect("t0ps3cret")
print("right:", query(conn, "SELECT count(*) AS n FROM census").column(0)[0].as_py())
# The handshake: Basic credentials with the token as password, answered
# with the bearer token the driver then sends.
basic = flight.connect(URL, autocommit=True, db_kwargs={"username": "anyone", "password": "t0ps3cret"})
print("handshake:", query(basic, "SELECT count(*) AS n FROM census").column(0)[0].as_py())
print("bad handshake:", failure(lambda: flight.connect(URL, autocommit=True, db_kwargs={"username": "anyone", "password": "nope"}).cursor().execute("SELECT 1")))
allowed, outside = sys.argv[2], sys.argv[3]
print("outside:", failure(lambda: query(conn, f"CREATE EXTERNAL TABLE s STORED AS PARQUET LOCATION '{outside}/secret.parquet'")))
print("climb:", failure(lambda: query(conn, f"CREATE EXTERNAL TABLE s LOCATION '{allowed}/../outside/secret.parquet'")))
print("url table:", failure(lambda: query(conn, f"SELECT * FROM '{outside}/secret.parquet'")))
print("copy out:", failure(lambda: query(conn, f"COPY (SELECT 1 AS x) TO '{outside}/x.csv'")))
print("endpoint:", failure(lambda: query(conn, f"CREATE EXTERNAL TABLE e STORED AS PARQUET LOCATION 's3://b/x' OPTIONS ('aws.endpoint' 'http://127.0.0.1:9')")))
print("insert:", failure(lambda: query(conn, "INSERT INTO census SELECT * FROM census LIMIT 1")))
print("explain copy:", failure(lambda: query(conn, f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{outside}/y.csv'")))
print("explain insert:", failure(lambda: query(conn, "EXPLAIN ANALYZE INSERT INTO census SELECT * FROM census LIMIT 1")))
print("sql prepare:", failure(lambda: query(conn, "PREPARE p AS SELECT 1")))
print("file url:", failure(lambda: query(conn, f"CREATE EXTERNAL TABLE s STORED AS PARQUET LOCATION 'file:{outside}/secret.parquet'")))
print("reset runtime:", failure(lambda: query(conn, "RESET datafusion.runtime.memory_limit")))
print("memory table:", failure(lambda: query(conn, "CREATE TABLE m AS SELECT 1 AS x")))
query(conn, f"CREATE EXTERNAL TABLE mine STORED AS PARQUET LOCATION '{allowed}/mine.parquet'")
print("mine:", query(conn, "SELECT count(*) AS n FROM mine").column(0)[0].as_py())
print("copy in:", query(conn, f"COPY (SELECT gender, count(*) AS n FROM mine GROUP BY gender ORDER BY gender) TO '{allowed}/out.csv'").to_pylist())
"#;
    let text = ok(&client(
        &server,
        dir.path(),
        body,
        &[allowed.to_str().unwrap(), outside.to_str().unwrap()],
    ));
    let lines: Vec<&str> = text.lines().collect();
    let line = |p: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("no '{p}' in\n{text}"))
            .to_string()
    };
    assert!(line("none:").contains("(Unauthenticated; "), "{text}");
    assert!(
        line("none:").contains("this server needs a token"),
        "{text}"
    );
    assert!(line("wrong:").contains("(Unauthenticated; "), "{text}");
    assert!(line("wrong:").contains("the token is wrong"), "{text}");
    assert_eq!(line("right:"), "right: 32561");
    assert_eq!(line("handshake:"), "handshake: 32561");
    assert!(
        line("bad handshake:").contains("(Unauthenticated; "),
        "{text}"
    );
    let outside_text = outside.display().to_string();
    assert!(
        line("outside:").contains(&format!(
            "] CREATE EXTERNAL TABLE location '{outside_text}/secret.parquet' is refused: it is outside the locations clients may use"
        )) && line("outside:").contains("(PermissionDenied; "),
        "{text}"
    );
    assert!(line("climb:").contains("(PermissionDenied; "), "{text}");
    assert!(
        line("climb:").contains("/../outside/secret.parquet' is refused"),
        "{text}"
    );
    assert!(line("url table:").contains("not found"), "{text}");
    assert!(line("copy out:").contains("COPY target"), "{text}");
    assert!(line("copy out:").contains("(PermissionDenied; "), "{text}");
    assert!(!outside.join("x.csv").exists());
    assert!(
        line("endpoint:").contains("option 'aws.endpoint' is refused"),
        "{text}"
    );
    assert!(
        line("insert:").contains("table 'census' is shared by the query server and read-only"),
        "{text}"
    );
    // The same refusals wherever the write sits in the plan.
    assert!(
        line("explain copy:").contains(&format!("COPY target '{outside_text}/y.csv' is refused")),
        "{text}"
    );
    assert!(!outside.join("y.csv").exists());
    assert!(
        line("explain insert:")
            .contains("table 'census' is shared by the query server and read-only"),
        "{text}"
    );
    assert!(
        line("sql prepare:").contains("SQL PREPARE, EXECUTE and DEALLOCATE are refused"),
        "{text}"
    );
    assert!(
        line("file url:").contains("write a file location as file:///ABSOLUTE/PATH"),
        "{text}"
    );
    assert!(
        line("reset runtime:")
            .contains("SET and RESET of datafusion.runtime.memory_limit are refused"),
        "{text}"
    );
    assert!(
        line("memory table:").contains("CREATE TABLE m is refused"),
        "{text}"
    );
    assert_eq!(line("mine:"), "mine: 32561");
    assert_eq!(line("copy in:"), "copy in: [{'count': 2}]");
    assert_eq!(
        std::fs::read_to_string(allowed.join("out.csv")).unwrap(),
        "gender,n\nFemale,10771\nMale,21790\n"
    );

    // skewless's own client: the token from a file or the environment.
    let refused = repl(&server, "SELECT 1;\n", &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("this server needs a token"),
        "{}",
        stderr(&refused)
    );
    let with_file = repl(
        &server,
        "SELECT 1 AS one;\n",
        &["--token-file", token.to_str().unwrap()],
    );
    assert!(ok(&with_file).contains("| 1   |"), "{}", stdout(&with_file));
    let mut cmd = skewless();
    cmd.env("SKEWLESS_QUERY_TOKEN", "t0ps3cret");
    let with_env = crate::common::run_sql_with(
        cmd,
        dir.path(),
        "SELECT 2 AS two;",
        &["--connect", &server.url(), "--format", "csv"],
    );
    assert_eq!(ok(&with_env), "two\n2\n");
}

#[test]
fn an_idle_session_ends_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--idle-timeout", "1"]);
    let body = r#"
conn = connect()
query(conn, "CREATE VIEW v AS SELECT 1 AS x")
print("before:", query(conn, "SELECT x FROM v").column(0)[0].as_py())
# A query planned and never fetched does not keep its session alive.
statement("SELECT 1")
time.sleep(2.5)
print("planned only:", failure(lambda: statement("SELECT 1")))
print("expired:", failure(lambda: query(conn, "SELECT x FROM v")))
print("then:", failure(lambda: query(conn, "SELECT x FROM v")))
print("census:", query(conn, "SELECT count(*) FROM census").column(0)[0].as_py())
"#;
    let text = ok(&client(&server, dir.path(), &format!("{RAW}\n{body}"), &[]));
    assert!(text.contains("before: 1"), "{text}");
    assert!(
        text.contains("planned only: gRPC returned precondition failed error, with message: the session ended after 1 s"),
        "{text}"
    );
    assert!(
        text.contains("] the session ended after 1 s without use")
            && text.contains("(FailedPrecondition; "),
        "{text}"
    );
    assert!(
        text.contains("then: ") && text.contains("table 'v' not found"),
        "{text}"
    );
    assert!(text.contains("census: 32561"), "{text}");
    assert!(server.log().contains("session ended: idle for 1 s"));
}

#[test]
fn the_server_refuses_bad_flags_by_name() {
    let out = skewless()
        .args(["query-server", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("add --public"), "{}", stderr(&out));
    let out = skewless()
        .args([
            "query-server",
            "--bind",
            "127.0.0.1:0",
            "--allow-location",
            "/no/such/dir",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--allow-location /no/such/dir: no such file or directory"),
        "{}",
        stderr(&out)
    );
    let out = skewless()
        .args(["query-server", "--query-memory", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("expected a size such as 512MiB"),
        "{}",
        stderr(&out)
    );
    let out = skewless()
        .args(["repl", "--connect", "grpc://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot connect to the query server at grpc://127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
    let out = skewless()
        .args(["repl", "--connect", "http://x"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("expected grpc://HOST:PORT"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tls_serves_adbc_and_the_repl_and_refuses_plain_clients() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A test CA and a certificate it signs for localhost and 127.0.0.1.
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(d)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=skewless test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "server.ext",
    ]);
    let server = Server::start(&[
        "--tls-cert",
        d.join("server.pem").to_str().unwrap(),
        "--tls-key",
        d.join("server.key").to_str().unwrap(),
    ]);
    let tls_url = server.url().replace("grpc://", "grpc+tls://");
    let ca = d.join("ca.pem");
    let body = r#"
url, ca = sys.argv[2], open(sys.argv[3]).read()
conn = flight.connect(url, autocommit=True, db_kwargs={fsql.DatabaseOptions.TLS_ROOT_CERTS.value: ca})
print("tls:", query(conn, "SELECT count(*) AS n FROM census").column(0)[0].as_py())
print("untrusted:", failure(lambda: query(flight.connect(url, autocommit=True), "SELECT 1")))
"#;
    let text = ok(&client(&server, d, body, &[&tls_url, ca.to_str().unwrap()]));
    assert!(text.contains("tls: 32561"), "{text}");
    assert!(
        text.contains("untrusted: ") && text.contains("certificate"),
        "{text}"
    );
    let out = skewless()
        .args([
            "repl",
            "--connect",
            &tls_url,
            "--tls-ca",
            ca.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = out;
    out.stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n FROM census;\n")
        .unwrap();
    let out = wait_bounded(out, Duration::from_secs(60));
    assert!(ok(&out).contains("| 32561 |"), "{}", stdout(&out));
    // Without the CA, and over plain gRPC: refused, saying why.
    let out = repl(&server, "SELECT 1;\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("if the server has --tls-cert, connect with grpc+tls://"),
        "{}",
        stderr(&out)
    );
    let out = skewless()
        .args(["run", "--connect", &tls_url, "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_server_on_a_cluster_answers_as_a_local_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--cluster", "local:2"]);
    let script = "SELECT gender, count(*) AS n, min_max_scale(sum(age)) AS scaled FROM census GROUP BY gender ORDER BY gender;\n\
        CREATE VIEW old AS SELECT * FROM census WHERE age > 80;\n\
        SELECT hash_bucket(education, 10) AS b, count(*) AS n FROM old GROUP BY 1 ORDER BY 1;";
    let remote = run_sql(
        dir.path(),
        script,
        &["--connect", &server.url(), "--format", "csv"],
    );
    let local = run_sql(
        dir.path(),
        script,
        &["--table", &format!("census={}", adult()), "--format", "csv"],
    );
    assert_eq!(ok(&remote), ok(&local));
    assert!(ok(&remote).starts_with("gender,n,scaled\nFemale,10771,0.0\nMale,21790,1.0\n"));
}

#[test]
fn the_example_script_serves_the_census_to_run_and_python() {
    let port = crate::common::free_ports(1);
    let out = Command::new("bash")
        .arg(root().join("examples/query_server.sh"))
        .env("SKEWLESS", env!("CARGO_BIN_EXE_skewless"))
        .env("QUERY_PORT", port.to_string())
        .env("PYTHON", python())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = ok(&wait_bounded(out, Duration::from_secs(120)));
    assert!(text.contains("the same output as a local run"), "{text}");
    assert!(
        text.contains("| HS-grad      | 0            | 10                | -0.03542944697277691 |"),
        "{text}"
    );
    // 13,443 people over 40: 3,946 women and 9,497 men.
    assert!(
        text.contains("[{'gender': 'Female', 'n': 3946}, {'gender': 'Male', 'n': 9497}]"),
        "{text}"
    );
}

/// Flight SQL commands by hand (pyarrow's raw Flight client and protobuf
/// bytes written out), for the calls ADBC does not make.
const RAW: &str = r#"
import pyarrow.flight as fl

def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])

def field(number, payload):
    return bytes([number << 3 | 2]) + varint(len(payload)) + payload

def command(name, body=b""):
    url = b"type.googleapis.com/arrow.flight.protocol.sql." + name.encode()
    return field(1, url) + (field(2, body) if body else b"")

raw = fl.connect(URL)

def info_of(cmd):
    return raw.get_flight_info(fl.FlightDescriptor.for_command(cmd))

def table_of(cmd):
    return raw.do_get(info_of(cmd).endpoints[0].ticket).read_all()

def statement(sql):
    return info_of(command("CommandStatementQuery", field(1, sql.encode())))

def cancel(info):
    result = list(raw.do_action(fl.Action("CancelFlightInfo", field(1, info.serialize()))))
    return result[0].body.to_pybytes().hex()
"#;

#[test]
fn raw_flight_calls_list_types_and_cancel_a_planned_query() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[]);
    let body = format!(
        r#"{RAW}
endless = {ENDLESS:?}
print("catalogs:", table_of(command("CommandGetCatalogs")).column(0).to_pylist())
print("schemas:", table_of(command("CommandGetDbSchemas")).to_pylist())
print("types:", table_of(command("CommandGetXdbcTypeInfo")).column("type_name").to_pylist())
print("table types:", table_of(command("CommandGetTableTypes")).column(0).to_pylist())
info = statement(endless)
print("cancel planned:", cancel(info))
print("fetch cancelled:", failure(lambda: raw.do_get(info.endpoints[0].ticket).read_all()))
# (A query cancelled while it runs is the REPL test's: pyarrow's own
# client does not return from a stream that ends CANCELLED.)
print("after:", table_of(command("CommandStatementQuery", field(1, b"SELECT count(*) AS n FROM census"))).column(0).to_pylist())
"#
    );
    let text = ok(&client(&server, dir.path(), &body, &[]));
    assert!(text.contains("catalogs: ['datafusion']"), "{text}");
    assert!(
        text.contains("schemas: [{'catalog_name': 'datafusion', 'db_schema_name': 'public'}]"),
        "{text}"
    );
    assert!(
        // In the order of their XDBC codes (BIT -7 … TIMESTAMP 93), as JDBC
        // lists them.
        text.contains("types: ['BOOLEAN', 'TINYINT', 'BIGINT', 'BINARY', 'DECIMAL', 'INTEGER', 'SMALLINT', 'FLOAT', 'DOUBLE', 'VARCHAR', 'DATE', 'TIME', 'TIMESTAMP']"),
        "{text}"
    );
    assert!(
        text.contains("table types: ['LOCAL TEMPORARY', 'TABLE', 'VIEW']"),
        "{text}"
    );
    // CancelFlightInfoResult { status: CANCELLED (1) }
    assert!(text.contains("cancel planned: 0801"), "{text}");
    assert!(text.contains("no query has this ticket"), "{text}");
    assert!(text.contains("after: [32561]"), "{text}");
}

#[test]
fn a_query_over_its_memory_fails_alone_while_another_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--query-memory", "16MiB"]);
    let moderate =
        "SELECT count(*) AS n FROM census a CROSS JOIN census b WHERE a.age + b.age = 100";
    let expected = ok(&run_sql(
        dir.path(),
        &format!("{moderate};"),
        &["--table", &format!("census={}", adult()), "--format", "csv"],
    ));
    let expected = expected.lines().nth(1).unwrap().to_string();
    let body = r#"
moderate = sys.argv[2]
big = "SELECT max(length(a.p) + length(b.q)) AS m FROM (SELECT fnlwgt, repeat(education, 100) AS p FROM census) a JOIN (SELECT fnlwgt, repeat(education, 100) AS q FROM census) b ON a.fnlwgt = b.fnlwgt"
out = {}
def run_moderate():
    started = time.time()
    out["moderate"] = query(connect(), moderate).column(0)[0].as_py()
    out["moderate_seconds"] = time.time() - started
thread = threading.Thread(target=run_moderate)
thread.start()
time.sleep(0.3)
started = time.time()
out["big"] = failure(lambda: query(connect(), big))
out["big_ended"] = time.time() - started
thread.join()
print("big:", out["big"])
print("moderate:", out["moderate"])
print("overlapped:", out["moderate_seconds"] > 0.3 + out["big_ended"])
"#;
    let text = ok(&client(&server, dir.path(), body, &[moderate]));
    assert!(
        text.contains("the query needs more memory than the server allows (each query may hold 16 MiB, --query-memory)")
            && text.contains("(ResourceExhausted; "),
        "{text}"
    );
    assert!(
        text.contains(&format!("moderate: {expected}\n")),
        "{text}\n{expected}"
    );
    assert!(text.contains("overlapped: True"), "{text}");
}
