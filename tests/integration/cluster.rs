//! `skewless cluster`: a scheduler and two executors as processes of the
//! real binary on loopback ports, and `--cluster` clients (issue 15).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{adult, ok, root, run_sql, skewless, stderr, user_error};

/// A free loopback port.
fn free_port() -> u16 {
    crate::common::free_ports(1)
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
        Self::start_with(dir, executors, executors, &[], &[])
    }

    /// [`Cluster::start`] with `ready` executors awaited (the scheduler's
    /// `--min-ready-executors`), extra environment variables and
    /// arguments for processes by name (`scheduler`, `executor0`, …).
    fn start_with(
        dir: &Path,
        executors: usize,
        ready: usize,
        env: &[(&str, &str, &str)],
        args: &[(&str, &str)],
    ) -> Cluster {
        let args_of = |name: &str| {
            args.iter()
                .filter(move |(who, _)| *who == name)
                .map(|(_, a)| *a)
                .collect::<Vec<_>>()
        };
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
            .args(args_of("scheduler"))
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
                .args(args_of(&name))
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

/// A transform whose statistics are partial states that cross the shuffle:
/// min/max, moments, quantiles, a vocabulary, the most frequent value,
/// stratum hashes.
const TRANSFORM: &str = "\
SELECT
  min_max_scale(age) AS age_scaled,
  z_score(hours_per_week) AS hours_z,
  quantile_bucket(age, 10) AS age_decile,
  vocab_index(education) AS education_id,
  impute(occupation, 'most_frequent') AS occupation_filled,
  stratified_split(concat_ws('|', age, fnlwgt, education, occupation, hours_per_week),
                   income_bracket, 'train', 0.8, 'eval', 0.2) AS split,
  feature_cross(education, occupation, 1000) AS education_x_occupation,
  income_bracket
FROM census";

/// The census in four Parquet files (rows by `fnlwgt % 4`), so a scan has
/// four partitions: returns the directory.
fn census_in_four_files(dir: &Path) -> String {
    let parts = dir.join("census");
    let sql: String = (0..4)
        .map(|i| {
            format!(
                "COPY (SELECT * FROM census WHERE fnlwgt % 4 = {i}) TO '{}';\n",
                parts.join(format!("part{i}.parquet")).display()
            )
        })
        .collect();
    ok(&run_sql(
        dir,
        &sql,
        &["--table", &format!("census={}", adult())],
    ));
    format!("{}/", parts.display())
}

/// `skewless ARGS` with four target partitions; its output.
fn with_four_partitions(args: &[&str]) -> std::process::Output {
    skewless()
        .args(args)
        .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "4")
        .output()
        .unwrap()
}

/// The rows of Parquet files, in order, as NDJSON lines.
fn rows_of(dir: &Path, files: &[std::path::PathBuf]) -> String {
    files
        .iter()
        .map(|f| {
            ok(&run_sql(
                dir,
                &format!("SELECT * FROM '{}';", f.display()),
                &["--format", "ndjson"],
            ))
        })
        .collect()
}

#[test]
fn fit_and_apply_on_the_cluster_write_what_they_write_locally() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let census = census_in_four_files(d);
    let table = format!("census={census}");
    let transform = d.join("transform.sql");
    std::fs::write(&transform, TRANSFORM).unwrap();
    let fit = |out: &str, cluster: Option<&str>| {
        let out = d.join(out);
        let mut args = vec!["fit", transform.to_str().unwrap(), "--table", &table];
        args.extend(["--out", out.to_str().unwrap()]);
        if let Some(c) = cluster {
            args.extend(["--cluster", c]);
        }
        let text = ok(&with_four_partitions(&args));
        (std::fs::read(&out).unwrap(), text)
    };
    let (local, text) = fit("local.json", None);
    // The census's well-known figures: 24,720 rows <=50K and 7,841 >50K;
    // Prof-specialty is the most frequent occupation.
    assert!(
        text.contains("2 strata ('<=50K' 24720, '>50K' 7841)"),
        "{text}"
    );
    assert!(text.contains("most frequent \"Prof-specialty\""), "{text}");
    let cluster = Cluster::start(d, 2);
    let url = cluster.url();
    let (remote, _) = fit("cluster.json", Some(&url));
    assert!(
        local == remote,
        "the artifact fitted on the cluster differs"
    );
    let (standalone, _) = fit("standalone.json", Some("local:2"));
    assert!(
        local == standalone,
        "the artifact fitted on local:2 differs"
    );

    let artifact = d.join("cluster.json");
    let apply = |out: &Path, cluster: Option<&str>| {
        let mut args = vec!["apply", artifact.to_str().unwrap(), "--table", &table];
        args.extend(["--out", out.to_str().unwrap()]);
        if let Some(c) = cluster {
            args.extend(["--cluster", c]);
        }
        let text = ok(&with_four_partitions(&args));
        assert!(text.contains(": 32,561 rows in "), "{text}");
    };
    // One file: the same bytes.
    apply(&d.join("local.parquet"), None);
    apply(&d.join("cluster.parquet"), Some(&url));
    assert!(
        std::fs::read(d.join("local.parquet")).unwrap()
            == std::fs::read(d.join("cluster.parquet")).unwrap(),
        "the feature file written on the cluster differs"
    );
    // A directory: one part per input partition, written by both
    // executors, whose rows in part order are the local file's.
    let parts = d.join("features");
    apply(&parts.join(""), Some(&url));
    let mut files: Vec<_> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "part-00000.parquet",
            "part-00001.parquet",
            "part-00002.parquet",
            "part-00003.parquet"
        ]
    );
    assert_eq!(rows_of(d, &files), rows_of(d, &[d.join("local.parquet")]));
    for name in ["executor0", "executor1"] {
        let log = std::fs::read_to_string(d.join(format!("{name}.log"))).unwrap();
        assert!(
            log.contains("skewless wrote a part"),
            "{name} wrote no part:\n{log}"
        );
    }
    // An existing output is refused before any work, as locally.
    let out = with_four_partitions(&[
        "apply",
        artifact.to_str().unwrap(),
        "--table",
        &table,
        "--out",
        parts.to_str().unwrap(),
        "--cluster",
        &url,
    ]);
    let err = user_error(&out);
    assert!(err.contains("already exists; pass --overwrite"), "{err}");
}

#[test]
fn a_plan_over_the_clusters_message_limit_is_refused_with_the_limit_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 40,000 distinct values of 35 bytes: a vocabulary of 1.4 MB inlined in
    // the fitted plan.
    let values = d.join("values.parquet");
    ok(&run_sql(
        d,
        &format!(
            "COPY (SELECT 'a value long enough to weigh-' || CAST(value + 100000 AS VARCHAR) \
             AS v FROM generate_series(1, 40000)) TO '{}';",
            values.display()
        ),
        &[],
    ));
    let transform = d.join("transform.sql");
    std::fs::write(&transform, "SELECT vocab_index(v) AS id FROM t").unwrap();
    let table = format!("t={}", values.display());
    let artifact = d.join("artifact.json");
    ok(&skewless()
        .arg("fit")
        .arg(&transform)
        .args(["--table", &table, "--out"])
        .arg(&artifact)
        .output()
        .unwrap());
    let one_mib = [
        ("scheduler", "--grpc-max-message-size"),
        ("scheduler", "1"),
        ("executor0", "--grpc-max-message-size"),
        ("executor0", "1"),
    ];
    let cluster = Cluster::start_with(d, 1, 1, &[], &one_mib);
    let out = skewless()
        .arg("apply")
        .arg(&artifact)
        .args(["--table", &table, "--out"])
        .arg(d.join("features/"))
        .args(["--cluster", &cluster.url()])
        .output()
        .unwrap();
    let err = user_error(&out);
    assert!(
        err.contains(
            "MiB of plans in one message: over the cluster's gRPC message limit of 1.0 MiB"
        ),
        "{err}"
    );
    assert!(!d.join("features").exists());
}

#[test]
fn apply_on_the_cluster_reads_and_writes_s3_with_credentials_only_the_cluster_has() {
    let (storage, server) = crate::s3::census_warehouse();
    let bucket = storage.path().join("warehouse");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Fitted locally; the client below has no AWS variables at all.
    let transform = std::fs::read_to_string(root().join("sql/census_wide_deep.sql")).unwrap();
    let artifact = crate::common::fit(d, &transform, &format!("census={}", adult()), &[]);
    let s3 = server.env();
    let env: Vec<(&str, &str, &str)> = ["scheduler", "executor0", "executor1"]
        .into_iter()
        .flat_map(|who| s3.iter().map(move |(k, v)| (who, *k, v.as_str())))
        .collect();
    let cluster = Cluster::start_with(d, 2, 2, &env, &[]);
    let out = skewless()
        .arg("apply")
        .arg(&artifact)
        .args([
            "--table",
            "census=s3://warehouse/census/",
            "--out",
            "s3://warehouse/features/",
            "--cluster",
            &cluster.url(),
        ])
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains(": 32,561 rows in "), "{text}");
    // The executors wrote the part into the bucket, and no temporary
    // object is left (s3s-fs keeps empty directories).
    let written = bucket.join("features/part-00000.parquet");
    assert_eq!(
        crate::s3::objects(&bucket),
        ["census/adult.parquet", "features/part-00000.parquet"]
    );
    // The same rows as a local apply of the same data.
    let local = d.join("local.parquet");
    ok(&skewless()
        .arg("apply")
        .arg(&artifact)
        .args(["--table", &format!("census={}", adult()), "--out"])
        .arg(&local)
        .output()
        .unwrap());
    assert_eq!(rows_of(d, &[written]), rows_of(d, &[local]));
}

#[test]
fn window_features_on_the_cluster_are_the_local_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flights = root().join("examples/data/nycflights13/flights.parquet");
    let table = format!("flights={}", flights.display());
    let transform = d.join("windows.sql");
    std::fs::write(
        &transform,
        "SELECT carrier, flight, origin, sched_dep, m, z_score(m) AS m_z, \
                min_max_scale(n) AS n_scaled, d7 \
         FROM (SELECT carrier, flight, origin, sched_dep, \
                      window_mean(dep_delay, sched_dep, INTERVAL '24 hours') \
                        OVER (PARTITION BY tailnum) AS m, \
                      window_count(dep_delay, sched_dep, INTERVAL '1 hour', INTERVAL '5 minutes') \
                        OVER (PARTITION BY tailnum) AS n, \
                      window_distinct_count(dest, sched_dep, INTERVAL '7 days') \
                        OVER (PARTITION BY tailnum) AS d7 \
               FROM flights)",
    )
    .unwrap();
    let run = |args: &[&str]| ok(&skewless().args(args).output().unwrap());
    let t = transform.to_str().unwrap();
    let local = d.join("local.json");
    let remote = d.join("cluster.json");
    run(&[
        "fit",
        t,
        "--table",
        &table,
        "--out",
        local.to_str().unwrap(),
    ]);
    let cluster = Cluster::start(d, 2);
    let url = cluster.url();
    let c = ["--cluster", url.as_str()];
    let fit = [
        &[
            "fit",
            t,
            "--table",
            &table,
            "--out",
            remote.to_str().unwrap(),
        ][..],
        &c,
    ]
    .concat();
    run(&fit);
    assert!(
        std::fs::read(&local).unwrap() == std::fs::read(&remote).unwrap(),
        "the window transform's artifact fitted on the cluster differs"
    );
    // The same features (DataFusion's window operator orders the rows its
    // own way on a cluster: compared as sets, each row whole).
    let a = remote.to_str().unwrap();
    let batch = d.join("cluster.parquet");
    let apply = [
        &[
            "apply",
            a,
            "--table",
            &table,
            "--out",
            batch.to_str().unwrap(),
        ][..],
        &c,
    ]
    .concat();
    run(&apply);
    run(&[
        "apply",
        a,
        "--table",
        &table,
        "--out",
        d.join("local.parquet").to_str().unwrap(),
    ]);
    let counts = ok(&run_sql(
        d,
        "SELECT count(*) FROM c;\n\
         SELECT count(*) FROM (SELECT * FROM c EXCEPT ALL SELECT * FROM l);\n\
         SELECT count(*) FROM (SELECT * FROM l EXCEPT ALL SELECT * FROM c);",
        &[
            "--table",
            &format!("c={}", batch.display()),
            "--table",
            &format!("l={}", d.join("local.parquet").display()),
            "--format",
            "csv",
        ],
    ));
    // nycflights13: 336,776 flights.
    assert_eq!(counts, "count(*)\n336776\ncount(*)\n0\ncount(*)\n0\n");
}

/// Ports `base` to `base + 4` free on loopback (the example script's).
fn five_free_ports() -> u16 {
    crate::common::free_ports(5)
}

#[test]
fn the_example_script_starts_a_cluster_and_runs_the_job_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(root().join("examples/cluster.sh"))
        .env("SKEWLESS", env!("CARGO_BIN_EXE_skewless"))
        .env("CLUSTER_PORT", five_free_ports().to_string())
        .env("CLUSTER_OUT", dir.path())
        .env_remove("SKEWLESS_CLUSTER")
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("ready: 2 executors registered"), "{text}");
    assert!(text.contains("the artifacts are the same bytes"), "{text}");
    assert!(text.contains(": 16,281 rows in "), "{text}");
    assert!(dir.path().join("features/part-00000.parquet").exists());
}

#[test]
fn the_repl_runs_its_statements_on_a_cluster() {
    use std::io::Write as _;
    let home = tempfile::tempdir().unwrap();
    let mut repl = skewless()
        .args(["repl", "--cluster", "local:2", "--table"])
        .arg(format!("census={}", adult()))
        .env("XDG_DATA_HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    repl.stdin
        .take()
        .unwrap()
        .write_all(
            b"SELECT income_bracket, count(*) AS n FROM census GROUP BY 1 ORDER BY 1;\n\
              SELECT vocab_index_with(gender, ['Male', 'Female']) AS g, count(*) AS n \
              FROM census GROUP BY 1 ORDER BY 1;\n",
        )
        .unwrap();
    let out = ok(&repl.wait_with_output().unwrap());
    // The census: 24,720 rows <=50K, 7,841 >50K; 21,790 men, 10,771 women.
    assert!(out.contains("| <=50K          | 24720 |"), "{out}");
    assert!(out.contains("| >50K           | 7841  |"), "{out}");
    assert!(out.contains("| 0 | 21790 |"), "{out}");
    assert!(out.contains("| 1 | 10771 |"), "{out}");
}

#[test]
fn a_partitioned_apply_on_a_cluster_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let transform = std::fs::read_to_string(root().join("sql/census_wide_deep.sql")).unwrap();
    let artifact = crate::common::fit(d, &transform, &format!("census={}", adult()), &[]);
    let out = skewless()
        .arg("apply")
        .arg(&artifact)
        .args(["--table", &format!("census={}", adult()), "--out"])
        .arg(d.join("features/"))
        .args(["--partition-by", "gender_id", "--cluster", "local:2"])
        .output()
        .unwrap();
    let err = user_error(&out);
    assert!(
        err.contains("--partition-by is not available on a cluster yet"),
        "{err}"
    );
    assert!(!d.join("features").exists());
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
        &[],
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
        &[],
    );
    let err = user_error(&query(&cluster));
    assert!(
        err.contains(&format!("runs {other} on its executor")),
        "{err}"
    );
    drop(cluster);
    // A scheduler waiting for an executor that never comes.
    let cluster = Cluster::start_with(dir.path(), 0, 1, &[], &[]);
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
