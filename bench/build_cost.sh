#!/usr/bin/env bash
# Build cost of depending on migrate-core, against depending on rusqlite alone
# (issue 11's definition): a clean DEBUG build of a four-migration program,
# with bundled SQLite and the same rusqlite in both, CPU time (user + system)
# compared as medians over alternating pairs.
#
# Creates two tiny programs in a temporary directory:
#   with-migrate-core: migrate-core (by path, default features + bundled),
#                      four #[migration] functions and db.migrate();
#   rusqlite-only:     rusqlite, the same four tables created with execute_batch.
# Downloads everything first (cargo fetch, not timed), then times a clean
# `cargo build` of each with its own empty target directory, ROUNDS pairs,
# the order inside a pair alternating (A B, B A, A B, …) so that a drift in
# the machine's load favours neither. Prints each build's wall and CPU
# seconds and the ratios of the medians. CPU time is the figure to judge on a
# shared machine: wall time moves with whatever else is running.
#
#   bench/build_cost.sh [ROUNDS] [--release]   (default: 3 pairs, debug)
set -euo pipefail
rounds=3
profile=debug
for arg in "$@"; do
  case $arg in
    --release) profile=release ;;
    ''|*[!0-9]*) echo "usage: bench/build_cost.sh [ROUNDS] [--release]" >&2; exit 2 ;;
    *) rounds=$arg ;;
  esac
done
release_flag=()
[ "$profile" = release ] && release_flag=(--release)
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/with-migrate-core/src" "$work/rusqlite-only/src"
cat >"$work/with-migrate-core/Cargo.toml" <<EOF
[package]
name = "with-migrate-core"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
migrate-core = { path = "$root/migrate-core", features = ["bundled"] }
[workspace]
EOF
cat >"$work/with-migrate-core/src/main.rs" <<'EOF'
use migrate_core::rusqlite::{Connection, Result, Transaction};
use migrate_core::{migration, Migrate};

#[migration(0)]
fn create_cats(tx: &Transaction) -> Result<()> {
    tx.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY)")
}

#[migration(1)]
fn create_dogs(tx: &Transaction) -> Result<()> {
    tx.execute_batch("CREATE TABLE dogs (name TEXT PRIMARY KEY)")
}

#[migration(2)]
fn create_owners(tx: &Transaction) -> Result<()> {
    tx.execute_batch("CREATE TABLE owners (name TEXT PRIMARY KEY)")
}

#[migration(3)]
fn index_cats(tx: &Transaction) -> Result<()> {
    tx.execute_batch("CREATE INDEX cats_by_name ON cats (name)")
}

fn main() -> std::result::Result<(), migrate_core::Error> {
    let mut db = Connection::open_in_memory()?;
    db.migrate()?;
    Ok(())
}
EOF
(cd "$work/with-migrate-core" && cargo generate-lockfile -q && cargo fetch -q)
version=$(grep -A1 '^name = "rusqlite"' "$work/with-migrate-core/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')

cat >"$work/rusqlite-only/Cargo.toml" <<EOF
[package]
name = "rusqlite-only"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
rusqlite = { version = "=$version", features = ["bundled"] }
[workspace]
EOF
cat >"$work/rusqlite-only/src/main.rs" <<'EOF'
use rusqlite::Connection;

fn main() -> rusqlite::Result<()> {
    let db = Connection::open_in_memory()?;
    db.execute_batch(
        "CREATE TABLE cats (name TEXT PRIMARY KEY);
         CREATE TABLE dogs (name TEXT PRIMARY KEY);
         CREATE TABLE owners (name TEXT PRIMARY KEY);
         CREATE INDEX cats_by_name ON cats (name);",
    )
}
EOF
(cd "$work/rusqlite-only" && cargo generate-lockfile -q && cargo fetch -q)

crates() { (cd "$work/$1" && cargo tree -q -e normal,build --prefix none | sed 's/ (\*)$//; s/ (proc-macro)//' | sort -u | wc -l); }
echo "rusqlite $version (bundled) in both; $profile builds; $(nproc) cores; $(rustc --version)"
echo "crates built: with-migrate-core $(crates with-migrate-core), rusqlite-only $(crates rusqlite-only)"
duplicates=$(cd "$work/with-migrate-core" && cargo tree -q -d -e normal,build --depth 0 | grep -v '^$' || true)
echo "crates built twice in with-migrate-core: ${duplicates:-none}" | tr '\n' ' '
echo
declare -A wall cpu
TIMEFORMAT='%R %U %S'
for round in $(seq 1 "$rounds"); do
  order=(with-migrate-core rusqlite-only)
  [ $((round % 2)) -eq 0 ] && order=(rusqlite-only with-migrate-core)
  for program in "${order[@]}"; do
    target="$work/target-$program-$round"
    measured=$( { time (cd "$work/$program" && CARGO_TARGET_DIR="$target" cargo build -q "${release_flag[@]}") ; } 2>&1 | tail -1)
    read -r real user sys <<<"$measured"
    used=$(echo "$user + $sys" | bc)
    wall[$program]+="$real "
    cpu[$program]+="$used "
    printf '%-18s round %d: wall %6.1f s, cpu %6.1f s (user + sys)\n' "$program" "$round" "$real" "$used"
    rm -rf "$target"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for kind in cpu wall; do
  declare -n series=$kind
  a=$(echo "${series[with-migrate-core]}" | median)
  b=$(echo "${series[rusqlite-only]}" | median)
  printf 'median %-4s: with-migrate-core %.1f s, rusqlite-only %.1f s, ratio %.2fx\n' "$kind" "$a" "$b" "$(echo "$a / $b" | bc -l)"
done
