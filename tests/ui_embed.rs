//! Compile errors of `embed_migrations!`, one file per diagnostic; each
//! names the offending file (fixtures in tests/fixtures/sql/).

#[test]
fn embed_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui_embed/*.rs");
}
