//! Branch `colors`' Rust migration: it took id 3 too.

use migrate_core::rusqlite::Transaction;
use migrate_core::{migration, rollback};

#[migration(3, set = "merge")]
fn pin_notes(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
}

#[rollback(3, set = "merge")]
fn unpin_notes(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE notes DROP COLUMN pinned")
}
