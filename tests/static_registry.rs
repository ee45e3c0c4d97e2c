//! A static registry: migrations of the default set written with
//! `#[migration]` / `#[rollback]`, in every accepted signature, declared out of
//! order and partly inside a submodule, run through the `Migrate` trait.
//!
//! Besides the default set this binary holds a few small named sets used by
//! single tests (`fallible`, `fmt_*`); they are all valid, so they never make
//! the default set's registry check fail.

mod common;

use std::fmt;

use common::{
    assert_checksum, assert_rfc3339_utc, drop_tracking_triggers, dump_file, has_table, tables,
    tamper, tracking_rows, user_version, TempDb,
};
use migrate_core::rusqlite::{self, Connection, Transaction};
use migrate_core::{migration, rollback, Direction, Error, Migrate, Migrator};

/// A user error type, to check that it comes back as `source()`.
#[derive(Debug, PartialEq)]
struct MyError {
    code: u32,
}

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "my error number {}", self.code)
    }
}

impl std::error::Error for MyError {}

// Declared out of order on purpose: the registry sorts by id, and migration 1
// and 3 only work after 0 and 2 respectively.

/// `Result<(), MyError>`, with a custom name.
#[migration(3, name = "add_owner_with_my_error")]
fn owner_column(tx: &Transaction) -> Result<(), MyError> {
    tx.execute_batch("ALTER TABLE dogs ADD COLUMN owner TEXT")
        .map_err(|_| MyError { code: 3 })
}

#[rollback(3)]
fn drop_owner_column(tx: &Transaction) -> Result<(), MyError> {
    tx.execute_batch("ALTER TABLE dogs DROP COLUMN owner")
        .map_err(|_| MyError { code: 33 })
}

/// `&Connection`, returning `()`.
#[migration(1)]
fn add_cat_colour(conn: &Connection) {
    conn.execute_batch("ALTER TABLE cats ADD COLUMN colour TEXT")
        .expect("cats exists: migration 0 ran first");
}

/// `&Transaction`, returning `rusqlite::Result<()>`.
#[migration(0)]
fn create_cats(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY)")
}

mod more {
    use migrate_core::rusqlite::{Connection, Transaction};
    use migrate_core::{migration, rollback};

    /// Found although it lives in a submodule.
    #[migration(2)]
    pub(crate) fn create_dogs(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE dogs (name TEXT PRIMARY KEY)")
    }

    /// A raw identifier: its name is stored without `r#`.
    #[migration(4)]
    fn r#type(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE kinds (kind TEXT)")
    }

    /// A rollback taking `&Connection` and returning `()`.
    #[rollback(4)]
    fn drop_kinds(conn: &Connection) {
        conn.execute_batch("DROP TABLE kinds")
            .expect("kinds exists");
    }
}

const DEFAULT_NAMES: [&str; 5] = [
    "create_cats",
    "add_cat_colour",
    "create_dogs",
    "add_owner_with_my_error",
    "type",
];

// A named set whose only migration fails with the user's error type.
#[migration(0, set = "fallible", name = "always_fails")]
fn fails(tx: &Transaction) -> Result<(), MyError> {
    tx.execute_batch("CREATE TABLE half_done (x)")
        .expect("create");
    Err(MyError { code: 42 })
}

// Three sets with bodies that differ only in formatting and comments, or not
// at all, to check what the checksum covers.
#[migration(0, set = "fmt_a")]
fn fmt_a(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE a (x)")
}

#[rustfmt::skip]
#[migration(0, set = "fmt_b")]
fn fmt_b(tx : &Transaction)->rusqlite::Result<()>{
    // The same code as `fmt_a`, formatted differently.
    tx . execute_batch (
        "CREATE TABLE a (x)" )
}

#[migration(0, set = "fmt_c")]
fn fmt_c(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE b (x)")
}

#[test]
fn migrate_applies_the_default_set_in_id_order() {
    let db = TempDb::new();
    let mut conn = db.open();

    let pending = conn.pending_migrations().unwrap();
    assert_eq!(
        pending.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(
        pending.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        DEFAULT_NAMES
    );
    assert_eq!(
        pending.iter().map(|m| m.has_rollback).collect::<Vec<_>>(),
        vec![false, false, false, true, true]
    );
    for info in &pending {
        assert!(
            info.location.file.ends_with("static_registry.rs"),
            "{:?}",
            info.location
        );
        assert!(!info.location.runtime);
    }
    assert!(conn.applied_migrations().unwrap().is_empty());
    assert_eq!(conn.last_applied_migration().unwrap(), None);

    let report = conn.migrate().unwrap();
    assert_eq!(report.ids(), vec![0, 1, 2, 3, 4]);
    assert!(report
        .steps
        .iter()
        .all(|step| step.direction == Direction::Up));
    assert_eq!(
        report
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        DEFAULT_NAMES
    );

    assert_eq!(tables(&conn), vec!["cats", "dogs", "kinds", "migrations"]);
    // Migration 1 (`&Connection`, returning `()`) and 3 (`Result<(), MyError>`) ran.
    conn.execute("INSERT INTO cats (name, colour) VALUES ('Tom', 'grey')", [])
        .unwrap();
    conn.execute("INSERT INTO dogs (name, owner) VALUES ('Rex', 'Ann')", [])
        .unwrap();
    let rows = tracking_rows(&conn, "migrations");
    let expected: Vec<(i64, String)> = DEFAULT_NAMES
        .iter()
        .enumerate()
        .map(|(id, name)| (id as i64, name.to_string()))
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(user_version(&conn), 5);
    assert!(conn.pending_migrations().unwrap().is_empty());
    assert!(conn.migrate().unwrap().is_empty());
}

#[test]
fn applied_migrations_carry_time_and_checksum() {
    let db = TempDb::new();
    let mut conn = db.open();
    let pending = conn.pending_migrations().unwrap();
    conn.migrate().unwrap();

    let applied = conn.applied_migrations().unwrap();
    assert_eq!(applied.len(), 5);
    for (migration, info) in applied.iter().zip(&pending) {
        assert_eq!(migration.id, info.id);
        assert_eq!(migration.name, info.name);
        assert_rfc3339_utc(&migration.applied_at);
        assert_checksum(&migration.checksum);
        assert_eq!(
            migration.checksum, info.checksum,
            "recorded checksum differs from the current one"
        );
    }
    let mut checksums: Vec<&str> = applied.iter().map(|m| m.checksum.as_str()).collect();
    checksums.sort_unstable();
    checksums.dedup();
    assert_eq!(checksums.len(), 5, "two different bodies share a checksum");

    // What the trait reports is what is in the table.
    let stored: Vec<(String, String)> = conn
        .prepare("SELECT applied_at, checksum FROM migrations ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let reported: Vec<(String, String)> = applied
        .iter()
        .map(|m| (m.applied_at.clone(), m.checksum.clone()))
        .collect();
    assert_eq!(stored, reported);

    let last = conn.last_applied_migration().unwrap().expect("applied");
    assert_eq!(last, applied[4]);
}

#[test]
fn rollback_migration_undoes_the_newest_and_user_version_follows() {
    let db = TempDb::new();
    let mut conn = db.open();
    conn.migrate().unwrap();
    assert_eq!(user_version(&conn), 5);

    // Rollback 4 takes `&Connection` and returns `()`.
    let undone = conn.rollback_migration().unwrap().expect("4 is applied");
    assert_eq!((undone.id, undone.name.as_str()), (4, "type"));
    assert_rfc3339_utc(&undone.applied_at);
    assert!(!has_table(&conn, "kinds"));
    assert_eq!(user_version(&conn), 4);
    assert_eq!(
        conn.last_applied_migration().unwrap().map(|m| m.id),
        Some(3)
    );

    // Rollback 3 returns `Result<(), MyError>`.
    let undone = conn.rollback_migration().unwrap().expect("3 is applied");
    assert_eq!(undone.id, 3);
    let owner_columns: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('dogs') WHERE name = 'owner'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(owner_columns, 0);
    assert_eq!(user_version(&conn), 3);
    assert_eq!(conn.applied_migrations().unwrap().len(), 3);
    let pending = conn.pending_migrations().unwrap();
    assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), vec![3, 4]);

    // Migration 2 has no rollback.
    let error = conn.rollback_migration().unwrap_err();
    assert!(
        matches!(&error, Error::NoRollback { id: 2, name } if name == "create_dogs"),
        "{error:?}"
    );
    assert_eq!(user_version(&conn), 3);

    // Back up again.
    assert_eq!(conn.migrate().unwrap().ids(), vec![3, 4]);
    assert_eq!(user_version(&conn), 5);
    assert_eq!(tracking_rows(&conn, "migrations").len(), 5);
}

#[test]
fn the_trait_and_the_default_migrator_agree() {
    let db = TempDb::new();
    let mut conn = db.open();
    Migrator::new().migrate_to(&mut conn, 1).unwrap();
    assert_eq!(
        conn.applied_migrations().unwrap(),
        Migrator::new().applied_migrations(&conn).unwrap()
    );
    assert_eq!(conn.pending_migrations().unwrap().len(), 3);
    assert_eq!(user_version(&conn), 2);
    assert_eq!(conn.migrate().unwrap().ids(), vec![2, 3, 4]);
}

#[test]
fn a_user_error_comes_back_as_the_source_of_failed() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = Migrator::new().set("fallible");
    let error = migrator.migrate(&mut conn).unwrap_err();

    match &error {
        Error::Failed {
            id,
            name,
            direction,
            source,
        } => {
            assert_eq!(
                (*id, name.as_str(), *direction),
                (0, "always_fails", Direction::Up)
            );
            assert_eq!(
                source.downcast_ref::<MyError>(),
                Some(&MyError { code: 42 })
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let source = std::error::Error::source(&error).expect("source() is set");
    assert_eq!(
        source.downcast_ref::<MyError>(),
        Some(&MyError { code: 42 })
    );
    assert_eq!(source.to_string(), "my error number 42");

    // The message names the migration; the source's text is not repeated
    // in it, and `{:#}` prints the whole chain.
    let message = error.to_string();
    assert!(message.contains("0 `always_fails`"), "{message}");
    assert!(!message.contains("my error number 42"), "{message}");
    let chain = format!("{error:#}");
    assert!(chain.contains("0 `always_fails`"), "{chain}");
    assert!(chain.ends_with(": my error number 42"), "{chain}");

    assert!(
        !has_table(&conn, "half_done"),
        "the failed migration was not rolled back"
    );
    assert!(tracking_rows(&conn, "migrations_fallible").is_empty());
    assert!(
        !has_table(&conn, "migrations"),
        "a named set touched the default set's table"
    );
    assert_eq!(user_version(&conn), 0);
    assert!(conn.is_autocommit());
}

#[test]
fn checksums_ignore_formatting_and_set_but_not_code() {
    let conn = Connection::open_in_memory().unwrap();
    let checksum = |set: &str| {
        let pending = Migrator::new().set(set).pending_migrations(&conn).unwrap();
        assert_eq!(pending.len(), 1);
        assert_checksum(&pending[0].checksum);
        pending[0].checksum.clone()
    };
    assert_eq!(checksum("fmt_a"), checksum("fmt_b"));
    assert_ne!(checksum("fmt_a"), checksum("fmt_c"));
}

#[test]
fn a_migrated_file_reopens_up_to_date() {
    let db = TempDb::new();
    db.open().migrate().unwrap();
    let before = dump_file(&db.path);
    let bytes = db.bytes();
    let mut conn = db.open();
    assert!(conn.migrate().unwrap().is_empty());
    assert!(conn.pending_migrations().unwrap().is_empty());
    drop(conn);
    assert_eq!(dump_file(&db.path), before);
    assert_eq!(db.bytes(), bytes);
}

/// The up-to-date check of link-time migrations compares the chain of the
/// newest row with the head folded from the registry's slots, before any
/// step is placed (this file declares its migrations out of order, so the
/// fold must put them in id order). With the tracking table's triggers
/// dropped, the newest row moved to id 999 by hand goes unseen by that
/// check, as its chain is unchanged (every other read refuses it: no
/// migration 999): proof that the head is right and that it alone decides.
/// With the triggers kept, the edit is refused.
#[test]
fn the_up_to_date_check_of_linked_migrations_reads_the_newest_chain_only() {
    for (triggers_kept, expect_ok) in [(true, false), (false, true)] {
        let db = TempDb::new();
        db.open().migrate().unwrap();
        if !triggers_kept {
            drop_tracking_triggers(&db);
        }
        tamper(
            &db,
            "UPDATE migrations SET id = 999 WHERE id = (SELECT max(id) FROM migrations)",
        );
        let result = Migrator::new().migrate(&mut db.open());
        assert_eq!(
            result.is_ok(),
            expect_ok,
            "triggers kept: {triggers_kept}: {result:?}"
        );
    }
}

/// The registry's slots repeat what their entries hold (the set's hash and
/// the migration's chain link), so that a set's plan is built from the
/// slots alone: they must agree with the entries, computed independently;
/// and each slot sits in its set's bucket, the one array the plan reads.
#[test]
fn every_slot_agrees_with_its_entry() {
    use migrate_core::__private::{EntryKind, Slot};
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let siphash = |parts: &[&[u8]]| {
        let mut hasher = SipHasher13::new_with_keys(0, 0);
        for part in parts {
            hasher.write(part);
        }
        hasher.finish128().as_u128()
    };
    let slots: Vec<&'static Slot> = migrate_core::__private::slots().collect();
    assert!(slots.len() > 10, "{} slots", slots.len());
    // Each slot is in the array the macros picked from its set's hash, the
    // one the runtime reads for that set.
    #[cfg(not(feature = "inventory"))]
    for index in 0..migrate_core::__private::BUCKETS {
        for slot in migrate_core::__private::bucket_slots(index) {
            let at = format!("{}:{}", slot.entry.file, slot.entry.line);
            assert_eq!(
                migrate_core::__private::bucket(slot.set_hash),
                index,
                "{at}"
            );
        }
    }
    for slot in slots {
        let entry = slot.entry;
        let at = format!("{}:{}", entry.file, entry.line);
        assert_eq!(slot.id, entry.id, "{at}");
        assert_eq!(
            slot.set_hash,
            siphash(&[b"set:", entry.set.as_bytes()]),
            "{at}"
        );
        match entry.kind {
            EntryKind::Migration {
                name,
                checksum,
                link,
                ..
            } => {
                assert!(!slot.rollback, "{at}");
                let head = format!("{}|{}:", entry.id, name.len());
                let expected =
                    siphash(&[head.as_bytes(), name.as_bytes(), b"|", checksum.as_bytes()]);
                assert_eq!((slot.link, link), (expected, expected), "{at}");
            }
            EntryKind::Rollback => assert!(slot.rollback && slot.link == 0, "{at}"),
        }
    }
}
