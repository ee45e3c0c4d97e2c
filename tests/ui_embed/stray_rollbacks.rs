// A renumber stopped part-way: 002_second.down.sql was left at version 002
// beside 002_right's own rollback, its migration already at 003. The
// message names the stray one, not "keep one".
migrate_core::embed_migrations!("fixtures/stray_rollbacks");

fn main() {}
