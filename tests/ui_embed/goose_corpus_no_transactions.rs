// goose's own example directory, as stored (tests/fixtures/corpus_refused/,
// which tests/ui_embed.rs makes `corpus_refused/` in the crate trybuild
// builds): its `-- +goose NO TRANSACTIONS --` is no annotation goose knows.
migrate_core::embed_migrations!(
    "corpus_refused/pressly__goose/example/migrations",
    ids = "sorted"
);

fn main() {}
