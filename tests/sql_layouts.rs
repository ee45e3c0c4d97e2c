//! `embed_migrations!` reads the directories other tools write, unchanged:
//! each layout, numbered (`embed_migrations!("dir")`) and sorted
//! (`ids = "sorted"`), runs into the same schema and rows as the same files
//! run by plain rusqlite the way the original tool runs them, and its
//! `.down.sql` files roll it back the same way.
//!
//! Also here: a `PRAGMA foreign_keys = OFF` table rebuild keeps the rows
//! that `ON DELETE CASCADE` would have deleted, and empty or comment-only
//! files are recorded no-ops.

mod common;

use common::{dump_user, sql_checksum, Dump, TempDb};
use migrate_core::rusqlite::Connection;
use migrate_core::{embed_migrations, Error, Migrator};

embed_migrations!(
    "tests/fixtures/sql/layouts/flat_numbered",
    set = "flat_numbered"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/flat_sorted",
    set = "flat_sorted",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/sqlx_numbered",
    set = "sqlx_numbered"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/sqlx_sorted",
    ids = "sorted",
    set = "sqlx_sorted"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/diesel_numbered",
    set = "diesel_numbered"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/diesel_sorted",
    set = "diesel_sorted",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/rusqlite_migration_numbered",
    set = "rusqlite_migration_numbered"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/rusqlite_migration_sorted",
    set = "rusqlite_migration_sorted",
    ids = "sorted",
    crate = ::migrate_core,
);
embed_migrations!(
    "tests/fixtures/sql/layouts/refinery_numbered",
    set = "refinery_numbered",
    ids = "numbers"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/refinery_sorted",
    set = "refinery_sorted",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/authelia_sorted",
    set = "authelia_sorted",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/dash_up_down",
    set = "dash_up_down",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/goose_sorted",
    set = "goose_sorted",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/dbmate_sorted",
    set = "dbmate_sorted",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/sql/layouts/sql_migrate_sorted",
    set = "sql_migrate_sorted",
    ids = "sorted"
);
embed_migrations!("tests/fixtures/sql/fk_rebuild", set = "fk_rebuild");
embed_migrations!("tests/fixtures/sql/noop", set = "noop");
embed_migrations!(
    "tests/fixtures/sql/user_version_after_commit",
    set = "user_version_after_commit",
    ids = "sorted"
);

/// How the original tool runs a file.
#[derive(Clone, Copy)]
enum Runs {
    /// Inside a transaction of its own (sqlx, diesel, refinery,
    /// rusqlite_migration).
    InTransaction,
    /// As it is, in autocommit: the file's own `BEGIN … COMMIT` and
    /// `PRAGMA` lines do their work (hand-written runners, `sqlite3 < f`).
    AsIs,
    /// One section of the file, in a transaction: the lines after its
    /// `-- +goose Up` (`-- migrate:up`, `-- +migrate Up`) going up, after its
    /// `Down` marker going down (goose, dbmate, sql-migrate).
    Sections,
}

struct Case {
    set: &'static str,
    dir: &'static str,
    /// `(name, up file, down file)` in the order the tool runs them.
    migrations: &'static [(&'static str, &'static str, Option<&'static str>)],
    runs: Runs,
}

fn run_file(conn: &mut Connection, case: &Case, file: &str, up: bool) {
    let path = format!("{}/{file}", case.dir);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    match case.runs {
        Runs::AsIs => conn.execute_batch(&text),
        Runs::InTransaction => {
            let tx = conn.transaction().expect("begin");
            tx.execute_batch(&text).and_then(|()| tx.commit())
        }
        Runs::Sections => {
            let tx = conn.transaction().expect("begin");
            tx.execute_batch(&section(&text, up))
                .and_then(|()| tx.commit())
        }
    }
    .unwrap_or_else(|e| panic!("{path}: {e}"));
}

/// The lines of the up (or down) sections of a goose, dbmate or
/// sql-migrate file, as those tools split it.
fn section(text: &str, up: bool) -> String {
    let mut found = String::new();
    let mut inside = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(direction) = marker(line) {
            inside = Some(direction);
            continue;
        }
        if inside == Some(up) {
            found.push_str(line);
            found.push('\n');
        }
    }
    found
}

/// `Some(true)` for an up marker, `Some(false)` for a down marker.
fn marker(line: &str) -> Option<bool> {
    if line.starts_with("--") && line.contains("+goose") {
        // goose: case-insensitive, after `--` and `+goose`.
        let command = line.replace("--", "").replacen("+goose", "", 1);
        return match command.trim().to_ascii_lowercase().as_str() {
            "up" => Some(true),
            "down" => Some(false),
            _ => None,
        };
    }
    if let Some(command) = line.strip_prefix("-- +migrate ") {
        return match command.split_whitespace().next() {
            Some("Up") => Some(true),
            Some("Down") => Some(false),
            _ => None,
        };
    }
    let command = line.strip_prefix("--")?.trim_start();
    if command.starts_with("migrate:up") {
        Some(true)
    } else if command.starts_with("migrate:down") {
        Some(false)
    } else {
        None
    }
}

/// The database the original tool leaves after running the first `ups`
/// migrations, then the rollbacks of the last `downs` of them.
fn reference(case: &Case, ups: usize, downs: usize) -> Dump {
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .expect("foreign keys on");
    for (_, up, _) in &case.migrations[..ups] {
        run_file(&mut conn, case, up, true);
    }
    for (_, _, down) in case.migrations[ups - downs..ups].iter().rev() {
        run_file(&mut conn, case, down.expect("a rollback"), false);
    }
    dump_user(&conn)
}

fn check(case: &Case) {
    let m = Migrator::new().set(case.set);
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .expect("foreign keys on");

    // The files, in order, as migrations 0, 1, 2, … with their names.
    let pending = m.pending_migrations(&conn).expect("pending");
    let listed: Vec<(u32, &str, bool, &str)> = pending
        .iter()
        .map(|p| (p.id, p.name.as_str(), p.has_rollback, p.location.file))
        .collect();
    let paths: Vec<String> = case
        .migrations
        .iter()
        .map(|(_, up, _)| format!("{}/{up}", case.dir))
        .collect();
    let expected: Vec<(u32, &str, bool, &str)> = case
        .migrations
        .iter()
        .zip(&paths)
        .enumerate()
        .map(|(id, ((name, _, down), path))| (id as u32, *name, down.is_some(), path.as_str()))
        .collect();
    assert_eq!(listed, expected, "{}", case.set);
    for (migration, path) in pending.iter().zip(&paths) {
        let text = std::fs::read_to_string(path).expect("read");
        assert_eq!(migration.checksum, sql_checksum(&text), "{path}");
    }

    // Up: the same schema and rows as the original tool's.
    let n = case.migrations.len();
    assert_eq!(m.migrate(&mut conn).expect("migrate").ids().len(), n);
    assert_eq!(
        dump_user(&conn),
        reference(case, n, 0),
        "{}: after migrating",
        case.set
    );
    assert!(m.pending_migrations(&conn).expect("pending").is_empty());

    // Down, as far as rollbacks go: the same as the tool's rollbacks.
    let mut undone = 0;
    while undone < n && case.migrations[n - 1 - undone].2.is_some() {
        let rolled = m.rollback_migration(&mut conn).expect("rollback");
        assert_eq!(rolled.map(|r| r.id), Some((n - 1 - undone) as u32));
        undone += 1;
        assert_eq!(
            dump_user(&conn),
            reference(case, n, undone),
            "{}: after {undone} rollbacks",
            case.set
        );
    }
    if undone < n {
        let error = m.rollback_migration(&mut conn).expect_err("no rollback");
        assert!(matches!(error, Error::NoRollback { .. }), "{error:?}");
    }
    // And up again.
    m.migrate(&mut conn).expect("migrate again");
    assert_eq!(
        dump_user(&conn),
        reference(case, n, 0),
        "{}: migrated again",
        case.set
    );
}

#[test]
fn flat_numbered() {
    check(&Case {
        set: "flat_numbered",
        dir: "tests/fixtures/sql/layouts/flat_numbered",
        migrations: &[
            (
                "create_users",
                "000_create_users.sql",
                Some("000_create_users.down.sql"),
            ),
            (
                "add_email",
                "001-add_email.sql",
                Some("001-add_email.down.sql"),
            ),
        ],
        runs: Runs::AsIs,
    });
}

#[test]
fn flat_sorted_by_numeric_value() {
    check(&Case {
        set: "flat_sorted",
        dir: "tests/fixtures/sql/layouts/flat_sorted",
        migrations: &[
            (
                "create_users",
                "1_create_users.sql",
                Some("1_create_users.down.sql"),
            ),
            ("add_email", "2_add_email.sql", Some("2_add_email.down.sql")),
            (
                "add_index",
                "10_add_index.sql",
                Some("10_add_index.down.sql"),
            ),
        ],
        runs: Runs::AsIs,
    });
}

#[test]
fn sqlx_numbered() {
    check(&Case {
        set: "sqlx_numbered",
        dir: "tests/fixtures/sql/layouts/sqlx_numbered",
        migrations: &[
            (
                "create_users",
                "0_create_users.up.sql",
                Some("0_create_users.down.sql"),
            ),
            (
                "add_email",
                "1_add_email.up.sql",
                Some("1_add_email.down.sql"),
            ),
        ],
        runs: Runs::InTransaction,
    });
}

#[test]
fn sqlx_timestamps_sorted() {
    check(&Case {
        set: "sqlx_sorted",
        dir: "tests/fixtures/sql/layouts/sqlx_sorted",
        migrations: &[
            (
                "create_users",
                "20240101120000_create_users.up.sql",
                Some("20240101120000_create_users.down.sql"),
            ),
            (
                "add_email",
                "20240215093000_add_email.up.sql",
                Some("20240215093000_add_email.down.sql"),
            ),
            (
                "add_spans",
                "20240301000000_add_spans.up.sql",
                Some("20240301000000_add_spans.down.sql"),
            ),
        ],
        runs: Runs::InTransaction,
    });
}

#[test]
fn diesel_numbered() {
    check(&Case {
        set: "diesel_numbered",
        dir: "tests/fixtures/sql/layouts/diesel_numbered",
        migrations: &[
            (
                "create_users",
                "0_create_users/up.sql",
                Some("0_create_users/down.sql"),
            ),
            (
                "add_email",
                "1_add_email/up.sql",
                Some("1_add_email/down.sql"),
            ),
        ],
        runs: Runs::InTransaction,
    });
}

#[test]
fn diesel_dates_sorted() {
    check(&Case {
        set: "diesel_sorted",
        dir: "tests/fixtures/sql/layouts/diesel_sorted",
        migrations: &[
            (
                "diesel_initial_setup",
                "00000000000000_diesel_initial_setup/up.sql",
                Some("00000000000000_diesel_initial_setup/down.sql"),
            ),
            (
                "create_users",
                "2018-12-25-000000_create_users/up.sql",
                Some("2018-12-25-000000_create_users/down.sql"),
            ),
            (
                "add_email",
                "2019-01-02-103000_add_email/up.sql",
                Some("2019-01-02-103000_add_email/down.sql"),
            ),
            (
                "add_spans",
                "2019-02-01-000000_add_spans/up.sql",
                Some("2019-02-01-000000_add_spans/down.sql"),
            ),
        ],
        runs: Runs::InTransaction,
    });
}

#[test]
fn rusqlite_migration_numbered() {
    check(&Case {
        set: "rusqlite_migration_numbered",
        dir: "tests/fixtures/sql/layouts/rusqlite_migration_numbered",
        migrations: &[
            (
                "create_users",
                "0-create_users/up.sql",
                Some("0-create_users/down.sql"),
            ),
            (
                "add_email",
                "1-add_email/up.sql",
                Some("1-add_email/down.sql"),
            ),
        ],
        runs: Runs::InTransaction,
    });
}

#[test]
fn rusqlite_migration_from_directory_sorted() {
    check(&Case {
        set: "rusqlite_migration_sorted",
        dir: "tests/fixtures/sql/layouts/rusqlite_migration_sorted",
        migrations: &[
            ("friend_car", "01-friend_car/up.sql", None),
            ("add_birthday_column", "02-add_birthday_column/up.sql", None),
            (
                "add_animal_table",
                "03-add_animal_table/up.sql",
                Some("03-add_animal_table/down.sql"),
            ),
        ],
        runs: Runs::InTransaction,
    });
}

#[test]
fn refinery_numbered() {
    check(&Case {
        set: "refinery_numbered",
        dir: "tests/fixtures/sql/layouts/refinery_numbered",
        migrations: &[
            ("initial", "V0__initial.sql", None),
            (
                "add_cars",
                "V1__add_cars.sql",
                Some("V1__add_cars.down.sql"),
            ),
        ],
        runs: Runs::InTransaction,
    });
}

#[test]
fn refinery_nested_and_unversioned_sorted() {
    check(&Case {
        set: "refinery_sorted",
        dir: "tests/fixtures/sql/layouts/refinery_sorted",
        migrations: &[
            ("initial", "V1__initial.sql", None),
            (
                "add_cars_and_motos_table",
                "V1-2/V2__add_cars_and_motos_table.sql",
                None,
            ),
            (
                "add_brand_to_cars_table",
                "V3/V3__add_brand_to_cars_table.sql",
                None,
            ),
            (
                "add_year_field_to_cars",
                "U4__add_year_field_to_cars.sql",
                None,
            ),
        ],
        runs: Runs::InTransaction,
    });
}

/// Authelia's runner: `V{NNNN}.{Name}.up.sql` and `.down.sql`, the name
/// after a `.`.
#[test]
fn authelia_dotted_names_sorted() {
    check(&Case {
        set: "authelia_sorted",
        dir: "tests/fixtures/sql/layouts/authelia_sorted",
        migrations: &[
            (
                "Initial_Schema",
                "V0001.Initial_Schema.up.sql",
                Some("V0001.Initial_Schema.down.sql"),
            ),
            (
                "Add_Email",
                "V0002.Add_Email.up.sql",
                Some("V0002.Add_Email.down.sql"),
            ),
        ],
        runs: Runs::InTransaction,
    });
}

/// `NN-up.sql` and `NN-down.sql`: no name, the direction after the dash.
/// The migration is named after its version.
#[test]
fn version_dash_up_and_down_sorted() {
    check(&Case {
        set: "dash_up_down",
        dir: "tests/fixtures/sql/layouts/dash_up_down",
        migrations: &[
            ("01", "01-up.sql", Some("01-down.sql")),
            ("02", "02-up.sql", Some("02-down.sql")),
        ],
        runs: Runs::AsIs,
    });
}

/// goose: `-- +goose Up` and `-- +goose Down` sections in one file (any
/// case, as goose reads them), `StatementBegin`/`StatementEnd` around a
/// trigger, a timestamp version among sequence numbers. The file is the
/// migration (its up section) and the rollback (its down section); an
/// empty down section is no rollback.
#[test]
fn goose_up_and_down_sections_sorted() {
    check(&Case {
        set: "goose_sorted",
        dir: "tests/fixtures/sql/layouts/goose_sorted",
        migrations: &[
            (
                "create_users",
                "00001_create_users.sql",
                Some("00001_create_users.sql"),
            ),
            ("add_index", "00002_add_index.sql", None),
            (
                "add_email",
                "20240301120000_add_email.sql",
                Some("20240301120000_add_email.sql"),
            ),
        ],
        runs: Runs::Sections,
    });
    // The migration starts at its `-- +goose Up` line.
    let pending = Migrator::new()
        .set("goose_sorted")
        .pending_migrations(&Connection::open_in_memory().expect("open"))
        .expect("pending");
    assert_eq!(pending[0].location.line, 2);
    assert_eq!(pending[2].location.line, 1);
}

/// dbmate: `-- migrate:up` and `-- migrate:down` (spacing as dbmate's
/// regular expressions allow, CRLF line endings).
#[test]
fn dbmate_up_and_down_sections_sorted() {
    check(&Case {
        set: "dbmate_sorted",
        dir: "tests/fixtures/sql/layouts/dbmate_sorted",
        migrations: &[
            (
                "create_users",
                "20151129054053_create_users.sql",
                Some("20151129054053_create_users.sql"),
            ),
            (
                "add_email",
                "20151129054100_add_email.sql",
                Some("20151129054100_add_email.sql"),
            ),
        ],
        runs: Runs::Sections,
    });
}

/// sql-migrate: `-- +migrate Up` and `-- +migrate Down`.
#[test]
fn sql_migrate_up_and_down_sections_sorted() {
    check(&Case {
        set: "sql_migrate_sorted",
        dir: "tests/fixtures/sql/layouts/sql_migrate_sorted",
        migrations: &[
            (
                "create_users",
                "1_create_users.sql",
                Some("1_create_users.sql"),
            ),
            ("add_email", "2_add_email.sql", Some("2_add_email.sql")),
        ],
        runs: Runs::Sections,
    });
}

const FK_REBUILD: Case = Case {
    set: "fk_rebuild",
    dir: "tests/fixtures/sql/fk_rebuild",
    migrations: &[
        ("monitors", "000_monitors.sql", None),
        (
            "monitor_interval",
            "001_monitor_interval.sql",
            Some("001_monitor_interval.down.sql"),
        ),
    ],
    runs: Runs::AsIs,
};

fn heartbeats(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM heartbeat", [], |r| r.get(0))
        .expect("count heartbeats")
}

fn foreign_keys(conn: &Connection) -> bool {
    conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .expect("read foreign_keys")
}

#[test]
fn a_foreign_keys_off_rebuild_keeps_the_cascading_rows() {
    check(&FK_REBUILD);

    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .expect("foreign keys on");
    let m = Migrator::new().set("fk_rebuild");
    m.migrate(&mut conn).expect("migrate");
    // DROP TABLE monitor ran with foreign keys off: no cascade.
    assert_eq!(heartbeats(&conn), 3);
    let interval: i64 = conn
        .query_row("SELECT interval FROM monitor WHERE id = 1", [], |r| {
            r.get(0)
        })
        .expect("the rebuilt table");
    assert_eq!(interval, 60);
    // The setting is the caller's again, and the references hold.
    assert!(foreign_keys(&conn));
    let violations: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("check");
    assert_eq!(violations, 0);
    // The rollback is a rebuild too.
    m.rollback_migration(&mut conn).expect("rollback");
    assert_eq!(heartbeats(&conn), 3);
    assert!(foreign_keys(&conn));
}

#[test]
fn the_same_rebuild_inside_a_transaction_would_cascade() {
    // The control: what happens when `PRAGMA foreign_keys = OFF` runs inside
    // a transaction, where SQLite ignores it. This is what running the file
    // in the runner's transaction without reading the pragma would do.
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .expect("foreign keys on");
    let dir = FK_REBUILD.dir;
    let first = std::fs::read_to_string(format!("{dir}/000_monitors.sql")).expect("read");
    conn.execute_batch(&first).expect("000");
    let rebuild = std::fs::read_to_string(format!("{dir}/001_monitor_interval.sql"))
        .expect("read")
        .replace("BEGIN TRANSACTION;", "")
        .replace("COMMIT;", "");
    let tx = conn.transaction().expect("begin");
    tx.execute_batch(&rebuild)
        .expect("001 inside a transaction");
    tx.commit().expect("commit");
    assert_eq!(heartbeats(&conn), 0, "the cascade deleted every heartbeat");
}

#[test]
fn empty_and_comment_only_files_are_recorded_no_ops() {
    let case = Case {
        set: "noop",
        dir: "tests/fixtures/sql/noop",
        migrations: &[
            ("init", "000_init.sql", None),
            ("placeholder", "001_placeholder.sql", None),
            (
                "reserved",
                "002_reserved.sql",
                Some("002_reserved.down.sql"),
            ),
            ("wrapped_nothing", "003_wrapped_nothing.sql", None),
            ("b", "004_b.sql", None),
        ],
        runs: Runs::AsIs,
    };
    check(&case);
    let db = TempDb::new();
    let mut conn = db.open();
    let m = Migrator::new().set("noop");
    m.migrate(&mut conn).expect("migrate");
    let applied: Vec<(u32, String)> = m
        .applied_migrations(&conn)
        .expect("applied")
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    assert_eq!(
        applied,
        vec![
            (0, "init".to_owned()),
            (1, "placeholder".to_owned()),
            (2, "reserved".to_owned()),
            (3, "wrapped_nothing".to_owned()),
            (4, "b".to_owned()),
        ]
    );
}

/// The user_version tutorials' files: `BEGIN … COMMIT`, then
/// `PRAGMA user_version = N` after the last `COMMIT` (or before `BEGIN`).
/// The pragma may stand outside the blocks and runs as written, inside the
/// runner's transaction: the database ends with the same schema, rows and
/// `user_version` as the files run by hand.
#[test]
fn user_version_outside_the_blocks_runs_as_written() {
    check(&Case {
        set: "user_version_after_commit",
        dir: "tests/fixtures/sql/user_version_after_commit",
        migrations: &[
            ("create_users", "0001_create_users.sql", None),
            ("add_email", "0002_add_email.sql", None),
            ("first_user", "0003_first_user.sql", None),
        ],
        runs: Runs::AsIs,
    });
    let db = TempDb::new();
    let mut conn = db.open();
    let m = Migrator::new().set("user_version_after_commit");
    for (id, version) in [(0, 1), (1, 2), (2, 3)] {
        m.migrate_to(&mut conn, id).expect("migrate_to");
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("user_version");
        assert_eq!(found, version, "after migration {id}");
    }
}
