//! Real projects' SQLite migration directories, embedded unchanged
//! (`tests/fixtures/corpus`, each project with its `SOURCE.md`: repository,
//! commit and path of every file, licence).
//!
//! For each directory: a fresh database file, a connection set up as the
//! project's tool sets it up, the migrations applied one at a time with
//! `migrate_to`, and after every step the schema compared with a reference
//! database built by plain rusqlite running the same files the way the
//! tool runs them. Then every `down.sql` is run back the same way. Where a
//! later migration rebuilds a table, rows inserted before it are followed
//! through the rebuild.
//!
//! The connection as each tool leaves it:
//! - sqlx: `PRAGMA foreign_keys = ON` on every connection
//!   (`SqliteConnectOptions::new()` inserts `foreign_keys = ON`, sqlx-sqlite
//!   `options/mod.rs`: "We choose to enable foreign key enforcement by
//!   default").
//! - diesel: `SqliteConnection::establish` sets no pragma (its
//!   `establish_inner` only registers diesel's SQL functions), so foreign
//!   keys are whatever the SQLite library defaults to: ON with
//!   libsqlite3-sys's `bundled` build (it compiles SQLite with
//!   `-DSQLITE_DEFAULT_FOREIGN_KEYS=1`), OFF with a system libsqlite3.
//!   The chirpstack tests run both.
//! - refinery and rusqlite_migration run on the application's own rusqlite
//!   `Connection`: ON with rusqlite's `bundled` feature, as here.
//! - goose: a Go `database/sql` connection; go-sqlite3 leaves foreign keys
//!   OFF unless the DSN asks for them.
//!
//! How each tool runs a file: sqlx, diesel and refinery (its default,
//! `grouped = false`) run each migration in a transaction of its own;
//! rusqlite_migration runs all pending ones in one transaction, which from a
//! fresh database one step at a time is the same; goose runs the
//! `-- +goose Up` section going up and the `-- +goose Down` section going
//! down, in a transaction unless the file says `-- +goose NO TRANSACTION`;
//! Authelia's runner runs each file's SQL whole. The tools' own tracking tables
//! (`_sqlx_migrations`, `__diesel_schema_migrations`,
//! `_refinery_schema_history_nostr_mls`, `goose_db_version`) and
//! rusqlite_migration's `user_version` are not part of the comparison, nor
//! is ours.
//!
//! What does not run unchanged is asserted as it is, each in a test of its
//! own, and listed in `tests/fixtures/corpus/README.md`.

mod common;

use std::path::Path;

use common::TempDb;
use migrate_core::rusqlite::Connection;
use migrate_core::{embed_migrations, Error, Migrator};

embed_migrations!(
    "tests/fixtures/corpus/chirpstack__chirpstack/chirpstack/migrations_sqlite",
    set = "chirpstack",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/atuinsh__atuin/atuin-server-sqlite/migrations",
    set = "atuin_server",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/atuinsh__atuin/crates/atuin-kv/migrations",
    set = "atuin_kv",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/atuinsh__atuin/crates/atuin-ai-session/migrations",
    set = "atuin_ai_session",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/diesel-rs__diesel/examples/sqlite/relations/migrations",
    set = "diesel_relations",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/diesel-rs__diesel/examples/sqlite/all_about_inserts/migrations",
    set = "diesel_all_about_inserts",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/diesel-rs__diesel/migrations/sqlite",
    set = "diesel_test_schema",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/launchbadge__sqlx/examples/sqlite/todos/migrations",
    set = "sqlx_todos",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/cljoly__rusqlite_migration/examples/from-directory/migrations",
    set = "rusqlite_migration_from_directory",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/rust-nostr__nostr/crates/nostr-mls-sqlite-storage/migrations",
    set = "nostr_mls",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/authelia__authelia/internal/storage/migrations/sqlite",
    set = "authelia",
    ids = "sorted"
);
embed_migrations!(
    "tests/fixtures/corpus/pressly__goose/example/migrations",
    set = "goose_example",
    ids = "sorted"
);

/// The tool a directory was written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Sqlx,
    Diesel,
    Refinery,
    RusqliteMigration,
    Goose,
    Authelia,
}

struct Project {
    set: &'static str,
    dir: &'static str,
    tool: Tool,
    /// `PRAGMA foreign_keys` on the connection the tool migrates with.
    foreign_keys: bool,
}

const CHIRPSTACK: Project = Project {
    set: "chirpstack",
    dir: "tests/fixtures/corpus/chirpstack__chirpstack/chirpstack/migrations_sqlite",
    tool: Tool::Diesel,
    foreign_keys: true,
};

const ATUIN_SERVER: Project = Project {
    set: "atuin_server",
    dir: "tests/fixtures/corpus/atuinsh__atuin/atuin-server-sqlite/migrations",
    tool: Tool::Sqlx,
    foreign_keys: true,
};

const ATUIN_KV: Project = Project {
    set: "atuin_kv",
    dir: "tests/fixtures/corpus/atuinsh__atuin/crates/atuin-kv/migrations",
    tool: Tool::Sqlx,
    foreign_keys: true,
};

const ATUIN_AI_SESSION: Project = Project {
    set: "atuin_ai_session",
    dir: "tests/fixtures/corpus/atuinsh__atuin/crates/atuin-ai-session/migrations",
    tool: Tool::Sqlx,
    foreign_keys: true,
};

const DIESEL_RELATIONS: Project = Project {
    set: "diesel_relations",
    dir: "tests/fixtures/corpus/diesel-rs__diesel/examples/sqlite/relations/migrations",
    tool: Tool::Diesel,
    foreign_keys: true,
};

const DIESEL_ALL_ABOUT_INSERTS: Project = Project {
    set: "diesel_all_about_inserts",
    dir: "tests/fixtures/corpus/diesel-rs__diesel/examples/sqlite/all_about_inserts/migrations",
    tool: Tool::Diesel,
    foreign_keys: true,
};

const DIESEL_TEST_SCHEMA: Project = Project {
    set: "diesel_test_schema",
    dir: "tests/fixtures/corpus/diesel-rs__diesel/migrations/sqlite",
    tool: Tool::Diesel,
    foreign_keys: true,
};

const SQLX_TODOS: Project = Project {
    set: "sqlx_todos",
    dir: "tests/fixtures/corpus/launchbadge__sqlx/examples/sqlite/todos/migrations",
    tool: Tool::Sqlx,
    foreign_keys: true,
};

const RUSQLITE_MIGRATION: Project = Project {
    set: "rusqlite_migration_from_directory",
    dir: "tests/fixtures/corpus/cljoly__rusqlite_migration/examples/from-directory/migrations",
    tool: Tool::RusqliteMigration,
    foreign_keys: true,
};

const NOSTR_MLS: Project = Project {
    set: "nostr_mls",
    dir: "tests/fixtures/corpus/rust-nostr__nostr/crates/nostr-mls-sqlite-storage/migrations",
    tool: Tool::Refinery,
    foreign_keys: true,
};

const GOOSE_EXAMPLE: Project = Project {
    set: "goose_example",
    dir: "tests/fixtures/corpus/pressly__goose/example/migrations",
    tool: Tool::Goose,
    foreign_keys: false,
};

/// Authelia's SQLite schema: its first migration creates Authelia's own
/// history table, named `migrations` (the default set's tracking table
/// name), so it is embedded in a named set (tracking table
/// `migrations_authelia`).
const AUTHELIA: Project = Project {
    set: "authelia",
    dir: "tests/fixtures/corpus/authelia__authelia/internal/storage/migrations/sqlite",
    tool: Tool::Authelia,
    foreign_keys: true,
};

impl Project {
    fn migrator(&self) -> Migrator {
        Migrator::new().set(self.set)
    }

    /// A fresh database file and a connection set up as the tool sets it up.
    fn open(&self) -> (TempDb, Connection) {
        let db = TempDb::new();
        let conn = db.open();
        let pragma = format!(
            "PRAGMA foreign_keys = {}",
            if self.foreign_keys { "ON" } else { "OFF" }
        );
        conn.execute_batch(&pragma).expect("foreign keys");
        assert_eq!(foreign_keys(&conn), self.foreign_keys);
        (db, conn)
    }

    /// The up files, in the order migrate-core gives them ids.
    fn our_order(&self) -> Vec<Step> {
        let conn = Connection::open_in_memory().expect("open");
        self.migrator()
            .pending_migrations(&conn)
            .expect("pending")
            .into_iter()
            .enumerate()
            .map(|(position, p)| {
                assert_eq!(p.id as usize, position, "{}: ids from 0", self.set);
                let down = self.down_of(p.location.file);
                assert_eq!(
                    p.has_rollback,
                    down.is_some(),
                    "{}: {} has a rollback exactly when the tool has a down file",
                    self.set,
                    p.location.file
                );
                Step {
                    up: p.location.file.to_owned(),
                    down,
                }
            })
            .collect()
    }

    /// The down file the tool pairs with an up file, if there is one.
    fn down_of(&self, up: &str) -> Option<String> {
        let down = match self.tool {
            Tool::Sqlx | Tool::Authelia => up.strip_suffix(".up.sql")?.to_owned() + ".down.sql",
            Tool::Diesel | Tool::RusqliteMigration => {
                up.strip_suffix("/up.sql")?.to_owned() + "/down.sql"
            }
            // goose: the same file, when its Down section runs something.
            Tool::Goose => {
                let down = goose_section(&read(up), false);
                let runs = down.lines().any(|line| {
                    let line = line.trim();
                    !line.is_empty() && !line.starts_with("--")
                });
                return runs.then(|| up.to_owned());
            }
            Tool::Refinery => return None,
        };
        Path::new(&down).is_file().then_some(down)
    }

    /// The up files in the order the tool itself runs them, found the way
    /// the tool finds them.
    fn tool_order(&self) -> Vec<String> {
        let mut entries: Vec<(String, String)> = std::fs::read_dir(self.dir)
            .expect("read the directory")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| !name.starts_with('.'))
            .filter_map(|name| {
                let path = format!("{}/{name}", self.dir);
                let key = match self.tool {
                    // sqlx: `<i64 version>_<description>[.up].sql`, sorted by
                    // the version as a number.
                    Tool::Sqlx => {
                        let stem = name.strip_suffix(".sql")?;
                        if stem.ends_with(".down") {
                            return None;
                        }
                        let version: i64 = stem.split('_').next()?.parse().ok()?;
                        format!("{version:020}")
                    }
                    // diesel: a directory with `up.sql`; its version is the
                    // name up to the first `_` without its dashes, and
                    // versions are compared as strings (`MigrationVersion`
                    // derives `Ord` on its `Cow<str>`).
                    Tool::Diesel => {
                        if !Path::new(&path).join("up.sql").is_file() {
                            return None;
                        }
                        name.split('_').next()?.replace('-', "")
                    }
                    // rusqlite_migration: `<id>-<name>/up.sql`, by id.
                    Tool::RusqliteMigration => {
                        let id: u64 = name.split('-').next()?.parse().ok()?;
                        format!("{id:020}")
                    }
                    // refinery: `V<version>__<name>.sql`, by version.
                    Tool::Refinery => {
                        let rest = name.strip_prefix('V')?.strip_suffix(".sql")?;
                        let version: i64 = rest.split("__").next()?.parse().ok()?;
                        format!("{version:020}")
                    }
                    // Authelia: `V<4 digits>.<name>.up.sql`, by version
                    // (`reMigration` in internal/storage/const.go).
                    Tool::Authelia => {
                        let rest = name.strip_prefix('V')?.strip_suffix(".up.sql")?;
                        let (version, name) = rest.split_once('.')?;
                        if version.len() != 4 || name.contains('.') {
                            return None;
                        }
                        let version: i64 = version.parse().ok()?;
                        format!("{version:020}")
                    }
                    // goose: `<version>_<name>.sql`, by version.
                    Tool::Goose => {
                        let version: i64 =
                            name.strip_suffix(".sql")?.split('_').next()?.parse().ok()?;
                        format!("{version:020}")
                    }
                };
                let up = match self.tool {
                    Tool::Diesel | Tool::RusqliteMigration => format!("{path}/up.sql"),
                    _ => path,
                };
                Some((key, up))
            })
            .collect();
        entries.sort();
        entries.into_iter().map(|(_, up)| up).collect()
    }
}

/// One migration: its up file and the tool's down file, if any.
#[derive(Clone, Debug, PartialEq)]
struct Step {
    up: String,
    down: Option<String>,
}

fn foreign_keys(conn: &Connection) -> bool {
    conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))
        .expect("pragma")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Runs one up file the way `tool` runs it.
fn run_as_tool(conn: &mut Connection, tool: Tool, path: &str) -> Result<(), String> {
    run_direction_as_tool(conn, tool, path, true)
}

/// Runs one down file (for goose, the Down section of the file) the way
/// `tool` runs it.
fn run_down_as_tool(conn: &mut Connection, tool: Tool, path: &str) -> Result<(), String> {
    run_direction_as_tool(conn, tool, path, false)
}

fn run_direction_as_tool(
    conn: &mut Connection,
    tool: Tool,
    path: &str,
    up: bool,
) -> Result<(), String> {
    let text = read(path);
    let (sql, in_transaction) = match tool {
        // sqlx: unless the first line is `-- no-transaction`.
        Tool::Sqlx => {
            let no_transaction = matches!(
                text.lines().next(),
                Some(line) if line.trim() == "-- no-transaction"
            );
            (text.clone(), !no_transaction)
        }
        Tool::Diesel | Tool::Refinery | Tool::RusqliteMigration | Tool::Authelia => (text, true),
        Tool::Goose => (
            goose_section(&text, up),
            !text.contains("-- +goose NO TRANSACTION"),
        ),
    };
    let result = if in_transaction {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(&sql).and_then(|()| tx.commit())
    } else {
        conn.execute_batch(&sql)
    };
    result.map_err(|e| format!("{path}: {e}"))
}

/// The statements goose runs going up (down): the lines after
/// `-- +goose Up`, up to `-- +goose Down` (after `-- +goose Down`).
fn goose_section(text: &str, up: bool) -> String {
    let mut found = String::new();
    let mut inside = None;
    for line in text.lines() {
        let annotation = line.trim_start().strip_prefix("-- +goose ").map(str::trim);
        match annotation {
            Some("Up") => inside = Some(true),
            Some("Down") => inside = Some(false),
            _ if inside == Some(up) => {
                found.push_str(line);
                found.push('\n');
            }
            _ => {}
        }
    }
    found
}

/// The schema, whitespace-normalised, without SQLite's own objects and
/// without migrate-core's tracking table, its indexes and its triggers.
fn schema(conn: &Connection) -> Vec<(String, String, String, String)> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             AND instr(coalesce(sql, ''), 'migrate-core tracking table') = 0 \
             AND tbl_name NOT IN (SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND instr(sql, 'migrate-core tracking table') > 0) \
             ORDER BY type, name",
        )
        .expect("prepare");
    let rows = stmt
        .query_map([], |row| {
            let sql: String = row.get(3)?;
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                sql.split_whitespace().collect::<Vec<_>>().join(" "),
            ))
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn user_tables(conn: &Connection) -> Vec<String> {
    schema(conn)
        .into_iter()
        .filter(|(kind, ..)| kind == "table")
        .map(|(_, name, ..)| name)
        .collect()
}

fn count(conn: &Connection, table: &str) -> i64 {
    common::count(conn, table)
}

/// Rows inserted into both databases just before the migration whose up
/// file ends with `before` runs.
struct Rows {
    before: &'static str,
    sql: &'static str,
}

/// Our database and the tool's, both migrated all the way up.
struct Migrated {
    ours: Connection,
    theirs: Connection,
    /// The down files the tool's runner fails to run (and so does ours).
    failed_rollbacks: Vec<String>,
    _files: (TempDb, TempDb),
}

/// Migrates a fresh database one step at a time with `migrate_to`, in
/// migrate-core's order, and a reference database with the same files run
/// the way the tool runs them, comparing the schemas after every step; then
/// runs every down file back, from fresh databases migrated to the top of
/// each run of migrations that have one, comparing after every step.
fn check(project: &Project, rows: &[Rows]) -> Migrated {
    let migrated = check_with_failed_rollbacks(project, rows);
    assert_eq!(
        migrated.failed_rollbacks,
        Vec::<String>::new(),
        "{}: every down file runs",
        project.set
    );
    migrated
}

/// [`check`], where a down file may fail: it must fail the same way for both.
fn check_with_failed_rollbacks(project: &Project, rows: &[Rows]) -> Migrated {
    let steps = project.our_order();
    let mut migrated = migrate_both(project, &steps, steps.len(), rows);

    // Rollbacks: each maximal run of migrations with a down file, from its
    // top, on databases migrated that far.
    for top in (0..steps.len()).rev() {
        let is_top =
            steps[top].down.is_some() && (top + 1 == steps.len() || steps[top + 1].down.is_none());
        if !is_top {
            continue;
        }
        let mut both = migrate_both(project, &steps, top + 1, rows);
        let m = project.migrator();
        let mut id = top;
        loop {
            let down = steps[id].down.as_deref().expect("a down file");
            let ours = m.rollback_migration(&mut both.ours);
            let theirs = run_down_as_tool(&mut both.theirs, project.tool, down);
            if theirs.is_err() {
                // A down file the tool cannot run either: ours fails the
                // same way, and both databases are left as they were.
                let error = ours.expect_err("the tool's rollback failed");
                assert!(
                    matches!(error, Error::Failed { id: failed, .. } if failed as usize == id),
                    "{down}: {error:?}"
                );
                assert_eq!(schema(&both.ours), schema(&both.theirs), "{down}");
                migrated.failed_rollbacks.push(down.to_owned());
                break;
            }
            let undone = ours.expect("rollback");
            assert_eq!(undone.map(|a| a.id as usize), Some(id), "{down}");
            assert_eq!(
                schema(&both.ours),
                schema(&both.theirs),
                "{}: schema after rolling back {down}",
                project.set
            );
            assert_eq!(foreign_keys(&both.ours), project.foreign_keys);
            if id == 0 || steps[id - 1].down.is_none() {
                break;
            }
            id -= 1;
        }
        if migrated.failed_rollbacks.last().map(String::as_str) == steps[id].down.as_deref() {
            continue;
        }
        if id > 0 {
            let refused = m
                .rollback_migration(&mut both.ours)
                .expect_err("no rollback");
            assert!(matches!(refused, Error::NoRollback { .. }), "{refused:?}");
        }
    }
    migrated
}

/// Both databases, fresh, migrated through `steps[..upto]`.
fn migrate_both(project: &Project, steps: &[Step], upto: usize, rows: &[Rows]) -> Migrated {
    let m = project.migrator();
    let (our_file, mut ours) = project.open();
    let (their_file, mut theirs) = project.open();
    for (id, step) in steps[..upto].iter().enumerate() {
        for row in rows.iter().filter(|r| step.up.ends_with(r.before)) {
            ours.execute_batch(row.sql).expect("rows, ours");
            theirs.execute_batch(row.sql).expect("rows, theirs");
        }
        let report = m.migrate_to(&mut ours, id as u32).expect("migrate_to");
        assert_eq!(report.ids(), vec![id as u32], "{}", step.up);
        run_as_tool(&mut theirs, project.tool, &step.up).expect("the tool's run");
        assert_eq!(
            schema(&ours),
            schema(&theirs),
            "{}: schema after {}",
            project.set,
            step.up
        );
        assert_eq!(
            foreign_keys(&ours),
            project.foreign_keys,
            "{}: the connection's foreign_keys setting is as it was",
            step.up
        );
    }
    Migrated {
        ours,
        theirs,
        failed_rollbacks: Vec::new(),
        _files: (our_file, their_file),
    }
}

/// migrate-core numbers the files in the order the tool runs them.
fn assert_same_order(project: &Project) {
    let ours: Vec<String> = project.our_order().into_iter().map(|s| s.up).collect();
    assert_eq!(ours, project.tool_order(), "{}", project.set);
}

// --- chirpstack (diesel) ---------------------------------------------------

const CHIRPSTACK_TENANT: &str = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242";

/// A device with its keys, under a device profile, inserted before the
/// migration that rebuilds `device_profile`: `device.device_profile_id`
/// references it `on delete cascade`, and `device_keys` references the
/// device the same way.
const CHIRPSTACK_DEVICE: Rows = Rows {
    before: "2025-12-08-135428-0000_refactor_device_profiles/up.sql",
    sql: "INSERT INTO application (id, tenant_id, created_at, updated_at, name, description) \
              VALUES ('app-1', '52f14cd4-c6f1-4fbd-8f87-4025e1d49242', '2025-01-01', \
              '2025-01-01', 'app', ''); \
          INSERT INTO device_profile (id, tenant_id, created_at, updated_at, name, region, \
              mac_version, reg_params_revision, adr_algorithm_id, payload_codec_runtime, \
              uplink_interval, device_status_req_interval, supports_otaa, supports_class_b, \
              supports_class_c, tags) \
              VALUES ('dp-1', '52f14cd4-c6f1-4fbd-8f87-4025e1d49242', '2025-01-01', \
              '2025-01-01', 'profile', 'eu868', '1.0.3', 'A', 'default', 'NONE', 3600, 1, \
              TRUE, FALSE, FALSE, '{}'); \
          INSERT INTO device (dev_eui, application_id, device_profile_id, created_at, \
              updated_at, name, description, external_power_source, enabled_class, \
              skip_fcnt_check, is_disabled, tags, variables) \
              VALUES (x'0102030405060708', 'app-1', 'dp-1', '2025-01-01', '2025-01-01', \
              'sensor', '', FALSE, 'A', FALSE, FALSE, '{}', '{}'); \
          INSERT INTO device_keys (dev_eui, created_at, updated_at, nwk_key, app_key, \
              dev_nonces, join_nonce) \
              VALUES (x'0102030405060708', '2025-01-01', '2025-01-01', zeroblob(16), \
              zeroblob(16), '{}', 0);",
};

const CHIRPSTACK_REBUILD: &str = "2025-12-08-135428-0000_refactor_device_profiles/up.sql";

#[test]
fn chirpstack_diesel_runs_unchanged_step_by_step_and_back() {
    assert_same_order(&CHIRPSTACK);
    let migrated = check(&CHIRPSTACK, &[CHIRPSTACK_DEVICE]);
    // The seed rows of the first migration are there, in both.
    for conn in [&migrated.ours, &migrated.theirs] {
        assert_eq!(count(conn, "\"user\""), 1);
        assert_eq!(count(conn, "tenant"), 1);
    }
}

/// chirpstack's recent migrations are named `YYYY-MM-DD-HHMMSS-0000` (18
/// digits, the form newer diesel_cli releases generate), next to the older
/// `YYYY-MM-DD-HHMMSS` (14 digits). diesel takes the name up to the first
/// `_` without its dashes and compares versions as strings, so they stay in
/// date order; in a diesel directory `ids = "sorted"` orders them the same
/// way, so each migration gets the id of its place in diesel's sequence
/// (ordered as numbers, every 18-digit version would sort after every
/// 14-digit one, and `2026-05-28-000000_ts005_managed_multicast` would run
/// before the three `-0000` migrations diesel runs before it).
#[test]
fn chirpstack_0000_suffixed_versions_are_ordered_as_diesel_orders_them() {
    assert_same_order(&CHIRPSTACK);
    let ours: Vec<String> = CHIRPSTACK.our_order().into_iter().map(|s| s.up).collect();
    assert_eq!(ours.len(), 14);
    let name = |path: &String| {
        path.trim_end_matches("/up.sql")
            .rsplit('/')
            .next()
            .expect("name")
            .to_owned()
    };
    let ours: Vec<String> = ours.iter().map(name).collect();
    assert_eq!(
        ours[8..],
        [
            "2025-12-08-135428-0000_refactor_device_profiles",
            "2025-12-12-105118-0000_device_profile_add_supported_data_rates",
            "2026-05-21-090852-0000_add_dev_addr_prefixes_to_tenant",
            "2026-05-28-000000_ts005_managed_multicast",
            "2026-06-15-094002-0000_add_gateway_priority",
            "2026-06-30-150641-0000_add_tenant_user_app_and_device_profile_admin",
        ]
    );
    // The names (and ids) are the ones diesel's sequence gives.
    let m = CHIRPSTACK.migrator();
    let conn = Connection::open_in_memory().expect("open");
    let pending = m.pending_migrations(&conn).expect("pending");
    assert_eq!(pending[11].id, 11);
    assert_eq!(pending[11].name, "ts005_managed_multicast");
}

/// DIFFERENCE, the one that loses data: the device-profile rebuild says
/// `pragma foreign_keys = off;` before `drop table device_profile`. diesel
/// runs the file inside a transaction, where that pragma does nothing, so
/// with foreign keys enforced (libsqlite3-sys `bundled`) the drop deletes
/// every device through `on delete cascade`, and their keys with them.
/// migrate-core runs the file as a `foreign_keys = off` migration: the
/// devices survive, as the file's author meant.
#[test]
fn chirpstack_device_profile_rebuild_keeps_the_devices_diesel_cascades_away() {
    let steps = CHIRPSTACK.our_order();
    let migrated = migrate_both(&CHIRPSTACK, &steps, steps.len(), &[CHIRPSTACK_DEVICE]);
    // Ours: every row survives the rebuild, and the foreign keys still hold.
    assert_eq!(count(&migrated.ours, "device"), 1);
    assert_eq!(count(&migrated.ours, "device_keys"), 1);
    assert_eq!(count(&migrated.ours, "device_profile"), 1);
    let tenant: String = migrated
        .ours
        .query_row("SELECT tenant_id FROM device_profile", [], |r| r.get(0))
        .expect("profile");
    assert_eq!(tenant, CHIRPSTACK_TENANT);
    let violations: i64 = migrated
        .ours
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("check");
    assert_eq!(violations, 0);
    assert!(foreign_keys(&migrated.ours));
    // Diesel's: the profile row was copied, the devices cascaded away.
    assert_eq!(count(&migrated.theirs, "device_profile"), 1);
    assert_eq!(count(&migrated.theirs, "device"), 0);
    assert_eq!(count(&migrated.theirs, "device_keys"), 0);
    assert_eq!(count(&migrated.theirs, "application"), 1);
}

/// With a system libsqlite3 (foreign keys off by default) diesel keeps the
/// devices too, and both databases end with the same rows.
#[test]
fn chirpstack_without_enforced_foreign_keys_both_keep_the_devices() {
    let project = Project {
        foreign_keys: false,
        ..CHIRPSTACK
    };
    let migrated = check(&project, &[CHIRPSTACK_DEVICE]);
    for conn in [&migrated.ours, &migrated.theirs] {
        assert_eq!(count(conn, "device"), 1);
        assert_eq!(count(conn, "device_keys"), 1);
        assert!(!foreign_keys(conn));
    }
    let devices = |conn: &Connection| -> Vec<(Vec<u8>, String)> {
        let mut stmt = conn
            .prepare("SELECT dev_eui, device_profile_id FROM device")
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    };
    assert_eq!(devices(&migrated.ours), devices(&migrated.theirs));
}

#[test]
fn chirpstack_rebuild_is_the_only_foreign_keys_off_file() {
    // The file really says so, and it is the one that needs it.
    for step in CHIRPSTACK.our_order() {
        let text = read(&step.up).to_lowercase();
        assert_eq!(
            text.contains("pragma foreign_keys = off"),
            step.up.ends_with(CHIRPSTACK_REBUILD),
            "{}",
            step.up
        );
    }
}

// --- atuin (sqlx) ----------------------------------------------------------

#[test]
fn atuin_server_sqlite_sqlx_runs_unchanged() {
    assert_same_order(&ATUIN_SERVER);
    let migrated = check(&ATUIN_SERVER, &[]);
    // The trigger of `create_total_history_count_user` works in both.
    for conn in [&migrated.ours, &migrated.theirs] {
        conn.execute_batch(
            "INSERT INTO users (username, email, password) VALUES ('u', 'u@x', 'p'); \
             INSERT INTO history (client_id, user_id, hostname, timestamp, data) \
                 VALUES ('c1', 1, 'h', 1, x'00'), ('c2', 1, 'h', 2, x'00');",
        )
        .expect("rows");
        let total: i64 = conn
            .query_row(
                "SELECT total FROM total_history_count_user WHERE user_id = 1",
                [],
                |r| r.get(0),
            )
            .expect("total");
        assert_eq!(total, 2);
    }
}

#[test]
fn atuin_kv_sqlx_runs_and_rolls_back_unchanged() {
    assert_same_order(&ATUIN_KV);
    check(&ATUIN_KV, &[]);
}

/// `compact` rebuilds `messages` (the parent) and `tool_calls` (its
/// `ON DELETE CASCADE` child) without any pragma, children first; the rows
/// survive in both databases, and are the same.
#[test]
fn atuin_ai_session_sqlx_rebuild_keeps_the_rows_as_sqlx_does() {
    assert_same_order(&ATUIN_AI_SESSION);
    let migrated = check(
        &ATUIN_AI_SESSION,
        &[Rows {
            before: "20260919000000_compact.up.sql",
            sql: "INSERT INTO messages (id, agent, session_id, source_id, timestamp, role, \
                      content, is_error) VALUES (x'01', 1, 's', 'a', 1, 1, 'hello', 0); \
                  INSERT INTO tool_calls (message_id, id, name, input) \
                      VALUES (x'01', 't1', 'read', '{}');",
        }],
    );
    let rows = |conn: &Connection| -> (String, String, Option<String>) {
        conn.query_row(
            "SELECT m.content, t.name, t.input_z FROM messages m \
             JOIN tool_calls t ON t.message_id = m.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the rows survived")
    };
    assert_eq!(rows(&migrated.ours), ("hello".into(), "read".into(), None));
    assert_eq!(rows(&migrated.ours), rows(&migrated.theirs));
    // And the cascade still works on the rebuilt tables.
    for conn in [&migrated.ours, &migrated.theirs] {
        conn.execute("DELETE FROM messages", []).expect("delete");
        assert_eq!(count(conn, "tool_calls"), 0);
    }
}

// --- diesel's and sqlx's own examples ------------------------------------

#[test]
fn diesel_relations_example_runs_and_rolls_back_unchanged() {
    assert_same_order(&DIESEL_RELATIONS);
    check(&DIESEL_RELATIONS, &[]);
}

#[test]
fn diesel_all_about_inserts_example_runs_unchanged() {
    assert_same_order(&DIESEL_ALL_ABOUT_INSERTS);
    check(&DIESEL_ALL_ABOUT_INSERTS, &[]);
}

/// diesel's own SQLite test schema (`migrations/sqlite`, the directory its
/// test suite embeds), up to the migration the stored index lacks a
/// predecessor for (see its SOURCE.md). Its `create_noisy_users_view`
/// rollback drops a view that does not exist (`noisy_users`, the up file
/// creates `important_stuff`): diesel fails there, and so does migrate-core,
/// leaving the database as it was.
#[test]
fn diesel_test_schema_runs_unchanged_and_fails_the_same_broken_rollback() {
    assert_same_order(&DIESEL_TEST_SCHEMA);
    let migrated = check_with_failed_rollbacks(&DIESEL_TEST_SCHEMA, &[]);
    assert_eq!(
        migrated.failed_rollbacks,
        [format!(
            "{}/20160909175240_create_noisy_users_view/down.sql",
            DIESEL_TEST_SCHEMA.dir
        )]
    );
    // The view works in both.
    for conn in [&migrated.ours, &migrated.theirs] {
        conn.execute_batch("INSERT INTO stuff (name, important) VALUES ('a', 1), ('b', 0)")
            .expect("rows");
        assert_eq!(count(conn, "important_stuff"), 1);
    }
}

#[test]
fn sqlx_todos_example_runs_unchanged() {
    assert_same_order(&SQLX_TODOS);
    check(&SQLX_TODOS, &[]);
}

// --- rusqlite_migration, refinery ----------------------------------------

#[test]
fn rusqlite_migration_from_directory_example_runs_unchanged() {
    assert_same_order(&RUSQLITE_MIGRATION);
    check(&RUSQLITE_MIGRATION, &[]);
}

#[test]
fn nostr_mls_refinery_runs_unchanged() {
    assert_same_order(&NOSTR_MLS);
    let migrated = check(&NOSTR_MLS, &[]);
    assert_eq!(
        user_tables(&migrated.ours),
        [
            "group_relays",
            "groups",
            "messages",
            "processed_messages",
            "processed_welcomes",
            "welcomes"
        ]
    );
}

// --- Authelia ----------------------------------------------------------

/// Authelia's own runner, `V0001.Initial_Schema.up.sql`: the name after a
/// `.`. Its schema includes Authelia's own history table, `migrations`.
#[test]
fn authelia_dotted_names_run_unchanged_in_a_named_set() {
    assert_same_order(&AUTHELIA);
    let migrated = check(&AUTHELIA, &[]);
    let pending = AUTHELIA
        .migrator()
        .applied_migrations(&migrated.ours)
        .expect("applied");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].name, "Initial_Schema");
    assert!(user_tables(&migrated.ours).contains(&"migrations".to_owned()));
}

/// The same directory in a set whose tracking table is `migrations` (the
/// default set's): its `CREATE TABLE IF NOT EXISTS migrations` would
/// silently keep migrate-core's table and leave Authelia without its own.
/// The migration is refused, nothing is left behind, and the message says
/// how to give the tracking table another name.
#[test]
fn authelia_with_migrations_as_the_tracking_table_is_refused_with_advice() {
    let (_file, mut conn) = AUTHELIA.open();
    let m = AUTHELIA.migrator().table("migrations");
    let error = m.migrate(&mut conn).expect_err("refused");
    assert!(matches!(error, Error::Forbidden { id: 0, .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("creates a table named like the tracking table \"migrations\""),
        "{message}"
    );
    assert!(message.contains("Migrator::table("), "{message}");
    assert!(user_tables(&conn).is_empty(), "{:?}", user_tables(&conn));
    assert!(m.applied_migrations(&conn).expect("applied").is_empty());
}

// --- goose -------------------------------------------------------------

/// goose keeps both directions in one file, after `-- +goose Up` and
/// `-- +goose Down`: each file is the migration (its Up section) and its
/// rollback (its Down section), so the schema after every step and every
/// rollback is goose's own. (The example's third file,
/// `00003_no_transaction.sql`, is refused at compile time, as goose refuses
/// it: see `tests/fixtures/corpus_refused/`.)
#[test]
fn goose_files_run_their_up_section_and_roll_back_with_their_down_section() {
    let project = &GOOSE_EXAMPLE;
    assert_same_order(project);
    let steps = project.our_order();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|step| step.down.is_some()));
    let migrated = check(project, &[]);
    assert_eq!(user_tables(&migrated.ours), ["fancier_post", "post"]);
    // The checksum is the whole file's, Down section included.
    let applied = project
        .migrator()
        .applied_migrations(&migrated.ours)
        .expect("applied");
    assert_eq!(
        applied[0].checksum,
        common::sql_checksum(&read(&steps[0].up))
    );
}
