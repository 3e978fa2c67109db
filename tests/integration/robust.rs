//! No panic, no hang, the right exit code; errors that name the culprit;
//! bounded output; `eval`'s input edges (issue 11) — through the real
//! binary.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Waits for a child at most `limit`; kills it and fails if it takes longer.
#[track_caller]
fn wait_at_most(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_all(pipe: Option<impl std::io::Read>) -> String {
    let mut text = String::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_string(&mut text);
    }
    text
}

/// CPU time (user + system, in clock ticks) a process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn fitted(dir: &Path) -> std::path::PathBuf {
    let t = dir.join("t.sql");
    std::fs::write(
        &t,
        "SELECT z_score(age) AS age_z, vocab_index(education) AS edu FROM census",
    )
    .unwrap();
    let a = dir.join("a.json");
    ok(&skewless()
        .arg("fit")
        .arg(&t)
        .args(["--table", &format!("census={}", adult()), "--out"])
        .arg(&a)
        .output()
        .unwrap());
    a
}

#[test]
fn a_closed_or_full_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let a = fitted(dir.path());
    let rows = dir.path().join("rows.ndjson");
    std::fs::write(&rows, "{\"age\": 40, \"education\": \"Bachelors\"}\n").unwrap();
    let t = dir.path().join("t.sql");
    let census = format!("census={}", adult());
    let commands: Vec<Vec<String>> = vec![
        vec![
            "fit".into(),
            t.display().to_string(),
            "--table".into(),
            census.clone(),
            "--overwrite".into(),
            "--out".into(),
            dir.path().join("b.json").display().to_string(),
        ],
        vec![
            "apply".into(),
            a.display().to_string(),
            "--table".into(),
            census.clone(),
            "--overwrite".into(),
            "--out".into(),
            dir.path().join("f.parquet").display().to_string(),
        ],
        vec!["eval".into(), a.display().to_string(), "--explain".into()],
        vec![
            "eval".into(),
            a.display().to_string(),
            "--input".into(),
            rows.display().to_string(),
            "--latency".into(),
            "2".into(),
        ],
    ];
    for args in &commands {
        // The reader goes away at once (`… | true`): a quiet success.
        let mut child = skewless()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let status = wait_at_most(&mut child, Duration::from_secs(30));
        let err = read_all(child.stderr.take());
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // A full disk (`> /dev/full`): an error naming stdout, exit 1.
        let out = skewless()
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = user_error(&out);
        assert!(
            err.contains("error: <stdout>: No space left on device"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn ctrl_c_in_the_repl_stops_a_nested_loop_join() {
    let home = tempfile::tempdir().unwrap();
    let mut repl = skewless()
        .args(["repl", "--table", &format!("census={}", adult())])
        .env("XDG_DATA_HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = repl.id();
    let mut stdin = repl.stdin.take().unwrap();
    // 32,561³ row triples, no equality to hash on: nested loops for hours.
    stdin
        .write_all(
            b"SELECT count(*) FROM census a, census b, census c \
              WHERE a.education || b.occupation || c.race = 'none';\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let busy = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    assert!(cpu_ticks(pid) > busy + 50, "the join runs");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The cancelled work winds down within the batch it is on (a second or
    // two; longer when other tests load the machine), then stays stopped:
    // a whole second of (nearly) no CPU comes before the deadline.
    let cancelled = Instant::now();
    let mut last = cpu_ticks(pid);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_ticks(pid);
        if now - last < 15 {
            break;
        }
        assert!(
            cancelled.elapsed() < Duration::from_secs(30),
            "still {} ticks of CPU a second, 30 s after the cancel",
            now - last
        );
        last = now;
    }
    // The next statement answers, and end of input quits promptly.
    stdin.write_all(b"SELECT 6 * 7 AS after_cancel;\n").unwrap();
    drop(stdin);
    let status = wait_at_most(&mut repl, Duration::from_secs(15));
    let out = read_all(repl.stdout.take());
    let err = read_all(repl.stderr.take());
    assert!(status.success(), "{err}");
    assert!(err.contains("query cancelled"), "{err}");
    assert!(out.contains("| 42           |"), "{out}");
}

#[test]
fn signals_remove_unfinished_outputs() {
    let dir = tempfile::tempdir().unwrap();
    // A CSV of 300 million rows: far longer than the test waits.
    let sql = "COPY (SELECT value, value * 2 AS twice, 'text' AS t \
               FROM generate_series(1, 300000000)) TO 'big.csv';";
    let script = dir.path().join("big.sql");
    std::fs::write(&script, sql).unwrap();
    let leftovers = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "big.sql")
            .collect();
        names.sort();
        names
    };
    let start = || {
        let mut cmd = skewless();
        cmd.current_dir(dir.path())
            .arg("run")
            .arg(&script)
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        // Wait until the write is under way.
        let begun = Instant::now();
        while !leftovers(dir.path()).iter().any(|n| n.contains("#")) {
            assert!(
                begun.elapsed() < Duration::from_secs(20),
                "the write did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    };
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let mut child = start();
        let names = leftovers(dir.path());
        assert!(
            names.iter().all(|n| n.starts_with(".big.csv.skewless-")),
            "{names:?}"
        );
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = wait_at_most(&mut child, Duration::from_secs(15));
        let err = read_all(child.stderr.take());
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!(
                "interrupted by SIG{signal}: stopped, and outputs not completed were removed"
            )),
            "{err}"
        );
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }
    // A killed process cannot clean up; the next write to the same target
    // removes what it left.
    let mut child = start();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!leftovers(dir.path()).is_empty());
    ok(&run_sql_with(
        {
            let mut cmd = skewless();
            cmd.current_dir(dir.path());
            cmd
        },
        dir.path(),
        "COPY (SELECT 1 AS one) TO 'big.csv';",
        &[],
    ));
    assert_eq!(leftovers(dir.path()), ["big.csv", "script.sql"]);
}

#[test]
fn unwritable_outputs_are_user_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // Not even root may create files in /sys.
    let out = run_sql(
        dir.path(),
        "COPY (SELECT 1 AS x) TO '/sys/skewless.csv';",
        &[],
    );
    let err = user_error(&out);
    assert!(
        err.contains("cannot write '/sys/skewless.csv': Permission denied"),
        "{err}"
    );
    assert!(!err.contains("Internal error"), "{err}");
    // A read-only directory (for a user the permission applies to).
    let root_user = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root_user {
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        let mut perms = std::fs::metadata(&ro).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        std::fs::set_permissions(&ro, perms).unwrap();
        let sql = format!("COPY (SELECT 1 AS x) TO '{}/x.csv';", ro.display());
        let err = user_error(&run_sql(dir.path(), &sql, &[]));
        assert!(err.contains("Permission denied"), "{err}");
    }
    // /proc takes no new files, and says so with an error object_store's
    // writer retried forever: the write fails at once.
    let a = fitted(dir.path());
    let mut child = skewless()
        .arg("apply")
        .arg(&a)
        .args(["--table", &format!("census={}", adult())])
        .args(["--out", "/proc/skewless.parquet"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_at_most(&mut child, Duration::from_secs(20));
    let err = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write '/proc/skewless.parquet': No such file or directory"),
        "{err}"
    );
}

#[test]
fn data_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // A Parquet file damaged inside a data page (its footer intact), among
    // good ones.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(adult(), data.join("a.parquet")).unwrap();
    let mut bytes = std::fs::read(adult()).unwrap();
    bytes[20_000..24_000].fill(0xff);
    std::fs::write(data.join("b.parquet"), &bytes).unwrap();
    let err = user_error(&run_sql(
        dir.path(),
        "SELECT max(occupation), max(native_country), sum(age) FROM t;",
        &["--table", &format!("t={}", data.display())],
    ));
    assert!(
        err.contains(&format!(
            "file '{}': Parquet",
            data.join("b.parquet").display()
        )),
        "{err}"
    );
    // NDJSON: a line that is not JSON (line 3), at registration.
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3\n{\"a\": 4}\n").unwrap();
    let err = user_error(&run_sql(
        dir.path(),
        "SELECT sum(a) FROM t;",
        &["--table", &format!("t={}", bad.display())],
    ));
    assert!(
        err.contains(&format!(
            "file '{}' is not readable as NDJSON: line 3 is not valid JSON: EOF while parsing an \
             object at column 7",
            bad.display()
        )),
        "{err}"
    );
    // NDJSON: a value of the wrong type long after the rows inference saw.
    let late = dir.path().join("late.ndjson");
    let mut text: String = (0..2_000).map(|i| format!("{{\"a\": {i}}}\n")).collect();
    text.push_str("{\"a\": \"oops\"}\n");
    std::fs::write(&late, text).unwrap();
    let err = user_error(&run_sql(
        dir.path(),
        "SELECT sum(a) FROM t;",
        &["--table", &format!("t={}", late.display())],
    ));
    assert!(
        err.contains(&format!(
            "file '{}': line 2001: Json error: whilst decoding field 'a': failed to parse \"oops\" \
             as Int64",
            late.display()
        )),
        "{err}"
    );
    // A late bad CSV row in fit, with its line in the file.
    let csv = dir.path().join("late.csv");
    let mut text = String::from("x\n");
    for i in 0..5_000 {
        text.push_str(&format!("{i}\n"));
    }
    text.push_str("x5000\n");
    std::fs::write(&csv, text).unwrap();
    let t = dir.path().join("t.sql");
    std::fs::write(&t, "SELECT z_score(x) AS z FROM c").unwrap();
    let err = user_error(
        &skewless()
            .arg("fit")
            .arg(&t)
            .args(["--table", &format!("c={}", csv.display()), "--out"])
            .arg(dir.path().join("a.json"))
            .output()
            .unwrap(),
    );
    assert!(
        err.contains(&format!(
            "file '{}': Parser error: Error while parsing value 'x5000' as type 'Int64' for \
             column 0 at line 5002",
            csv.display()
        )),
        "{err}"
    );
    // Without a header, line 3 of the file is line 3.
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, "1,2\n3,4\nx,5\n").unwrap();
    let err = user_error(&run_sql(
        dir.path(),
        &format!(
            "CREATE EXTERNAL TABLE p (a BIGINT, b BIGINT) STORED AS CSV LOCATION '{}' \
             OPTIONS ('format.has_header' 'false'); SELECT sum(a) FROM p;",
            plain.display()
        ),
        &[],
    ));
    assert!(
        err.contains(&format!(
            "file '{}': Parser error: Error while parsing value 'x' as type 'Int64' for column 0 \
             at line 3",
            plain.display()
        )),
        "{err}"
    );
}

#[test]
fn sql_errors_are_plain_and_hint_at_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let census = format!("census={}", adult());
    let err = user_error(&run_sql(
        dir.path(),
        "SELECT z_score('abc') FROM census;",
        &["--table", &census],
    ));
    assert!(
        err.contains("failed: z_score: x must be numeric, got Utf8\n"),
        "{err}"
    );
    let err = user_error(&run_sql(dir.path(), "SELECT sum('a');", &[]));
    assert!(
        err.contains("no form of sum takes (Utf8): it takes sum(Decimal), sum(UInt64), sum(Int64), sum(Float64), sum(Duration), sum(Interval); cast the arguments"),
        "{err}"
    );
    assert!(!err.contains("bug"), "{err}");
    // A missing table: run and fit say how to register it.
    let err = user_error(&run_sql(dir.path(), "SELECT * FROM people;", &[]));
    assert!(
        err.contains("table 'people' not found: register it with --table people=LOCATION"),
        "{err}"
    );
    let t = dir.path().join("t.sql");
    std::fs::write(&t, "SELECT z_score(age) AS z FROM census").unwrap();
    let err = user_error(
        &skewless()
            .arg("fit")
            .arg(&t)
            .arg("--out")
            .arg(dir.path().join("a.json"))
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("table 'census' not found: register it with --table census=LOCATION"),
        "{err}"
    );
}

#[test]
fn tables_print_at_most_max_rows() {
    let dir = tempfile::tempdir().unwrap();
    let census = format!("census={}", adult());
    let out = ok(&run_sql(
        dir.path(),
        "SELECT age FROM census;",
        &["--table", &census],
    ));
    // 40 data rows between the header's and the table's borders.
    let data_rows = out
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("age"))
        .count();
    assert_eq!(data_rows, 40, "{out}");
    assert!(
        out.ends_with(
            "32561 rows (40 shown; --max-rows N shows more, 0 all, or use --format csv)\n"
        ),
        "{out}"
    );
    let out = ok(&run_sql(
        dir.path(),
        "SELECT age FROM census;",
        &["--table", &census, "--max-rows", "0"],
    ));
    let data_rows = out
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("age"))
        .count();
    assert_eq!(data_rows, 32561);
    assert!(
        out.ends_with("\n32561 rows\n"),
        "{}",
        &out[out.len() - 40..]
    );
}

#[test]
fn eval_takes_real_world_input() {
    let dir = tempfile::tempdir().unwrap();
    let a = fitted(dir.path());
    let huge_ignored = "x".repeat(200_000);
    let input = format!(
        "\u{feff}{{\"age\": 38, \"education\": \"HS-grad\"}}\n\
         \n   \n\
         {{\"age\": 38, \"education\": \"HS-grad\", \"age\": 39}}\n\
         {{\"age\": 38, \"education\": \"HS-grad\", \"notes\": \"{huge_ignored}\"}}\r\n\
         {{\"age\": 38, \"education\": \"HS-grad\", \"notes\": 1, \"notes\": 2}}\n\
         {{\"age\": 38, \"education\": \"{}\"}}\n",
        "y".repeat(300_000)
    );
    let path = dir.path().join("rows.ndjson");
    std::fs::write(&path, &input).unwrap();
    let out = skewless()
        .arg("eval")
        .arg(&a)
        .arg("--input")
        .arg(&path)
        .args(["--max-line-bytes", "250000"])
        .output()
        .unwrap();
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    // The features of the plain line; HS-grad is the census's most
    // frequent education (index 0), age 38 just under the mean (38.58).
    let mut plain = skewless()
        .arg("eval")
        .arg(&a)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    plain
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"age\": 38, \"education\": \"HS-grad\"}\n")
        .unwrap();
    let expected = ok(&plain.wait_with_output().unwrap());
    let expected = expected.trim_end();
    assert!(
        expected.starts_with("{\"age_z\":-0.0426420265551920") && expected.ends_with(",\"edu\":0}"),
        "{expected}"
    );
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0], expected, "BOM accepted, blank lines skipped");
    assert_eq!(
        lines[1],
        "{\"error\":\"line 4: not a JSON object: field 'age' appears twice at column 41\"}"
    );
    assert_eq!(lines[2], expected, "an unread field is skipped");
    assert_eq!(
        lines[3],
        "{\"error\":\"line 6: not a JSON object: field 'notes' appears twice at column 55\"}"
    );
    assert_eq!(
        lines[4],
        "{\"error\":\"line 7: 300028 bytes, longer than the limit of 250000 (--max-line-bytes)\"}"
    );
    assert!(
        stderr(&out).contains("skewless eval: 3 of 5 lines failed"),
        "{}",
        stderr(&out)
    );
}
