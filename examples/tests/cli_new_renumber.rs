//! `new` and `renumber`, end to end: the example binaries run as child
//! processes, on copies of their migrations directories (`--dir`), so the
//! source tree is never written.

use std::path::Path;

use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::Migrator;
use tempfile::TempDir;

mod common;
use common::{copy_dir, names, package_dir, run, run_in};

fn copy_of(relative: &str) -> TempDir {
    let dir = TempDir::new().expect("tempdir");
    copy_dir(&package_dir().join(relative), dir.path());
    dir
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn new_creates_the_next_sql_migration_in_the_directory_s_layout() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("b.db");
    let dir = copy_of("blog/migrations");
    let before = names(dir.path());

    // The blog's files are 000_… to 005_… with .down.sql files; its Rust
    // migrations take 6 and 7: the next is 8, three digits, with a rollback.
    let new = run("blog", &db, &["new", "add_tags", "--dir", arg(dir.path())]);
    assert_eq!(new.code, 0, "{}", new.err);
    let shown = dir.path().display();
    assert_eq!(
        new.out,
        format!(
            "created {shown}/008_add_tags.sql (migration 8 `add_tags` of set \"blog\")\n\
             created {shown}/008_add_tags.down.sql (its rollback)\n\
             write its SQL (an empty file runs as a no-op and is recorded as applied), then \
             rebuild: the binary embeds the directory when it is built\n"
        )
    );
    let up = std::fs::read_to_string(dir.path().join("008_add_tags.sql")).expect("created");
    assert!(
        up.starts_with("-- Migration 8 `add_tags` of set \"blog\""),
        "{up}"
    );
    let mut expected = before.clone();
    expected.extend([
        "008_add_tags.down.sql".to_owned(),
        "008_add_tags.sql".to_owned(),
    ]);
    expected.sort();
    assert_eq!(names(dir.path()), expected);

    // A file added since the binary was built counts: the next is 9.
    let next = run("blog", &db, &["new", "add_likes", "--dir", arg(dir.path())]);
    assert_eq!(next.code, 0, "{}", next.err);
    assert!(
        next.out.contains("/009_add_likes.sql (migration 9"),
        "{}",
        next.out
    );

    // Clashes are refused, nothing written.
    let files = names(dir.path());
    for (name, says) in [
        (
            "add_tags",
            "already has a migration named `add_tags`: 008_add_tags.sql",
        ),
        (
            "initial_schema",
            "set \"blog\" already has a migration named `initial_schema`: migration 0 at \
             blog/migrations/000_initial_schema.sql:1",
        ),
        (
            "backfill_post_slugs",
            "already has a migration named `backfill_post_slugs`: migration 6 at examples/blog.rs:",
        ),
        (
            "add users",
            "`add users` cannot be a migration's name: use ASCII letters, digits and `_`",
        ),
        ("../escape", "cannot be a migration's name"),
    ] {
        let refused = run("blog", &db, &["new", name, "--dir", arg(dir.path())]);
        assert_eq!(refused.code, 1, "{name}: {}", refused.out);
        assert!(refused.err.contains(says), "{name}: {}", refused.err);
        assert!(refused.err.contains("\nhint: "), "{name}: {}", refused.err);
        assert_eq!(names(dir.path()), files, "{name}: nothing written");
    }
    let suggestion = run(
        "blog",
        &db,
        &["new", "Add Users!", "--dir", arg(dir.path())],
    );
    assert!(
        suggestion.err.contains("hint: for example `add_users`"),
        "{}",
        suggestion.err
    );
}

#[test]
fn new_without_dir_uses_the_directory_recorded_at_build_time() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("b.db");
    // From another working directory: the recorded path is absolute.
    let dry = run_in(
        "blog",
        &db,
        &["new", "add_tags", "--dry-run"],
        &[],
        Some(scratch.path()),
    );
    assert_eq!(dry.code, 0, "{}", dry.err);
    let recorded = package_dir().join("blog/migrations");
    assert!(
        dry.out.starts_with(&format!(
            "would create blog/migrations/008_add_tags.sql (migration 8 `add_tags` of set \
             \"blog\"; at {})",
            recorded.join("008_add_tags.sql").display()
        )),
        "{}",
        dry.out
    );
    assert!(
        dry.out.ends_with("dry run: nothing was created\n"),
        "{}",
        dry.out
    );
    assert!(!recorded.join("008_add_tags.sql").exists());

    // A directory that is not there: say so, and what to do.
    let gone = run(
        "blog",
        &db,
        &["new", "x", "--dir", "/nonexistent/migrations"],
    );
    assert_eq!(gone.code, 1);
    assert!(
        gone.err
            .contains("the migrations directory /nonexistent/migrations is not there")
            && gone.err.contains("--dir PATH"),
        "{}",
        gone.err
    );
}

#[test]
fn new_prints_or_appends_a_rust_skeleton() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("q.db");
    let printed = run("quickstart", &db, &["new", "add_owners", "--reversible"]);
    assert_eq!(printed.code, 0, "{}", printed.err);
    assert!(
        printed.out.starts_with(
            "// Migration 3 of the default set, after 2 `index_cats_by_birthday` \
             (examples/quickstart.rs:"
        ),
        "{}",
        printed.out
    );
    for line in [
        "#[migrate_core::migration(3, name = \"add_owners\")]\n\
         fn add_owners(tx: &migrate_core::rusqlite::Transaction) -> migrate_core::rusqlite::Result<()> {\n",
        "    todo!(\"write migration 3 `add_owners`, then remove this line\")\n",
        "#[migrate_core::rollback(3)]\n\
         fn undo_add_owners(tx: &migrate_core::rusqlite::Transaction) -> migrate_core::rusqlite::Result<()> {\n",
    ] {
        assert!(printed.out.contains(line), "{line}\nin\n{}", printed.out);
    }
    assert!(!scratch.path().join("q.db-journal").exists());

    // A named set, even one this binary has no migration of: id 0.
    let named = run("quickstart", &db, &["new", "first", "--set", "reports"]);
    assert_eq!(named.code, 0, "{}", named.err);
    assert!(
        named
            .out
            .contains("#[migrate_core::migration(0, name = \"first\", set = \"reports\")]"),
        "{}",
        named.out
    );
    assert!(!named.out.contains("rollback"), "no rollback unless asked");

    // Appended to a file; a second time is a clash.
    let file = scratch.path().join("migrations.rs");
    std::fs::write(&file, "// The app's migrations.\n").expect("write");
    let appended = run(
        "quickstart",
        &db,
        &["new", "add_owners", "--file", arg(&file)],
    );
    assert_eq!(appended.code, 0, "{}", appended.err);
    assert_eq!(
        appended.out,
        format!(
            "appended migration 3 `add_owners` of the default set to {}: write its body, then \
             rebuild\n",
            file.display()
        )
    );
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(
        text.starts_with("// The app's migrations.\n\n// Migration 3 of the default set")
            && text.contains("fn add_owners(tx: &migrate_core::rusqlite::Transaction)"),
        "{text}"
    );
    let again = run(
        "quickstart",
        &db,
        &["new", "add_owners", "--file", arg(&file)],
    );
    assert_eq!(again.code, 1);
    assert!(
        again.err.contains("already has a function `add_owners`"),
        "{}",
        again.err
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);
    let missing = run(
        "quickstart",
        &db,
        &["new", "x", "--file", arg(&scratch.path().join("nope.rs"))],
    );
    assert_eq!(missing.code, 1);
    assert!(
        missing.err.contains("cannot read ")
            && missing.err.contains("hint: give an existing .rs file"),
        "{}",
        missing.err
    );
    // Round 16: a device was read for ever (`/dev/zero`, `/dev/full`), a
    // pipe blocked: refused at once, as not a regular file.
    #[cfg(unix)]
    {
        let device = run("quickstart", &db, &["new", "x", "--file", "/dev/zero"]);
        assert_eq!(device.code, 1);
        assert!(device.err.contains("not a regular file"), "{}", device.err);
    }
    let keyword = run("quickstart", &db, &["new", "type"]);
    assert_eq!(keyword.code, 1);
    assert!(
        keyword.err.contains("`type` is a Rust keyword"),
        "{}",
        keyword.err
    );
}

/// The line of `needle` in the example source `file` (1-based).
fn line_of(file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(package_dir().join(file)).expect("read the example");
    text.lines()
        .position(|line| line.contains(needle))
        .expect("the attribute is there")
        + 1
}

#[test]
fn renumber_moves_what_is_not_applied_after_the_applied_and_renames_the_files() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("m.db");
    let dir = copy_of("merge/migrations");
    let before = names(dir.path());

    // The merged set is refused, with a pointer to renumber.
    let up = run("merge", &db, &["up"]);
    assert_eq!(up.code, 1);
    assert!(
        up.err.contains("migration id 2 is used 2 times")
            && up.err.contains("migration id 3 is used 2 times")
            && up
                .err
                .contains("`renumber` gives the ones not applied yet the next free ids"),
        "{}",
        up.err
    );

    let merge_rs = line_of("merge.rs", "#[migration(3, set = \"merge\")]");
    let merge_rollback = line_of("merge.rs", "#[rollback(3, set = \"merge\")]");
    let pins_rs = line_of("merge/pins.rs", "#[migration(3, set = \"merge\")]");
    let pins_rollback = line_of("merge/pins.rs", "#[rollback(3, set = \"merge\")]");
    let shown = dir.path().display();
    let expected = |verb: &str, last: &str| {
        format!(
            "set \"merge\": 0 applied migration(s) keep their ids; the ones not applied yet follow them:\n  \
             migration 2 `note_colors` -> 3  (merge/migrations/002_note_colors.sql:1)\n  \
             migration 3 `archive_notes` -> 4  (examples/merge.rs:{merge_rs})\n  \
             migration 3 `pin_notes` -> 5  (examples/merge/pins.rs:{pins_rs})\n\
             {verb} {shown}/002_note_colors.sql -> {shown}/003_note_colors.sql\n\
             {verb} {shown}/002_note_colors.down.sql -> {shown}/003_note_colors.down.sql\n\
             edit examples/merge.rs:{merge_rs}: #[migration(3, set = \"merge\")]  =>  #[migration(4, set = \"merge\")]\n\
             edit examples/merge.rs:{merge_rollback}: #[rollback(3, set = \"merge\")]  =>  #[rollback(4, set = \"merge\")]\n\
             edit examples/merge/pins.rs:{pins_rs}: #[migration(3, set = \"merge\")]  =>  #[migration(5, set = \"merge\")]\n\
             edit examples/merge/pins.rs:{pins_rollback}: #[rollback(3, set = \"merge\")]  =>  #[rollback(5, set = \"merge\")]\n\
             {last}\n"
        )
    };
    // The sources are found from the package's directory, as from the
    // workspace's (file!() is relative to the workspace).
    let cwd = Some(package_dir());
    let dry = run_in(
        "merge",
        &db,
        &["renumber", "--dry-run", "--dir", arg(dir.path())],
        &[],
        cwd.as_deref(),
    );
    assert_eq!(dry.code, 0, "{}", dry.err);
    assert_eq!(
        dry.out,
        expected("would rename", "dry run: nothing was changed")
    );
    assert_eq!(names(dir.path()), before, "a dry run renames nothing");

    let done = run_in(
        "merge",
        &db,
        &["renumber", "--dir", arg(dir.path())],
        &[],
        cwd.as_deref(),
    );
    assert_eq!(done.code, 0, "{}", done.err);
    assert_eq!(
        done.out,
        expected("renamed", "make the edits above, then rebuild")
    );
    let after = names(dir.path());
    assert!(
        after.contains(&"003_note_colors.sql".to_owned())
            && after.contains(&"003_note_colors.down.sql".to_owned())
            && after.contains(&"002_note_authors.sql".to_owned())
            && !after.iter().any(|n| n.starts_with("002_note_colors")),
        "{after:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("003_note_colors.sql")).expect("renamed"),
        std::fs::read_to_string(package_dir().join("merge/migrations/002_note_colors.sql"))
            .expect("original"),
    );
    // The binary still has the old files: run again (as after a run
    // stopped part-way), it skips what is renamed and carries on. Here the
    // rollback file is back where a stopped run would have left it.
    std::fs::rename(
        dir.path().join("003_note_colors.down.sql"),
        dir.path().join("002_note_colors.down.sql"),
    )
    .expect("put back");
    let again = run_in(
        "merge",
        &db,
        &["renumber", "--dir", arg(dir.path())],
        &[],
        cwd.as_deref(),
    );
    assert_eq!(again.code, 0, "{}", again.err);
    assert!(
        again.out.contains(&format!(
            "already renamed {shown}/002_note_colors.sql -> {shown}/003_note_colors.sql\n\
             renamed {shown}/002_note_colors.down.sql -> {shown}/003_note_colors.down.sql\n"
        )),
        "{}",
        again.out
    );
    assert_eq!(names(dir.path()), after);
}

/// A database of set "merge" whose migrations 0 to 2 were applied under
/// these names (by the binary of one branch, before the merge).
fn applied(db: &Path, names: [&str; 3]) {
    let mut m = Migrator::new().set("merge");
    for (id, name) in names.into_iter().enumerate() {
        m = m.add(id as u32, name, |_: &Transaction| {
            Ok::<(), std::io::Error>(())
        });
    }
    let mut conn = Connection::open(db).expect("open");
    m.migrate(&mut conn).expect("migrate");
}

#[test]
fn renumber_never_moves_an_applied_migration() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("m.db");
    // Branch `colors` ran here: its 002_note_colors is applied as 2.
    applied(&db, ["create_notes", "note_tags", "note_colors"]);
    let dir = copy_of("merge/migrations");
    // From another working directory, where the Rust sources are not.
    let dry = run_in(
        "merge",
        &db,
        &["renumber", "--dry-run", "--dir", arg(dir.path())],
        &[],
        Some(scratch.path()),
    );
    assert_eq!(dry.code, 0, "{}", dry.err);
    let shown = dir.path().display();
    assert!(
        dry.out.starts_with(
            "set \"merge\": 3 applied migration(s) keep their ids; the ones not applied yet follow them:\n  \
             migration 2 `note_authors` -> 3  (merge/migrations/002_note_authors.sql:1)\n"
        ) && dry.out.contains(&format!(
            "would rename {shown}/002_note_authors.sql -> {shown}/003_note_authors.sql\n\
             would rename {shown}/002_note_authors.down.sql -> {shown}/003_note_authors.down.sql\n"
        )) && !dry.out.contains("note_colors"),
        "{}",
        dry.out
    );
    // Without the sources at hand (another working directory), the edits
    // still say what to change where.
    assert!(
        dry.out.contains("edit examples/merge.rs:")
            && dry
                .out
                .contains(": change #[migration(3, …)] to #[migration(4, …)]\n"),
        "{}",
        dry.out
    );
}

#[test]
fn renumber_refuses_when_the_applied_migration_is_none_of_the_duplicates() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("m.db");
    applied(&db, ["create_notes", "note_tags", "note_sizes"]);
    let dir = copy_of("merge/migrations");
    let before = names(dir.path());
    let refused = run("merge", &db, &["renumber", "--dir", arg(dir.path())]);
    assert_eq!(refused.code, 1, "{}", refused.out);
    assert!(
        refused.err.contains(
            "error: migration 2 is applied to this database as `note_sizes`, and none of the \
             migrations with id 2 is it: `note_authors` at merge/migrations/002_note_authors.sql:1, \
             `note_colors` at merge/migrations/002_note_colors.sql:1"
        ) && refused.err.contains("hint: an applied migration keeps its id and name"),
        "{}",
        refused.err
    );
    assert_eq!(names(dir.path()), before, "nothing renamed");
}

#[test]
fn renumber_with_nothing_to_do_says_so() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("q.db");
    let nothing = run("quickstart", &db, &["renumber"]);
    assert_eq!(nothing.code, 0, "{}", nothing.err);
    assert_eq!(
        nothing.out,
        "nothing to renumber: the default set has ids 0 to 2, each used once, the applied ones first\n"
    );
}

#[test]
fn new_in_the_merged_set_takes_the_id_after_the_highest() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("m.db");
    let dir = copy_of("merge/migrations");
    let new = run(
        "merge",
        &db,
        &["new", "add_due_dates", "--dir", arg(dir.path())],
    );
    assert_eq!(new.code, 0, "{}", new.err);
    assert!(
        new.out
            .contains("/004_add_due_dates.sql (migration 4 `add_due_dates` of set \"merge\")")
            && new
                .out
                .contains("/004_add_due_dates.down.sql (its rollback)"),
        "{}",
        new.out
    );
}

#[test]
fn new_follows_each_directory_layout() {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("b.db");
    let layout = |files: &[&str]| {
        let dir = TempDir::new().expect("tempdir");
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "SELECT 1;").expect("write");
        }
        dir
    };
    // The directory's newest migration decides the layout, and whether a
    // rollback file comes with it. (The id counts in the blog's set: 8.)
    for (files, expected) in [
        // sqlx: .up.sql and .down.sql, four digits.
        (
            &["0001_init.up.sql", "0001_init.down.sql"][..],
            &[
                "0001_init.down.sql",
                "0001_init.up.sql",
                "0008_x.down.sql",
                "0008_x.up.sql",
            ][..],
        ),
        // No rollback files: none created.
        (&["00_init.sql"], &["00_init.sql", "08_x.sql"]),
        // refinery.
        (&["V1__init.sql"], &["V1__init.sql", "V8__x.sql"]),
    ] {
        let dir = layout(files);
        let new = run("blog", &db, &["new", "x", "--dir", arg(dir.path())]);
        assert_eq!(new.code, 0, "{files:?}: {}", new.err);
        assert_eq!(names(dir.path()), expected, "{files:?}: {}", new.out);
    }

    // Timestamps (ids = "sorted"): the version is now, UTC, after the newest.
    let dir = layout(&["20240101120000_init.sql", "20240101120000_init.down.sql"]);
    let new = run("blog", &db, &["new", "x", "--dir", arg(dir.path())]);
    assert_eq!(new.code, 0, "{}", new.err);
    let created: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.ends_with("_x.sql") || n.ends_with("_x.down.sql"))
        .collect();
    assert_eq!(created.len(), 2, "{created:?}");
    let version = &created[0][..14];
    assert!(
        version.chars().all(|c| c.is_ascii_digit()) && version > "20240101120000",
        "{created:?}"
    );

    // diesel: a directory per migration, its date as diesel writes it.
    let dir = layout(&[
        "2018-12-25-000000_init/up.sql",
        "2018-12-25-000000_init/down.sql",
    ]);
    let new = run("blog", &db, &["new", "x", "--dir", arg(dir.path())]);
    assert_eq!(new.code, 0, "{}", new.err);
    let folder = names(dir.path())
        .into_iter()
        .find(|n| n.ends_with("_x"))
        .expect("a migration directory");
    assert!(
        folder.len() == "2026-01-01-000000_x".len() && folder.as_bytes()[4] == b'-',
        "{folder}"
    );
    assert_eq!(names(&dir.path().join(&folder)), ["down.sql", "up.sql"]);

    // refinery has no rollback files.
    let dir = layout(&["V1__init.sql"]);
    let refused = run(
        "blog",
        &db,
        &["new", "x", "--reversible", "--dir", arg(dir.path())],
    );
    assert_eq!(refused.code, 1);
    assert!(refused.err.contains("no rollback files"), "{}", refused.err);
    assert_eq!(names(dir.path()), ["V1__init.sql"]);
}
