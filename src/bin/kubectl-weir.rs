//! The `kubectl weir` plugin: kubectl finds `kubectl-weir` on PATH.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("kubectl weir: not yet implemented");
    std::process::exit(1);
}
