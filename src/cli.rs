//! Command-line interface: `serve` (the default), `backup`, `restore`, `keys list|rotate`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::clock::{rfc3339, Clock};
use crate::config::{Config, Overrides};
use crate::core::keys::{self as signing, KeyPolicy, Keys};
use crate::crypto::jose::SigningAlg;
use crate::crypto::seal;
use crate::store::backup::{self, BackupInfo};
use crate::store::Store;

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
    /// Export every record of a stopped server's data dir to FILE (versioned JSON lines).
    Backup(BackupArgs),
    /// Import a backup FILE into an empty (or new) data dir, then verify it.
    Restore(RestoreArgs),
    /// List or rotate the keys ID tokens are signed with (the server must be stopped).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand, Debug, Clone)]
pub enum KeysCommand {
    /// Every signing key: kid, algorithm, state (next, signing, retiring), created, signs from, retires.
    List,
    /// Schedule a successor of an algorithm's signing key, published `[keys] publish_ahead_secs` before it signs.
    Rotate(RotateArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RotateArgs {
    /// The algorithm whose key to rotate: RS256, ES256 or EdDSA.
    #[arg(long, default_value = "RS256")]
    pub alg: String,
    /// Sign with the new key at once (a compromised key); the old one stays published while its tokens live.
    #[arg(long)]
    pub now: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// Where to write the backup; written beside it first, then renamed, with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// A file written by `latchkey backup`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
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

impl ServeArgs {
    /// Only what the offline commands read: the config file and the data dir.
    pub fn offline_overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            ..Overrides::default()
        }
    }
}

fn trees_summary(info: &BackupInfo) -> String {
    info.trees
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A small runtime for an offline command: on PostgreSQL the store is a pool of async connections.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// The configured PostgreSQL store (`[store] url`) and the runtime its connections live on, or `None` for sled in
/// the data dir (whose commands need no runtime: the tests call them from async code). Connecting needs no
/// exclusive lock: the servers may keep running (a backup is one snapshot transaction).
fn postgres(config: &Config) -> Result<Option<(tokio::runtime::Runtime, Store)>, String> {
    if config.store.url.is_empty() {
        return Ok(None);
    }
    let rt = runtime()?;
    let store = rt
        .block_on(Store::connect(&config.store.url, &config.data_dir))
        .map_err(|e| e.to_string())?;
    Ok(Some((rt, store)))
}

/// Where the records are, for messages.
fn store_name(config: &Config) -> String {
    if config.store.url.is_empty() {
        format!("data dir {}", config.data_dir.display())
    } else {
        "the PostgreSQL store".to_owned()
    }
}

/// `latchkey backup --out FILE`: the lines to print, or why it failed. The master key travels in the backup when
/// it is the data dir's `master.key`; a configured key (`LATCHKEY_MASTER_KEY`) never does.
pub fn backup(
    config: &Config,
    out: &std::path::Path,
    clock: &Clock,
) -> Result<Vec<String>, String> {
    let configured_key = !config.master_key.trim().is_empty();
    let key_file = if configured_key {
        None
    } else {
        seal::read_key_file(&config.data_dir)?
    };
    let info = match postgres(config)? {
        Some((rt, store)) => backup::write_file(out, |f| {
            rt.block_on(store.export(f, clock.now_ms(), key_file.as_deref()))
        })?,
        None => backup::backup(
            &config.data_dir,
            config.cache_mb << 20,
            out,
            clock.now_ms(),
            key_file.as_deref(),
        )?,
    };
    let mut lines = vec![format!(
        "backed up {} records from {} to {} ({})",
        info.records,
        store_name(config),
        out.display(),
        trees_summary(&info)
    )];
    lines.push(if key_file.is_some() {
        format!(
            "the backup includes the master key ({}): keep it as secret as the key itself",
            seal::KEY_FILE
        )
    } else if configured_key {
        "the master key is configured (LATCHKEY_MASTER_KEY / master_key) and is NOT in the backup: \
         restore and serve with the same key"
            .to_owned()
    } else {
        "the data dir has no master key yet (no sealed secrets): none is in the backup".to_owned()
    });
    Ok(lines)
}

/// `latchkey restore FILE`: checks the file and that the master key the restored server will use opens its sealed
/// secrets, then imports into the empty data dir.
pub fn restore(config: &Config, file: &std::path::Path) -> Result<Vec<String>, String> {
    let cache = config.cache_mb << 20;
    let pg = postgres(config)?;
    if pg.is_none() {
        backup::check_target(&config.data_dir, cache)?;
    }
    let info = backup::inspect(file)?;
    let configured = config.master_key.trim();
    let (key_text, source) = if !configured.is_empty() {
        (
            Some(configured),
            "the configured master key (LATCHKEY_MASTER_KEY / master_key)",
        )
    } else {
        (
            info.master_key_file.as_deref(),
            "the master key in the backup",
        )
    };
    if let Some(check) = info.meta.get(crate::core::provider::KEY_CHECK) {
        let opens = key_text
            .and_then(|t| seal::parse_key(t).ok())
            .is_some_and(|k| crate::core::provider::key_check_opens(check, &seal::Sealer::new(k)));
        if !opens {
            return Err(match key_text {
                None => format!(
                    "{} does not include the master key its secrets are sealed with: set LATCHKEY_MASTER_KEY \
                     to the backed-up server's key and run restore again",
                    file.display()
                ),
                Some(_) => format!(
                    "{source} is not the key the secrets in {} are sealed with: set LATCHKEY_MASTER_KEY to the \
                     backed-up server's key (or unset it to use the key in the backup)",
                    file.display()
                ),
            });
        }
    }
    let write_key = if configured.is_empty() {
        info.master_key_file.as_deref()
    } else {
        None
    };
    let info = match pg {
        Some((rt, store)) => {
            let info = rt.block_on(async {
                let info = store.import(file).await?;
                store.check_records().await.map(|()| info)
            })?;
            if let Some(text) = write_key {
                seal::install_key_file(&config.data_dir, text)?;
            }
            info
        }
        None => backup::restore(file, &config.data_dir, cache, write_key)?,
    };
    Ok(vec![format!(
        "restored {} records from {} (made {}) into {} and verified every record ({})",
        info.records,
        file.display(),
        info.created_at,
        store_name(config),
        trees_summary(&info)
    )])
}

/// `latchkey keys list|rotate`: offline, on the configured data dir, like `backup`.
pub fn keys(config: &Config, command: &KeysCommand, clock: &Clock) -> Result<Vec<String>, String> {
    let alg = match command {
        KeysCommand::Rotate(a) => Some(
            SigningAlg::from_name(&a.alg)
                .ok_or_else(|| format!("--alg {}: must be one of RS256, ES256, EdDSA", a.alg))?,
        ),
        KeysCommand::List => None,
    };
    let (rt, store) = match postgres(config)? {
        Some(pg) => pg,
        None => (
            runtime()?,
            Store::open(&config.data_dir, config.cache_mb << 20).map_err(|e| match e {
                crate::store::OpenError::Locked(_) => {
                    format!("{e}: stop the server first, then run `latchkey keys` again")
                }
                other => other.to_string(),
            })?,
        ),
    };
    let sealer = seal::Sealer::new(seal::load_master_key(&config.master_key, &config.data_dir)?);
    let policy = KeyPolicy::from_config(config);
    let ctx = Keys {
        store: &store,
        sealer: &sealer,
        policy: &policy,
    };
    let now = clock.now_ms();
    let lines = rt.block_on(async {
        let mut lines = Vec::new();
        if let (Some(alg), KeysCommand::Rotate(a)) = (alg, command) {
            signing::ensure(&ctx, now).await?;
            let key = signing::rotate(&ctx, alg, now, a.now).await?;
            lines.push(format!(
                "{} key {} signs from {}",
                alg.as_str(),
                key.kid,
                rfc3339(key.signs_from)
            ));
        }
        let keys = store.list_signing_keys().await?;
        if keys.is_empty() {
            lines.push("no signing keys yet: the server makes them at its first start".into());
        }
        for s in signing::statuses(keys, &policy, now) {
            let k = &s.key;
            lines.push(format!(
                "{} {} {} created {} signs_from {} retires {}",
                k.kid,
                k.alg.as_str(),
                s.state.as_str(),
                rfc3339(k.created_at),
                rfc3339(k.signs_from),
                s.retires_at.map_or_else(|| "-".to_owned(), rfc3339)
            ));
        }
        Ok::<_, crate::error::Error>(lines)
    });
    let closed = store.close();
    let lines = lines.map_err(|e| match e {
        crate::error::Error::Internal(cause) => cause,
        other => other.to_string(),
    })?;
    closed.map_err(|e| e.to_string())?;
    Ok(lines)
}
