//! SQLite's table-rebuild procedure, for the changes `ALTER TABLE` cannot
//! make (a column's type, constraints or default).

use rusqlite::{ffi, params, Connection};

use crate::history::quote_identifier;

/// Rebuilds a table with a new definition, keeping its data, indexes and
/// triggers: create the new table, copy the rows through a column mapping,
/// drop the old table, rename the new one, recreate the old indexes and
/// triggers that still apply, and recheck every view.
///
/// Use it inside a `#[migration(n, foreign_keys = off)]` migration: with
/// foreign keys on, dropping the old table would cascade into its children,
/// so the rebuild refuses to run then.
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
    mapping: Vec<(String, String)>,
}

/// What a [`TableRebuild`] did besides the table itself.
///
/// ```
/// let report = migrate_core::RebuildReport::default();
/// assert!(report.not_recreated.is_empty() && report.broken_views.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RebuildReport {
    /// Rows copied.
    pub rows: usize,
    /// The indexes and triggers of the old table recreated on the new one.
    pub recreated: Vec<String>,
    /// Those that no longer apply (for example an index on a column that is
    /// gone), with SQLite's reason. They are not in the schema any more.
    pub not_recreated: Vec<(String, String)>,
    /// Views that no longer compile against the new table, with the reason.
    pub broken_views: Vec<(String, String)>,
}

impl TableRebuild {
    /// Starts a rebuild of `table`.
    ///
    /// ```
    /// let rebuild = migrate_core::TableRebuild::new("posts");
    /// # let _ = rebuild;
    /// ```
    pub fn new(table: impl Into<String>) -> Self {
        TableRebuild {
            table: table.into(),
            definition: None,
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

    /// Fills new column `column` with an SQL expression over the old row.
    /// Without a mapping, a new column takes the old column of the same name,
    /// or its default when the old table has none.
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

    /// Performs the rebuild on `conn` (the migration's transaction).
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
                 is dropped: run it in a #[migration(n, foreign_keys = off)] migration",
                self.table
            )));
        }
        let old = quote_identifier(&self.table);
        let temp_name = format!("migrate_core_rebuild_{}", self.table);
        let temp = quote_identifier(&temp_name);

        // Indexes and triggers are dropped with the table: keep their SQL.
        // (Automatic indexes of UNIQUE/PRIMARY KEY constraints have no SQL and
        // come back with the new definition.)
        let dependents: Vec<(String, String)> = {
            let mut stmt = conn.prepare(
                "SELECT name, sql FROM sqlite_master \
                 WHERE tbl_name = ?1 AND type IN ('index', 'trigger') AND sql IS NOT NULL \
                 ORDER BY type = 'trigger', name",
            )?;
            let rows = stmt.query_map([&self.table], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let old_columns = columns_of(conn, &self.table)?;
        if old_columns.is_empty() {
            return Err(misuse(format!(
                "TableRebuild: there is no table {:?}",
                self.table
            )));
        }

        conn.execute_batch(&format!("CREATE TABLE {temp} ({definition})"))?;
        let new_columns = columns_of(conn, &temp_name)?;
        for (column, _) in &self.mapping {
            if !new_columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                return Err(misuse(format!(
                    "TableRebuild of {:?}: .map({column:?}, …) names no column of the new definition",
                    self.table
                )));
            }
        }
        let mut targets = Vec::new();
        let mut sources = Vec::new();
        for column in &new_columns {
            let mapped = self
                .mapping
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(column));
            let source = match mapped {
                Some((_, expression)) => Some(expression.clone()),
                None => old_columns
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(column))
                    .map(|c| quote_identifier(c)),
            };
            if let Some(source) = source {
                targets.push(quote_identifier(column));
                sources.push(source);
            }
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
        let renamed = conn.execute_batch(&format!("ALTER TABLE {temp} RENAME TO {old}"));
        if !legacy {
            conn.execute_batch("PRAGMA legacy_alter_table = OFF")?;
        }
        renamed?;

        let mut report = RebuildReport {
            rows,
            ..RebuildReport::default()
        };
        for (name, sql) in dependents {
            // A savepoint keeps a failed re-creation from leaving anything.
            conn.execute_batch("SAVEPOINT migrate_core_rebuild")?;
            match conn.execute_batch(&sql) {
                Ok(()) => {
                    conn.execute_batch("RELEASE migrate_core_rebuild")?;
                    report.recreated.push(name);
                }
                Err(error) => {
                    conn.execute_batch(
                        "ROLLBACK TO migrate_core_rebuild; RELEASE migrate_core_rebuild",
                    )?;
                    report.not_recreated.push((name, error.to_string()));
                }
            }
        }
        let views: Vec<String> = {
            let mut stmt =
                conn.prepare("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")?;
            let rows = stmt.query_map(params![], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for view in views {
            if let Err(error) = conn.prepare(&format!(
                "SELECT * FROM {} LIMIT 0",
                quote_identifier(&view)
            )) {
                report.broken_views.push((view, error.to_string()));
            }
        }
        Ok(report)
    }
}

fn columns_of(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    let rows = stmt.query_map([table], |r| r.get(0))?;
    rows.collect()
}

fn misuse(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_MISUSE), Some(message))
}
