#!/usr/bin/env bash
# Build cost of depending on migrate-core, against depending on rusqlite alone.
#
# Creates two tiny programs in a temporary directory, both with bundled SQLite
# and the same rusqlite version:
#   with-migrate-core: migrate-core (by path, default features + bundled), one
#                      #[migration] and db.migrate();
#   rusqlite-only:     rusqlite, the same table created with execute_batch.
# Downloads everything first (cargo fetch, not timed), then times a clean
# `cargo build --release` of each with its own empty target directory,
# ROUNDS times, alternating. Prints wall and CPU (user + system) seconds and
# the ratios of their medians: wall time is what a developer waits on this
# machine, CPU time is steadier when other builds share the machine.
#
#   bench/build_cost.sh [ROUNDS]        (default 2; see docs/performance.md)
set -euo pipefail
rounds=${1:-2}
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
use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, Migrate};

#[migration(0)]
fn create_cats(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY)")
}

fn main() -> Result<(), migrate_core::Error> {
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
    db.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY)")
}
EOF
(cd "$work/rusqlite-only" && cargo generate-lockfile -q && cargo fetch -q)

echo "rusqlite $version (bundled) in both; $(nproc) cores; $(rustc --version)"
declare -A wall cpu
TIMEFORMAT='%R %U %S'
for round in $(seq 1 "$rounds"); do
  for program in with-migrate-core rusqlite-only; do
    target="$work/target-$program-$round"
    measured=$( { time (cd "$work/$program" && CARGO_TARGET_DIR="$target" cargo build --release -q) ; } 2>&1 | tail -1)
    read -r real user sys <<<"$measured"
    used=$(echo "$user + $sys" | bc)
    wall[$program]+="$real "
    cpu[$program]+="$used "
    printf '%-18s round %d: wall %6.1f s, cpu %6.1f s\n' "$program" "$round" "$real" "$used"
    rm -rf "$target"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for kind in wall cpu; do
  declare -n series=$kind
  a=$(echo "${series[with-migrate-core]}" | median)
  b=$(echo "${series[rusqlite-only]}" | median)
  printf 'median %-4s: with-migrate-core %.1f s, rusqlite-only %.1f s, ratio %.2fx\n' "$kind" "$a" "$b" "$(echo "$a / $b" | bc -l)"
done
