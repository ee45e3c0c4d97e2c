//! Cargo cannot see a new or deleted file in a migrations directory by
//! itself (a proc macro cannot declare a directory dependency on stable Rust).
//! The documented fix is a one-line build script; this test builds a real
//! crate with it and checks that adding, removing and editing files each
//! rebuild it, so the binary never runs a stale list of migrations.

use std::path::{Path, PathBuf};
use std::process::Command;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Builds and runs the scratch crate; returns what it prints.
fn run(project: &Path, target: &Path) -> String {
    // Cargo decides by modification times; let the clock move on.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["run", "--quiet", "--offline"])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "scratch crate failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

#[test]
fn adding_removing_and_editing_files_rebuild_with_the_documented_build_script() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::TempDir::new().expect("tempdir");
    let project = scratch.path();
    std::fs::create_dir_all(project.join("src")).expect("mkdir src");
    std::fs::create_dir_all(project.join("migrations")).expect("mkdir migrations");
    write(
        &project.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"embed-rebuild-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nmigrate-core = {{ path = {:?}, features = [\"bundled\"] }}\n\n[workspace]\n",
            workspace.join("migrate-core")
        ),
    );
    // The one line users are told to write.
    write(
        &project.join("build.rs"),
        "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); }\n",
    );
    write(
        &project.join("src/main.rs"),
        "migrate_core::embed_migrations!(\"migrations\");\n\
         fn main() {\n\
             let conn = migrate_core::rusqlite::Connection::open_in_memory().expect(\"open\");\n\
             for m in migrate_core::Migrator::new().pending_migrations(&conn).expect(\"pending\") {\n\
                 println!(\"{} {} {}\", m.id, m.name, m.checksum);\n\
             }\n\
         }\n",
    );
    std::fs::copy(workspace.join("Cargo.lock"), project.join("Cargo.lock"))
        .expect("copy lock file");
    // The target directory in use (CARGO_TARGET_TMPDIR is `<target>/tmp`),
    // wherever it is: the scratch crate shares its compiled dependencies
    // (SQLite above all) instead of building them again elsewhere.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp");
    let names = |out: &str| -> Vec<String> {
        out.lines()
            .map(|line| {
                line.rsplit_once(' ')
                    .map_or(line, |(head, _)| head)
                    .to_owned()
            })
            .collect()
    };

    write(
        &project.join("migrations/000_first.sql"),
        "CREATE TABLE a (x);\n",
    );
    assert_eq!(names(&run(project, target)), vec!["0 first"]);

    write(
        &project.join("migrations/001_second.sql"),
        "CREATE TABLE b (x);\n",
    );
    assert_eq!(
        names(&run(project, target)),
        vec!["0 first", "1 second"],
        "a new file is seen"
    );

    std::fs::remove_file(project.join("migrations/001_second.sql")).expect("remove");
    let before_edit = run(project, target);
    assert_eq!(
        names(&before_edit),
        vec!["0 first"],
        "a removed file is gone"
    );

    write(
        &project.join("migrations/000_first.sql"),
        "CREATE TABLE a (x, y);\n",
    );
    let after_edit = run(project, target);
    assert_eq!(names(&after_edit), vec!["0 first"]);
    assert_ne!(before_edit, after_edit, "an edit changes the checksum");
}
