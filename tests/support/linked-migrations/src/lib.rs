//! Test fixture: a library crate that contributes migrations to the named set
//! `"linked"` and nothing else. It has no default-set migrations on purpose:
//! every test binary that links it would otherwise get them too.
//!
//! A binary only gets these migrations if it references this crate, e.g.
//! with `use linked_migrations as _;` (see `tests/linked_crate.rs`).

use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, rollback};

/// The set these migrations belong to.
pub const SET: &str = "linked";

#[migration(0, set = "linked")]
fn create_linked_items(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE linked_items (id INTEGER PRIMARY KEY, label TEXT NOT NULL)")
}

#[migration(1, set = "linked", name = "add_linked_tags")]
fn tags(conn: &Connection) -> migrate_core::rusqlite::Result<()> {
    conn.execute_batch("CREATE TABLE linked_tags (item INTEGER NOT NULL REFERENCES linked_items (id), tag TEXT NOT NULL)")
}

#[rollback(1, set = "linked")]
fn drop_linked_tags(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE linked_tags")
}
