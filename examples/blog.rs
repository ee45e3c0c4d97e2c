//! A small blog engine's schema history: six SQL files (initial schema,
//! unique tags, full-text search, a summary column, comments, an admin flag),
//! one Rust data migration (back-filling slugs) and one table rebuild that
//! changes a column's type.
//!
//! ```text
//! cargo run --example blog                      # migrate ./blog.db, print the status
//! cargo run --example blog -- --search rust     # full-text search over the posts
//! cargo run --example blog -- --rollback        # undo the newest migration (repeat to walk down)
//! cargo run --example blog -- --rollback-all    # undo every migration
//! ```

use std::io::Write;

use migrate_core::rusqlite::{params, Connection, Transaction};
use migrate_core::{embed_migrations, migration, rollback, Migrator, TableRebuild};

#[path = "common/status.rs"]
mod status;

// Migrations 0 to 5 are SQL files. The root package's build.rs reruns when
// a file is added to this directory.
embed_migrations!("examples/blog/migrations", set = "blog");

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

/// Runs the example with `args` (without the program name).
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let mut path = String::from("blog.db");
    let mut action = "migrate";
    let mut search = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => path = args.next().ok_or("--db needs a path")?.clone(),
            "--rollback" => action = "rollback",
            "--rollback-all" => action = "rollback-all",
            "--search" => search = Some(args.next().ok_or("--search needs a word")?.clone()),
            "-h" | "--help" => {
                writeln!(
                    out,
                    "usage: blog [--db PATH] [--rollback | --rollback-all] [--search WORD]"
                )?;
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; try --help").into()),
        }
    }
    let mut db = Connection::open(&path)?;
    db.execute_batch("PRAGMA foreign_keys = ON")?;
    let m = migrator();
    match action {
        "rollback" => match m.rollback_migration(&mut db)? {
            Some(undone) => writeln!(out, "rolled back {} {}", undone.id, undone.name)?,
            None => writeln!(out, "nothing to roll back")?,
        },
        "rollback-all" => {
            for step in m.rollback_all(&mut db)?.steps {
                writeln!(out, "rolled back {} {}", step.id, step.name)?;
            }
        }
        _ => {
            let report = m.migrate(&mut db)?;
            if report.is_empty() {
                writeln!(out, "{path} is up to date")?;
            }
            for step in &report.steps {
                writeln!(
                    out,
                    "applied {} {} ({:.1} ms)",
                    step.id,
                    step.name,
                    step.elapsed.as_secs_f64() * 1e3
                )?;
            }
        }
    }
    if let Some(word) = search {
        let mut stmt =
            db.prepare("SELECT title FROM posts_fts WHERE posts_fts MATCH ?1 ORDER BY rank")?;
        let titles = stmt.query_map([&word], |r| r.get::<_, String>(0))?;
        for title in titles {
            writeln!(out, "found: {}", title?)?;
        }
    }
    status::print(out, &db, &m, &path)
}

#[allow(dead_code)] // also compiled into tests/examples.rs, which calls `run`
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = run(&args, &mut std::io::stdout()) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs() {
        assert_eq!(super::slugify("Hello, World!"), "hello-world");
        assert_eq!(super::slugify("Migrations in Rust"), "migrations-in-rust");
    }
}
