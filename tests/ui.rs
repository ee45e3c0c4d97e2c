//! Compile-fail tests for `#[migration]` / `#[rollback]`: every misuse is a
//! compile error spanned on the offending token, saying what is wrong and how
//! to fix it. The expected compiler output is in `tests/ui/*.stderr`;
//! regenerate it with `TRYBUILD=overwrite cargo test --test ui` and review
//! the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
