// Fixtures: tests/fixtures/sql/, which tests/ui_embed.rs makes `fixtures/` in
// the crate trybuild builds (its CARGO_MANIFEST_DIR).
//
// Two migrations of one version (two branches merged) compile: the
// runtime's registry check reports the duplicate id, and the CLI's
// `renumber` fixes it. A rollback must then say which one it undoes.
migrate_core::embed_migrations!("fixtures/duplicate_rollback");

fn main() {}
