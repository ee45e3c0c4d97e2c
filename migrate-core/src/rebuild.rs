//! SQLite's table-rebuild procedure, for the changes `ALTER TABLE` cannot
//! make (a column's type, constraints or default).

use rusqlite::{ffi, params, Connection};

use crate::history::quote_identifier;

/// Rebuilds a table with a new definition, keeping its data, indexes and
/// triggers: create the new table, copy the rows through a column mapping,
/// drop the old table, rename the new one, recreate the old indexes and
/// triggers that still apply, and recheck every view and trigger.
///
/// Use it inside a `#[migration(n, foreign_keys = off)]` migration: with
/// foreign keys on, dropping the old table would cascade into its children,
/// so the rebuild refuses to run then.
///
/// # What is kept, and what is reported
/// - The table is found in the `main` database whatever the letter case
///   of the name given (SQLite's names are case-insensitive, for ASCII
///   letters), and keeps the name it was created with. Every statement
///   names `main`, so a TEMP table or a table of an attached database with
///   the same name is never read, dropped or given an index.
/// - Every index and trigger of the old table, whatever case its SQL spells
///   the table in, and the TEMP triggers put on it, is either in
///   [`RebuildReport::recreated`] or in [`RebuildReport::not_recreated`]
///   with SQLite's reason (an index on a column that is gone, say). The
///   automatic indexes of `UNIQUE` and `PRIMARY KEY` constraints belong to
///   the new definition and come back with it.
/// - The table's options after its parentheses (`WITHOUT ROWID`, `STRICT`)
///   are kept unless [`options`](Self::options) says otherwise.
/// - Rowids are kept: an `INTEGER PRIMARY KEY` column is copied like any
///   other column, and a table without one keeps its implicit rowids.
/// - With `AUTOINCREMENT` in the new definition, the high-water mark of
///   `sqlite_sequence` is kept, so an id deleted before the rebuild is never
///   handed out again. A definition without it drops the mark, as SQLite
///   does for any table without `AUTOINCREMENT`.
/// - Generated columns of the new definition are computed by SQLite, never
///   copied into; the old table's generated columns can be read (a column
///   that stops being generated keeps its values).
/// - Views and triggers that no longer compile (a trigger's body is only
///   compiled when a statement fires it) are reported in
///   [`RebuildReport::broken_views`] and [`RebuildReport::broken_triggers`],
///   and left in place for the migration to fix or drop.
/// - A failed rebuild leaves nothing behind: it runs in a savepoint of its
///   own, rolled back on error.
///
/// Not checked: a trigger `UPDATE OF` a column that is gone (SQLite accepts
/// it and never fires it), and `INSTEAD OF` triggers on views.
///
/// ```
/// use migrate_core::{migration, TableRebuild};
/// use migrate_core::rusqlite::Transaction;
///
/// #[migration(0, set = "docs_rebuild")]
/// fn create(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
///     tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY, views TEXT);
///                       CREATE INDEX posts_views ON posts (views);
///                       INSERT INTO posts (views) VALUES ('12');")
/// }
///
/// // `views` becomes an INTEGER NOT NULL column.
/// #[migration(1, set = "docs_rebuild", foreign_keys = off)]
/// fn views_as_integer(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
///     let report = TableRebuild::new("posts")
///         .definition("id INTEGER PRIMARY KEY, views INTEGER NOT NULL DEFAULT 0")
///         .map("views", "coalesce(CAST(views AS INTEGER), 0)")
///         .run(tx)?;
///     assert_eq!(report.recreated, vec!["posts_views".to_owned()]);
///     Ok(())
/// }
/// # fn main() -> Result<(), migrate_core::Error> {
/// #     let mut conn = migrate_core::rusqlite::Connection::open_in_memory()?;
/// #     migrate_core::Migrator::new().set("docs_rebuild").migrate(&mut conn)?;
/// #     let views: i64 = conn.query_row("SELECT views FROM posts", [], |r| r.get(0))?;
/// #     assert_eq!(views, 12);
/// #     Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TableRebuild {
    table: String,
    definition: Option<String>,
    options: Option<String>,
    mapping: Vec<(String, String)>,
}

/// What a [`TableRebuild`] did besides the table itself.
///
/// ```
/// let report = migrate_core::RebuildReport::default();
/// assert!(report.not_recreated.is_empty() && report.broken_views.is_empty());
/// assert!(report.broken_triggers.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RebuildReport {
    /// Rows copied.
    pub rows: usize,
    /// The indexes and triggers of the old table recreated on the new one
    /// (its indexes first), TEMP triggers included.
    pub recreated: Vec<String>,
    /// Those that no longer apply (for example an index on a column that is
    /// gone), with SQLite's reason. They are not in the schema any more.
    /// Every index and trigger of the old table is in `recreated` or here.
    pub not_recreated: Vec<(String, String)>,
    /// Views (of `main` and TEMP) that no longer compile against the new
    /// table, with the reason. They are still in the schema.
    pub broken_views: Vec<(String, String)>,
    /// Triggers (of `main` and TEMP, on any table) that no longer compile:
    /// a statement that fires them would fail, with this reason. Typically a
    /// trigger that uses a column the new definition dropped, on this table
    /// or on another one. They are still in the schema (recreated, for this
    /// table's own), for the migration to fix or drop.
    pub broken_triggers: Vec<(String, String)>,
}

impl TableRebuild {
    /// Starts a rebuild of `table` (of the `main` database; the letter case
    /// does not matter).
    ///
    /// ```
    /// let rebuild = migrate_core::TableRebuild::new("posts");
    /// # let _ = rebuild;
    /// ```
    pub fn new(table: impl Into<String>) -> Self {
        TableRebuild {
            table: table.into(),
            definition: None,
            options: None,
            mapping: Vec::new(),
        }
    }

    /// The new table's body: what goes between the parentheses of
    /// `CREATE TABLE posts (…)`: columns and table constraints.
    ///
    /// ```
    /// let rebuild = migrate_core::TableRebuild::new("posts")
    ///     .definition("id INTEGER PRIMARY KEY, title TEXT NOT NULL");
    /// # let _ = rebuild;
    /// ```
    pub fn definition(mut self, columns: impl Into<String>) -> Self {
        self.definition = Some(columns.into());
        self
    }

    /// The new table's options, what follows its closing parenthesis:
    /// `WITHOUT ROWID`, `STRICT`, both separated by a comma, or nothing.
    /// Without this call the old table's options are kept.
    ///
    /// ```
    /// // A WITHOUT ROWID table becomes an ordinary rowid table.
    /// let rebuild = migrate_core::TableRebuild::new("settings")
    ///     .definition("key TEXT PRIMARY KEY, value TEXT")
    ///     .options("");
    /// # let _ = rebuild;
    /// ```
    pub fn options(mut self, options: impl Into<String>) -> Self {
        self.options = Some(options.into());
        self
    }

    /// Fills new column `column` with an SQL expression over the old row.
    /// Without a mapping, a new column takes the old column of the same name
    /// (in any letter case), or its default when the old table has none.
    /// A generated column cannot be mapped: SQLite computes it.
    ///
    /// ```
    /// let rebuild = migrate_core::TableRebuild::new("posts")
    ///     .map("title", "coalesce(title, '(untitled)')");
    /// # let _ = rebuild;
    /// ```
    pub fn map(mut self, column: impl Into<String>, expression: impl Into<String>) -> Self {
        self.mapping.push((column.into(), expression.into()));
        self
    }

    /// Performs the rebuild on `conn` (the migration's transaction). On
    /// error nothing of it is left in the schema.
    pub fn run(&self, conn: &Connection) -> rusqlite::Result<RebuildReport> {
        let definition = self.definition.as_deref().ok_or_else(|| {
            misuse(format!(
                "TableRebuild of {:?}: call .definition(…) first",
                self.table
            ))
        })?;
        let foreign_keys: bool = conn.query_row("PRAGMA foreign_keys", params![], |r| r.get(0))?;
        if foreign_keys {
            return Err(misuse(format!(
                "rebuilding {:?} with foreign keys on would run ON DELETE actions of its children when the old table \
                 is dropped: run it in a #[migration(n, foreign_keys = off)] migration, or in a rollback \
                 declared #[rollback(n, foreign_keys = off)] (a rollback does not take its migration's \
                 options)",
                self.table
            )));
        }
        conn.execute_batch("SAVEPOINT migrate_core_rebuild")?;
        match self.rebuild(conn, definition) {
            Ok(report) => {
                conn.execute_batch("RELEASE migrate_core_rebuild")?;
                Ok(report)
            }
            Err(error) => {
                // Fails only if SQLite already ended the transaction itself,
                // which took the rebuild's changes with it.
                let _ = conn.execute_batch(
                    "ROLLBACK TO migrate_core_rebuild; RELEASE migrate_core_rebuild",
                );
                Err(error)
            }
        }
    }

    fn rebuild(&self, conn: &Connection, definition: &str) -> rusqlite::Result<RebuildReport> {
        let table = find_table(conn, &self.table)?;
        let name = table.name.as_str();
        let old = format!("main.{}", quote_identifier(name));
        let temp_name = format!("migrate_core_rebuild_{name}");
        let temp = format!("main.{}", quote_identifier(&temp_name));
        let options = match &self.options {
            Some(options) => options.clone(),
            None => table_options(&table.sql).to_owned(),
        };

        // Indexes and triggers are dropped with the table: keep their SQL.
        // (Automatic indexes of UNIQUE/PRIMARY KEY constraints have no SQL and
        // come back with the new definition.) A trigger's `tbl_name` keeps the
        // spelling of its ON clause: compare without case, as SQLite does.
        // Indexes first, then triggers, each by name.
        let dependents = defined_on(conn, "main", name, &["index", "trigger"])?;
        // TEMP triggers may sit on a main table; dropping it drops them.
        let temp_triggers = defined_on(conn, "temp", name, &["trigger"])?;
        let old_columns = columns(conn, "main", name)?;
        let high_water = sequence(conn, name)?;

        // A definition ending in a `--` comment must not swallow the `)`.
        let end = if definition.contains("--") { "\n" } else { "" };
        let options_sql = if options.trim().is_empty() {
            String::new()
        } else {
            format!(" {options}")
        };
        conn.execute_batch(&format!(
            "CREATE TABLE {temp} ({definition}{end}){options_sql}"
        ))?;
        let new_columns = columns(conn, "main", &temp_name)?;
        for (column, _) in &self.mapping {
            match new_columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(column))
            {
                None => {
                    return Err(misuse(format!(
                        "TableRebuild of {:?}: .map({column:?}, …) names no column of the new definition",
                        self.table
                    )))
                }
                Some(c) if c.generated => {
                    return Err(misuse(format!(
                        "TableRebuild of {:?}: .map({column:?}, …) names a generated column of the new \
                         definition: SQLite computes its value; remove the .map",
                        self.table
                    )))
                }
                Some(_) => {}
            }
        }
        let mut targets = Vec::new();
        let mut sources = Vec::new();
        // Copying into a generated column is an error: SQLite computes it.
        for column in new_columns.iter().filter(|c| !c.generated) {
            let mapped = self
                .mapping
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(&column.name));
            let source = match mapped {
                Some((_, expression)) => Some(expression.clone()),
                None => old_columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(&column.name))
                    .map(|c| quote_identifier(&c.name)),
            };
            if let Some(source) = source {
                targets.push(quote_identifier(&column.name));
                sources.push(source);
            }
        }
        // A table without an INTEGER PRIMARY KEY keeps its implicit rowids
        // (an FTS index or the application may point at them).
        if let Some(rowid) =
            implicit_rowid(conn, &old, &old_columns, &temp, &temp_name, &new_columns)?
        {
            targets.push(rowid.to_owned());
            sources.push(rowid.to_owned());
        }
        let rows = if targets.is_empty() {
            0
        } else {
            conn.execute(
                &format!(
                    "INSERT INTO {temp} ({}) SELECT {} FROM {old}",
                    targets.join(", "),
                    sources.join(", ")
                ),
                params![],
            )?
        };
        conn.execute_batch(&format!("DROP TABLE {old}"))?;
        // Legacy rename: views and other tables' triggers name the table by
        // its name, so they follow it to the new table; a modern rename would
        // re-parse them first and fail on the missing old table.
        let legacy: bool = conn.query_row("PRAGMA legacy_alter_table", params![], |r| r.get(0))?;
        conn.execute_batch("PRAGMA legacy_alter_table = ON")?;
        let renamed = conn.execute_batch(&format!(
            "ALTER TABLE {temp} RENAME TO {}",
            quote_identifier(name)
        ));
        if !legacy {
            conn.execute_batch("PRAGMA legacy_alter_table = OFF")?;
        }
        renamed?;
        if let Some(old_mark) = high_water {
            if has_keyword(definition, "AUTOINCREMENT") {
                keep_sequence(conn, name, old_mark)?;
            }
        }

        let mut report = RebuildReport {
            rows,
            ..RebuildReport::default()
        };
        for (object, sql) in dependents {
            recreate(conn, object, &in_schema(&sql, "main"), &mut report)?;
        }
        let shadowed = exists(conn, "temp", "table", name)?;
        for (trigger, sql) in temp_triggers {
            // Still there: it was on the TEMP table of the same name.
            if exists(conn, "temp", "trigger", &trigger)? {
                continue;
            }
            if shadowed {
                let reason = format!(
                    "a TEMP table also named {name:?} would take this TEMP trigger: recreate it with \
                     `CREATE TEMP TRIGGER … ON main.{}`",
                    quote_identifier(name)
                );
                report.not_recreated.push((trigger, reason));
            } else {
                recreate(conn, trigger, &in_schema(&sql, "temp"), &mut report)?;
            }
        }
        report.broken_views = broken_views(conn)?;
        report.broken_triggers = broken_triggers(conn)?;
        Ok(report)
    }
}

/// The table to rebuild, as `main.sqlite_master` has it.
struct Table {
    name: String,
    sql: String,
}

/// The indexes or triggers (`kinds`, in that order) of `schema` defined on
/// `table`, with their SQL, each kind by name. Names are compared here, not
/// with SQL's `COLLATE NOCASE`, which an application may define anew on
/// its connection (as any function of migrate-core's statements: see
/// `sqlite::same_identifier`). A trigger's `tbl_name` keeps the spelling
/// of its ON clause: letter case aside, as SQLite does.
fn defined_on(
    conn: &Connection,
    schema: &str,
    table: &str,
    kinds: &[&str],
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT type, name, tbl_name, sql FROM {}.sqlite_master WHERE sql IS NOT NULL",
        quote_identifier(schema)
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut found: Vec<(usize, String, String)> = Vec::new();
    for row in rows {
        let (kind, name, on, sql) = row?;
        if let Some(order) = kinds.iter().position(|wanted| *wanted == kind) {
            if crate::sqlite::same_identifier(&on, table) {
                found.push((order, name, sql));
            }
        }
    }
    found.sort();
    Ok(found
        .into_iter()
        .map(|(_, name, sql)| (name, sql))
        .collect())
}

fn find_table(conn: &Connection, requested: &str) -> rusqlite::Result<Table> {
    let mut stmt = conn.prepare(
        "SELECT type, name, sql FROM main.sqlite_master WHERE type IN ('table', 'view')",
    )?;
    let mut rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let found = loop {
        match rows.next().transpose()? {
            Some(row) if crate::sqlite::same_identifier(&row.1, requested) => break Some(row),
            Some(_) => {}
            None => break None,
        }
    };
    match found {
        Some((kind, name, _)) if kind == "view" => Err(misuse(format!(
            "TableRebuild: {name:?} is a view, not a table: drop and recreate the view instead"
        ))),
        Some((_, name, _)) if starts_with_ignore_case(&name, "sqlite_") => Err(misuse(format!(
            "TableRebuild: {name:?} is one of SQLite's own tables; it cannot be rebuilt"
        ))),
        Some((_, name, sql)) => {
            let sql = sql.unwrap_or_default();
            if starts_with_ignore_case(&sql, "CREATE VIRTUAL TABLE") {
                return Err(misuse(format!(
                    "TableRebuild: {name:?} is a virtual table, whose module owns its storage: \
                     drop it and create it again instead"
                )));
            }
            Ok(Table { name, sql })
        }
        None => {
            let mut elsewhere = Vec::new();
            let schemas: Vec<String> = {
                let mut stmt = conn.prepare("SELECT name FROM pragma_database_list")?;
                let rows = stmt.query_map(params![], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for schema in schemas.iter().filter(|s| s.as_str() != "main") {
                if exists(conn, schema, "table", requested)? {
                    elsewhere.push(if schema == "temp" {
                        format!("{requested:?} is a TEMP table")
                    } else {
                        format!("{requested:?} is a table of the attached database {schema:?}")
                    });
                }
            }
            let hint = if elsewhere.is_empty() {
                String::new()
            } else {
                format!(
                    "; {}, and a rebuild works on the main database only",
                    elsewhere.join(", ")
                )
            };
            Err(misuse(format!(
                "TableRebuild: there is no table {requested:?} in the main database{hint}"
            )))
        }
    }
}

/// Whether `schema` has an object of this type and name (any letter case).
fn exists(conn: &Connection, schema: &str, kind: &str, name: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name FROM {}.sqlite_master WHERE type = ?1",
        quote_identifier(schema)
    ))?;
    let names = stmt.query_map([kind], |r| r.get::<_, String>(0))?;
    for found in names {
        if crate::sqlite::same_identifier(&found?, name) {
            return Ok(true);
        }
    }
    Ok(false)
}

struct Column {
    name: String,
    /// A generated column (`pragma_table_xinfo`'s hidden = 2 virtual, 3 stored).
    generated: bool,
    /// Declared type, and position in the primary key (0: not in it).
    declared: String,
    pk: i64,
}

fn columns(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<Vec<Column>> {
    let mut stmt = conn.prepare(
        "SELECT name, hidden IN (2, 3), type, pk FROM pragma_table_xinfo(?1, ?2) ORDER BY cid",
    )?;
    let rows = stmt.query_map([table, schema], |r| {
        Ok(Column {
            name: r.get(0)?,
            generated: r.get(1)?,
            declared: r.get(2)?,
            pk: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// The name to copy implicit rowids by, when both tables have rowids and
/// the new one has no `INTEGER PRIMARY KEY` that would carry them itself.
fn implicit_rowid(
    conn: &Connection,
    old: &str,
    old_columns: &[Column],
    new: &str,
    new_name: &str,
    new_columns: &[Column],
) -> rusqlite::Result<Option<&'static str>> {
    let mut keys = new_columns.iter().filter(|c| c.pk > 0);
    if let (Some(key), None) = (keys.next(), keys.next()) {
        // An alias of the rowid, which is copied with it: a lone INTEGER
        // primary key with no index of its own. `INTEGER PRIMARY KEY DESC`
        // is not one (an SQLite quirk): it has its index, and the rowid
        // must be copied as well.
        let own_index = conn
            .prepare("SELECT 1 FROM pragma_index_list(?1, 'main') WHERE origin = 'pk'")?
            .exists([new_name])?;
        if key.declared.eq_ignore_ascii_case("INTEGER") && !own_index {
            return Ok(None);
        }
    }
    // A column may be named `rowid`; SQLite offers two more names.
    let Some(rowid) = ["rowid", "_rowid_", "oid"].into_iter().find(|alias| {
        !old_columns
            .iter()
            .chain(new_columns)
            .any(|c| c.name.eq_ignore_ascii_case(alias))
    }) else {
        return Ok(None);
    };
    // A WITHOUT ROWID table has none.
    let has_rowid = |table: &str| {
        conn.prepare(&format!("SELECT {rowid} FROM {table} LIMIT 0"))
            .is_ok()
    };
    Ok((has_rowid(old) && has_rowid(new)).then_some(rowid))
}

/// The `sqlite_sequence` high-water mark of `table` (AUTOINCREMENT), if
/// any, with the name its row has (the largest, and names compared, here:
/// an application may define its own `max` or `NOCASE`).
fn sequence_row(conn: &Connection, table: &str) -> rusqlite::Result<Option<(String, i64)>> {
    if !exists(conn, "main", "table", "sqlite_sequence")? {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT name, CAST(seq AS INTEGER) FROM main.sqlite_sequence")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<i64>>(1)?))
    })?;
    let mut highest: Option<(String, i64)> = None;
    for row in rows {
        if let (Some(name), Some(seq)) = row? {
            if crate::sqlite::same_identifier(&name, table)
                && highest.as_ref().map_or(true, |(_, top)| seq > *top)
            {
                highest = Some((name, seq));
            }
        }
    }
    Ok(highest)
}

/// The `sqlite_sequence` high-water mark of `table` (AUTOINCREMENT), if any.
fn sequence(conn: &Connection, table: &str) -> rusqlite::Result<Option<i64>> {
    Ok(sequence_row(conn, table)?.map(|(_, mark)| mark))
}

/// Raises the new table's high-water mark to the old one's: the copy only
/// set it to the largest id copied, so a deleted id would be reused.
fn keep_sequence(conn: &Connection, table: &str, old_mark: i64) -> rusqlite::Result<()> {
    match sequence_row(conn, table)? {
        Some((_, mark)) if mark >= old_mark => Ok(()),
        Some((stored, _)) => conn
            .execute(
                "UPDATE main.sqlite_sequence SET seq = ?2 WHERE name = ?1",
                params![stored, old_mark],
            )
            .map(drop),
        // No row copied: the new table has no row in sqlite_sequence yet.
        None => conn
            .execute(
                "INSERT INTO main.sqlite_sequence (name, seq) VALUES (?1, ?2)",
                params![table, old_mark],
            )
            .map(drop),
    }
}

/// Runs one `CREATE` of a dependent in a savepoint, so that a failed one
/// leaves nothing, and reports it.
fn recreate(
    conn: &Connection,
    name: String,
    sql: &str,
    report: &mut RebuildReport,
) -> rusqlite::Result<()> {
    conn.execute_batch("SAVEPOINT migrate_core_rebuild_step")?;
    match conn.execute_batch(sql) {
        Ok(()) => {
            conn.execute_batch("RELEASE migrate_core_rebuild_step")?;
            report.recreated.push(name);
        }
        Err(error) => {
            conn.execute_batch(
                "ROLLBACK TO migrate_core_rebuild_step; RELEASE migrate_core_rebuild_step",
            )?;
            report.not_recreated.push((name, error.to_string()));
        }
    }
    Ok(())
}

/// SQLite stores `CREATE [UNIQUE] INDEX name …` and `CREATE TRIGGER name …`
/// without TEMP, IF NOT EXISTS or a schema. Puts the object in `schema`:
/// `main.` before the name (an unqualified name would find a TEMP table of
/// the same name first), or TEMP for a TEMP trigger. SQL of any other shape
/// runs as it is.
fn in_schema(sql: &str, schema: &str) -> String {
    for prefix in ["CREATE INDEX ", "CREATE UNIQUE INDEX ", "CREATE TRIGGER "] {
        let Some(rest) = sql
            .get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| &sql[prefix.len()..])
        else {
            continue;
        };
        return if schema == "temp" {
            format!("{}TEMP {}{rest}", &prefix[..7], &prefix[7..])
        } else {
            format!("{prefix}{schema}.{rest}")
        };
    }
    sql.to_owned()
}

/// Views of `main` and TEMP that no longer compile.
fn broken_views(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let views: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT 'main', name FROM main.sqlite_master WHERE type = 'view' \
             UNION ALL SELECT 'temp', name FROM temp.sqlite_master WHERE type = 'view' \
             ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut broken = Vec::new();
    for (schema, view) in views {
        if let Err(error) = conn.prepare(&format!(
            "SELECT * FROM {schema}.{} LIMIT 0",
            quote_identifier(&view)
        )) {
            broken.push((view, error.to_string()));
        }
    }
    Ok(broken)
}

/// A trigger of `main` or TEMP on a table, with where that table lives.
struct Trigger {
    schema: &'static str,
    name: String,
    sql: String,
    table_schema: &'static str,
    table: String,
}

/// Triggers of `main` and TEMP (on tables) that no longer compile. SQLite
/// compiles a trigger's body only when it prepares a statement that fires
/// it, so: prepare an INSERT, an UPDATE of every column and a DELETE on each
/// table with triggers. When one fails, find the culprits one by one, in a
/// savepoint rolled back at the end: with every trigger dropped, add them
/// back one at a time, and drop again each that breaks its table's
/// statements (so that it cannot be blamed on a trigger that fires it).
fn broken_triggers(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut triggers = Vec::new();
    for schema in ["main", "temp"] {
        let mut stmt = conn.prepare(&format!(
            "SELECT name, tbl_name, sql FROM {schema}.sqlite_master \
             WHERE type = 'trigger' AND sql IS NOT NULL ORDER BY name"
        ))?;
        let rows = stmt.query_map(params![], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        for row in rows {
            let (name, table, sql): (String, String, String) = row?;
            // migrate-core's own triggers on its tracking tables are not the
            // schema's; the runner refuses statements on those tables anyway.
            if sql.contains(crate::history::MARKER) {
                continue;
            }
            // A TEMP trigger is on a TEMP table of that name, or on main's.
            let table_schema = if schema == "temp" && exists(conn, "temp", "table", &table)? {
                "temp"
            } else if exists(conn, "main", "table", &table)? {
                "main"
            } else {
                continue; // on a view (INSTEAD OF), or on an attached table
            };
            triggers.push(Trigger {
                schema,
                name,
                sql,
                table_schema,
                table,
            });
        }
    }
    let mut tables: Vec<(&str, &str)> = Vec::new();
    for trigger in &triggers {
        let table = (trigger.table_schema, trigger.table.as_str());
        if !tables
            .iter()
            .any(|(s, t)| *s == table.0 && t.eq_ignore_ascii_case(table.1))
        {
            tables.push(table);
        }
    }
    let mut all_compile = true;
    for (schema, table) in &tables {
        if fires(conn, schema, table)?.is_some() {
            all_compile = false;
            break;
        }
    }
    if all_compile {
        return Ok(Vec::new());
    }
    conn.execute_batch("SAVEPOINT migrate_core_rebuild_check")?;
    let broken = isolate(conn, &triggers);
    conn.execute_batch(
        "ROLLBACK TO migrate_core_rebuild_check; RELEASE migrate_core_rebuild_check",
    )?;
    broken
}

fn isolate(conn: &Connection, triggers: &[Trigger]) -> rusqlite::Result<Vec<(String, String)>> {
    let drop = |trigger: &Trigger| {
        conn.execute_batch(&format!(
            "DROP TRIGGER {}.{}",
            trigger.schema,
            quote_identifier(&trigger.name)
        ))
    };
    for trigger in triggers {
        drop(trigger)?;
    }
    let mut broken = Vec::new();
    for trigger in triggers {
        let reason = match conn.execute_batch(&in_schema(&trigger.sql, trigger.schema)) {
            Err(error) => Some(error.to_string()),
            Ok(()) => {
                let reason = fires(conn, trigger.table_schema, &trigger.table)?;
                if reason.is_some() {
                    drop(trigger)?;
                }
                reason
            }
        };
        if let Some(reason) = reason {
            broken.push((trigger.name.clone(), reason));
        }
    }
    Ok(broken)
}

/// Prepares the statements that fire every trigger of `table`; the first
/// error, if any.
fn fires(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<Option<String>> {
    let target = format!("{schema}.{}", quote_identifier(table));
    let assignments: Vec<String> = columns(conn, schema, table)?
        .iter()
        .filter(|c| !c.generated)
        .map(|c| {
            let column = quote_identifier(&c.name);
            format!("{column} = {column}")
        })
        .collect();
    let mut statements = vec![
        format!("INSERT INTO {target} DEFAULT VALUES"),
        format!("DELETE FROM {target}"),
    ];
    if !assignments.is_empty() {
        statements.push(format!("UPDATE {target} SET {}", assignments.join(", ")));
    }
    for sql in statements {
        if let Err(error) = conn.prepare(&sql) {
            return Ok(Some(error.to_string()));
        }
    }
    Ok(None)
}

/// What follows the closing parenthesis of a `CREATE TABLE`: its options.
fn table_options(sql: &str) -> &str {
    let mut depth = 0usize;
    for token in Tokens::new(sql) {
        match token {
            Token::Char(b'(', _) => depth += 1,
            Token::Char(b')', end) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return sql.get(end..).unwrap_or("").trim();
                }
            }
            _ => {}
        }
    }
    ""
}

/// Whether `sql` holds the bare keyword `word` (not in a string, a quoted
/// name or a comment). `AUTOINCREMENT` cannot be an unquoted name.
fn has_keyword(sql: &str, word: &str) -> bool {
    Tokens::new(sql).any(|token| matches!(token, Token::Word(w) if w.eq_ignore_ascii_case(word)))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A token of SQL text, as far as this module needs one.
enum Token<'a> {
    /// An unquoted word: a keyword or a name.
    Word(&'a str),
    /// A string, a quoted name, or a run of anything else.
    Other,
    /// One ASCII punctuation byte, and the offset just after it.
    Char(u8, usize),
}

/// SQLite's lexical rules, simplified: white space and comments are
/// skipped; '…', "…", `…` and […] are single tokens.
struct Tokens<'a> {
    sql: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    fn new(sql: &'a str) -> Self {
        Tokens { sql, at: 0 }
    }

    /// The offset after the first `end` at or after `from`, or the end.
    fn after(&self, from: usize, end: &str) -> usize {
        self.sql
            .get(from..)
            .and_then(|rest| rest.find(end))
            .map_or(self.sql.len(), |i| from + i + end.len())
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.sql.as_bytes();
        loop {
            let start = self.at;
            let byte = *bytes.get(start)?;
            let next = bytes.get(start + 1).copied();
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
            match byte {
                b if b.is_ascii_whitespace() => self.at += 1,
                b'-' if next == Some(b'-') => self.at = self.after(start, "\n"),
                b'/' if next == Some(b'*') => self.at = self.after(start + 2, "*/"),
                b'\'' | b'"' | b'`' | b'[' => {
                    let close = if byte == b'[' { b']' } else { byte };
                    // A doubled quote inside is the quote itself: it
                    // ends one token and starts the next, which is harmless.
                    self.at = bytes[start + 1..]
                        .iter()
                        .position(|&b| b == close)
                        .map_or(bytes.len(), |i| start + 1 + i + 1);
                    return Some(Token::Other);
                }
                b if word(b) => {
                    let end = bytes[start..]
                        .iter()
                        .position(|&b| !word(b))
                        .map_or(bytes.len(), |i| start + i);
                    self.at = end;
                    return Some(Token::Word(self.sql.get(start..end).unwrap_or("")));
                }
                // Not a word byte, so ASCII: one punctuation character.
                _ => {
                    self.at += 1;
                    return Some(Token::Char(byte, self.at));
                }
            }
        }
    }
}

fn misuse(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_MISUSE), Some(message))
}
