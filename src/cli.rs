//! Command-line interface: `serve` (the default), `backup`, `restore`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

#[derive(Parser, Debug)]
#[command(
    name = "latchkey",
    version,
    about = "A self-hosted OAuth 2.0 authorization server in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
}

#[derive(Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// Config file [default: $LATCHKEY_CONFIG, else config/latchkey.toml when present]
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:0 for a free port
    #[arg(long)]
    pub listen: Option<String>,
    /// Public base URL (the OAuth issuer)
    #[arg(long)]
    pub issuer: Option<String>,
    /// Data directory
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Seed a demo user and client for local testing
    #[arg(long)]
    pub dev: bool,
}

impl ServeArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            listen: self.listen.clone(),
            issuer: self.issuer.clone(),
            data_dir: self.data_dir.clone(),
            dev: self.dev,
        }
    }
}
