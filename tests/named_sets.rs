//! Several sets in one database file: the default set and the named sets
//! `alpha` and `beta`, each with its own tracking table, none of them ever
//! taking another's tables for a database built by hand.

mod common;

use common::{dump_file, has_table, tables, tracking_ids, tracking_rows, user_version, TempDb};
use migrate_core::rusqlite::{self, Transaction};
use migrate_core::{migration, rollback, Error, Migrate, Migrator};

#[migration(0)]
fn create_users(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
}

#[rollback(0)]
fn drop_users(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE users")
}

#[migration(0, set = "alpha")]
fn create_alpha(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE alpha_items (x)")
}

#[rollback(0, set = "alpha")]
fn drop_alpha(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE alpha_items")
}

#[migration(1, set = "alpha")]
fn index_alpha(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE INDEX alpha_x ON alpha_items (x)")
}

#[rollback(1, set = "alpha")]
fn unindex_alpha(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP INDEX alpha_x")
}

// The same name as alpha's migration 0 on purpose: a name belongs to its set.
#[migration(0, set = "beta", name = "create_alpha")]
fn create_beta(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE beta_items (y)")
}

#[rollback(0, set = "beta")]
fn drop_beta(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE beta_items")
}

fn alpha() -> Migrator {
    Migrator::new().set("alpha")
}

fn beta() -> Migrator {
    Migrator::new().set("beta")
}

#[test]
fn each_set_has_its_own_tracking_table() {
    let db = TempDb::new();
    let mut conn = db.open();

    assert_eq!(alpha().migrate(&mut conn).unwrap().ids(), vec![0, 1]);
    assert_eq!(tables(&conn), vec!["alpha_items", "migrations_alpha"]);
    assert_eq!(
        tracking_rows(&conn, "migrations_alpha"),
        vec![
            (0, "create_alpha".to_owned()),
            (1, "index_alpha".to_owned())
        ]
    );

    assert_eq!(beta().migrate(&mut conn).unwrap().ids(), vec![0]);
    assert_eq!(
        tables(&conn),
        vec![
            "alpha_items",
            "beta_items",
            "migrations_alpha",
            "migrations_beta"
        ]
    );
    assert_eq!(
        tracking_rows(&conn, "migrations_beta"),
        vec![(0, "create_alpha".to_owned())]
    );
    assert_eq!(tracking_ids(&conn, "migrations_alpha"), vec![0, 1]);

    // Each set reads only its own history.
    assert_eq!(alpha().applied_migrations(&conn).unwrap().len(), 2);
    assert_eq!(beta().applied_migrations(&conn).unwrap().len(), 1);
    assert!(conn.applied_migrations().unwrap().is_empty());
    assert_eq!(conn.pending_migrations().unwrap().len(), 1);

    // Rolling one set back leaves the other alone.
    let before_beta = tracking_rows(&conn, "migrations_beta");
    assert_eq!(alpha().rollback_all(&mut conn).unwrap().ids(), vec![1, 0]);
    assert!(!has_table(&conn, "alpha_items"));
    assert!(tracking_ids(&conn, "migrations_alpha").is_empty());
    assert!(has_table(&conn, "beta_items"));
    assert_eq!(tracking_rows(&conn, "migrations_beta"), before_beta);
}

#[test]
fn named_sets_never_touch_user_version() {
    let db = TempDb::new();
    let mut conn = db.open();
    // Some other part of the application owns user_version here. A named set
    // does not read it either: this is not an unmanaged database for it.
    conn.execute_batch("PRAGMA user_version = 42").unwrap();

    alpha().migrate(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 42);
    beta().migrate(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 42);
    alpha().rollback_migration(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 42);
    alpha().rollback_to(&mut conn, 0).unwrap();
    alpha().migrate_to(&mut conn, 1).unwrap();
    assert_eq!(user_version(&conn), 42);
    beta().rollback_all(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 42);
    assert!(!has_table(&conn, "migrations"));
}

#[test]
fn the_default_set_mirrors_user_version_only_for_itself() {
    let db = TempDb::new();
    let mut conn = db.open();
    alpha().migrate(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 0);
    conn.migrate().unwrap();
    assert_eq!(
        user_version(&conn),
        1,
        "the default set counts its own migrations only"
    );
    beta().migrate(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 1);
    conn.rollback_migration().unwrap();
    assert_eq!(user_version(&conn), 0);
}

#[test]
fn user_version_mirroring_can_be_turned_off() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = Migrator::new().user_version(false);
    migrator.migrate(&mut conn).unwrap();
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
    assert_eq!(user_version(&conn), 0);
    migrator.rollback_migration(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 0);
}

#[test]
fn an_odd_table_name_is_quoted() {
    let db = TempDb::new();
    let mut conn = db.open();
    let odd = "my \"odd\" table";
    let migrator = alpha().table(odd);

    assert_eq!(migrator.migrate(&mut conn).unwrap().ids(), vec![0, 1]);
    assert!(has_table(&conn, odd), "tables: {:?}", tables(&conn));
    assert!(!has_table(&conn, "migrations_alpha"));
    assert_eq!(tracking_ids(&conn, odd), vec![0, 1]);
    assert_eq!(migrator.applied_migrations(&conn).unwrap().len(), 2);
    assert!(migrator.pending_migrations(&conn).unwrap().is_empty());
    assert_eq!(migrator.status(&conn).unwrap().len(), 2);
    assert!(migrator.migrate(&mut conn).unwrap().is_empty());
    assert_eq!(
        migrator
            .rollback_migration(&mut conn)
            .unwrap()
            .map(|m| m.id),
        Some(1)
    );
    assert_eq!(tracking_ids(&conn, odd), vec![0]);

    // The default migrator for the set does not see that history.
    assert!(alpha().applied_migrations(&conn).unwrap().is_empty());
}

#[test]
fn a_hostile_table_name_stays_a_name() {
    let db = TempDb::new();
    let mut conn = db.open();
    // A tracking table of another set first, so that `victim` does not make
    // the database look hand-built.
    beta().migrate(&mut conn).unwrap();
    conn.execute_batch("CREATE TABLE victim (x); INSERT INTO victim VALUES (1)")
        .unwrap();
    let name = "x\"; DROP TABLE victim; --";
    let migrator = alpha().table(name);
    migrator.migrate(&mut conn).unwrap();
    migrator.rollback_all(&mut conn).unwrap();
    migrator.migrate(&mut conn).unwrap();
    assert!(has_table(&conn, name));
    assert!(has_table(&conn, "victim"));
    assert_eq!(tracking_ids(&conn, name), vec![0, 1]);
}

#[test]
fn sets_sharing_a_file_never_trigger_unmanaged_database_for_each_other() {
    // Every order in which three sets can first meet one file.
    let orders: [[&str; 3]; 6] = [
        ["", "alpha", "beta"],
        ["", "beta", "alpha"],
        ["alpha", "", "beta"],
        ["alpha", "beta", ""],
        ["beta", "", "alpha"],
        ["beta", "alpha", ""],
    ];
    for order in orders {
        let db = TempDb::new();
        let mut conn = db.open();
        for set in order {
            let report = Migrator::new().set(set).migrate(&mut conn);
            assert!(report.is_ok(), "order {order:?}, set {set:?}: {report:?}");
            assert!(
                Migrator::new()
                    .set(set)
                    .pending_migrations(&conn)
                    .unwrap()
                    .is_empty(),
                "order {order:?}"
            );
        }
        assert_eq!(user_version(&conn), 1, "order {order:?}");
        assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
        assert_eq!(tracking_ids(&conn, "migrations_alpha"), vec![0, 1]);
        assert_eq!(tracking_ids(&conn, "migrations_beta"), vec![0]);
    }
}

#[test]
fn a_set_with_a_custom_table_counts_as_ours_for_the_others() {
    let db = TempDb::new();
    let mut conn = db.open();
    alpha().table("alpha history").migrate(&mut conn).unwrap();
    // The default set finds alpha's tables and a tracking table under a name
    // it does not know; the table is still recognisably ours.
    conn.migrate().unwrap();
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
    assert_eq!(tracking_ids(&conn, "alpha history"), vec![0, 1]);
}

#[test]
fn a_hand_built_database_is_unmanaged_for_a_named_set_too() {
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch("CREATE TABLE legacy (x)").unwrap();
    let before = dump_file(&db.path);

    let error = alpha().migrate(&mut conn).unwrap_err();
    match &error {
        Error::UnmanagedDatabase {
            set, table, tables, ..
        } => {
            assert_eq!(set, "alpha");
            assert_eq!(table, "migrations_alpha");
            assert_eq!(tables, &vec!["legacy".to_owned()]);
        }
        other => panic!("expected UnmanagedDatabase, got {other:?}"),
    }
    assert!(error.to_string().contains("baseline"), "{error}");
    drop(conn);
    assert_eq!(dump_file(&db.path), before);
}

/// Two sets given one table with `Migrator::table`: the second finds the
/// first's rows, which are not its migrations, and is refused before it
/// runs anything (docs/guarantees.md says what `verify_applied(false)`
/// cannot tell apart).
#[test]
fn a_second_set_given_the_first_sets_table_is_refused() {
    let db = TempDb::new();
    let mut conn = db.open();
    let a = Migrator::new()
        .set("shared_a")
        .table("shared")
        .add(0, "a0", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a0 (x)")
        })
        .add(1, "a1", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a1 (x)")
        });
    let b = Migrator::new()
        .set("shared_b")
        .table("shared")
        .add(0, "b0", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE b0 (x)")
        })
        .add(1, "b1", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE b1 (x)")
        })
        .add(2, "b2", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE b2 (x)")
        });
    a.migrate(&mut conn).unwrap();
    let before = dump_file(&db.path);
    let result = b.migrate(&mut conn);
    assert!(
        matches!(result, Err(Error::Modified { .. })),
        "expected Modified, got {:?}",
        result.map(|r| r.ids())
    );
    drop(conn);
    assert_eq!(dump_file(&db.path), before, "set b changed the file");
}
