//! Support items for the code that `#[migration]` and `#[rollback]` generate.
//! Not public API: names and shapes here may change in any release.

use rusqlite::{Connection, Transaction};

/// The error type a migration body is converted into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What running one migration or rollback body produced.
pub type Outcome = Result<(), BoxError>;

/// The return types a migration function may have: `()`, `rusqlite::Result<()>`
/// or `Result<(), E>` for any `E: Error + Send + Sync + 'static`.
#[diagnostic::on_unimplemented(
    message = "a migration must return `()`, `rusqlite::Result<()>` or `Result<(), E>` where `E: std::error::Error + Send + Sync + 'static`",
    label = "this return type is not supported"
)]
pub trait IntoOutcome {
    /// Converts the return value into the runner's uniform outcome.
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Outcome {
        Ok(())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Outcome {
        self.map_err(|error| Box::new(error) as BoxError)
    }
}

/// What a registry entry is.
pub enum EntryKind {
    /// A migration, with its stored name and the checksum of its body.
    Migration {
        /// The name recorded in the tracking table.
        name: &'static str,
        /// Checksum of the body, computed by the macro.
        checksum: &'static str,
        /// Checksums of the same body under earlier definitions of the
        /// checksum, where they differ from `checksum` (usually empty).
        /// Databases migrated by earlier releases store these.
        former_checksums: &'static [&'static str],
        /// The migration's link in the history chain: SipHash-1-3 of its id,
        /// name and checksum, computed by the macro.
        link: u128,
    },
    /// The rollback of the migration with the same id.
    Rollback,
}

/// How an entry does its work.
pub enum Body {
    /// A Rust function.
    Rust(fn(&Transaction<'_>) -> Outcome),
    /// A Rust function that runs outside any transaction.
    Autocommit(fn(&Connection) -> Outcome),
    /// SQL text, run as one batch.
    Sql(&'static str),
    /// An `async fn` on a libSQL server's transaction.
    #[cfg(feature = "libsql")]
    Libsql(for<'a> fn(&'a LibsqlTransaction) -> LibsqlFuture<'a>),
}

/// The transaction an `async fn` migration takes.
#[cfg(feature = "libsql")]
pub type LibsqlTransaction = ::libsql::Transaction;

/// What the registered wrapper of an `async fn` migration returns.
#[cfg(feature = "libsql")]
pub type LibsqlFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + 'a>>;

/// One `#[migration]` or `#[rollback]`, as placed in the link-time registry.
pub struct Entry {
    /// Migration or rollback.
    pub kind: EntryKind,
    /// The migration id.
    pub id: u32,
    /// The set; `""` is the default set.
    pub set: &'static str,
    /// Whether `PRAGMA foreign_keys` is turned off around this step.
    pub foreign_keys_off: bool,
    /// Whether the step runs outside any transaction.
    pub no_transaction: bool,
    /// Source file of the attribute, for error messages.
    pub file: &'static str,
    /// Source line of the attribute, for error messages.
    pub line: u32,
    /// The work.
    pub body: Body,
    /// For an SQL file of `embed_migrations!`, the directory it was read
    /// from (for the CLI's `new` and `renumber`); `None` for a function.
    pub dir: Option<&'static SqlDir>,
}

/// The directory an `embed_migrations!` read, as the CLI needs it to add
/// and rename files: the SQL text itself is compiled in.
pub struct SqlDir {
    /// As written in the macro call: relative to the crate's manifest. The
    /// entries' `file` is this, `/`, and the file's path in the directory.
    pub shown: &'static str,
    /// The same directory, absolute: joined to the crate's
    /// `CARGO_MANIFEST_DIR` when the crate was built.
    pub absolute: &'static str,
    /// `ids = "sorted"`: ids are the files' places in version order, not
    /// their versions.
    pub sorted: bool,
}

/// What the registry holds for each entry: what the whole-registry check
/// and the search for one set read, kept small so that a binary with
/// thousands of migrations is read in microseconds, and the entry itself.
pub struct Slot {
    /// SipHash-1-3 (zero key, 128 bits) of the entry's set name, computed
    /// by the macro: a set's slots are found by it alone.
    pub set_hash: u128,
    /// A migration's link in the history chain (see `hash::link`); 0 for a
    /// rollback. Here rather than only in the entry, so that building a
    /// set's plan reads nothing but the slots.
    pub link: u128,
    /// The migration id.
    pub id: u32,
    /// A rollback rather than a migration.
    pub rollback: bool,
    /// The entry.
    pub entry: &'static Entry,
}

// The registry backend. `linkme` (the default) gathers entries at link time
// at no run-time cost, on Linux, macOS, Windows, the BSDs and illumos.
// `inventory` registers them before `main` and also works where linkme does
// not (wasm). The features are additive: when both are on, inventory wins.
#[cfg(not(any(feature = "linkme", feature = "inventory")))]
compile_error!("migrate-core needs a registry backend: enable the `linkme` (default) or the `inventory` feature");

#[cfg(all(feature = "linkme", not(feature = "inventory")))]
pub use linkme;

#[cfg(feature = "inventory")]
pub use inventory;

/// How many link-time arrays the registry is split into. A set's slots all
/// go to one, picked by its name's hash ([`bucket`]; the macros compute it
/// at compile time), so that finding a set reads that array only, not every
/// other set's migrations: an index built by the linker. 32: a binary has a
/// few sets, and each array costs a linker section and a little compile
/// time.
pub const BUCKETS: usize = 32;

/// The bucket of the set whose name hashes to `set_hash`.
pub const fn bucket(set_hash: u128) -> usize {
    (set_hash % BUCKETS as u128) as usize
}

/// Declares the registry's arrays and the function that finds one. The
/// names are long and versioned on purpose: two linkme slices of the same
/// name in one binary collide at run time.
#[cfg(all(feature = "linkme", not(feature = "inventory")))]
macro_rules! buckets {
    ($($index:literal => $name:ident),* $(,)?) => {
        $(
            #[doc(hidden)]
            #[linkme::distributed_slice]
            pub static $name: [Slot];
        )*

        /// The registry's array `index` (below [`BUCKETS`]).
        #[doc(hidden)]
        pub fn bucket_slots(index: usize) -> &'static [Slot] {
            match index {
                $($index => &$name,)*
                _ => &[],
            }
        }
    };
}

#[cfg(all(feature = "linkme", not(feature = "inventory")))]
buckets! {
    0 => MIGRATE_CORE_REGISTRY_V4_00, 1 => MIGRATE_CORE_REGISTRY_V4_01,
    2 => MIGRATE_CORE_REGISTRY_V4_02, 3 => MIGRATE_CORE_REGISTRY_V4_03,
    4 => MIGRATE_CORE_REGISTRY_V4_04, 5 => MIGRATE_CORE_REGISTRY_V4_05,
    6 => MIGRATE_CORE_REGISTRY_V4_06, 7 => MIGRATE_CORE_REGISTRY_V4_07,
    8 => MIGRATE_CORE_REGISTRY_V4_08, 9 => MIGRATE_CORE_REGISTRY_V4_09,
    10 => MIGRATE_CORE_REGISTRY_V4_10, 11 => MIGRATE_CORE_REGISTRY_V4_11,
    12 => MIGRATE_CORE_REGISTRY_V4_12, 13 => MIGRATE_CORE_REGISTRY_V4_13,
    14 => MIGRATE_CORE_REGISTRY_V4_14, 15 => MIGRATE_CORE_REGISTRY_V4_15,
    16 => MIGRATE_CORE_REGISTRY_V4_16, 17 => MIGRATE_CORE_REGISTRY_V4_17,
    18 => MIGRATE_CORE_REGISTRY_V4_18, 19 => MIGRATE_CORE_REGISTRY_V4_19,
    20 => MIGRATE_CORE_REGISTRY_V4_20, 21 => MIGRATE_CORE_REGISTRY_V4_21,
    22 => MIGRATE_CORE_REGISTRY_V4_22, 23 => MIGRATE_CORE_REGISTRY_V4_23,
    24 => MIGRATE_CORE_REGISTRY_V4_24, 25 => MIGRATE_CORE_REGISTRY_V4_25,
    26 => MIGRATE_CORE_REGISTRY_V4_26, 27 => MIGRATE_CORE_REGISTRY_V4_27,
    28 => MIGRATE_CORE_REGISTRY_V4_28, 29 => MIGRATE_CORE_REGISTRY_V4_29,
    30 => MIGRATE_CORE_REGISTRY_V4_30, 31 => MIGRATE_CORE_REGISTRY_V4_31,
}

#[cfg(feature = "inventory")]
inventory::collect!(Slot);

/// Places one [`Slot`] in the registry, in the array `$bucket` (named by
/// the macros from the set's hash, see [`bucket`]). Generated code calls
/// this instead of naming the backend itself, so that the backend is chosen
/// here, in one place.
#[cfg(all(feature = "linkme", not(feature = "inventory")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __migrate_core_register {
    ($bucket:ident, $entry:expr) => {
        #[$crate::__private::linkme::distributed_slice($crate::__private::$bucket)]
        #[linkme(crate = $crate::__private::linkme)]
        static __MIGRATE_CORE_ENTRY: $crate::__private::Slot = $entry;
    };
}

/// Places one [`Slot`] in the registry (inventory backend: one list, so
/// the bucket is not used).
#[cfg(feature = "inventory")]
#[doc(hidden)]
#[macro_export]
macro_rules! __migrate_core_register {
    ($bucket:ident, $entry:expr) => {
        $crate::__private::inventory::submit! { $entry }
    };
}

pub use crate::__migrate_core_register as register;

/// Every entry linked into this binary, in no particular order.
#[cfg(all(feature = "linkme", not(feature = "inventory")))]
#[doc(hidden)]
pub fn slots() -> impl Iterator<Item = &'static Slot> + Clone {
    (0..BUCKETS).flat_map(bucket_slots)
}

/// Every entry registered in this binary, in no particular order.
#[cfg(feature = "inventory")]
#[doc(hidden)]
pub fn slots() -> impl Iterator<Item = &'static Slot> + Clone {
    inventory::iter::<Slot>.into_iter()
}

/// The slots that may be of the set whose name hashes to `set_hash`: its
/// bucket, which other sets may share.
#[cfg(all(feature = "linkme", not(feature = "inventory")))]
pub(crate) fn candidate_slots(set_hash: u128) -> &'static [Slot] {
    bucket_slots(bucket(set_hash))
}

/// The slots that may be of the set whose name hashes to `set_hash`: all of
/// them, as inventory keeps one list.
#[cfg(feature = "inventory")]
pub(crate) fn candidate_slots(set_hash: u128) -> Vec<&'static Slot> {
    let _ = set_hash;
    slots().collect()
}

/// Which backend this build uses, for messages.
pub(crate) const BACKEND: &str = if cfg!(feature = "inventory") {
    "inventory"
} else {
    "linkme"
};
