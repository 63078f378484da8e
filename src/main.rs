//! `latchkey`: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc: steadier than glibc malloc after write-heavy phases (see the load benchmark notes in README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = latchkey::cli::Cli::parse();
    latchkey::run_cli(cli)
}
