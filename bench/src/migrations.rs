//! The migrations every contender runs, in one place: migration `i` creates
//! and fills table `t_i`, its rollback drops it. Shared with `build.rs`
//! (through `#[path]`), which writes the same migrations as `#[migration]`
//! functions for the link-time contender.

/// The sizes of the link-time sets `build.rs` generates, all linked into the
/// `bench` binary: the set of size N is named [`linked_set`]`(N)`.
pub const LINKED_SIZES: [usize; 3] = [200, 1_000, 10_000];

/// The name of the generated link-time set of `n` migrations.
pub fn linked_set(n: usize) -> String {
    format!("linked_{n}")
}

/// Migration `i`'s SQL.
pub fn up(i: usize) -> String {
    format!(
        "CREATE TABLE t_{i}(id INTEGER PRIMARY KEY, v TEXT NOT NULL); \
         INSERT INTO t_{i}(v) VALUES ('x');"
    )
}

/// Migration `i`'s rollback.
pub fn down(i: usize) -> String {
    format!("DROP TABLE t_{i};")
}

/// Migration `i`'s name (also the table it creates).
pub fn name(i: usize) -> String {
    format!("t_{i}")
}
