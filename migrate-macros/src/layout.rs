//! Which files of a migrations directory are migrations, and their versions.
//!
//! Every layout the common tools write is read, and they may be mixed:
//! - `V_name.sql` (+ `V_name.down.sql`): hand-written runners, this crate;
//! - `V_name.up.sql` + `V_name.down.sql`: sqlx;
//! - `V_name/up.sql` + `V_name/down.sql`: diesel (`V` is often a date,
//!   `2018-12-25-000000`: its dashes are not part of the number);
//! - `V-name/up.sql` + `down.sql`: rusqlite_migration's `from_directory`;
//! - `V{n}__name.sql`: refinery, also in subdirectories (as refinery reads
//!   them). refinery's `U{n}__name.sql` ("unversioned", which refinery
//!   applies even after higher versions) is read like `V`: it runs at its
//!   version's place in the order;
//! - `V{n}.name.up.sql` + `V{n}.name.down.sql`: Authelia's runner (the name
//!   after a `.`, holding no `.` itself; the direction is required);
//! - `V-up.sql` + `V-down.sql`: no name, the direction after the dash; the
//!   migration is named after its version (`01`).
//!
//! The version is the leading number, the name what follows its separator
//! (`_`, `-`, `__`, `.`). Each layout's versions are ordered as its tool orders
//! them ([`Order`]): diesel's as text, every other tool's as numbers. Ignored: hidden entries (`.keep`, `.gitkeep`),
//! non-migration files (`README.md`), subdirectories whose names carry no
//! version (except for refinery-named files inside them), and in a
//! migration directory anything but `up.sql` and `down.sql` that is not SQL
//! (diesel's `metadata.toml`). Refused, each with advice: a `.sql` file whose
//! name carries no version, a versioned file that is not `.sql` (refinery's
//! `.rs` migrations among them), another `.sql` file in a migration
//! directory, and a migration directory without `up.sql`.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

/// How a tool orders its versions, and which versions are one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// By numeric value (`0001` and `1` are one version, `2` comes before
    /// `10`): sqlx, refinery and goose read versions as integers,
    /// rusqlite_migration and hand-written runners number their files.
    Numeric,
    /// As text, the digits as written (without a diesel date's dashes):
    /// diesel's `MigrationVersion` compares its string, so
    /// `202512081354280000` (diesel 2.2's `2025-12-08-135428-0000`) comes
    /// before `20260528000000` (`2026-05-28-000000`), and `0001` and `1`
    /// are two versions.
    Text,
}

/// A version's place in an [`Order`]: equal keys are one version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The number of significant digits (0 for text order).
    len: usize,
    text: String,
}

/// A migration's version: its digits, compared by numeric value (`0001`
/// and `1` are one version) unless [`Version::key`] says otherwise.
#[derive(Clone, Debug)]
pub struct Version {
    /// As written in the name (a diesel date without its dashes).
    pub digits: String,
    /// Without leading zeros (`"0"` for zero): equal for equal values.
    value: String,
}

impl Version {
    pub fn new(digits: &str) -> Version {
        let trimmed = digits.trim_start_matches('0');
        Version {
            digits: digits.to_owned(),
            value: if trimmed.is_empty() { "0" } else { trimmed }.to_owned(),
        }
    }

    /// The version as a number, if it fits in a `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        self.value.parse().ok()
    }

    /// Its place in `order`.
    pub fn key(&self, order: Order) -> Key {
        match order {
            Order::Numeric => Key {
                len: self.value.len(),
                text: self.value.clone(),
            },
            Order::Text => Key {
                len: 0,
                text: self.digits.clone(),
            },
        }
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Version {}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.value.len(), &self.value).cmp(&(other.value.len(), &other.value))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Migration or rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// One migration or rollback file.
#[derive(Debug)]
pub struct File {
    pub version: Version,
    pub name: String,
    pub direction: Direction,
    /// How the tool of its layout orders versions: [`Order::Text`] for a
    /// diesel migration directory, [`Order::Numeric`] for every other.
    pub order: Order,
    /// The path as shown in messages and registered: relative to the crate,
    /// as the user wrote the directory.
    pub shown: String,
    pub path: PathBuf,
}

/// What a directory holds.
#[derive(Default)]
pub struct Scan {
    pub files: Vec<File>,
    pub problems: Vec<String>,
}

/// How deep refinery-named files are looked for in subdirectories.
const MAX_DEPTH: usize = 16;

/// Reads the migrations directory `dir`, shown as `shown`.
pub fn scan(dir: &Path, shown: &str) -> std::io::Result<Scan> {
    let mut scan = Scan::default();
    for (file_name, path) in entries(dir)? {
        let shown = format!("{shown}/{file_name}");
        if path.is_dir() {
            match parse_name(&file_name) {
                Some((version, name)) => {
                    let order = if is_diesel_name(&file_name) {
                        Order::Text
                    } else {
                        Order::Numeric
                    };
                    migration_directory(&path, &shown, (version, name, order), &mut scan)
                }
                None => refinery_files(&path, &shown, 1, &mut scan),
            }
        } else {
            top_level_file(&file_name, path, shown, &mut scan);
        }
    }
    Ok(scan)
}

/// The visible entries of a directory, sorted by name.
fn entries(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

fn top_level_file(file_name: &str, path: PathBuf, shown: String, scan: &mut Scan) {
    if let Some(stem) = file_name.strip_suffix(".sql") {
        let (stem, direction) = if let Some(stem) = stem.strip_suffix(".down") {
            (stem, Some(Direction::Down))
        } else if let Some(stem) = stem.strip_suffix(".up") {
            (stem, Some(Direction::Up))
        } else {
            (stem, None)
        };
        let parsed = match (direction, authelia_name(stem)) {
            (Some(direction), Some(Ok((version, name)))) => Ok((version, name, direction)),
            (_, Some(Err(problem))) => Err(problem),
            (None, Some(Ok(_))) => Err(format!(
                "a `V{{version}}.{{name}}` name (Authelia's) needs its direction: rename it \
                 {stem}.up.sql (its rollback: {stem}.down.sql), or move it out of the directory \
                 if it is not a migration"
            )),
            (Some(direction), None) => parse_name(stem)
                .map(|(version, name)| (version, name, direction))
                .ok_or_else(|| bad_name(stem)),
            (None, None) => match version_and_direction(stem) {
                Some((version, direction)) => Ok((version.clone(), version.digits, direction)),
                None => parse_name(stem)
                    .map(|(version, name)| (version, name, Direction::Up))
                    .ok_or_else(|| bad_name(stem)),
            },
        };
        match parsed {
            Ok((version, name, direction)) => scan.files.push(File {
                version,
                name,
                direction,
                order: Order::Numeric,
                shown,
                path,
            }),
            Err(problem) => scan.problems.push(format!("{shown}: {problem}")),
        }
        return;
    }
    // Not SQL: a README or the like, unless its name carries a version.
    let stem = file_name.split('.').next().unwrap_or(file_name);
    if parse_name(stem).is_none() {
        return;
    }
    if is_refinery(stem) && file_name.ends_with(".rs") {
        scan.problems.push(format!(
            "{shown}: a refinery migration written in Rust cannot be embedded: write its body as a \
             `#[migration(…)]` function with the id this file has in the sorted order (its place \
             among the directory's versions, from 0) and move the file out of the directory"
        ));
    } else {
        scan.problems.push(format!(
            "{shown}: its name carries a version but it is not a `.sql` file: if it is a \
             migration, rename it to end in `.sql`; if not, move it out of the directory"
        ));
    }
}

/// Authelia's `V{n}.{name}` (its files are `V0001.Initial_Schema.up.sql`
/// and `.down.sql`): `None` when `stem` is not of that shape (a `V`, digits
/// and a `.`), an explanation when it is, but its name is not one.
fn authelia_name(stem: &str) -> Option<Result<(Version, String), String>> {
    let rest = stem.strip_prefix('V')?;
    let digits = leading_digits(rest);
    let name = rest[digits.len()..].strip_prefix('.')?;
    if digits.is_empty() {
        return None;
    }
    if name.is_empty() || name.chars().any(char::is_control) {
        return Some(Err(format!(
            "no name after `V{digits}.`: Authelia's names are V{digits}.Name.up.sql and \
             V{digits}.Name.down.sql; rename it so, or move it out of the directory if it is \
             not a migration"
        )));
    }
    if name.contains('.') {
        return Some(Err(format!(
            "the name after `V{digits}.` holds a `.` ({name:?}): Authelia's names are \
             V{digits}.Name.up.sql and V{digits}.Name.down.sql, with no `.` in the name; \
             rename it (e.g. V{digits}.{}.up.sql), or move it out of the directory if it is \
             not a migration",
            name.replace('.', "_")
        )));
    }
    Some(Ok((Version::new(digits), name.to_owned())))
}

/// `NN-up` or `NN-down`: a version and a direction, no name (the migration
/// is named after its version).
fn version_and_direction(stem: &str) -> Option<(Version, Direction)> {
    let (digits, direction) = stem.split_once('-')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let direction = match direction {
        "up" => Direction::Up,
        "down" => Direction::Down,
        _ => return None,
    };
    Some((Version::new(digits), direction))
}

/// Why `stem` is not a migration's name.
fn bad_name(stem: &str) -> String {
    let hint = if is_refinery_prefix(stem) {
        " (refinery's names have two underscores: V1__initial.sql)"
    } else {
        ""
    };
    format!(
        "the name does not start with a version and a name, such as 0001_create_users.sql, \
         20240101120000_create_users.up.sql or V1__create_users.sql{hint}: rename it, or move it \
         out of the directory if it is not a migration"
    )
}

/// `V_name/` or `V-name/`: `up.sql` and `down.sql`.
fn migration_directory(
    dir: &Path,
    shown: &str,
    (version, name, order): (Version, String, Order),
    scan: &mut Scan,
) {
    let entries = match entries(dir) {
        Ok(entries) => entries,
        Err(e) => {
            scan.problems
                .push(format!("{shown}: cannot read the directory: {e}"));
            return;
        }
    };
    let mut found = Vec::new();
    for (file_name, path) in entries {
        let direction = match file_name.as_str() {
            "up.sql" => Direction::Up,
            "down.sql" => Direction::Down,
            other if other.ends_with(".sql") => {
                scan.problems.push(format!(
                    "{shown}/{other}: a migration directory holds `up.sql` and `down.sql` only: \
                     move this file's statements into `up.sql`, or move it out of the directory"
                ));
                continue;
            }
            _ => continue,
        };
        found.push(File {
            version: version.clone(),
            name: name.clone(),
            direction,
            order,
            shown: format!("{shown}/{file_name}"),
            path,
        });
    }
    if found.iter().any(|f| f.direction == Direction::Up) {
        scan.files.extend(found);
    } else {
        // Its down.sql, if any, is not reported again as a rollback
        // without its migration.
        scan.problems.push(format!(
            "{shown}: a migration directory without `up.sql`: add one (an empty `up.sql` is a \
             migration that does nothing), or move the directory out if it is not a migration"
        ));
    }
}

/// Refinery-named files in a subdirectory without a version of its own.
fn refinery_files(dir: &Path, shown: &str, depth: usize, scan: &mut Scan) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = entries(dir) else {
        // Not read by the migrations' tools either: nothing of ours.
        return;
    };
    for (file_name, path) in entries {
        let shown = format!("{shown}/{file_name}");
        // Like refinery's walk, symbolic links to directories are not
        // followed (nor can they loop).
        let linked = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if path.is_dir() && !linked {
            refinery_files(&path, &shown, depth + 1, scan);
        } else if let Some(stem) = file_name.strip_suffix(".sql") {
            if is_refinery(stem) {
                top_level_file(&file_name, path, shown, scan);
            }
        }
    }
}

/// A migration directory named as diesel names them: its version (up to
/// the first `_`) is digits and dashes (`2018-12-25-000000_x`,
/// `2025-12-08-135428-0000_x`, `20160909175240_x`, `0_x`), which diesel
/// reads as the text of those digits (`migrations_internals::
/// version_from_string`). rusqlite_migration's `01-name` is not.
fn is_diesel_name(name: &str) -> bool {
    let Some((version, _)) = name.split_once('_') else {
        return false;
    };
    version.starts_with(|c: char| c.is_ascii_digit())
        && version.ends_with(|c: char| c.is_ascii_digit())
        && version.chars().all(|c| c.is_ascii_digit() || c == '-')
        && !version.contains("--")
}

/// `V1__x` or `U1__x`.
fn is_refinery(stem: &str) -> bool {
    is_refinery_prefix(stem) && parse_name(stem).is_some()
}

fn is_refinery_prefix(stem: &str) -> bool {
    let mut chars = stem.chars();
    matches!(chars.next(), Some('V' | 'U')) && chars.next().is_some_and(|c| c.is_ascii_digit())
}

/// A migration's name (file stem or directory name) → its version and name.
///
/// `0001_x`, `1-x`, `20240101120000_x`, `2018-12-25-000000_x`, `V1__x`,
/// `U2__x`. `None` when it has no version, or no name after it.
pub fn parse_name(stem: &str) -> Option<(Version, String)> {
    let (version, name) = if is_refinery_prefix(stem) {
        let rest = &stem[1..];
        let digits = leading_digits(rest);
        (
            Version::new(digits),
            rest[digits.len()..].strip_prefix("__")?,
        )
    } else {
        let digits = leading_digits(stem);
        if digits.is_empty() {
            return None;
        }
        let rest = &stem[digits.len()..];
        if let Some(name) = rest.strip_prefix('_') {
            (Version::new(digits), name)
        } else if let Some(name) = rest.strip_prefix('-') {
            // diesel's `2018-12-25-000000_name`: digits and dashes up to
            // the first `_`; otherwise rusqlite_migration's `1-name`.
            match stem.split_once('_') {
                Some((date, name))
                    if date.ends_with(|c: char| c.is_ascii_digit())
                        && date.chars().all(|c| c.is_ascii_digit() || c == '-')
                        && !date.contains("--") =>
                {
                    (Version::new(&date.replace('-', "")), name)
                }
                _ => (Version::new(digits), name),
            }
        } else {
            return None;
        }
    };
    if name.is_empty() || name.chars().any(char::is_control) {
        return None;
    }
    Some((version, name.to_owned()))
}

fn leading_digits(text: &str) -> &str {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(stem: &str) -> Option<(String, String)> {
        parse_name(stem).map(|(v, n)| (v.digits, n))
    }

    fn some(version: &str, name: &str) -> Option<(String, String)> {
        Some((version.to_owned(), name.to_owned()))
    }

    #[test]
    fn names_of_every_layout() {
        assert_eq!(parsed("001_init"), some("001", "init"));
        assert_eq!(parsed("0_init"), some("0", "init"));
        assert_eq!(parsed("12_add-tags"), some("12", "add-tags"));
        assert_eq!(
            parsed("20240101120000_create users"),
            some("20240101120000", "create users")
        );
        assert_eq!(
            parsed("2018-12-25-000000_create_posts"),
            some("20181225000000", "create_posts")
        );
        assert_eq!(
            parsed("00000000000000_diesel_initial_setup"),
            some("00000000000000", "diesel_initial_setup")
        );
        assert_eq!(parsed("01-friend_car"), some("01", "friend_car"));
        assert_eq!(parsed("3-add_animal_table"), some("3", "add_animal_table"));
        assert_eq!(parsed("01-2fa_codes"), some("01", "2fa_codes"));
        assert_eq!(parsed("V1__initial"), some("1", "initial"));
        assert_eq!(
            parsed("U20__merge_out_of_order"),
            some("20", "merge_out_of_order")
        );
        assert_eq!(
            parsed("V2__add_cars_and_motos_table"),
            some("2", "add_cars_and_motos_table")
        );
    }

    #[test]
    fn names_that_are_not_migrations() {
        for stem in [
            "init",
            "001init",
            "001_",
            "001-",
            "a1_init",
            "V1_initial",
            "V1__",
            "Vx__a",
            "_1_a",
            "",
            "1\u{7}_a",
            "001_a\u{0}",
        ] {
            assert_eq!(parsed(stem), None, "{stem:?}");
        }
    }

    #[test]
    fn versions_compare_by_value() {
        let v = |d: &str| Version::new(d);
        assert_eq!(v("0001").digits, "0001");
        assert_eq!(v("0001").value, "1");
        assert_eq!(v("0001"), v("1"));
        assert_eq!(v("0001").cmp(&v("1")), Ordering::Equal);
        assert!(v("2") < v("10"));
        assert!(v("0009") < v("10"));
        assert!(v("20240101120000") < v("20240101120001"));
        assert!(v("99999999999999999999999") > v("20240101120000"));
        assert_eq!(v("000").value, "0");
        assert_eq!(v("4294967295").as_u32(), Some(u32::MAX));
        assert_eq!(v("4294967296").as_u32(), None);
    }

    #[test]
    fn diesel_versions_compare_as_text() {
        let text = |d: &str| Version::new(d).key(Order::Text);
        let number = |d: &str| Version::new(d).key(Order::Numeric);
        // diesel 2.2's 18 digits among the older 14: date order as text.
        assert!(text("202512081354280000") < text("20260528000000"));
        assert!(number("202512081354280000") > number("20260528000000"));
        assert!(text("00000000000000") < text("20181225000000"));
        // As text, `0001` and `1` are two versions; as numbers one.
        assert_ne!(text("0001"), text("1"));
        assert_eq!(number("0001"), number("1"));
        assert!(text("10") < text("2"));
    }

    #[test]
    fn diesel_directory_names() {
        for name in [
            "2018-12-25-000000_create_users",
            "2025-12-08-135428-0000_refactor",
            "20160909175240_create_view",
            "00000000000000_diesel_initial_setup",
            "0_create_users",
        ] {
            assert!(is_diesel_name(name), "{name}");
        }
        for name in [
            "01-friend_car",
            "3-add_animal_table",
            "1--2_x",
            "-1_x",
            "1-_x",
            "init",
        ] {
            assert!(!is_diesel_name(name), "{name}");
        }
    }

    #[test]
    fn authelia_names() {
        let ok = |stem: &str| match authelia_name(stem) {
            Some(Ok((version, name))) => Some((version.digits, name)),
            _ => None,
        };
        assert_eq!(
            ok("V0001.Initial_Schema"),
            Some(("0001".to_owned(), "Initial_Schema".to_owned()))
        );
        assert_eq!(ok("V12.x"), Some(("12".to_owned(), "x".to_owned())));
        // Not of that shape: left to the other layouts.
        for stem in ["V1__initial", "0001.x", "V.x", "Vx.y", "U1.x", "v1.x"] {
            assert!(authelia_name(stem).is_none(), "{stem}");
        }
        // Of that shape, but no name: refused with Authelia's form.
        for stem in ["V1.", "V0001.a.b", "V1.a\u{7}"] {
            let problem = match authelia_name(stem) {
                Some(Err(problem)) => problem,
                other => panic!("{stem}: {other:?}"),
            };
            assert!(problem.contains("Authelia"), "{problem}");
            assert!(!problem.contains("refinery"), "{problem}");
        }
    }

    #[test]
    fn versions_with_a_direction_and_no_name() {
        let read = |stem: &str| version_and_direction(stem).map(|(v, d)| (v.digits, d));
        assert_eq!(read("01-up"), Some(("01".to_owned(), Direction::Up)));
        assert_eq!(read("01-down"), Some(("01".to_owned(), Direction::Down)));
        for stem in [
            "01-upgrade",
            "01-Up",
            "x-up",
            "-up",
            "01_up",
            "01-add_users",
        ] {
            assert_eq!(read(stem), None, "{stem}");
        }
    }

    #[test]
    fn refinery_prefixes() {
        assert!(is_refinery("V1__a"));
        assert!(is_refinery("U1__a"));
        assert!(!is_refinery("V1_a"));
        assert!(!is_refinery("1__a"));
        assert!(bad_name("V1_a").contains("two underscores"));
        assert!(!bad_name("init").contains("two underscores"));
    }
}
