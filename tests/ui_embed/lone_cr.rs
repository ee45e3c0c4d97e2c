// A file with old Mac line endings (a lone CR ends each line): the `--`
// comment on its first line would hide the statements after it from SQLite.
migrate_core::embed_migrations!("fixtures/lone_cr");

fn main() {}
