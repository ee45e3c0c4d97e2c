//! Real child processes for the fault tests: a test binary re-executes itself
//! with `MIGRATE_CHILD=<role>` and a filter that selects only the test named
//! [`CHILD_TEST`]. That test acts as the child when the variable is set and
//! returns at once otherwise, so a normal `cargo test` run never recurses.
//!
//! Included with `#[path = "support/process.rs"] mod process;` (files under
//! `tests/support/` are not test targets of their own).

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that turns a test binary into a child.
pub const CHILD_ENV: &str = "MIGRATE_CHILD";

/// The name of the `#[test]` fn that every file using this module defines as
/// its child entry point.
pub const CHILD_TEST: &str = "child_process_entry";

/// Lines of a child's stdout that carry its answer start with this.
pub const RESULT_PREFIX: &str = "@@RESULT ";

/// The role this process plays, when it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// A required environment variable of a child.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child: environment variable {name} is not set"))
}

/// `true` when `MIGRATE_LONG=1` asks for the long variants.
pub fn long_run() -> bool {
    std::env::var("MIGRATE_LONG").is_ok_and(|v| v == "1")
}

/// A command that runs this very test binary as a child with `role`: only the
/// child entry test runs (`--exact`), its output is not captured.
pub fn child_command(role: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        CHILD_TEST,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(CHILD_ENV, role)
    .env("RUST_BACKTRACE", "0")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Prints the child's answer so that the parent can find it in its stdout.
pub fn report(result: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{RESULT_PREFIX}{result}").unwrap();
    out.flush().unwrap();
}

/// What a finished child printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The `@@RESULT` lines, prefix removed.
    pub fn results(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix(RESULT_PREFIX))
            .map(str::to_owned)
            .collect()
    }

    /// The single `@@RESULT` line; panics with the child's output otherwise.
    pub fn result(&self) -> String {
        let results = self.results();
        assert!(
            results.len() == 1,
            "child printed {} result lines (status {}):\n--- stdout\n{}\n--- stderr\n{}",
            results.len(),
            self.status,
            self.stdout,
            self.stderr
        );
        results.into_iter().next().unwrap()
    }

    pub fn describe(&self) -> String {
        format!(
            "status {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Waits for a child, killing it after `timeout`.
pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> Finished {
    let start = Instant::now();
    // Drain the pipes on threads so that a chatty child never blocks.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            let stdout = out_thread.join().unwrap();
            let stderr = err_thread.join().unwrap();
            panic!("child timed out after {timeout:?} (status {status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Finished {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// Kills a child with SIGKILL (`Child::kill` on Unix) and reaps it.
pub fn kill(mut child: Child) -> Finished {
    child.kill().expect("kill");
    wait_with_timeout(child, Duration::from_secs(30))
}

/// Runs `command` as a child told to create `marker` (`MIGRATE_MARKER`)
/// when it reaches the point to be killed at, waits for it (two minutes at
/// most), and kills it there with SIGKILL.
pub fn kill_when_marked(command: &mut Command, marker: &Path) -> Result<Finished, String> {
    let mut child = command
        .env("MIGRATE_MARKER", marker)
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    wait_for_file(
        marker,
        &mut child,
        Duration::from_secs(120),
        Duration::from_millis(2),
    )?;
    Ok(kill(child))
}

/// Polls until `path` exists. Fails (killing the child) when the child exits
/// first or `timeout` passes: the file is the child's signal that it reached
/// a point, so both mean the test cannot go on.
pub fn wait_for_file(
    path: &Path,
    child: &mut Child,
    timeout: Duration,
    poll: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if path.exists() {
            return Ok(());
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Err(format!(
                "child exited ({status}) before it created {}",
                path.display()
            ));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "child did not create {} within {timeout:?}",
                path.display()
            ));
        }
        std::thread::sleep(poll);
    }
}

/// Creates `path` (empty) and makes its existence durable enough for other
/// processes to see: they only poll for it.
pub fn touch(path: &Path) {
    std::fs::write(path, b"").unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
}

/// In a child: blocks until `path` exists (or panics after `timeout`).
pub fn block_until_exists(path: &Path, timeout: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < timeout,
            "child: {} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// In a child: signals the parent through `marker`, then waits to be killed.
/// Exits after two minutes so that an orphan never lingers.
pub fn mark_and_hang(marker: &Path) -> ! {
    touch(marker);
    std::thread::sleep(Duration::from_secs(120));
    eprintln!("child: nobody killed me within two minutes; exiting");
    std::process::exit(3);
}

/// A path next to `dir`.
pub fn file_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
