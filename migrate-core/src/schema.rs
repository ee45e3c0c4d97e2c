//! The schema as text, for people and for comparisons: read from
//! `sqlite_master`, normalised token by token, printed one object per block,
//! read back from such a file, and compared object by object.
//!
//! Left out everywhere: SQLite's own objects (`sqlite_*`), the tracking
//! tables of this library with their triggers (their SQL carries
//! [`MARKER`]), and the shadow tables virtual tables keep (`posts_fts_data`
//! and the like: their SQL belongs to the SQLite build, not to the
//! migrations).
//!
//! Normalised: comments dropped; white space collapsed to one canonical
//! spacing; identifiers unquoted where SQL allows it (`"posts"`, `[posts]`
//! and `` `posts` `` are `posts`; `"my posts"` and a keyword such as
//! `"order"` keep double quotes); `IF NOT EXISTS` and a `main.` qualifier of
//! the object's own name dropped; in a table, a name SQLite reads as a
//! string (after `DEFAULT`; double-quoted and not a column, in a `CHECK`)
//! written as that string. Two objects are the same when their normalised
//! texts agree ignoring ASCII letter case outside string literals, as
//! SQLite itself compares keywords, identifiers and type names.

// Its users take different parts: `testing` reads files and compares, the
// lint measures tables, the CLI prints; each feature alone leaves some unused.
#![cfg_attr(not(all(feature = "testing", feature = "cli")), allow(dead_code))]

use std::fmt::{self, Write as _};

use rusqlite::{params, Connection};

use crate::error::{Error, ForeignKeyViolation};
use crate::history::MARKER;
use crate::sql_tokens::{statements, tokenize, Token};
use crate::sqlite::quote_identifier;

/// The first line of a rendered schema: the same for a replay and for a
/// live database, so that two renderings of one schema are identical.
pub(crate) const HEADER: &str =
    "-- Schema normalised by migrate-core: one object per block; its tracking tables left out.\n";

/// What a schema object is.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use migrate_core::testing::ObjectKind;
/// assert_eq!(ObjectKind::Index.to_string(), "index");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A table, virtual tables included.
    Table,
    /// An index written with `CREATE INDEX` (not the automatic ones behind
    /// `UNIQUE` and `PRIMARY KEY` constraints, which belong to their table).
    Index,
    /// A view.
    View,
    /// A trigger.
    Trigger,
}

impl ObjectKind {
    fn parse(word: &str) -> Option<ObjectKind> {
        Some(match word.to_ascii_lowercase().as_str() {
            "table" => ObjectKind::Table,
            "index" => ObjectKind::Index,
            "view" => ObjectKind::View,
            "trigger" => ObjectKind::Trigger,
            _ => return None,
        })
    }

    /// `table`, `index`, `view` or `trigger`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Index => "index",
            ObjectKind::View => "view",
            ObjectKind::Trigger => "trigger",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One schema object, normalised.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub kind: ObjectKind,
    pub name: String,
    /// The table (or view) it belongs to; its own name for tables and views.
    pub table: String,
    /// `sqlite_master.rootpage` (0 when read from a file, or for views and
    /// triggers).
    pub rootpage: i64,
    tokens: Vec<Token>,
    /// The comparison key: the canonical one-line text, words lowercased.
    key: String,
}

impl Object {
    fn new(kind: ObjectKind, name: String, table: String, rootpage: i64, sql: &str) -> Object {
        let tokens = canonical_tokens(tokenize(sql).into_iter().map(|(t, _)| t).collect());
        Object::from_tokens(kind, name, table, rootpage, tokens)
    }

    fn from_tokens(
        kind: ObjectKind,
        name: String,
        table: String,
        rootpage: i64,
        tokens: Vec<Token>,
    ) -> Object {
        let mut key = String::new();
        join(&tokens, &mut key, true);
        Object {
            kind,
            name,
            table,
            rootpage,
            tokens,
            key,
        }
    }

    /// Whether the two define the same object.
    pub fn same_definition(&self, other: &Object) -> bool {
        self.key == other.key
    }

    /// The normalised SQL on one line, without the final `;`.
    pub fn one_line(&self) -> String {
        let mut out = String::new();
        join(&self.tokens, &mut out, false);
        out
    }

    /// The normalised SQL as it is printed: a table one column per line, a
    /// trigger one statement per line, anything else on one line; with the
    /// final `;`.
    pub fn pretty(&self) -> String {
        let pretty = match self.kind {
            ObjectKind::Table => pretty_table(&self.tokens),
            ObjectKind::Trigger => pretty_trigger(&self.tokens),
            _ => None,
        };
        pretty.unwrap_or_else(|| format!("{};", self.one_line()))
    }

    /// `CREATE VIRTUAL TABLE`.
    pub fn is_virtual(&self) -> bool {
        self.kind == ObjectKind::Table && self.tokens.get(1).is_some_and(|t| t.is_word("virtual"))
    }

    /// Whether `now` is this object renamed: the same kind and the same
    /// definition but for its own name (as `ALTER TABLE … RENAME TO` leaves
    /// it).
    fn renamed_to(&self, now: &Object) -> bool {
        self.kind == now.kind
            && self.tokens.len() == now.tokens.len()
            && self.tokens.iter().zip(&now.tokens).all(|(a, b)| {
                a == b
                    || (a.name().is_some_and(|n| n.eq_ignore_ascii_case(&self.name))
                        && b.name().is_some_and(|n| n.eq_ignore_ascii_case(&now.name)))
            })
    }

    /// Kind and name, case-insensitively, identify an object in a schema.
    fn same_object(&self, kind: ObjectKind, name: &str) -> bool {
        self.kind == kind && self.name.eq_ignore_ascii_case(name)
    }
}

/// A schema: its objects, in the printed order (each table followed by its
/// indexes and triggers, tables by name; then views, each with its triggers).
#[derive(Debug, Clone, Default)]
pub(crate) struct Schema {
    pub objects: Vec<Object>,
}

/// Why a schema file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub line: u32,
    pub message: String,
}

impl Schema {
    /// The schema of `main`, normalised, without SQLite's objects, the
    /// tracking tables (and what is defined on them) and shadow tables.
    pub fn read(conn: &Connection) -> Result<Schema, Error> {
        let mut stmt = conn.prepare(
            "SELECT type, name, tbl_name, rootpage, sql FROM main.sqlite_master \
             WHERE sql IS NOT NULL",
        )?;
        let rows = stmt.query_map(params![], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut rows: Vec<_> = rows.collect::<Result<_, _>>()?;
        rows.retain(|(_, name, ..)| !crate::sqlite::is_internal(name));
        let tracking: Vec<&str> = rows
            .iter()
            .filter(|(kind, _, _, _, sql)| kind == "table" && sql.contains(MARKER))
            .map(|(_, name, _, _, _)| name.as_str())
            .collect();
        let shadow = shadow_tables(conn, &rows)?;
        let mut objects = Vec::new();
        for (kind, name, table, rootpage, sql) in &rows {
            let Some(kind) = ObjectKind::parse(kind) else {
                continue;
            };
            let ours = sql.contains(MARKER)
                || tracking.iter().any(|t| t.eq_ignore_ascii_case(table))
                || shadow.iter().any(|s| s.eq_ignore_ascii_case(table));
            if !ours {
                objects.push(Object::new(
                    kind,
                    name.clone(),
                    table.clone(),
                    *rootpage,
                    sql,
                ));
            }
        }
        Ok(Schema::sorted(objects))
    }

    /// Reads a schema file: `CREATE` statements, each ending with `;`
    /// (a trigger with `END;`), comments and blank lines anywhere, `\r\n` or
    /// `\n` line endings.
    pub fn parse(text: &str) -> Result<Schema, ParseError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut objects: Vec<Object> = Vec::new();
        for (line, tokens) in statements(tokenize(text)) {
            let object = parse_create(tokens).map_err(|message| ParseError { line, message })?;
            if objects
                .iter()
                .any(|o| o.same_object(object.kind, &object.name))
            {
                return Err(ParseError {
                    line,
                    message: format!(
                        "a second {} named {}: each object appears once",
                        object.kind, object.name
                    ),
                });
            }
            objects.push(object);
        }
        Ok(Schema::sorted(objects))
    }

    fn sorted(mut objects: Vec<Object>) -> Schema {
        let owners: Vec<(ObjectKind, String)> = objects
            .iter()
            .filter(|o| matches!(o.kind, ObjectKind::Table | ObjectKind::View))
            .map(|o| (o.kind, o.name.to_ascii_lowercase()))
            .collect();
        let group = |o: &Object| {
            let table = o.table.to_ascii_lowercase();
            let owner = owners
                .iter()
                .find(|(_, name)| *name == table)
                .map(|(kind, _)| *kind);
            let rank = match owner {
                Some(ObjectKind::Table) => 0,
                Some(_) => 1,
                None => 2,
            };
            (
                rank,
                table,
                o.kind,
                o.name.to_ascii_lowercase(),
                o.name.clone(),
            )
        };
        objects.sort_by_cached_key(group);
        Schema { objects }
    }

    /// What migrations leave after a run that changed `before` into
    /// `after`, when `recorded` is what they had left before it. An object
    /// the run found as recorded is taken as the run left it (created,
    /// changed, dropped or untouched); one it found changed outside
    /// migrations (added, altered or dropped by hand) stays as recorded,
    /// whatever the run did to it, so that the change by hand stays drift
    /// (the run's own change to that object then shows in it too: the two
    /// cannot be told apart).
    pub fn carry(recorded: &Schema, before: &Schema, after: &Schema) -> Schema {
        let find = |schema: &Schema, kind: ObjectKind, name: &str| -> Option<Object> {
            schema
                .objects
                .iter()
                .find(|o| o.same_object(kind, name))
                .cloned()
        };
        let mut keys: Vec<(ObjectKind, String)> = Vec::new();
        for object in recorded
            .objects
            .iter()
            .chain(&before.objects)
            .chain(&after.objects)
        {
            if !keys
                .iter()
                .any(|(kind, name)| object.same_object(*kind, name))
            {
                keys.push((object.kind, object.name.clone()));
            }
        }
        let changed_by_hand = |kind: ObjectKind, name: &str| match (
            find(recorded, kind, name),
            find(before, kind, name),
        ) {
            (Some(a), Some(b)) => !a.same_definition(&b),
            (None, None) => false,
            _ => true,
        };
        let objects = keys
            .into_iter()
            .filter_map(|(kind, name)| {
                // A table the run renamed is the object it was before, under
                // another name: the same root page, or the same definition
                // but for its name. (A VACUUM moves root pages, and a dropped
                // table's page can be reused: a match by page then makes a
                // table drift that is not, on the safe side; the definition
                // still finds a renamed table a VACUUM moved.)
                let renamed_from_changed = find(after, kind, &name).is_some_and(|now| {
                    before.objects.iter().any(|was| {
                        !was.name.eq_ignore_ascii_case(&name)
                            && changed_by_hand(was.kind, &was.name)
                            && ((now.rootpage != 0 && was.rootpage == now.rootpage)
                                || was.renamed_to(&now))
                    })
                });
                if changed_by_hand(kind, &name) || renamed_from_changed {
                    find(recorded, kind, &name)
                } else {
                    find(after, kind, &name)
                }
            })
            .collect();
        Schema::sorted(objects)
    }

    /// The text of a schema file: [`HEADER`], then each object in its block,
    /// blocks separated by a blank line, `\n` line endings.
    pub fn render(&self) -> String {
        let mut out = String::from(HEADER);
        for object in &self.objects {
            out.push('\n');
            out.push_str(&object.pretty());
            out.push('\n');
        }
        out
    }

    /// What differs from `expected` to `actual`, object by object, in the
    /// printed order of `actual` (removed objects in that of `expected`).
    pub fn changes(expected: &Schema, actual: &Schema) -> Vec<SchemaChange> {
        let mut changes = Vec::new();
        for object in &expected.objects {
            if !actual
                .objects
                .iter()
                .any(|o| o.same_object(object.kind, &object.name))
            {
                changes.push(SchemaChange::Removed {
                    kind: object.kind,
                    name: object.name.clone(),
                    sql: object.pretty(),
                });
            }
        }
        for object in &actual.objects {
            match expected
                .objects
                .iter()
                .find(|o| o.same_object(object.kind, &object.name))
            {
                None => changes.push(SchemaChange::Added {
                    kind: object.kind,
                    name: object.name.clone(),
                    sql: object.pretty(),
                }),
                Some(before) if !before.same_definition(object) => {
                    changes.push(SchemaChange::Changed {
                        kind: object.kind,
                        name: object.name.clone(),
                        expected: before.pretty(),
                        actual: object.pretty(),
                    })
                }
                Some(_) => {}
            }
        }
        changes
    }
}

/// One difference between two schemas.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use migrate_core::testing::{ObjectKind, SchemaChange};
/// let change = SchemaChange::Added {
///     kind: ObjectKind::Index,
///     name: "posts_slug".into(),
///     sql: "CREATE UNIQUE INDEX posts_slug ON posts(slug);".into(),
/// };
/// assert_eq!(change.name(), "posts_slug");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaChange {
    /// Only in the actual schema (built by the migrations, say).
    Added {
        /// What it is.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// Its normalised SQL, as printed.
        sql: String,
    },
    /// Only in the expected schema (the committed file, say).
    Removed {
        /// What it is.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// Its normalised SQL, as printed.
        sql: String,
    },
    /// In both, defined differently.
    Changed {
        /// What it is.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// The expected definition, normalised, as printed.
        expected: String,
        /// The actual definition, normalised, as printed.
        actual: String,
    },
}

impl SchemaChange {
    /// What the changed object is.
    pub fn kind(&self) -> ObjectKind {
        match self {
            SchemaChange::Added { kind, .. }
            | SchemaChange::Removed { kind, .. }
            | SchemaChange::Changed { kind, .. } => *kind,
        }
    }

    /// The changed object's name.
    pub fn name(&self) -> &str {
        match self {
            SchemaChange::Added { name, .. }
            | SchemaChange::Removed { name, .. }
            | SchemaChange::Changed { name, .. } => name,
        }
    }

    /// One line: what happened, and the object's SQL on one line.
    pub(crate) fn summary(&self, expected_label: &str, actual_label: &str) -> String {
        // Undoes the line breaks `pretty` puts into tables and triggers.
        let one_line = |sql: &str| {
            sql.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("( ", "(")
                .replace(" )", ")")
        };
        match self {
            SchemaChange::Added { kind, name, sql } => {
                format!("{kind} {name} appears {actual_label} (`{}`)", one_line(sql))
            }
            SchemaChange::Removed { kind, name, sql } => format!(
                "{kind} {name} is missing {actual_label} (it was `{}` {expected_label})",
                one_line(sql)
            ),
            SchemaChange::Changed {
                kind,
                name,
                expected,
                actual,
            } => format!(
                "{kind} {name} was `{}` {expected_label} and is `{}` {actual_label}",
                one_line(expected),
                one_line(actual)
            ),
        }
    }

    /// Several lines: the object's SQL, both versions of a changed one,
    /// with the lines only one version has marked `-` (expected) and `+`
    /// (actual). Each line ends with `\n`.
    pub(crate) fn write_detail(&self, out: &mut String, expected_label: &str, actual_label: &str) {
        let indent = |out: &mut String, marker: char, text: &str| {
            let _ = writeln!(out, "  {marker}   {text}");
        };
        match self {
            SchemaChange::Added { kind, name, sql } => {
                let _ = writeln!(out, "added: {kind} {name} ({actual_label} only)");
                sql.lines().for_each(|line| indent(out, '+', line));
            }
            SchemaChange::Removed { kind, name, sql } => {
                let _ = writeln!(out, "removed: {kind} {name} ({expected_label} only)");
                sql.lines().for_each(|line| indent(out, '-', line));
            }
            SchemaChange::Changed {
                kind,
                name,
                expected,
                actual,
            } => {
                let _ = writeln!(out, "changed: {kind} {name}");
                let expected: Vec<&str> = expected.lines().collect();
                let actual: Vec<&str> = actual.lines().collect();
                let (in_expected, in_actual) = common_lines(&expected, &actual);
                let _ = writeln!(out, "  {expected_label}:");
                for (line, common) in expected.iter().zip(in_expected) {
                    indent(out, if common { ' ' } else { '-' }, line);
                }
                let _ = writeln!(out, "  {actual_label}:");
                for (line, common) in actual.iter().zip(in_actual) {
                    indent(out, if common { ' ' } else { '+' }, line);
                }
            }
        }
    }
}

/// Which lines of each side belong to a longest common subsequence of the
/// two (the unmarked lines of a line diff).
fn common_lines(a: &[&str], b: &[&str]) -> (Vec<bool>, Vec<bool>) {
    // lengths[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lengths = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i][j] = if a[i] == b[j] {
                lengths[i + 1][j + 1] + 1
            } else {
                lengths[i + 1][j].max(lengths[i][j + 1])
            };
        }
    }
    let (mut in_a, mut in_b) = (vec![false; a.len()], vec![false; b.len()]);
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            in_a[i] = true;
            in_b[j] = true;
            i += 1;
            j += 1;
        } else if lengths[i + 1][j] >= lengths[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    (in_a, in_b)
}

/// The shadow tables of the virtual tables in `rows`: what SQLite's
/// `PRAGMA table_list` calls `shadow` (3.37 and later), or on an older
/// SQLite the tables named after a virtual table with the suffixes FTS3,
/// FTS4, FTS5 and R*Tree use.
fn shadow_tables(
    conn: &Connection,
    rows: &[(String, String, String, i64, String)],
) -> Result<Vec<String>, Error> {
    if let Ok(mut stmt) =
        conn.prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'")
    {
        let names = stmt.query_map(params![], |r| r.get::<_, String>(0))?;
        return Ok(names.collect::<Result<_, _>>()?);
    }
    const SUFFIXES: [&str; 11] = [
        "content", "docsize", "config", "data", "idx", "segments", "segdir", "stat", "node",
        "rowid", "parent",
    ];
    let mut shadow = Vec::new();
    for (_, vtab, _, _, sql) in rows {
        let tokens = tokenize(sql);
        let is_virtual =
            matches!(tokens.get(1), Some((Token::Word(w), _)) if w.eq_ignore_ascii_case("virtual"));
        if is_virtual {
            for (_, name, _, _, _) in rows {
                let lower = name.to_ascii_lowercase();
                let prefix = format!("{}_", vtab.to_ascii_lowercase());
                if let Some(suffix) = lower.strip_prefix(&prefix) {
                    if SUFFIXES.contains(&suffix) {
                        shadow.push(name.clone());
                    }
                }
            }
        }
    }
    Ok(shadow)
}

/// The migrations of `migrator`'s set, all applied on a new in-memory
/// database with foreign keys on: the schema they build.
#[cfg(feature = "cli")]
pub(crate) fn replay(migrator: &crate::migrator::Migrator) -> Result<Connection, Error> {
    let mut conn = Connection::open_in_memory()?;
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    migrator.migrate(&mut conn)?;
    Ok(conn)
}

/// `PRAGMA integrity_check`: the problems it lists (none when it says `ok`).
pub(crate) fn integrity_problems(conn: &Connection) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare("PRAGMA main.integrity_check")?;
    let rows = stmt.query_map(params![], |r| r.get::<_, String>(0))?;
    let rows: Vec<String> = rows.collect::<Result<_, _>>()?;
    Ok(rows.into_iter().filter(|row| row != "ok").collect())
}

/// `PRAGMA foreign_key_check`, every row. A foreign key naming a view, a
/// virtual table or columns without a unique index makes SQLite refuse
/// the whole check ("foreign key mismatch"; a probe's finding: the lint
/// failed on any database holding one): the tables are then checked one by
/// one, and those SQLite cannot check are left out (their keys cannot be
/// enforced either).
pub(crate) fn foreign_key_violations(conn: &Connection) -> Result<Vec<ForeignKeyViolation>, Error> {
    match violations_of(conn, "PRAGMA main.foreign_key_check") {
        Err(rusqlite::Error::SqliteFailure(_, Some(message)))
            if message.contains("foreign key mismatch") =>
        {
            let mut stmt =
                conn.prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'")?;
            let mut tables = stmt
                .query_map(params![], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            tables.retain(|name| !crate::sqlite::is_internal(name));
            let mut found = Vec::new();
            for table in tables {
                let check = format!(
                    "PRAGMA main.foreign_key_check({})",
                    quote_identifier(&table)
                );
                if let Ok(rows) = violations_of(conn, &check) {
                    found.extend(rows);
                }
            }
            Ok(found)
        }
        other => Ok(other?),
    }
}

fn violations_of(conn: &Connection, check: &str) -> rusqlite::Result<Vec<ForeignKeyViolation>> {
    let mut stmt = conn.prepare(check)?;
    let rows = stmt.query_map(params![], |r| {
        Ok(ForeignKeyViolation {
            table: r.get(0)?,
            rowid: r.get(1)?,
            parent: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Drops `IF NOT EXISTS`, `TEMP` and a schema qualifier on the object's
/// own name from a `CREATE` statement's tokens: SQLite stores a table's or
/// an index's SQL without them, and they do not change what is created.
fn canonical_tokens(mut tokens: Vec<Token>) -> Vec<Token> {
    if !tokens.first().is_some_and(|t| t.is_word("create")) {
        return tokens;
    }
    let mut i = 1;
    while tokens
        .get(i)
        .is_some_and(|t| t.is_word("temp") || t.is_word("temporary"))
    {
        tokens.remove(i);
    }
    while tokens
        .get(i)
        .is_some_and(|t| t.is_word("unique") || t.is_word("virtual"))
    {
        i += 1;
    }
    // The kind.
    i += 1;
    if tokens.get(i).is_some_and(|t| t.is_word("if"))
        && tokens.get(i + 1).is_some_and(|t| t.is_word("not"))
        && tokens.get(i + 2).is_some_and(|t| t.is_word("exists"))
    {
        tokens.drain(i..i + 3);
    }
    if tokens.get(i + 1).is_some_and(|t| t.is_punct(".")) && tokens.get(i + 2).is_some() {
        tokens.drain(i..i + 2);
    }
    if tokens.get(i - 1).is_some_and(|t| t.is_word("table")) {
        strings_as_sqlite_reads_them(&mut tokens);
    }
    tokens
}

/// In a `CREATE TABLE`, the identifiers SQLite reads as strings, written as
/// the strings they are, so that their letter case counts: a name after
/// `DEFAULT` (`DEFAULT "Active"` and `DEFAULT Active` are `'Active'`, but
/// not `TRUE`, `FALSE` or a keyword such as `CURRENT_TIMESTAMP`), and a
/// double-quoted name inside `CHECK (…)` that is not one of the table's
/// columns (SQLite's legacy double-quoted strings: `k IN ("a", "b")`).
fn strings_as_sqlite_reads_them(tokens: &mut [Token]) {
    let string = |name: &str| Token::Literal(format!("'{}'", name.replace('\'', "''")));
    let columns = column_names(tokens);
    let mut check_until: Option<usize> = None;
    for k in 0..tokens.len() {
        if check_until.is_some_and(|end| k > end) {
            check_until = None;
        }
        if tokens[k].is_word("check") && tokens.get(k + 1).is_some_and(|t| t.is_punct("(")) {
            check_until = matching_paren(tokens, k + 1);
        }
        let after_default = k > 0 && tokens[k - 1].is_word("default");
        let replacement = match &tokens[k] {
            Token::Ident(name) if after_default => Some(string(name)),
            Token::Word(word)
                if after_default
                    && word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && !is_keyword(word)
                    && !word.eq_ignore_ascii_case("true")
                    && !word.eq_ignore_ascii_case("false") =>
            {
                Some(string(word))
            }
            Token::Ident(name)
                if check_until.is_some()
                    && !columns.iter().any(|c| c.eq_ignore_ascii_case(name)) =>
            {
                Some(string(name))
            }
            _ => None,
        };
        if let Some(replacement) = replacement {
            tokens[k] = replacement;
        }
    }
}

/// The column names of a `CREATE TABLE`: the first token of each
/// definition in its parentheses that is not a table constraint.
fn column_names(tokens: &[Token]) -> Vec<String> {
    let Some(open) = tokens.iter().position(|t| t.is_punct("(")) else {
        return Vec::new();
    };
    let close = matching_paren(tokens, open).unwrap_or(tokens.len());
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut starts = true;
    for token in &tokens[open + 1..close] {
        if starts {
            let constraint = ["constraint", "primary", "unique", "check", "foreign"]
                .iter()
                .any(|word| token.is_word(word));
            if let (false, Some(name)) = (constraint, token.name()) {
                names.push(name.to_owned());
            }
            starts = false;
        }
        if token.is_punct("(") {
            depth += 1;
        } else if token.is_punct(")") {
            depth = depth.saturating_sub(1);
        } else if token.is_punct(",") && depth == 0 {
            starts = true;
        }
    }
    names
}

impl Token {
    /// Writes the token as a schema file shows it; `key` lowercases all
    /// but literals, for comparing.
    fn write(&self, out: &mut String, key: bool) {
        let start = out.len();
        match self {
            Token::Word(w) | Token::Punct(w) | Token::Literal(w) => out.push_str(w),
            Token::Ident(name) if is_bare(name) => out.push_str(name),
            Token::Ident(name) => {
                out.push('"');
                out.push_str(&name.replace('"', "\"\""));
                out.push('"');
            }
        }
        if key && !matches!(self, Token::Literal(_)) {
            out[start..].make_ascii_lowercase();
        }
    }
}

/// A `CREATE` statement of a schema file as an object.
fn parse_create(tokens: Vec<Token>) -> Result<Object, String> {
    let tokens = canonical_tokens(tokens);
    let shown = |tokens: &[Token]| {
        let mut text = String::new();
        join(&tokens[..tokens.len().min(6)], &mut text, false);
        text
    };
    if !tokens.first().is_some_and(|t| t.is_word("create")) {
        return Err(format!(
            "`{} …` is not a CREATE statement: a schema file holds CREATE TABLE, INDEX, VIEW \
             and TRIGGER statements only",
            shown(&tokens)
        ));
    }
    let mut i = 1;
    while tokens
        .get(i)
        .is_some_and(|t| t.is_word("unique") || t.is_word("virtual"))
    {
        i += 1;
    }
    let kind = match tokens.get(i) {
        Some(Token::Word(word)) => ObjectKind::parse(word),
        _ => None,
    };
    let Some(kind) = kind else {
        return Err(format!(
            "`{} …`: expected CREATE TABLE, INDEX, VIEW or TRIGGER",
            shown(&tokens)
        ));
    };
    let Some(name) = tokens.get(i + 1).and_then(Token::name).map(str::to_owned) else {
        return Err(format!("`{} …`: the {kind} has no name", shown(&tokens)));
    };
    let table = match kind {
        ObjectKind::Table | ObjectKind::View => name.clone(),
        ObjectKind::Index | ObjectKind::Trigger => {
            let on = tokens[i + 2..].iter().position(|t| t.is_word("on"));
            let mut at = on.map(|p| i + 3 + p);
            // `ON main.posts`
            if at.is_some_and(|a| tokens.get(a + 1).is_some_and(|t| t.is_punct("."))) {
                at = at.map(|a| a + 2);
            }
            match at.and_then(|a| tokens.get(a)).and_then(Token::name) {
                Some(table) => table.to_owned(),
                None => {
                    return Err(format!(
                        "`{} …`: the {kind} {name} names no table (ON …)",
                        shown(&tokens)
                    ))
                }
            }
        }
    };
    Ok(Object::from_tokens(kind, name, table, 0, tokens))
}

// ---------------------------------------------------------------------------
// Printing

/// SQLite's keywords (`sqlite3_keyword_name`, SQLite 3.45): an identifier
/// spelled like one keeps its quotes.
#[rustfmt::skip]
const KEYWORDS: [&str; 147] = [
    "ABORT", "ACTION", "ADD", "AFTER", "ALL", "ALTER", "ALWAYS", "ANALYZE", "AND", "AS", "ASC",
    "ATTACH", "AUTOINCREMENT", "BEFORE", "BEGIN", "BETWEEN", "BY", "CASCADE", "CASE", "CAST",
    "CHECK", "COLLATE", "COLUMN", "COMMIT", "CONFLICT", "CONSTRAINT", "CREATE", "CROSS", "CURRENT",
    "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "DATABASE", "DEFAULT", "DEFERRABLE",
    "DEFERRED", "DELETE", "DESC", "DETACH", "DISTINCT", "DO", "DROP", "EACH", "ELSE", "END",
    "ESCAPE", "EXCEPT", "EXCLUDE", "EXCLUSIVE", "EXISTS", "EXPLAIN", "FAIL", "FILTER", "FIRST",
    "FOLLOWING", "FOR", "FOREIGN", "FROM", "FULL", "GENERATED", "GLOB", "GROUP", "GROUPS", "HAVING",
    "IF", "IGNORE", "IMMEDIATE", "IN", "INDEX", "INDEXED", "INITIALLY", "INNER", "INSERT",
    "INSTEAD", "INTERSECT", "INTO", "IS", "ISNULL", "JOIN", "KEY", "LAST", "LEFT", "LIKE", "LIMIT",
    "MATCH", "MATERIALIZED", "NATURAL", "NO", "NOT", "NOTHING", "NOTNULL", "NULL", "NULLS", "OF",
    "OFFSET", "ON", "OR", "ORDER", "OTHERS", "OUTER", "OVER", "PARTITION", "PLAN", "PRAGMA",
    "PRECEDING", "PRIMARY", "QUERY", "RAISE", "RANGE", "RECURSIVE", "REFERENCES", "REGEXP",
    "REINDEX", "RELEASE", "RENAME", "REPLACE", "RESTRICT", "RETURNING", "RIGHT", "ROLLBACK", "ROW",
    "ROWS", "SAVEPOINT", "SELECT", "SET", "TABLE", "TEMP", "TEMPORARY", "THEN", "TIES", "TO",
    "TRANSACTION", "TRIGGER", "UNBOUNDED", "UNION", "UNIQUE", "UPDATE", "USING", "VACUUM", "VALUES",
    "VIEW", "VIRTUAL", "WHEN", "WHERE", "WINDOW", "WITH", "WITHOUT",
];

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Whether a name can be written without quotes.
fn is_bare(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(name)
}

/// Whether `(` after this word is written with a space: after a keyword
/// that is not also a function's name (`IN (…)`, `KEY (…)`, but `cast(…)`,
/// `replace(…)` and every other call or name: `posts(id)`, `fts5(…)`).
fn space_before_paren(word: &str) -> bool {
    const CALLS: [&str; 6] = ["CAST", "RAISE", "REPLACE", "LIKE", "GLOB", "REGEXP"];
    is_keyword(word) && !CALLS.iter().any(|c| c.eq_ignore_ascii_case(word))
}

/// Writes tokens on one line with the canonical spacing: one space between
/// tokens, none before `,`, `)`, `;` and `.`, none after `(` and `.`, none
/// between a name and its `(`, none after a unary `-` or `+`. With `key`,
/// words are lowercased.
fn join(tokens: &[Token], out: &mut String, key: bool) {
    let mut previous: Option<&Token> = None;
    let mut unary = false;
    for token in tokens {
        if let Some(prev) = previous {
            let space = match (prev, token) {
                (_, Token::Punct(p)) if matches!(p.as_str(), "," | ")" | ";" | ".") => false,
                (Token::Punct(p), _) if matches!(p.as_str(), "(" | ".") => false,
                _ if unary => false,
                (Token::Word(w), Token::Punct(p)) if p == "(" => space_before_paren(w),
                (Token::Ident(_) | Token::Literal(_), Token::Punct(p)) if p == "(" => false,
                _ => true,
            };
            if space {
                out.push(' ');
            }
        }
        // A sign is unary after an operator, `(`, `,` or a keyword.
        unary = matches!(token, Token::Punct(p) if p == "-" || p == "+")
            && match previous {
                None => true,
                Some(Token::Punct(p)) => p != ")",
                Some(Token::Word(w)) => is_keyword(w),
                Some(_) => false,
            };
        token.write(out, key);
        previous = Some(token);
    }
}

/// Where the parenthesis opened at `open` closes.
fn matching_paren(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        if token.is_punct("(") {
            depth += 1;
        } else if token.is_punct(")") {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// `CREATE TABLE t (` / one column or constraint per line / `);`.
fn pretty_table(tokens: &[Token]) -> Option<String> {
    if tokens.get(1).is_some_and(|t| t.is_word("virtual")) {
        return None;
    }
    let open = tokens.iter().position(|t| t.is_punct("("))?;
    let close = matching_paren(tokens, open)?;
    let mut out = String::new();
    join(&tokens[..open], &mut out, false);
    out.push_str(" (\n");
    let body = &tokens[open + 1..close];
    let mut depth = 0usize;
    let mut element = Vec::new();
    let mut elements = Vec::new();
    for token in body {
        if token.is_punct("(") {
            depth += 1;
        } else if token.is_punct(")") {
            depth = depth.saturating_sub(1);
        } else if token.is_punct(",") && depth == 0 {
            elements.push(std::mem::take(&mut element));
            continue;
        }
        element.push(token.clone());
    }
    elements.push(element);
    let last = elements.len() - 1;
    for (i, element) in elements.iter().enumerate() {
        out.push_str("    ");
        join(element, &mut out, false);
        out.push_str(if i == last { "\n" } else { ",\n" });
    }
    out.push(')');
    let tail = &tokens[close + 1..];
    if !tail.is_empty() {
        out.push(' ');
        join(tail, &mut out, false);
    }
    out.push(';');
    Some(out)
}

/// `CREATE TRIGGER … BEGIN` / one statement per line / `END;`.
fn pretty_trigger(tokens: &[Token]) -> Option<String> {
    let begin = tokens.iter().position(|t| t.is_word("begin"))?;
    let end = tokens.len() - 1;
    if end <= begin || !tokens[end].is_word("end") {
        return None;
    }
    let mut out = String::new();
    join(&tokens[..=begin], &mut out, false);
    out.push('\n');
    for statement in tokens[begin + 1..end].split(|t| t.is_punct(";")) {
        if !statement.is_empty() {
            out.push_str("    ");
            join(statement, &mut out, false);
            out.push_str(";\n");
        }
    }
    out.push_str("END;");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sql: &str) -> String {
        Object::new(ObjectKind::Table, "t".into(), "t".into(), 0, sql).key
    }

    fn pretty(kind: ObjectKind, sql: &str) -> String {
        Object::new(kind, "x".into(), "x".into(), 0, sql).pretty()
    }

    #[test]
    fn what_sqlite_reads_as_a_string_keeps_its_case() {
        let default = |value: &str| key(&format!("CREATE TABLE t (k TEXT DEFAULT {value})"));
        // A name after DEFAULT is a string to SQLite.
        assert_eq!(default("\"Active\""), default("'Active'"));
        assert_eq!(default("Active"), default("'Active'"));
        assert_ne!(default("\"Active\""), default("\"active\""));
        assert_ne!(default("Active"), default("active"));
        // Keywords and booleans are not.
        assert_eq!(default("CURRENT_TIMESTAMP"), default("current_timestamp"));
        assert_eq!(default("TRUE"), default("true"));
        assert_ne!(default("TRUE"), default("'TRUE'"));
        // In a CHECK, a double-quoted name that is no column is a string…
        let check = |expr: &str| key(&format!("CREATE TABLE t (k TEXT, CHECK ({expr}))"));
        assert_ne!(check("k IN (\"a\", \"b\")"), check("k IN (\"A\", \"B\")"));
        assert_eq!(check("k IN (\"a\", \"b\")"), check("k IN ('a', 'b')"));
        // …and a column's name is the column, in any case.
        assert_eq!(check("\"K\" <> ''"), check("k <> ''"));
        assert_eq!(
            key("CREATE TABLE t (k TEXT CHECK (\"K\" <> ''))"),
            key("CREATE TABLE t (k TEXT CHECK (k <> ''))")
        );
    }

    #[test]
    fn white_space_comments_quotes_and_case_do_not_count() {
        let canonical = key("CREATE TABLE t (a TEXT, b INT)");
        for same in [
            "CREATE TABLE t (\n    a TEXT ,\n    b INT\n)",
            "CREATE TABLE \"t\"(a TEXT,b INT)",
            "CREATE TABLE [t] (`a` text, b int) ",
            "create table t ( -- the first column\n a TEXT /* , c */, b INT)",
            "CREATE TABLE IF NOT EXISTS main.t (a TEXT, b INT)",
            "CREATE TABLE t (a TEXT,\r\n b INT)",
        ] {
            assert_eq!(key(same), canonical, "{same}");
        }
        for different in [
            "CREATE TABLE t (a TEXT, b INTEGER)",
            "CREATE TABLE t (a TEXT, b INT, c)",
            "CREATE TABLE \"my t\" (a TEXT, b INT)",
        ] {
            assert_ne!(key(different), canonical, "{different}");
        }
        // Inside a literal, nothing is normalised.
        assert_ne!(
            key("CREATE TABLE t (a DEFAULT 'x  y')"),
            key("CREATE TABLE t (a DEFAULT 'x y')")
        );
        assert_ne!(
            key("CREATE TABLE t (a DEFAULT 'X')"),
            key("CREATE TABLE t (a DEFAULT 'x')")
        );
        assert_eq!(
            key("CREATE TABLE t (a DEFAULT 'say \"hi\" -- not a comment')"),
            key("CREATE TABLE t (a DEFAULT 'say \"hi\" -- not a comment')")
        );
        assert!(key("CREATE TABLE t (a DEFAULT 'it''s')").contains("'it''s'"));
    }

    #[test]
    fn names_that_need_quotes_keep_them() {
        let object = Object::new(
            ObjectKind::Table,
            "t".into(),
            "t".into(),
            0,
            "CREATE TABLE \"t\" (\"order\" INT, \"my col\" TEXT, [x\"y] BLOB, \"_ok1\")",
        );
        assert_eq!(
            object.one_line(),
            "CREATE TABLE t(\"order\" INT, \"my col\" TEXT, \"x\"\"y\" BLOB, _ok1)"
        );
    }

    #[test]
    fn spacing() {
        let one_line =
            |sql: &str| Object::new(ObjectKind::View, "v".into(), "v".into(), 0, sql).one_line();
        assert_eq!(
            one_line("CREATE VIEW v AS SELECT count( * ) , x.y FROM t WHERE a IN(1,2) AND b>-1 AND c = - 2"),
            "CREATE VIEW v AS SELECT count(*), x.y FROM t WHERE a IN (1, 2) AND b > -1 AND c = -2"
        );
        assert_eq!(
            one_line("CREATE VIEW v AS SELECT a-1, X'0aFF', cast(b AS TEXT), a->>'$.x' FROM t"),
            "CREATE VIEW v AS SELECT a - 1, X'0aFF', cast(b AS TEXT), a ->> '$.x' FROM t"
        );
        assert_eq!(
            one_line("CREATE VIEW v AS SELECT 1.5e-3, .5"),
            "CREATE VIEW v AS SELECT 1.5e-3, .5"
        );
    }

    #[test]
    fn tables_print_one_column_per_line() {
        assert_eq!(
            pretty(
                ObjectKind::Table,
                "CREATE TABLE posts (id INTEGER PRIMARY KEY, n NUMERIC(10, 2) CHECK (n > 0), \
                 UNIQUE (id, n)) WITHOUT ROWID"
            ),
            "CREATE TABLE posts (\n    id INTEGER PRIMARY KEY,\n    n NUMERIC(10, 2) CHECK (n > 0),\n    \
             UNIQUE (id, n)\n) WITHOUT ROWID;"
        );
        assert_eq!(
            pretty(ObjectKind::Table, "CREATE VIRTUAL TABLE f USING fts5(a, b)"),
            "CREATE VIRTUAL TABLE f USING fts5(a, b);"
        );
    }

    #[test]
    fn triggers_print_one_statement_per_line() {
        let sql = "CREATE TRIGGER t_x AFTER UPDATE ON t BEGIN UPDATE t SET x = CASE WHEN new.x > 0 THEN 1 END; \
                   INSERT INTO log VALUES ('a;b'); END";
        let printed = pretty(ObjectKind::Trigger, sql);
        assert_eq!(
            printed,
            "CREATE TRIGGER t_x AFTER UPDATE ON t BEGIN\n    \
             UPDATE t SET x = CASE WHEN new.x > 0 THEN 1 END;\n    \
             INSERT INTO log VALUES ('a;b');\nEND;"
        );
        // And a file holding it reads back as one object.
        let schema = Schema::parse(&format!("{printed}\n\nCREATE TABLE t (x);\n")).expect("parses");
        assert_eq!(schema.objects.len(), 2);
        assert_eq!(schema.objects[1].kind, ObjectKind::Trigger);
        assert_eq!(schema.objects[1].table, "t");
    }

    #[test]
    fn a_rendered_schema_reads_back_the_same() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE b (id INTEGER PRIMARY KEY, \"order\" TEXT DEFAULT 'a  b' -- c\n);
             CREATE TABLE a (id INTEGER PRIMARY KEY, b_id REFERENCES b (id) ON DELETE CASCADE);
             CREATE INDEX a_b ON a (b_id) WHERE b_id > 0;
             CREATE VIEW v AS SELECT a.id FROM a JOIN b ON a.b_id = b.id;
             CREATE TRIGGER a_ins AFTER INSERT ON a BEGIN SELECT CASE WHEN new.id < 0 THEN RAISE(ABORT, 'neg') END; END;
             CREATE VIRTUAL TABLE f USING fts5(x);
             CREATE TABLE m ( -- migrate-core tracking table
                 id INTEGER PRIMARY KEY);
             CREATE TRIGGER m_t AFTER INSERT ON m BEGIN SELECT 1; END;",
        )
        .expect("schema");
        let schema = Schema::read(&conn).expect("read");
        let names: Vec<&str> = schema.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "a_b", "a_ins", "b", "f", "v"]);
        let text = schema.render();
        assert!(text.starts_with(HEADER) && text.ends_with(";\n") && !text.contains('\r'));
        let again = Schema::parse(&text).expect("parses");
        assert!(Schema::changes(&schema, &again).is_empty(), "{text}");
        assert_eq!(again.render(), text);
        let crlf = Schema::parse(&text.replace('\n', "\r\n")).expect("parses CRLF");
        assert!(Schema::changes(&schema, &crlf).is_empty());
    }

    #[test]
    fn changes_are_object_by_object() {
        let before = Schema::parse(
            "CREATE TABLE t (\n a INT,\n b TEXT\n);\nCREATE INDEX t_a ON t (a);\nCREATE VIEW v AS SELECT 1;",
        )
        .expect("parses");
        let after = Schema::parse(
            "CREATE TABLE t (a INT, b INTEGER);\nCREATE INDEX t_b ON t (b);\nCREATE VIEW v AS SELECT 1;",
        )
        .expect("parses");
        let changes = Schema::changes(&before, &after);
        let summary: Vec<(ObjectKind, &str, &str)> = changes
            .iter()
            .map(|c| {
                let what = match c {
                    SchemaChange::Added { .. } => "added",
                    SchemaChange::Removed { .. } => "removed",
                    SchemaChange::Changed { .. } => "changed",
                };
                (c.kind(), c.name(), what)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (ObjectKind::Index, "t_a", "removed"),
                (ObjectKind::Table, "t", "changed"),
                (ObjectKind::Index, "t_b", "added"),
            ]
        );
        let mut detail = String::new();
        changes[1].write_detail(&mut detail, "expected", "actual");
        assert_eq!(
            detail,
            "changed: table t\n  expected:\n      CREATE TABLE t (\n          a INT,\n  -       b TEXT\n      );\n  \
             actual:\n      CREATE TABLE t (\n          a INT,\n  +       b INTEGER\n      );\n"
        );
    }

    #[test]
    fn bad_files_are_refused_with_their_line() {
        let error = Schema::parse("CREATE TABLE t (a);\n\nDROP TABLE t;\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(
            error.message.contains("not a CREATE statement"),
            "{}",
            error.message
        );
        let error = Schema::parse("CREATE TABLE t (a);\nCREATE TABLE T (b);").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(
            error.message.contains("a second table named T"),
            "{}",
            error.message
        );
        // Never a panic, whatever the text.
        for text in [
            "'",
            "\"",
            "/*",
            "CREATE",
            "CREATE INDEX",
            "CREATE INDEX i ON",
            "CREATE TRIGGER x BEGIN",
            "(((",
            "-",
        ] {
            let _ = Schema::parse(text);
        }
    }
}
