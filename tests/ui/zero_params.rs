use migrate_core::migration;

#[migration(0)]
fn create_cats() {}

fn main() {}
