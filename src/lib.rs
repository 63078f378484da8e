//! # Latchkey
//!
//! A self-hosted OAuth 2.0 authorization server in one binary with its storage embedded.
//!
//! # Layout
//!
//! Dependencies point down, one layer to the next or further (`tests/layering.rs` checks it; siblings in a layer
//! never import each other):
//!
//! - [`cli`], [`server`]: the command line (offline backup, restore), and `start` (store → state → router) with the
//!   hyper accept loop and graceful drain.
//! - [`api`]: the router and the wire dialects (`api::rc` Rocket.Chat, `api::stack` Stack Auth, `api::locoia`),
//!   each with its own error table.
//! - [`oauth`]: the authorization server (authorize, token, introspect, revoke, userinfo, metadata) on oxide-auth;
//!   [`upstream`]: federated sign-in through custom providers, catalogue presets (OAuth 2.0, OAuth 1.0a, Apple)
//!   and any OpenID Connect issuer (start, callback, exchange, identity mapping, `upstream::oidc`), RC's OAuth
//!   Proxy, and the upstream token set and its refresh for connected accounts.
//! - [`web`]: sign-in, consent and error pages, the session cookie, CSRF and the strict form parser: browser
//!   plumbing that knows neither OAuth nor federation.
//! - [`state`]: `AppState`, the composition root's shared handles; it builds the use cases' narrow contexts.
//! - [`core`]: use cases (users, sessions, apps, links, providers, 2FA, federation decisions, OpenID Connect
//!   claims, bootstrap) over the store, free of wire formats; each takes only what it touches.
//! - [`store`]: the `Store` facade (async use-case steps, durable on return) over its sled backend
//!   (`store::sled`: trees, transactions, group commit, `verify()`) or PostgreSQL (`store::pg`, a first slice),
//!   versioned records;
//!   [`config`]: defaults < file < env < flags → one validated `Config`.
//! - [`model`]: domain types and validation, no IO; `model::catalogue`, the declarative provider presets.
//! - [`error`]: the domain `Error`.
//! - [`crypto`]: ids, secrets, digests, the argon2 pool and the client-secret verification cache; [`clock`]: the
//!   only reader of wall-clock time; [`wire`]: HTTP plumbing every dialect shares (the Bearer parser, the body
//!   reader, `Retry-After` seconds); [`telemetry`]: logging and metrics.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod crypto;
pub mod error;
pub mod model;
pub mod oauth;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod web;
pub mod wire;

use std::io::Write;
use std::process::ExitCode;

use cli::{Cli, Command};

/// Makes every file and dir this process creates from now on private to its user (umask 0o077): the data dir
/// and any parent it needs, sled's files and lock and its later snapshots, `master.key`, are 0700/0600 from their
/// first byte. The mask belongs to the whole process, so the process sets it once at start (`run_cli`), not the
/// library when it opens a store; anything that embeds the server (the tests' in-process server) calls it too.
pub fn private_umask() {
    // SAFETY: umask(2) only swaps the process's file mode mask; it cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Runs the command line; returns the process exit code.
pub fn run_cli(cli: Cli) -> ExitCode {
    private_umask();
    let serve = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
        Some(Command::Backup(args)) => {
            return offline(&cli.serve, |c| {
                cli::backup(c, &args.out, &clock::Clock::system())
            })
        }
        Some(Command::Restore(args)) => {
            return offline(&cli.serve, |c| cli::restore(c, &args.file))
        }
        Some(Command::Keys(command)) => {
            return offline(&cli.serve, |c| {
                cli::keys(c, &command, &clock::Clock::system())
            })
        }
    };
    let config = match config::Config::load(&serve.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(serve_until_signal(config))
}

/// Runs an offline command (backup, restore, keys) on the configured data dir: prints its lines, or the error on stderr.
fn offline(
    args: &cli::ServeArgs,
    command: impl FnOnce(&config::Config) -> Result<Vec<String>, String>,
) -> ExitCode {
    let config = match config::Config::load(&args.offline_overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.log);
    match command(&config) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("latchkey: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_until_signal(config: config::Config) -> ExitCode {
    let running = match server::start(config, clock::Clock::system()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("latchkey: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        for line in &running.announcements.lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "listening on {}", running.url());
        let _ = out.flush();
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    match running.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: shutdown: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
