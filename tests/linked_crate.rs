//! Migrations contributed by another crate (`tests/support/linked-migrations`)
//! to the named set `"linked"`.

// REQUIRED: the linker only keeps crates that the binary references. Without
// this line `linked_migrations` is a dependency in Cargo.toml but is never
// linked in, and its `#[migration]`s are silently absent (the set is then
// empty and `Migrator::new().set("linked")` fails with `EmptySet`). `as _`
// references the crate without importing a name.
use linked_migrations as _;

mod common;

use common::{has_table, tables, tracking_rows, user_version, TempDb};
use migrate_core::{Error, Migrator, RegistryProblem};

fn linked() -> Migrator {
    Migrator::new().set("linked")
}

#[test]
fn the_linked_crates_migrations_are_found() {
    linked().validate().unwrap();
    let conn = migrate_core::rusqlite::Connection::open_in_memory().unwrap();
    let pending = linked().pending_migrations(&conn).unwrap();
    let found: Vec<(u32, &str, bool)> = pending
        .iter()
        .map(|m| (m.id, m.name.as_str(), m.has_rollback))
        .collect();
    assert_eq!(
        found,
        vec![
            (0, "create_linked_items", false),
            (1, "add_linked_tags", true)
        ]
    );
    for info in &pending {
        let file = info.location.file.replace('\\', "/");
        assert!(
            file.ends_with("linked-migrations/src/lib.rs"),
            "defined at {file}"
        );
        assert!(!info.location.runtime);
    }
}

#[test]
fn the_linked_crates_migrations_are_applied_and_rolled_back() {
    let db = TempDb::new();
    let mut conn = db.open();
    assert_eq!(linked().migrate(&mut conn).unwrap().ids(), vec![0, 1]);
    assert_eq!(
        tables(&conn),
        vec!["linked_items", "linked_tags", "migrations_linked"]
    );
    assert_eq!(
        tracking_rows(&conn, "migrations_linked"),
        vec![
            (0, "create_linked_items".to_owned()),
            (1, "add_linked_tags".to_owned())
        ]
    );
    assert_eq!(user_version(&conn), 0, "a named set touched user_version");

    let undone = linked().rollback_migration(&mut conn).unwrap().unwrap();
    assert_eq!((undone.id, undone.name.as_str()), (1, "add_linked_tags"));
    assert!(!has_table(&conn, "linked_tags"));
    assert!(has_table(&conn, "linked_items"));
    assert!(matches!(
        linked().rollback_migration(&mut conn),
        Err(Error::NoRollback { id: 0, .. })
    ));
}

#[test]
fn the_linked_crate_adds_nothing_to_the_default_set() {
    // This binary defines no migrations of its own, so the default set is
    // empty: the fixture contributed to "linked" only.
    let error = Migrator::new().validate().unwrap_err();
    match &error {
        Error::InvalidRegistry { problems } => assert!(
            matches!(problems.as_slice(), [RegistryProblem::EmptySet { set }] if set.is_empty()),
            "{problems:?}"
        ),
        other => panic!("expected InvalidRegistry, got {other:?}"),
    }
    assert!(
        error.to_string().contains("use that_crate as _;"),
        "{error}"
    );
}
