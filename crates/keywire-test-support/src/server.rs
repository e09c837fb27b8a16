//! The real `keywire` binary, spawned on a free port of 127.0.0.1 with its own data directory
//! (or database), driven over HTTP.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Path of the `keywire` binary (`env!("CARGO_BIN_EXE_keywire")` in the server's tests).
    pub binary: PathBuf,
    /// Data directory (SQLite lives here unless `database_url` is set).
    pub data_dir: PathBuf,
    /// `KEYWIRE_DATABASE_URL`, if any.
    pub database_url: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl ServerConfig {
    /// A server on `binary` with data in `data_dir`.
    pub fn new(binary: impl Into<PathBuf>, data_dir: &Path) -> Self {
        ServerConfig {
            binary: binary.into(),
            data_dir: data_dir.to_owned(),
            database_url: None,
            env: Vec::new(),
        }
    }

    /// Uses this database URL.
    pub fn database(mut self, url: Option<&str>) -> Self {
        self.database_url = url.map(str::to_owned);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A running `keywire serve`. Killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn pump(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
    lines: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(&mut from);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().expect("output lock").push_str(&line);
            if let Some(tx) = &lines {
                let _ = tx.send(line.clone());
            }
            line.clear();
        }
    });
}

impl Server {
    /// Starts the server and waits until it listens (at most 60 s). Panics with its output when
    /// it exits or does not come up.
    pub fn start(config: &ServerConfig) -> Server {
        Self::try_start(config).unwrap_or_else(|(status, out, err)| {
            panic!("keywire did not start ({status}):\n--- stdout\n{out}\n--- stderr\n{err}")
        })
    }

    /// Starts the server; on failure returns (exit status, stdout, stderr).
    pub fn try_start(config: &ServerConfig) -> Result<Server, (String, String, String)> {
        let mut command = Command::new(&config.binary);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KEYWIRE_LISTEN", "127.0.0.1:0")
            .env("KEYWIRE_DATA_DIR", &config.data_dir)
            .env("KEYWIRE_OUTBOUND_ALLOW", "127.0.0.1/32")
            .env("KEYWIRE_HTTP_WORKERS", "1")
            .env("KEYWIRE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = &config.database_url {
            command.env("KEYWIRE_DATABASE_URL", url);
        }
        for (key, value) in &config.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn keywire");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        pump(
            child.stdout.take().expect("stdout"),
            stdout.clone(),
            Some(tx),
        );
        pump(child.stderr.take().expect("stderr"), stderr.clone(), None);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("keywire listening on ") {
                        return Ok(Server {
                            child,
                            url: url.to_owned(),
                            stdout,
                            stderr,
                        });
                    }
                    // A worker-only node has no HTTP listener.
                    if line.trim().starts_with("keywire worker running") {
                        return Ok(Server {
                            child,
                            url: String::new(),
                            stdout,
                            stderr,
                        });
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        std::thread::sleep(Duration::from_millis(100));
                        let out = stdout.lock().expect("lock").clone();
                        let err = stderr.lock().expect("lock").clone();
                        return Err((status.to_string(), out, err));
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let out = stdout.lock().expect("lock").clone();
                        let err = stderr.lock().expect("lock").clone();
                        return Err(("timed out".into(), out, err));
                    }
                }
            }
        }
    }

    /// Everything the server printed on standard output so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("lock").clone()
    }

    /// Everything the server logged (standard error) so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// The admin token printed on first start, if it was printed.
    pub fn printed_token(&self) -> Option<String> {
        self.stdout()
            .split_whitespace()
            .find(|w| w.starts_with("kw_"))
            .map(str::to_owned)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once with SIGKILL, as a crash or `kill -9` would (no shutdown, no
    /// cleanup), and reaps it. To restart on the same data directory or database, start a new
    /// [`Server`] from the same [`ServerConfig`] afterwards.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (at most 20 s) for the exit.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "keywire did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever a test did, the server must not have panicked: a panic in an actix worker
        // loses that worker and leaves its clients without an answer.
        if !std::thread::panicking() {
            let log = self.stderr();
            assert!(
                !log.contains("panicked"),
                "the keywire server panicked:\n{log}"
            );
        }
    }
}
