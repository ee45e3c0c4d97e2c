//! The CI smoke run: `bench --quick`, the whole benchmark at N = 200 (the
//! smallest generated link-time set) with one repetition, including the
//! child processes of both binaries. It checks correctness only (every
//! contender ends with N tables and N tracking rows, a rollback with none,
//! and every series that should be measured is), never time.

use std::process::Command;

use bench::{Contender, Workload};

#[test]
fn quick_run_is_correct() {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--quick")
        .output()
        .expect("run bench --quick");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench --quick failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("correctness verified"), "{stdout}");
    // The table lists every contender, both migrate-core shapes included.
    for contender in Contender::ALL {
        let label = contender.label(Workload::Apply);
        assert!(stdout.contains(label), "no row for {label}:\n{stdout}");
    }
    assert!(stdout.contains("no rollback in refinery"), "{stdout}");
}

#[test]
fn bench_plain_links_no_generated_set() {
    let identify = |exe: &str| {
        let output = Command::new(exe).arg("--identify").output().unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let bench = identify(env!("CARGO_BIN_EXE_bench"));
    let plain = identify(env!("CARGO_BIN_EXE_bench-plain"));
    // All three sets in release builds, linked_200 alone in debug builds.
    assert!(bench.contains("linked sets: linked_200"), "{bench}");
    assert!(plain.ends_with("linked sets: none\n"), "{plain}");
    assert_eq!(bench.split(',').next(), plain.split(',').next());
}
