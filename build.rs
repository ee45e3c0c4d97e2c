// The tests embed SQL directories with `embed_migrations!`: Cargo must
// rebuild when a file is added to or removed from one. This is the one-line
// build script the README asks users to write.
fn main() {
    println!("cargo:rerun-if-changed=tests/fixtures/sql/blog");
    println!("cargo:rerun-if-changed=tests/fixtures/corpus");
}
