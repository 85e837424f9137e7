//! The `drover` binary: everything lives in the library so tests can drive it.

fn main() {
    std::process::exit(drover::cli::main(std::env::args_os()));
}
