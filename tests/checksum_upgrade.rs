//! Databases written by earlier releases keep working after the checksum
//! and history-chain definitions changed: a Rust body with rustfmt's
//! trailing comma and a CRLF SQL file have new checksums now, and chains
//! start from the table's name. An old history is accepted (never
//! `Modified`), and rewritten in place at the next write, once.

mod common;

use common::{read_bytes, TempDb};
use migrate_core::rusqlite::{self, Connection, OpenFlags, Transaction};
use migrate_core::{embed_migrations, migration, Migrator};

#[migration(0, set = "upgrade")]
fn create_posts(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL)",
        [],
    )?;
    Ok(())
}

#[migration(1, set = "upgrade")]
fn add_body(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE posts ADD COLUMN body TEXT")
}

// Its 0002 file has CRLF line endings (see the directory's .gitattributes).
embed_migrations!(
    "tests/fixtures/sql/seeds/user_version",
    set = "crlf",
    ids = "sorted"
);

/// The checksums the macros emitted for this id under the earlier
/// definition, read from the registry itself.
fn former_checksums(set: &str, id: u32) -> &'static [&'static str] {
    use migrate_core::__private::{EntryKind, Slot};
    migrate_core::__private::slots()
        .map(|slot: &'static Slot| slot.entry)
        .find_map(|entry| match entry.kind {
            EntryKind::Migration {
                former_checksums, ..
            } if entry.set == set && entry.id == id => Some(former_checksums),
            _ => None,
        })
        .unwrap_or(&[])
}

/// The chain as earlier releases computed it: SipHash-1-3 (zero key, 128
/// bits) over `{len}:{previous}|{id}|{len}:{name}|{checksum}`, from "".
fn former_chain(previous: &str, id: i64, name: &str, checksum: &str) -> String {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let text = format!(
        "{}:{previous}|{id}|{}:{name}|{checksum}",
        previous.len(),
        name.len()
    );
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(text.as_bytes());
    format!("{:032x}", hasher.finish128().as_u128())
}

/// Rewrites a history as an earlier release wrote it: each row's former
/// checksum (where its migration has one) and former chain.
fn as_an_earlier_release_left_it(conn: &Connection, set: &str, table: &str) {
    with_former_chains(conn, set, table, true);
}

/// Each row's chain of the former definition, and with `former_checksums`
/// its former checksum too (where its migration has one).
fn with_former_chains(conn: &Connection, set: &str, table: &str, former_checksums_too: bool) {
    let rows: Vec<(i64, String, String)> = conn
        .prepare(&format!(
            "SELECT id, name, checksum FROM \"{table}\" ORDER BY id"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut previous = String::new();
    for (id, name, checksum) in rows {
        let checksum = match former_checksums(set, id as u32).first() {
            Some(former) if former_checksums_too => (*former).to_owned(),
            _ => checksum,
        };
        let chain = former_chain(&previous, id, &name, &checksum);
        conn.execute(
            &format!("UPDATE \"{table}\" SET checksum = ?2, chain = ?3 WHERE id = ?1"),
            rusqlite::params![id, checksum, chain],
        )
        .unwrap();
        previous = chain;
    }
}

fn stored(conn: &Connection, table: &str) -> Vec<(String, String)> {
    conn.prepare(&format!(
        "SELECT checksum, chain FROM \"{table}\" ORDER BY id"
    ))
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn the_fixtures_really_changed_checksum() {
    // Without this, the test below would prove nothing.
    assert_eq!(former_checksums("upgrade", 0).len(), 1, "trailing comma");
    assert!(former_checksums("upgrade", 1).is_empty());
    assert_eq!(former_checksums("crlf", 1).len(), 1, "CRLF file");
}

/// Chains of the former definition over checksums that are all current
/// (a history whose migrations never changed form) are stale too: the next
/// migrate() rewrites them, and the O(1) check vouches again.
#[test]
fn chains_of_the_former_definition_alone_are_rewritten_once() {
    let (set, table) = ("upgrade", "migrations_upgrade");
    let m = Migrator::new().set(set);
    let db = TempDb::new();
    let mut conn = db.open();
    m.migrate(&mut conn).unwrap();
    let current = stored(&conn, table);
    with_former_chains(&conn, set, table, false);
    let old = stored(&conn, table);
    assert!(
        old.iter()
            .zip(&current)
            .all(|(o, c)| o.0 == c.0 && o.1 != c.1),
        "only the chains differ: {old:?} against {current:?}"
    );
    assert!(m.migrate(&mut conn).unwrap().is_empty());
    assert_eq!(stored(&conn, table), current, "rewritten in place");
    let after = read_bytes(&db.path);
    assert!(m.migrate(&mut conn).unwrap().is_empty());
    assert_eq!(read_bytes(&db.path), after, "rewritten only once");
}

#[test]
fn an_earlier_releases_history_is_accepted_and_rewritten_once() {
    for (set, table) in [
        ("upgrade", "migrations_upgrade"),
        ("crlf", "migrations_crlf"),
    ] {
        let m = Migrator::new().set(set);
        let db = TempDb::new();
        let mut conn = db.open();
        m.migrate(&mut conn).unwrap();
        let current = stored(&conn, table);
        as_an_earlier_release_left_it(&conn, set, table);
        let old = stored(&conn, table);
        assert_ne!(old, current, "{set}: the old history differs");

        // Read paths accept it and change nothing.
        let before = read_bytes(&db.path);
        assert!(m.pending_migrations(&conn).unwrap().is_empty(), "{set}");
        assert!(m
            .status(&conn)
            .unwrap()
            .iter()
            .all(|s| s.state == migrate_core::MigrationState::Applied));
        // A read-only connection accepts it too, and cannot rewrite it.
        let read_only =
            Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut read_only = read_only;
        assert!(m.migrate(&mut read_only).unwrap().is_empty(), "{set}");
        drop(read_only);
        assert_eq!(read_bytes(&db.path), before, "{set}: nothing written");

        // The next migrate() rewrites it to what this release writes.
        assert!(m.migrate(&mut conn).unwrap().is_empty(), "{set}");
        assert_eq!(stored(&conn, table), current, "{set}: rewritten in place");
        // Once: the next call is a read.
        let after = read_bytes(&db.path);
        assert!(m.migrate(&mut conn).unwrap().is_empty());
        assert_eq!(read_bytes(&db.path), after, "{set}: rewritten only once");
    }
}

#[test]
fn an_edited_migration_is_still_modified_under_either_definition() {
    let m = Migrator::new().set("upgrade");
    let db = TempDb::new();
    let mut conn = db.open();
    m.migrate(&mut conn).unwrap();
    as_an_earlier_release_left_it(&conn, "upgrade", "migrations_upgrade");
    // A checksum that is neither the current nor a former one.
    conn.execute_batch(
        "UPDATE migrations_upgrade SET checksum = '00000000000000000000000000000000' WHERE id = 0",
    )
    .unwrap();
    let before = read_bytes(&db.path);
    assert!(matches!(
        m.migrate(&mut conn),
        Err(migrate_core::Error::Modified { .. })
    ));
    assert!(matches!(
        m.pending_migrations(&conn),
        Err(migrate_core::Error::Modified { .. })
    ));
    assert_eq!(read_bytes(&db.path), before);
}
