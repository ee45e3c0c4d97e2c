//! Running the example programs as child processes, for the CLI's end-to-end
//! tests.

#![allow(dead_code)] // each test file uses part of it

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The example program: a binary of this package, which Cargo builds
/// before this test, into the target directory and profile in use.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "quickstart" => env!("CARGO_BIN_EXE_quickstart"),
        "blog" => env!("CARGO_BIN_EXE_blog"),
        "shop" => env!("CARGO_BIN_EXE_shop"),
        "merge" => env!("CARGO_BIN_EXE_merge"),
        "goose" => env!("CARGO_BIN_EXE_goose"),
        other => panic!("no example program named {other}"),
    })
}

pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
    pub elapsed: Duration,
}

/// How long a child may run before the test kills it and fails: a hang
/// must fail the test, never stall the suite.
const CHILD_LIMIT: Duration = Duration::from_secs(20);

/// The colour variables, removed from every child's environment unless a
/// test sets them: the suite's own environment must not decide.
const COLOUR_VARIABLES: [&str; 3] = ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE"];

/// Runs example `name` on database `db` with `args`, stdout and stderr piped.
pub fn run(name: &str, db: &Path, args: &[&str]) -> Run {
    run_in(name, db, args, &[], None)
}

/// As [`run`], with environment variables set and a working directory.
pub fn run_in(
    name: &str,
    db: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&Path>,
) -> Run {
    let mut command = Command::new(example(name));
    command.arg("--db").arg(db).args(args);
    for variable in COLOUR_VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    spawn(command, &format!("{name} {}", args.join(" ")))
}

/// Runs `command` to its end (at most [`CHILD_LIMIT`]), reading both pipes.
pub fn spawn(mut command: Command, shown: &str) -> Run {
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("example runs");
    // Read both pipes on threads, so a chatty child cannot block on a full pipe.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8(text).expect("utf-8 output")
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if start.elapsed() > CHILD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{shown}` still running after {CHILD_LIMIT:?}: killed (a hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().expect("exit code"),
        out: out.join().expect("stdout reader"),
        err: err.join().expect("stderr reader"),
        elapsed: start.elapsed(),
    }
}

/// Copies directory `from` (files only, one level of subdirectories) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// The sorted names in a directory.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// This package's directory (where `blog/migrations` and `merge/` are).
pub fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
