// Realistic migrations, as users write them, for the checksum's rustfmt
// invariance test (checksum::rustfmt_invariance): the test formats this file
// with `rustfmt --config max_width=N` for several N and checks that every
// function's checksum stays the same. Not compiled: only parsed.

#[migration(0)]
fn create_users(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, kind TEXT, score INTEGER NOT NULL DEFAULT 0)")
}

#[migration(1)]
fn backfill_kinds(tx: &Transaction) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use std::collections::{HashMap, BTreeMap};
    use std::fmt::Write as _;
    let rows: Vec<(i64, String)> = tx.prepare("SELECT id, name FROM users WHERE kind IS NULL ORDER BY id")?.query_map([], |row| { Ok((row.get(0)?, row.get(1)?)) })?.collect::<Result<_, _>>()?;
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    let mut log = BTreeMap::new();
    for (id, name) in rows {
        let kind = match name.len() { 0 => "empty", 1..=3 => { "short" } n if n > 40 => { "very_long_name_that_needs_its_own_line_when_narrow" } _ => "long", };
        *counts.entry(kind).or_insert(0) += 1;
        if id < 0 { return Err(format!("negative id {id} for user {name}, which the old importer produced").into()) }
        tx.execute("UPDATE users SET kind = ?1, score = ?2 WHERE id = ?3", rusqlite::params![kind, name.len() as i64 * 10 + id, id])?;
        let mut line = String::new();
        write!(line, "{id}: {name} -> {kind}")?;
        log.insert(id, line);
    }
    let summary = counts.iter().map(|(kind, n)| format!("{kind}={n}")).collect::<Vec<_>>().join(", ");
    tx.execute("INSERT INTO audit (what, detail) VALUES (?1, ?2)", (summary, log.len()))?;
    Ok(())
}

#[migration(2)]
fn seed_settings(tx: &Transaction) -> rusqlite::Result<()> {
    struct Setting { key: &'static str, value: &'static str, description: &'static str }
    let settings = vec![Setting { key: "theme", value: "dark", description: "The colour scheme of the user interface" }, Setting { key: "page_size", value: "50", description: "How many rows a list shows per page" }];
    let mut insert = tx.prepare("INSERT INTO settings (key, value, description) VALUES (?1, ?2, ?3)")?;
    for setting in &settings { insert.execute([setting.key, setting.value, setting.description])?; }
    Ok(())
}

#[migration(3)]
fn normalise_emails(tx: &Transaction) -> rusqlite::Result<()> {
    let emails: Vec<(i64, Option<String>)> = tx.prepare("SELECT id, email FROM users")?.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.filter_map(|r| r.ok()).collect();
    for (id, email) in emails {
        let Some(email) = email else { continue };
        let cleaned = email.trim().to_lowercase().replace(" ", "").chars().filter(|c| !c.is_control()).collect::<String>();
        match cleaned.split_once('@') {
            Some((local, domain)) if !local.is_empty() && domain.contains('.') => { tx.execute("UPDATE users SET email = ?1 WHERE id = ?2", (cleaned.as_str(), id))?; }
            Some(_) | None => { tx.execute("UPDATE users SET email = NULL WHERE id = ?1", [id])?; }
        }
    }
    Ok(())
}

#[migration(4)]
fn rebuild_with_check(tx: &Transaction) -> rusqlite::Result<()> {
    fn column_exists(tx: &Transaction, table: &str, column: &str) -> rusqlite::Result<bool> {
        let found: i64 = tx.query_row("SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |row| row.get(0))?;
        Ok(found > 0)
    }
    if !column_exists(tx, "users", "score")? { tx.execute_batch("ALTER TABLE users ADD COLUMN score INTEGER NOT NULL DEFAULT 0")?; }
    let statements = ["CREATE TABLE users_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, kind TEXT, score INTEGER NOT NULL DEFAULT 0 CHECK (score >= 0))", "INSERT INTO users_new SELECT id, name, email, kind, max(score, 0) FROM users", "DROP TABLE users", "ALTER TABLE users_new RENAME TO users"];
    for statement in statements { tx.execute_batch(statement)?; }
    let total = (0..10).map(|i| { i * 2 }).filter(|n| n % 3 == 0).fold(0, |acc, n| acc + n);
    let t = (total,);
    let pair = ((total, t.0));
    loop { if pair.0 >= 0 { break } }
    Ok(())
}

#[migration(5)]
fn helpers_with_generics(tx: &Transaction) -> rusqlite::Result<()> {
    #[allow(unused_imports)] use std::fmt::Write;
    use std::collections::BTreeMap;
    fn count_rows_of_the_table_named<'c>(transaction_handle_for_counting: &'c Transaction) -> rusqlite::Result<i64> { transaction_handle_for_counting.query_row("SELECT count(*) FROM users", [], |row| row.get(0)) }
    fn run_with<F>(tx: &Transaction, f: F) -> rusqlite::Result<()> where F: Fn(&Transaction) -> rusqlite::Result<()> { f(tx) }
    extern fn callback_for_the_c_library() {}
    callback_for_the_c_library();
    let _seen: BTreeMap<i64, i64> = BTreeMap::new();
    let before = count_rows_of_the_table_named(tx)?;
    run_with(tx, |t| t.execute_batch("CREATE TABLE IF NOT EXISTS audit (n INTEGER)"))?;
    tx.execute("INSERT INTO audit (n) VALUES (?1)", [before])?;
    Ok(())
}

#[migration(6)]
fn loops_and_vectors(tx: &Transaction) -> rusqlite::Result<()> {
    let names = vec!("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota");
    let mut n = 0;
    while n < names.len() { tx.execute("INSERT INTO users (name) VALUES (?1)", [names[n]])?; n += 1 };
    for name in &names { tx.execute("UPDATE users SET kind = 'greek' WHERE name = ?1", [name])?; };
    let counts = vec!{n, names.len()};
    assert_eq!(counts[0], counts[1]);
    Ok(())
}

// Round 16: a call, with one argument, of what a fallible call returns;
// rustfmt adds a comma inside its parentheses when it wraps them, which the
// third definition kept as a one-element tuple's.
fn call_of_a_looked_up_step(registry: &Registry) -> Result<()> {
    registry.lookup_the_step_registered_for(0)?("an argument long enough to make rustfmt wrap it")?;
    Ok(())
}

// Round 18: a closure returning with `return`: rustfmt drops the braces at
// one width and keeps them, with a `;`, where it must wrap the call.
fn closure_returning_early(tx: &Transaction) -> Result<()> {
    let h = |x: i64| { return x + some_function_with_a_long_name(x, "and a long argument string") };
    tx.execute("INSERT INTO audit (n) VALUES (?1)", [h(1)])?;
    Ok(())
}
