//! Databases written by earlier releases keep working after the checksum
//! and history-chain definitions changed: a Rust body with rustfmt's
//! trailing comma (the second definition), one with `extern "C"` (the
//! third) and a CRLF SQL file have new checksums now, and chains
//! start from the table's name and are sums of links (after 0.3.0's chains
//! of strings, and a multiply-xorshift mix that `main` had for a while). An
//! old history is accepted (never `Modified`), and rewritten in place at the
//! next write, once.

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

// Its checksum changed with the third definition (`extern "C"` is
// `extern`), which releases up to 0.3 did not have.
#[migration(2, set = "upgrade")]
fn add_tags(tx: &Transaction) -> rusqlite::Result<()> {
    extern "C" fn unused_callback() {}
    let _ = unused_callback as extern "C" fn();
    tx.execute_batch("CREATE TABLE tags (post INTEGER, tag TEXT)")
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
    let text = format!(
        "{}:{previous}|{id}|{}:{name}|{checksum}",
        previous.len(),
        name.len()
    );
    format!("{:032x}", siphash(&[text.as_bytes()]))
}

/// SipHash-1-3 (zero key, 128 bits) of the parts, one after the other.
fn siphash(parts: &[&[u8]]) -> u128 {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    for part in parts {
        hasher.write(part);
    }
    hasher.finish128().as_u128()
}

/// The chain as `main` computed it for a while (never released): from the
/// seed `table:{name}`, each row's chain a multiply-xorshift mix of the
/// previous one (halves swapped) and the row's link.
fn mixed_chain(previous: &str, table: &str, id: i64, name: &str, checksum: &str) -> String {
    const K1: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
    const K2: u128 = 0xd6e8_feb8_6659_fd93_c2b2_ae3d_27d4_eb4f;
    let previous = if previous.is_empty() {
        siphash(&[b"table:", table.as_bytes()])
    } else {
        u128::from_str_radix(previous, 16).unwrap()
    };
    let head = format!("{id}|{}:", name.len());
    let link = siphash(&[head.as_bytes(), name.as_bytes(), b"|", checksum.as_bytes()]);
    let mut x = previous.rotate_left(64) ^ link;
    x ^= x >> 67;
    x = x.wrapping_mul(K1);
    x ^= x >> 59;
    x = x.wrapping_mul(K2);
    format!("{:032x}", x ^ (x >> 71))
}

/// A chain definition of an earlier build.
#[derive(Clone, Copy, Debug)]
enum Former {
    /// 0.3.0's: strings hashed (`former_chain`).
    Strings,
    /// `main`'s for a while: links mixed (`mixed_chain`).
    Mixed,
}

/// Rewrites a history as an earlier release wrote it: each row's former
/// checksum (where its migration has one) and former chain.
fn as_an_earlier_release_left_it(conn: &Connection, set: &str, table: &str) {
    with_former_chains(conn, set, table, true, Former::Strings);
}

/// Each row's chain of the `former` definition, and with `former_checksums`
/// its former checksum too (where its migration has one).
fn with_former_chains(
    conn: &Connection,
    set: &str,
    table: &str,
    former_checksums_too: bool,
    former: Former,
) {
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
        let chain = match former {
            Former::Strings => former_chain(&previous, id, &name, &checksum),
            Former::Mixed => mixed_chain(&previous, table, id, &name, &checksum),
        };
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
    assert_eq!(former_checksums("upgrade", 2).len(), 1, "extern \"C\"");
    // The CRLF file's value under v1, and its values with a byte order
    // mark (every SQL text carries those).
    assert_eq!(former_checksums("crlf", 1).len(), 3, "CRLF file");
}

/// Chains of a former definition over checksums that are all current (a
/// history whose migrations never changed form) are stale too: read paths
/// accept them, the next migrate() rewrites them, and the O(1) check
/// vouches again.
#[test]
fn chains_of_a_former_definition_alone_are_rewritten_once() {
    for former in [Former::Strings, Former::Mixed] {
        let (set, table) = ("upgrade", "migrations_upgrade");
        let m = Migrator::new().set(set);
        let db = TempDb::new();
        let mut conn = db.open();
        m.migrate(&mut conn).unwrap();
        let current = stored(&conn, table);
        with_former_chains(&conn, set, table, false, former);
        let old = stored(&conn, table);
        assert!(
            old.iter()
                .zip(&current)
                .all(|(o, c)| o.0 == c.0 && o.1 != c.1),
            "{former:?}: only the chains differ: {old:?} against {current:?}"
        );
        let before = read_bytes(&db.path);
        assert!(
            m.pending_migrations(&conn).unwrap().is_empty(),
            "{former:?}"
        );
        assert!(m
            .status(&conn)
            .unwrap()
            .iter()
            .all(|s| s.state == migrate_core::MigrationState::Applied));
        // A dry run keeps nothing, the chains' repair included.
        assert!(m.dry_run(&mut conn).is_ok(), "{former:?}");
        assert_eq!(stored(&conn, table), old, "{former:?}: a dry run");
        assert_eq!(read_bytes(&db.path), before, "{former:?}: read only");
        rewritten_once(&m, &db, &mut conn, table, &current, &format!("{former:?}"));
    }
}

/// The next migrate() rewrites the history to what this release writes
/// (`current`), in place and once: the call after it is a read.
fn rewritten_once(
    m: &Migrator,
    db: &TempDb,
    conn: &mut Connection,
    table: &str,
    current: &[(String, String)],
    what: &str,
) {
    assert!(m.migrate(conn).unwrap().is_empty(), "{what}");
    assert_eq!(stored(conn, table), current, "{what}: rewritten in place");
    let after = read_bytes(&db.path);
    assert!(m.migrate(conn).unwrap().is_empty(), "{what}");
    assert_eq!(read_bytes(&db.path), after, "{what}: rewritten only once");
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

        rewritten_once(&m, &db, &mut conn, table, &current, set);
    }
}

/// A history of stale chains that is behind the set, on a connection that
/// cannot write: the pending migration is not waved through as done (the
/// stale chains count as "nothing to do" only when every migration up to
/// the goal is applied); the call is `ReadOnly`, and nothing changes.
#[test]
fn a_stale_history_behind_the_set_on_a_read_only_connection_is_read_only() {
    let (set, table) = ("upgrade", "migrations_upgrade");
    let m = Migrator::new().set(set);
    let db = TempDb::new();
    let mut conn = db.open();
    m.migrate_to(&mut conn, 0).unwrap();
    with_former_chains(&conn, set, table, false, Former::Mixed);
    let old = stored(&conn, table);
    let before = read_bytes(&db.path);
    let mut read_only =
        Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    // Up to migration 0, already applied: nothing to do, even read-only.
    assert!(m.migrate_to(&mut read_only, 0).unwrap().is_empty());
    // Migrations 1 and 2 are pending.
    assert!(
        matches!(
            m.migrate(&mut read_only),
            Err(migrate_core::Error::ReadOnly)
        ),
        "a pending migration on a read-only connection"
    );
    drop(read_only);
    assert_eq!(stored(&conn, table), old);
    assert_eq!(read_bytes(&db.path), before, "nothing written");
    assert_eq!(m.pending_migrations(&conn).unwrap().len(), 2);
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
