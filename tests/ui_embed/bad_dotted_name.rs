// Fixtures: tests/fixtures/sql/, which tests/ui_embed.rs makes `fixtures/` in
// the crate trybuild builds (its CARGO_MANIFEST_DIR).
migrate_core::embed_migrations!("fixtures/bad_dotted_name", ids = "sorted");

fn main() {}
