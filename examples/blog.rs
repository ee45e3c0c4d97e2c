//! A small blog engine's schema history: six SQL files (initial schema,
//! unique tags, full-text search, a summary column, comments, an admin flag),
//! one Rust data migration (back-filling slugs) and one table rebuild that
//! changes a column's type.
//!
//! ```text
//! cargo run -p migrate-examples --bin blog                    # migrate ./blog.db, print the status
//! cargo run -p migrate-examples --bin blog -- --search rust   # … and search the posts' full-text index
//! cargo run -p migrate-examples --bin blog -- down            # undo the newest migration (repeat to walk down)
//! cargo run -p migrate-examples --bin blog -- down --all      # undo every migration
//! cargo run -p migrate-examples --bin blog -- --help          # status, up, down, plan, verify, dry-run, backup, …
//! ```

use std::io::Write;

use clap::Parser;
use migrate_core::cli::Command;
use migrate_core::rusqlite::{params, Connection, Transaction};
use migrate_core::{embed_migrations, migration, rollback, Migrator, TableRebuild};

// Migrations 0 to 5 are SQL files (the path is relative to this package's
// manifest, examples/Cargo.toml). Its build.rs reruns the build when
// a file is added to this directory.
embed_migrations!("blog/migrations", set = "blog");

/// `Hello, World!` → `hello-world`.
fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// A data migration: slugs are computed in Rust, row by row.
#[migration(6, set = "blog")]
fn backfill_post_slugs(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE posts ADD COLUMN slug TEXT")?;
    let posts: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT id, title FROM posts")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut update = tx.prepare("UPDATE posts SET slug = ?1 WHERE id = ?2")?;
    for (id, title) in posts {
        update.execute(params![slugify(&title), id])?;
    }
    tx.execute_batch("CREATE UNIQUE INDEX posts_slug ON posts (slug)")
}

#[rollback(6, set = "blog")]
fn drop_post_slugs(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("DROP INDEX posts_slug; ALTER TABLE posts DROP COLUMN slug;")
}

const POSTS_COLUMNS: &str = "id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, \
     published_at {published_at}, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, summary TEXT, slug TEXT";

/// `published_at` changes from text to Unix seconds: ALTER TABLE cannot
/// change a type, so the table is rebuilt, with foreign keys off so that the
/// tags' and comments' ON DELETE CASCADE does not fire.
#[migration(7, set = "blog", foreign_keys = off)]
fn published_at_as_unix_time(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    TableRebuild::new("posts")
        .definition(POSTS_COLUMNS.replace("{published_at}", "INTEGER"))
        .map(
            "published_at",
            "CAST(strftime('%s', published_at) AS INTEGER)",
        )
        .run(tx)
        .map(|_| ())
}

#[rollback(7, set = "blog", foreign_keys = off)]
fn published_at_as_text(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    TableRebuild::new("posts")
        .definition(POSTS_COLUMNS.replace("{published_at}", "TEXT"))
        .map("published_at", "datetime(published_at, 'unixepoch')")
        .run(tx)
        .map(|_| ())
}

/// The blog's migrator: the "blog" set, in the default tracking table name.
pub fn migrator() -> Migrator {
    Migrator::new().set("blog")
}

/// A small blog engine's database. Without a command: apply what is
/// pending, then show the status.
#[derive(Parser)]
struct Args {
    /// The database file.
    #[arg(long, default_value = "blog.db")]
    db: String,
    /// Search the posts' full-text index for a word, after the command.
    #[arg(long, value_name = "WORD")]
    search: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Runs the example with `args` (the program name first); returns the exit code.
pub fn run(args: &[&str], out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(usage) => {
            let _ = write!(err, "{usage}");
            return if usage.use_stderr() { 2 } else { 0 };
        }
    };
    let mut db = match Connection::open(&args.db)
        .and_then(|db| db.execute_batch("PRAGMA foreign_keys = ON").map(|()| db))
    {
        Ok(db) => db,
        Err(error) => {
            let _ = writeln!(
                err,
                "error: cannot open {}: {}",
                args.db,
                migrate_core::Error::from(error)
            );
            return 1;
        }
    };
    let m = migrator();
    let code =
        migrate_core::cli::run_or_migrate(args.command.as_ref(), &mut db, &m, out, err, color);
    if let (0, Some(word)) = (code, args.search) {
        if let Err(error) = search(&db, &word, out) {
            let _ = writeln!(err, "error: search failed: {error}");
            return 1;
        }
    }
    code
}

fn search(
    db: &Connection,
    word: &str,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut stmt =
        db.prepare("SELECT title FROM posts_fts WHERE posts_fts MATCH ?1 ORDER BY rank")?;
    let titles = stmt.query_map([word], |r| r.get::<_, String>(0))?;
    for title in titles {
        writeln!(out, "found: {}", title?)?;
    }
    Ok(())
}

#[allow(dead_code)] // also compiled into tests/examples.rs, which calls `run`
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // In colour where the streams keep it: a terminal, unless NO_COLOR or
    // CLICOLOR=0 say otherwise; anywhere with CLICOLOR_FORCE.
    std::process::ExitCode::from(run(
        &args,
        &mut migrate_core::cli::stdout(),
        &mut migrate_core::cli::stderr(),
        true,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs() {
        assert_eq!(super::slugify("Hello, World!"), "hello-world");
        assert_eq!(super::slugify("Migrations in Rust"), "migrations-in-rust");
    }
}
