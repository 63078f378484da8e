//! `TestServer`: the one way an integration test starts an in-process server. A builder collects what the test
//! needs (config tweaks, a manual clock, a data dir to reopen, users and clients to seed) and `start` returns the
//! running `Server` with its HTTP helpers.

use std::time::Duration;

use latchkey::clock::Clock;
use latchkey::config::{Config, DeclaredClient, DeclaredUser};
use latchkey::server::StartError;

use super::Server;

/// A change to the config, applied at start.
type Tweak<'a> = Box<dyn FnOnce(&mut Config) + 'a>;

/// A server to be started; see the module doc.
#[must_use = "a TestServer does nothing until `start`"]
pub struct TestServer<'a> {
    tweaks: Vec<Tweak<'a>>,
    clock: Clock,
    dir: Option<tempfile::TempDir>,
}

impl Default for TestServer<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> TestServer<'a> {
    /// A server on `Config::for_test` in a fresh temp dir, on the system clock.
    pub fn new() -> Self {
        Self {
            tweaks: Vec::new(),
            clock: Clock::system(),
            dir: None,
        }
    }

    /// Adjusts the config; tweaks apply in order, after the data dir is set (so a tweak may move it).
    pub fn config(mut self, tweak: impl FnOnce(&mut Config) + 'a) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Runs on `clock` (e.g. `Clock::manual`, which the test then moves).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Reopens an existing data dir, e.g. the one `Server::stop` returned: a restart.
    pub fn data_dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Seeds user `username` (email `NAME@example.com`), upserted at start like a declared `[[users]]`: a
    /// restart with another password changes it.
    pub fn user(self, username: &str, password: &str) -> Self {
        let user = DeclaredUser {
            username: username.into(),
            password: password.into(),
            email: format!("{username}@example.com"),
            ..Default::default()
        };
        self.config(move |c| c.users.push(user))
    }

    /// Seeds a client with a known id and secret, upserted at start like a declared `[[clients]]`.
    pub fn client(self, client: DeclaredClient) -> Self {
        self.config(move |c| c.clients.push(client))
    }

    /// Starts the server; panics when it does not start.
    pub async fn start(self) -> Server {
        match self.try_start().await {
            Ok(server) => server,
            Err(refused) => panic!("server starts: {}", refused.error),
        }
    }

    /// Starts the server, or says why it refused (for tests of start-up checks).
    pub async fn try_start(self) -> Result<Server, Refused> {
        // As the binary does at start: what the server creates is private from its first byte.
        latchkey::private_umask();
        let dir = match self.dir {
            Some(dir) => dir,
            None => tempfile::tempdir().unwrap(),
        };
        let mut cfg = Config::for_test(dir.path());
        for tweak in self.tweaks {
            tweak(&mut cfg);
        }
        let running = match start_when_unlocked(cfg, self.clock).await {
            Ok(running) => running,
            Err(error) => return Err(Refused { error, dir }),
        };
        Ok(Server {
            url: running.url(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            running: Some(running),
            dir,
        })
    }
}

/// A start that failed, and the temp dir it was given back (to try again on the same data).
pub struct Refused {
    pub error: StartError,
    pub dir: tempfile::TempDir,
}

/// `server::start`, waiting out (bounded) the moment after a shutdown when the old server's last connection task
/// still holds the store, and with it the data dir's lock: a restart in a test must not fail on that.
async fn start_when_unlocked(
    cfg: Config,
    clock: Clock,
) -> Result<latchkey::server::Running, StartError> {
    for _ in 0..100 {
        match latchkey::server::start(cfg.clone(), clock.clone()).await {
            Err(StartError::Store(latchkey::store::OpenError::Locked(_))) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => return other,
        }
    }
    panic!("the data dir stayed locked");
}
