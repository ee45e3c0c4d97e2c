// A goose file with an empty Down section (a no-op rollback to goose) and a
// rollback file beside it, which goose would read as another migration.
migrate_core::embed_migrations!("fixtures/goose_down_twice", ids = "sorted");

fn main() {}
