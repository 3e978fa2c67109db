//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root (where the bundled data and scripts live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled training census data.
pub fn adult() -> String {
    root()
        .join("examples/data/adult/adult.parquet")
        .display()
        .to_string()
}

/// The real binary, with a clean environment for what it reads.
pub fn skewless() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skewless"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("DATAFUSION_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(root()).stdin(Stdio::null());
    cmd
}

/// Runs `sql` as a script file through `skewless run` with extra arguments.
pub fn run_sql(dir: &Path, sql: &str, args: &[&str]) -> Output {
    run_sql_with(skewless(), dir, sql, args)
}

/// Like [`run_sql`], with a prepared command (extra environment).
pub fn run_sql_with(mut cmd: Command, dir: &Path, sql: &str, args: &[&str]) -> Output {
    let script = dir.join("script.sql");
    std::fs::write(&script, sql).unwrap();
    cmd.arg("run").arg(&script).args(args);
    cmd.output().expect("skewless runs")
}

/// Fits `transform` over `table` (`NAME=LOCATION`) into
/// `dir/artifact.json`, which it returns; the fit must succeed.
pub fn fit(dir: &Path, transform: &str, table: &str, extra: &[&str]) -> PathBuf {
    let t = dir.join("transform.sql");
    std::fs::write(&t, transform).unwrap();
    let out = dir.join("artifact.json");
    ok(&skewless()
        .arg("fit")
        .arg(&t)
        .args(["--table", table, "--overwrite"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Asserts exit code 1 and returns stderr.
#[track_caller]
pub fn user_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
    stderr(out)
}

/// The global allocator of the test binary: the system allocator, counting
/// the allocations of each thread (so a test can assert that a code path
/// allocates nothing, whatever other tests do meanwhile).
pub struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by this thread so far.
pub fn allocations() -> usize {
    ALLOCATIONS.with(|c| c.get())
}

/// Runs `skewless eval ARTIFACT ARGS…` with `input` on stdin (written from
/// another thread, so that a long input cannot block on a full stdout).
pub fn eval_with_input(artifact: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = skewless()
        .arg("eval")
        .arg(artifact)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `n` consecutive free loopback ports, the first returned: taken below the
/// kernel's ephemeral range (32768 and up), which outgoing connections and
/// servers bound to port 0 draw from, so that no other test's process can
/// take them between this check and the server's bind; a counter shared by
/// the tests of this process never hands the same ports out twice.
pub fn free_ports(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = (std::process::id() * 97) % SPAN;
    loop {
        let at = NEXT.fetch_add(u32::from(n), Ordering::Relaxed);
        let base = (LOW + (start + at) % (SPAN - u32::from(n))) as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}
