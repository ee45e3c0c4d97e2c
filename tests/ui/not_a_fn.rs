use migrate_core::migration;

#[migration(0)]
struct CreateCats {
    sql: &'static str,
}

fn main() {}
