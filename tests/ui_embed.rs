//! Compile errors of `embed_migrations!`, one file per diagnostic; each
//! names the offending file (fixtures in tests/fixtures/sql/).

use std::path::{Path, PathBuf};

#[test]
fn embed_errors() {
    link_fixtures();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui_embed/*.rs");
}

/// trybuild compiles each case in `<target>/tests/trybuild/<package>/`,
/// which is then the `CARGO_MANIFEST_DIR` that `embed_migrations!` resolves
/// directories against: `fixtures/` there is made to be
/// `tests/fixtures/sql/`, and `corpus_refused/` to be
/// `tests/fixtures/corpus_refused/` (real projects' files that are
/// refused), wherever the target directory is.
fn link_fixtures() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp");
    let project = target
        .join("tests")
        .join("trybuild")
        .join(env!("CARGO_PKG_NAME"));
    std::fs::create_dir_all(&project).expect("create trybuild's project directory");
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    link(&here.join("tests/fixtures/sql"), &project.join("fixtures"));
    link(
        &here.join("tests/fixtures/corpus_refused"),
        &project.join("corpus_refused"),
    );
}

fn link(original: &Path, link: &Path) {
    if link.canonicalize().ok() == original.canonicalize().ok() {
        return;
    }
    let _ = std::fs::remove_file(link);
    #[cfg(unix)]
    std::os::unix::fs::symlink(original, link).expect("link the fixtures");
    #[cfg(windows)]
    std::os::windows::fs::symlink_dir(original, link).expect("link the fixtures");
}
