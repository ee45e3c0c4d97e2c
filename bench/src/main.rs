//! `cargo run --release -p bench [-- --quick]`: see `docs/performance.md`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = bench::main_with_args(&args) {
        eprintln!("bench: {error}");
        std::process::exit(1);
    }
}
