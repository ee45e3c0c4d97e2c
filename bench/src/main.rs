//! `cargo run --release -p bench [-- --quick]`: see `docs/performance.md`.

// REQUIRED: links the link-time contender's 11,200 generated `#[migration]`
// functions into this binary (a crate nothing references is not linked).
// `bench-plain` does not, on purpose.
use bench_linked_sets as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = bench::main_with_args(&args) {
        eprintln!("bench: {error}");
        std::process::exit(1);
    }
}
