//! `latchkey`: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc: steadier than glibc malloc after write-heavy phases (see the load benchmark notes in README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    small_pages_unless_asked();
    let cli = latchkey::cli::Cli::parse();
    latchkey::run_cli(cli)
}

/// Turns transparent huge pages off for this process unless `MIMALLOC_ALLOW_THP` is set (docs/benchmarks.md,
/// Memory): on a kernel whose THP mode is `always`, every 2 MiB region the allocator touches would otherwise become
/// resident whole (42 MiB of an idle server's 58 when mimalloc asked for them). In the common `madvise` mode this
/// changes nothing: mimalloc is built with `no_thp` and never asks.
fn small_pages_unless_asked() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only and changes nothing but this flag.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}
