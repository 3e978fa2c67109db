//! `skewless repl` driven through piped stdin, as a script or a person would.

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::*;

fn spawn_repl(data_home: &std::path::Path) -> Child {
    let mut cmd = skewless();
    cmd.args(["repl", "--table"])
        .arg(format!("census={}", adult()))
        .env("XDG_DATA_HOME", data_home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("repl starts")
}

#[test]
fn session_commands_and_history() {
    let home = tempfile::tempdir().unwrap();
    let mut repl = spawn_repl(home.path());
    let input = "\\d\n\
                 SELECT income_bracket,\n  count(*) AS n\nFROM census\nGROUP BY income_bracket ORDER BY 1;\n\
                 \\d census\n\
                 \\functions\n\
                 SELECT nope;\n\
                 \\timing\n\
                 SELECT 41 + 1 AS answer;\n\
                 CREATE VIEW v AS SELECT 1 AS x;\n\
                 \\bogus\n\
                 \\?\n\
                 \\q\n\
                 SELECT 'never reached';\n";
    repl.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = repl.wait_with_output().unwrap();
    let stdout = ok(&out);
    let stderr = stderr(&out);
    // \d lists the registered table.
    assert!(stdout.contains("| census | base |"), "{stdout}");
    // The multi-line query ran; its rows, row count and timing follow.
    assert!(stdout.contains("| <=50K          | 24720 |"), "{stdout}");
    assert!(stdout.contains("| >50K           | 7841  |"), "{stdout}");
    assert!(stdout.contains("2 rows in "), "{stdout}");
    // \d census shows the schema.
    assert!(
        stdout.contains("| age            | Int64    | YES      |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| income_bracket | Utf8View | YES      |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+----------------+----------+----------+\n15 rows\n"),
        "{stdout}"
    );
    // \functions lists our functions.
    assert!(stdout.contains("hash_bucket(x, n)"), "{stdout}");
    // An error is reported and the REPL goes on.
    assert!(
        stderr.contains("error:") && stderr.contains("nope"),
        "{stderr}"
    );
    // \timing turned timing off: a bare row count.
    assert!(stdout.contains("timing is off"), "{stdout}");
    assert!(
        stdout.contains("| 42     |\n+--------+\n1 row\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\nok\n"), "{stdout}");
    assert!(stderr.contains("unknown command '\\bogus'"), "{stderr}");
    assert!(stdout.contains("\\timing"), "help lists commands: {stdout}");
    assert!(!stdout.contains("never reached"), "\\q quits: {stdout}");
    // History persisted in the data directory.
    let history = std::fs::read_to_string(home.path().join("skewless/history")).unwrap();
    assert!(history.contains("SELECT 41 + 1 AS answer;"), "{history}");
    assert!(history.contains("\\timing"), "{history}");
}

#[test]
fn end_of_input_quits() {
    let home = tempfile::tempdir().unwrap();
    let mut repl = spawn_repl(home.path());
    repl.stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n FROM census WHERE age > 60;")
        .unwrap();
    let out = repl.wait_with_output().unwrap();
    // DuckDB: 742 + 1590 rows with age > 60.
    assert!(ok(&out).contains("| 2332 |"), "{}", stdout(&out));
}

#[test]
fn interrupt_cancels_the_running_query_only() {
    let home = tempfile::tempdir().unwrap();
    let mut repl = spawn_repl(home.path());
    let mut stdin = repl.stdin.take().unwrap();
    // A join of ~590 million row pairs (10,771² + 21,790²): it runs for far
    // longer than the test waits.
    stdin
        .write_all(
            b"SELECT count(*) FROM census a JOIN census b ON a.gender = b.gender \
              WHERE a.fnlwgt + b.fnlwgt < 0;\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let status = std::process::Command::new("kill")
        .args(["-INT", &repl.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    stdin.write_all(b"SELECT 6 * 7 AS after_cancel;\n").unwrap();
    drop(stdin);
    let out = repl.wait_with_output().unwrap();
    let stdout = ok(&out);
    assert!(stderr(&out).contains("query cancelled"), "{}", stderr(&out));
    assert!(stdout.contains("| 42           |"), "{stdout}");
}
