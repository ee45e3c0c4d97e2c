// trybuild compiles this in target/tests/trybuild/<crate>/, which is the
// CARGO_MANIFEST_DIR the path is relative to; the fixtures are in tests/fixtures/sql/.
migrate_core::embed_migrations!("../../../../tests/fixtures/sql/orphan_down");

fn main() {}
