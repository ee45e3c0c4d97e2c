//! Stamps the bench binaries with a build id: a hash of every source they
//! are built from (this package, migrate-core, migrate-macros, the lock
//! file), as `BENCH_BUILD_ID`. `cargo run -p bench` rebuilds only the
//! `bench` binary; before spawning `bench-plain`, `bench` checks that it
//! carries the same id, so that a stale child is an error, not a silently
//! wrong measurement.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

const INPUTS: [&str; 8] = [
    "src",
    "Cargo.toml",
    "../migrate-core/src",
    "../migrate-core/Cargo.toml",
    "../migrate-macros/src",
    "../migrate-macros/Cargo.toml",
    "../Cargo.lock",
    "build.rs",
];

fn main() {
    let mut hasher = DefaultHasher::new();
    for input in INPUTS {
        println!("cargo:rerun-if-changed={input}");
        hash_path(Path::new(input), &mut hasher);
    }
    println!("cargo:rustc-env=BENCH_BUILD_ID={:016x}", hasher.finish());
}

/// Hashes a file's path and contents, or a directory's files in name order.
fn hash_path(path: &Path, hasher: &mut DefaultHasher) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .expect("read a source directory")
            .map(|entry| entry.expect("read a directory entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            hash_path(&entry, hasher);
        }
    } else {
        path.hash(hasher);
        std::fs::read(path)
            .expect("read a source file")
            .hash(hasher);
    }
}
