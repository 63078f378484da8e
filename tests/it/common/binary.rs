//! The real `latchkey` binary: one way to build its command line, start `serve` up to its `listening on` line,
//! and run a command that must exit, each bounded in time.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ADMIN_PASSWORD;

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// How long a start may take before the test fails.
const START_WITHIN: Duration = Duration::from_secs(60);

/// `latchkey` run in `cwd` (so no config file from the checkout is read) with the `LATCHKEY_*` settings a
/// developer's shell may carry removed, logging warnings only.
pub fn latchkey(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "LATCHKEY_CONFIG",
        "LATCHKEY_DATA_DIR",
        "LATCHKEY_MASTER_KEY",
        "LATCHKEY_ADMIN_PASSWORD",
    ] {
        c.env_remove(var);
    }
    c.env("LATCHKEY_LOG", "warn")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `latchkey serve` on data dir `dir` (also its working dir), on a free port of 127.0.0.1, with the admin
/// password `ADMIN_PASSWORD`.
pub fn serve(dir: &Path) -> Command {
    let mut c = latchkey(dir);
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD);
    c
}

/// A running binary; killed on drop.
pub struct Latchkey {
    pub child: Child,
    pub url: String,
    /// Stdout up to and including the `listening on` line.
    pub stdout_lines: Vec<String>,
    /// Its stderr, drained to the end on a thread (`kill` returns it).
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Latchkey {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Latchkey {
    /// Spawns `cmd` (a `serve`) and waits for its `listening on` line; panics with its output when it exits or
    /// stays silent instead.
    pub fn start(cmd: Command) -> Latchkey {
        Self::try_start(cmd).unwrap_or_else(|output| panic!("no listening line; {output}"))
    }

    /// [`Latchkey::start`], or its stdout and stderr when it exits or stays silent instead. Stdout and stderr keep
    /// being drained so the child never blocks on a full pipe.
    pub fn try_start(mut cmd: Command) -> Result<Latchkey, String> {
        let mut child = cmd.spawn().expect("spawn latchkey");
        let stderr = drain(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_WITHIN;
        let mut seen = Vec::new();
        while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let url = line.strip_prefix("listening on ").map(str::to_owned);
            seen.push(line);
            if let Some(url) = url {
                return Ok(Latchkey {
                    child,
                    url,
                    stdout_lines: seen,
                    stderr: Some(stderr),
                });
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "stdout {seen:?}, stderr {}",
            stderr.join().unwrap()
        ))
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and returns everything it wrote to stderr.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.stderr.take().unwrap().join().unwrap()
    }
}

/// Runs `cmd` to its exit within `limit`; a process still running then (e.g. a server that started when it
/// should have refused) is killed and fails the test.
pub fn run_to_exit(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.spawn().expect("spawn latchkey");
    let (stdout, stderr) = (
        drain(child.stdout.take().unwrap()),
        drain(child.stderr.take().unwrap()),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("latchkey still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap().into_bytes(),
        stderr: stderr.join().unwrap().into_bytes(),
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
