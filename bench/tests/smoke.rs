//! The CI smoke run: the whole benchmark at N = 20 with one repetition,
//! including the child processes. It checks correctness only (every
//! contender ends with N tables and N tracking rows, a rollback with none),
//! never time.

use std::path::PathBuf;

use bench::{Contender, Options, Workload};

#[test]
fn quick_run_is_correct() {
    let options = Options::quick(PathBuf::from(env!("CARGO_BIN_EXE_bench")));
    let samples = bench::run(&options, |_| {}).expect("every contender verified");
    let n = options.sizes[0].0;
    // Every workload was measured for the contenders that support it.
    for contender in Contender::ALL {
        assert!(samples.median(Workload::Apply, n, contender).is_some());
    }
    for workload in [Workload::UpToDate, Workload::FirstCall] {
        for contender in [
            Contender::FloorB,
            Contender::RusqliteMigration,
            Contender::RefineryGrouped,
            Contender::MigrateCore,
        ] {
            assert!(samples.median(workload, n, contender).is_some());
        }
    }
    for contender in [
        Contender::FloorB,
        Contender::RusqliteMigration,
        Contender::MigrateCore,
    ] {
        assert!(samples
            .median(Workload::RollbackAll, n, contender)
            .is_some());
    }
    assert!(samples
        .median(Workload::RollbackAll, n, Contender::RefineryGrouped)
        .is_none());
    // The table renders every row.
    let table = bench::table(&samples, &options);
    assert!(table.contains("no rollback in refinery"), "{table}");
}
