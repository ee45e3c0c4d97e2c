//! A static registry that breaks the sequence rule in every way at once, each
//! way in a named set of its own: a gap, a duplicate id, a rollback without a
//! migration, two rollbacks for one id. `validate()` (and the CLI's
//! `verify`) checks the whole registry and reports every problem at once,
//! whichever set it is asked about; running a set checks that set, before
//! any database is touched, so a broken set is refused with all of its
//! problems and a valid one still runs.
//!
//! The `L_*` constants hold the line of the attribute right below them.

mod common;

use common::{tables, user_version, TempDb};
use migrate_core::rusqlite::{self, Transaction};
use migrate_core::{migration, rollback, Error, Migrate, Migrator, RegistryProblem};

const FILE: &str = "tests/invalid_registry.rs";

fn ok(_tx: &Transaction) -> rusqlite::Result<()> {
    Ok(())
}

// Set "gappy": 0, 1, 4. Ids 2 and 3 are missing.
#[migration(0, set = "gappy")]
fn gappy_0(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}
#[migration(1, set = "gappy")]
fn gappy_1(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}
const L_GAPPY_4: u32 = line!() + 1;
#[migration(4, set = "gappy")]
fn gappy_4(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}

// Set "dup": 0, 1, 1.
#[migration(0, set = "dup")]
fn dup_0(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}
const L_DUP_1A: u32 = line!() + 1;
#[migration(1, set = "dup")]
fn dup_1a(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}
const L_DUP_1B: u32 = line!() + 1;
#[migration(1, set = "dup", name = "another_one")]
fn dup_1b(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}

// Set "orphan": migration 0, and a rollback of a migration 3 that does not exist.
#[migration(0, set = "orphan")]
fn orphan_0(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}
const L_ORPHAN_ROLLBACK: u32 = line!() + 1;
#[rollback(3, set = "orphan")]
fn orphan_rollback_3(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}

// Set "two_rollbacks": migration 0 with two rollbacks.
#[migration(0, set = "two_rollbacks")]
fn two_rollbacks_0(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}
const L_ROLLBACK_A: u32 = line!() + 1;
#[rollback(0, set = "two_rollbacks")]
fn two_rollbacks_a(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}
const L_ROLLBACK_B: u32 = line!() + 1;
#[rollback(0, set = "two_rollbacks")]
fn two_rollbacks_b(tx: &Transaction) -> rusqlite::Result<()> {
    ok(tx)
}

// Set "valid": nothing wrong with it, but it lives in a broken binary.
#[migration(0, set = "valid")]
fn valid_0(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE valid_table (x)")
}

fn problems_of(result: Result<impl std::fmt::Debug, Error>) -> (Vec<RegistryProblem>, String) {
    match result {
        Err(error @ Error::InvalidRegistry { .. }) => {
            let message = error.to_string();
            let Error::InvalidRegistry { problems } = error else {
                unreachable!()
            };
            (problems, message)
        }
        other => panic!("expected InvalidRegistry, got {other:?}"),
    }
}

/// The four problems of the broken sets, as every set of this binary sees them.
fn assert_the_four_problems(problems: &[RegistryProblem], message: &str) {
    let mut gap = 0;
    let mut dup = 0;
    let mut orphan = 0;
    let mut two = 0;
    for problem in problems {
        match problem {
            RegistryProblem::Gap {
                set,
                from,
                to,
                next,
            } if set == "gappy" => {
                assert_eq!((*from, *to), (2, 3));
                let (id, location) = next.expect("the gap names the next id");
                assert_eq!(id, 4);
                assert!(
                    location.file.ends_with("invalid_registry.rs"),
                    "{location:?}"
                );
                assert_eq!(location.line, L_GAPPY_4, "{location:?}");
                assert!(!location.runtime);
                gap += 1;
            }
            RegistryProblem::DuplicateMigration { set, id, locations } if set == "dup" => {
                assert_eq!(*id, 1);
                let lines: Vec<u32> = locations.iter().map(|l| l.line).collect();
                assert_eq!(lines, vec![L_DUP_1A, L_DUP_1B]);
                dup += 1;
            }
            RegistryProblem::RollbackWithoutMigration { set, id, location } if set == "orphan" => {
                assert_eq!(*id, 3);
                assert_eq!(location.line, L_ORPHAN_ROLLBACK);
                orphan += 1;
            }
            RegistryProblem::DuplicateRollback { set, id, locations } if set == "two_rollbacks" => {
                assert_eq!(*id, 0);
                let lines: Vec<u32> = locations.iter().map(|l| l.line).collect();
                assert_eq!(lines, vec![L_ROLLBACK_A, L_ROLLBACK_B]);
                two += 1;
            }
            _ => {}
        }
    }
    assert_eq!((gap, dup, orphan, two), (1, 1, 1, 1), "{problems:#?}");

    // The message lists them all, each with file:line.
    for line in [
        L_GAPPY_4,
        L_DUP_1A,
        L_DUP_1B,
        L_ORPHAN_ROLLBACK,
        L_ROLLBACK_A,
        L_ROLLBACK_B,
    ] {
        let at = format!("{FILE}:{line}");
        assert!(message.contains(&at), "{at} missing from:\n{message}");
    }
    for set in ["gappy", "dup", "orphan", "two_rollbacks"] {
        assert!(
            message.contains(&format!("set \"{set}\"")),
            "{set} missing from:\n{message}"
        );
    }
    assert!(message.contains("2 to 3"), "{message}");
}

#[test]
fn every_problem_is_reported_at_once_with_file_and_line() {
    let (problems, message) = problems_of(Migrator::new().set("valid").validate());
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert_the_four_problems(&problems, &message);
    assert!(message.contains("4 problems"), "{message}");
}

#[test]
fn an_empty_set_is_reported_with_the_others() {
    let (problems, message) = problems_of(Migrator::new().set("nothing").validate());
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert_the_four_problems(&problems, &message);
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, RegistryProblem::EmptySet { set } if set == "nothing")),
        "{problems:#?}"
    );
    assert!(message.contains("set \"nothing\""), "{message}");
    assert!(message.contains("#[migration(0)]"), "{message}");

    // The default set of this binary is empty too.
    let (problems, message) = problems_of(Migrator::new().validate());
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, RegistryProblem::EmptySet { set } if set.is_empty())),
        "{problems:#?}"
    );
    assert!(message.contains("the default set"), "{message}");
}

#[test]
fn a_runtime_migration_is_located_at_its_call() {
    let line = line!() + 1;
    let migrator = Migrator::new().set("nothing").add(1, "one", ok);
    let (problems, message) = problems_of(migrator.validate());
    let gap = problems
        .iter()
        .find(|p| p.set() == "nothing")
        .expect("the set added to is checked");
    match gap {
        RegistryProblem::Gap {
            from: 0,
            to: 0,
            next: Some((1, location)),
            ..
        } => {
            assert!(location.runtime);
            assert_eq!(location.line, line);
        }
        other => panic!("expected a gap before 1, got {other:?}"),
    }
    assert!(
        message.contains(&format!("{FILE}:{line} (added at run time)")),
        "{message}"
    );
    assert_the_four_problems(&problems, &message);
}

#[test]
fn no_entry_point_touches_a_new_database() {
    let db = TempDb::new();
    let mut conn = db.open();
    let valid = Migrator::new().set("gappy");
    problems_of(valid.migrate(&mut conn));
    problems_of(valid.migrate_to(&mut conn, 0));
    problems_of(valid.rollback_migration(&mut conn));
    problems_of(valid.rollback_to(&mut conn, 0));
    problems_of(valid.rollback_all(&mut conn));
    problems_of(valid.baseline(&mut conn, 0));
    problems_of(valid.pending_migrations(&conn));
    problems_of(valid.status(&conn));
    problems_of(conn.migrate());
    problems_of(conn.rollback_migration());
    problems_of(conn.pending_migrations());

    assert!(tables(&conn).is_empty(), "{:?}", tables(&conn));
    assert_eq!(user_version(&conn), 0);
    assert!(conn.is_autocommit());
    drop(conn);
    assert_eq!(db.bytes().len(), 0, "the database file was written to");
}

#[test]
fn no_entry_point_touches_an_existing_database() {
    let db = TempDb::new();
    let conn = db.open();
    conn.execute_batch(
        "CREATE TABLE valid_table (x); INSERT INTO valid_table VALUES (1); PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);
    let bytes = db.bytes();
    assert!(!bytes.is_empty());

    let mut conn = db.open();
    let valid = Migrator::new().set("dup");
    problems_of(valid.migrate(&mut conn));
    problems_of(valid.baseline(&mut conn, 0));
    problems_of(valid.rollback_all(&mut conn));
    problems_of(conn.migrate());
    drop(conn);
    assert_eq!(db.bytes(), bytes, "the database file was written to");
}

#[test]
fn a_valid_set_runs_while_validate_reports_every_broken_set() {
    let db = TempDb::new();
    let mut conn = db.open();
    let valid = Migrator::new().set("valid");
    assert_eq!(valid.migrate(&mut conn).unwrap().ids(), vec![0]);
    // Running a broken set names only its own problems, with file and line.
    let (problems, message) = problems_of(Migrator::new().set("gappy").migrate(&mut conn));
    assert!(problems.iter().all(|p| p.set() == "gappy"), "{problems:#?}");
    assert!(
        message.contains(&format!("{FILE}:{L_GAPPY_4}")),
        "{message}"
    );
    // validate() on the valid set still reports the whole binary.
    let (problems, _) = problems_of(valid.validate());
    assert_eq!(problems.len(), 4, "{problems:#?}");
}
