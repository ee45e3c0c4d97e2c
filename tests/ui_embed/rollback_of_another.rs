// A rollback file beside another migration's file (a rename stopped
// half-way left 001_right.down.sql beside 001_left.sql): it would undo the
// wrong migration.
migrate_core::embed_migrations!("fixtures/rollback_of_another");

fn main() {}
