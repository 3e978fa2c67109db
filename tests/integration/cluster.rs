//! `skewless cluster`: a scheduler and two executors as processes of the
//! real binary on loopback ports, and `--cluster` clients (issue 15).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{adult, ok, run_sql, skewless, stderr, user_error};

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The processes of a cluster, stopped (by their ids) when dropped, even
/// when the test fails.
struct Cluster {
    scheduler_port: u16,
    children: Vec<(String, Child)>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    /// Starts a scheduler and `executors` executors (one task slot each,
    /// work dirs under `dir`) and waits until the scheduler is ready.
    fn start(dir: &Path, executors: usize) -> Cluster {
        Self::start_with(dir, executors, executors, &[])
    }

    /// [`Cluster::start`] with `ready` executors awaited (the scheduler's
    /// `--min-ready-executors`) and extra environment variables for
    /// processes by name (`scheduler`, `executor0`, …).
    fn start_with(
        dir: &Path,
        executors: usize,
        ready: usize,
        env: &[(&str, &str, &str)],
    ) -> Cluster {
        let env_of = |name: &str| {
            env.iter()
                .filter(move |(who, _, _)| *who == name)
                .map(|(_, k, v)| (*k, *v))
                .collect::<Vec<_>>()
        };
        let scheduler_port = free_port();
        let log = |name: &str| std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let mut cluster = Cluster {
            scheduler_port,
            children: Vec::new(),
        };
        let scheduler = skewless()
            .args(["cluster", "scheduler", "--bind-port"])
            .arg(scheduler_port.to_string())
            .args(["--min-ready-executors", &ready.to_string()])
            .env("RUST_LOG", "info")
            .envs(env_of("scheduler"))
            .stdout(Stdio::null())
            .stderr(log("scheduler"))
            .spawn()
            .unwrap();
        cluster.children.push(("scheduler".into(), scheduler));
        for i in 0..executors {
            let name = format!("executor{i}");
            let work = dir.join(&name);
            let executor = skewless()
                .args(["cluster", "executor", "--bind-port"])
                .arg(free_port().to_string())
                .arg("--bind-grpc-port")
                .arg(free_port().to_string())
                .args([
                    "--external-host",
                    "127.0.0.1",
                    "--scheduler-host",
                    "127.0.0.1",
                ])
                .arg("--scheduler-port")
                .arg(scheduler_port.to_string())
                .args(["--vcores", "1", "--work-dir"])
                .arg(&work)
                .env("RUST_LOG", "info")
                .envs(env_of(&name))
                .stdout(Stdio::null())
                .stderr(log(&name))
                .spawn()
                .unwrap();
            cluster.children.push((name, executor));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if executors < ready {
                // Not to be ready: wait until the scheduler answers.
                if cluster.get("/healthz").is_some() {
                    break;
                }
            } else if let Some((200, body)) = cluster.get("/readyz") {
                assert_eq!(body, format!("ready: {executors} executors registered\n"));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster was not ready in 60 s:\n{}",
                cluster.logs(dir)
            );
            std::thread::sleep(Duration::from_millis(200));
            for (name, child) in &mut cluster.children {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("{name} exited with {status}");
                }
            }
        }
        cluster
    }

    fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.scheduler_port)
    }

    /// An HTTP GET on the scheduler's port: status and body.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.scheduler_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    }

    fn logs(&self, dir: &Path) -> String {
        self.children
            .iter()
            .map(|(name, _)| {
                let log =
                    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
                format!("--- {name}\n{log}")
            })
            .collect()
    }
}

/// Queries with skewless's functions (a scalar function, a full-pass
/// aggregate whose partial states cross the shuffle) over the census.
const QUERIES: &str = "\
SELECT count(*) AS n FROM census;
SELECT hash_bucket(workclass, 5) AS b, count(*) AS n FROM census GROUP BY b ORDER BY b;
SELECT quantile_boundaries(age, 4) AS q FROM census;
";

#[test]
fn a_scheduler_and_two_executors_give_the_local_answers() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("census={}", adult());
    let local = ok(&run_sql(dir.path(), QUERIES, &["--table", &table]));
    // The census has 32,561 rows.
    assert!(local.contains("| 32561 |"), "{local}");
    let cluster = Cluster::start(dir.path(), 2);
    let out = run_sql(
        dir.path(),
        QUERIES,
        &["--table", &table, "--cluster", &cluster.url()],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        cluster.logs(dir.path())
    );
    assert_eq!(ok(&out), local);
    // In-process Ballista (`local:N`) too.
    let standalone = ok(&run_sql(
        dir.path(),
        QUERIES,
        &["--table", &table, "--cluster", "local:2"],
    ));
    assert_eq!(standalone, local);
}

#[test]
fn a_cluster_of_another_build_or_without_executors_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("census={}", adult());
    let query = |cluster: &Cluster| {
        run_sql(
            dir.path(),
            "SELECT count(*) FROM census;",
            &["--table", &table, "--cluster", &cluster.url()],
        )
    };
    // A scheduler that says it is another skewless.
    let other = "skewless 9.9.9 (functions 0123456789abcdef)";
    let cluster = Cluster::start_with(
        dir.path(),
        1,
        1,
        &[("scheduler", "SKEWLESS_CLUSTER_IDENTITY", other)],
    );
    let err = user_error(&query(&cluster));
    assert!(
        err.contains(&format!(
            "runs {other} on its scheduler, this client is skewless 0.1.0"
        )),
        "{err}"
    );
    drop(cluster);
    // An executor that says so.
    let cluster = Cluster::start_with(
        dir.path(),
        1,
        1,
        &[("executor0", "SKEWLESS_CLUSTER_IDENTITY", other)],
    );
    let err = user_error(&query(&cluster));
    assert!(
        err.contains(&format!("runs {other} on its executor")),
        "{err}"
    );
    drop(cluster);
    // A scheduler waiting for an executor that never comes.
    let cluster = Cluster::start_with(dir.path(), 0, 1, &[]);
    let err = user_error(&query(&cluster));
    assert!(
        err.contains(&format!(
            "cluster: the scheduler at {} is not ready: not ready: 0/1 executors registered",
            cluster.url()
        )),
        "{err}"
    );
    drop(cluster);
    // Nothing listening.
    let url = format!("df://127.0.0.1:{}", free_port());
    let out = run_sql(dir.path(), "SELECT 1;", &["--cluster", &url]);
    let err = user_error(&out);
    assert!(
        err.contains(&format!("cluster: cannot reach the scheduler at {url}")),
        "{err}"
    );
}
