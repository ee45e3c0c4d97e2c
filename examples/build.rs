// blog.rs embeds blog/migrations with `embed_migrations!`: Cargo must rebuild
// when a file is added to or removed from it. This is the one-line build
// script the README asks users to write.
fn main() {
    println!("cargo:rerun-if-changed=blog/migrations");
    println!("cargo:rerun-if-changed=merge/migrations");
    println!("cargo:rerun-if-changed=goose/migrations");
}
