//! `bench` without the generated link-time sets: the first-call child of
//! every contender but the link-time one. In this process a `Migrator`'s
//! first call finds an empty link-time registry, as in an application whose
//! migrations are all added at run time (in `bench`, any first call checks
//! the 11,200 generated migrations). `bench` spawns it; see `docs/performance.md`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = bench::plain_main_with_args(&args) {
        eprintln!("bench-plain: {error}");
        std::process::exit(1);
    }
}
