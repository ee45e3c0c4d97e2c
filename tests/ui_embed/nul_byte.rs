// Fixtures: tests/fixtures/sql/, which tests/ui_embed.rs makes `fixtures/` in
// the crate trybuild builds (its CARGO_MANIFEST_DIR).
migrate_core::embed_migrations!("fixtures/nul_byte");

fn main() {}
