//! Fault injection for end-to-end tests of the spawned server.
//!
//! - [`FaultProxy`]: a TCP proxy on 127.0.0.1 in front of PostgreSQL or an HTTP sink that can
//!   cut every connection and reset or blackhole new ones for a while (a database restart, a
//!   sink whose load balancer resets connections or never answers), then resume.
//! - [`SqliteWriteLock`]: another connection holding a SQLite file's write lock
//!   (`BEGIN EXCLUSIVE`), as a backup tool or a stray `sqlite3` shell would.
//! - [`file_size_limited`] and [`read_only_mounted`]: wrappers that start the binary with a
//!   full disk (`RLIMIT_FSIZE`, writes fail with `EFBIG`) or with its data directory on a
//!   read-only bind mount (writes fail with `EROFS`, even for root).
//!
//! A SIGKILL of a [`crate::server::Server`] is [`crate::server::Server::kill_hard`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, SqliteConnection};

/// What a [`FaultProxy`] does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Relay bytes both ways to the upstream.
    Forward,
    /// Accept, wait for the client's first bytes, and close with unread data, which makes the
    /// kernel answer with a TCP reset: the client sees "connection reset".
    Reset,
    /// Accept and never answer nor close until [`FaultProxy::resume`]: the client waits for
    /// its own timeout.
    Blackhole,
}

/// What a [`FaultProxy`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyFigures {
    /// Connections relayed to the upstream.
    pub forwarded: usize,
    /// Live relayed connections cut by [`FaultProxy::outage`].
    pub cut: usize,
    /// New connections reset.
    pub reset: usize,
    /// New connections blackholed.
    pub blackholed: usize,
}

/// A TCP proxy on a free port of 127.0.0.1. Stops (closing every connection) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
}

struct ProxyShared {
    upstream: SocketAddr,
    mode: Mutex<ProxyMode>,
    next_id: AtomicU64,
    /// Both sockets of every relayed connection, by id, so an outage can cut them.
    live: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    held: Mutex<Vec<TcpStream>>,
    stopped: AtomicBool,
    forwarded: AtomicUsize,
    cut: AtomicUsize,
    reset: AtomicUsize,
    blackholed: AtomicUsize,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:5432`), forwarding.
    ///
    /// # Panics
    ///
    /// If no port of 127.0.0.1 can be bound.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(ProxyShared {
            upstream,
            mode: Mutex::new(ProxyMode::Forward),
            next_id: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
            held: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
            forwarded: AtomicUsize::new(0),
            cut: AtomicUsize::new(0),
            reset: AtomicUsize::new(0),
            blackholed: AtomicUsize::new(0),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let mode = *accepting.mode.lock().expect("proxy lock");
                match mode {
                    ProxyMode::Forward => relay(&accepting, stream),
                    ProxyMode::Reset => {
                        accepting.reset.fetch_add(1, Ordering::SeqCst);
                        std::thread::spawn(move || reset(stream));
                    }
                    ProxyMode::Blackhole => {
                        accepting.blackholed.fetch_add(1, Ordering::SeqCst);
                        accepting.held.lock().expect("proxy lock").push(stream);
                    }
                }
            }
        });
        FaultProxy { addr, shared }
    }

    /// Starts a proxy to the host and port of `url` (a `postgres://` URL; port 5432 when it
    /// names none).
    ///
    /// # Panics
    ///
    /// If `url` is not a URL with a host that resolves.
    pub fn in_front_of(url: &str) -> FaultProxy {
        use std::net::ToSocketAddrs as _;
        let url = url::Url::parse(url).expect("a database URL");
        let host = url.host_str().expect("a URL with a host");
        let upstream = (host, url.port().unwrap_or(5432))
            .to_socket_addrs()
            .expect("the database host resolves")
            .next()
            .expect("the database host has an address");
        FaultProxy::start(upstream)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for an HTTP upstream.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `url` (a `postgres://` URL) with its host and port replaced by the proxy's.
    ///
    /// # Panics
    ///
    /// If `url` is not a URL.
    pub fn rewrite_url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("a database URL");
        url.set_host(Some("127.0.0.1")).expect("a URL with a host");
        url.set_port(Some(self.addr.port()))
            .expect("a URL with a port");
        url.to_string()
    }

    /// Starts an outage: new connections get `mode`, and every relayed connection is cut
    /// (both of its sockets shut down, as a restarting server closes its sessions).
    pub fn outage(&self, mode: ProxyMode) {
        self.set_mode(mode);
        self.cut();
    }

    /// What new connections get from now on; relayed connections go on.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self.shared.mode.lock().expect("proxy lock") = mode;
    }

    /// Cuts every relayed connection: both of its sockets are shut down.
    pub fn cut(&self) {
        let live: Vec<(TcpStream, TcpStream)> = self
            .shared
            .live
            .lock()
            .expect("proxy lock")
            .drain()
            .map(|(_, pair)| pair)
            .collect();
        for (client, upstream) in live {
            self.shared.cut.fetch_add(1, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }

    /// Ends an outage: blackholed connections are closed and new ones relayed again.
    pub fn resume(&self) {
        *self.shared.mode.lock().expect("proxy lock") = ProxyMode::Forward;
        self.shared.held.lock().expect("proxy lock").clear();
    }

    /// What the proxy did so far.
    pub fn figures(&self) -> ProxyFigures {
        ProxyFigures {
            forwarded: self.shared.forwarded.load(Ordering::SeqCst),
            cut: self.shared.cut.load(Ordering::SeqCst),
            reset: self.shared.reset.load(Ordering::SeqCst),
            blackholed: self.shared.blackholed.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        self.outage(ProxyMode::Reset);
        self.resume();
    }
}

/// Relays `client` to the upstream on two threads; either side closing closes both.
fn relay(shared: &Arc<ProxyShared>, client: TcpStream) {
    let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    shared
        .live
        .lock()
        .expect("proxy lock")
        .insert(id, (client_copy, upstream_copy));
    let pump = |mut from: TcpStream, mut to: TcpStream, shared: Arc<ProxyShared>| {
        move || {
            let mut buffer = [0_u8; 16 * 1024];
            loop {
                match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            shared.live.lock().expect("proxy lock").remove(&id);
        }
    };
    let (Ok(client_read), Ok(upstream_read)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    std::thread::spawn(pump(client_read, upstream, shared.clone()));
    std::thread::spawn(pump(upstream_read, client, shared.clone()));
}

/// Closes `stream` with a TCP reset: waits (briefly) for the client's first bytes and closes
/// without reading them.
fn reset(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut first = [0_u8; 1];
    let _ = stream.peek(&mut first);
    drop(stream);
}

/// Another connection holding the write lock of a SQLite database (`BEGIN EXCLUSIVE`):
/// writers elsewhere wait for their `busy_timeout` and then fail; readers (WAL) go on. The
/// lock is released by [`SqliteWriteLock::release`] or when the value is dropped.
pub struct SqliteWriteLock {
    conn: Option<SqliteConnection>,
}

impl SqliteWriteLock {
    /// Takes the write lock of the database at `url` (`sqlite://<path>` or a path), waiting
    /// up to 10 s for it.
    ///
    /// # Panics
    ///
    /// If the file cannot be opened or the lock not taken.
    pub fn hold(url: &str) -> SqliteWriteLock {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let mut conn = SqliteConnection::establish(path)
            .unwrap_or_else(|error| panic!("open {path}: {error}"));
        conn.batch_execute("PRAGMA busy_timeout = 10000; BEGIN EXCLUSIVE;")
            .unwrap_or_else(|error| panic!("lock {path}: {error}"));
        SqliteWriteLock { conn: Some(conn) }
    }

    /// Rolls back and closes the locking connection.
    pub fn release(mut self) {
        self.unlock();
    }

    fn unlock(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.batch_execute("ROLLBACK;");
        }
    }
}

impl Drop for SqliteWriteLock {
    fn drop(&mut self) {
        self.unlock();
    }
}

/// Writes `<dir>/keywire-fsize.sh`, which runs `binary` with its arguments under
/// `RLIMIT_FSIZE` = `blocks` shell blocks (0: no byte can be written; 1: a few hundred bytes,
/// enough for small files but not for a database page) and `SIGXFSZ` ignored, so a write past
/// the limit fails with `EFBIG` as a write to a full disk fails with `ENOSPC`. Returns the
/// script's path, to use as [`crate::server::ServerConfig::binary`].
///
/// # Panics
///
/// If the script cannot be written.
pub fn file_size_limited(binary: &Path, dir: &Path, blocks: u64) -> PathBuf {
    // An ignored signal stays ignored across exec: the server inherits SIG_IGN for SIGXFSZ.
    script(
        dir,
        "keywire-fsize.sh",
        &format!(
            "trap '' XFSZ\nulimit -f {blocks}\nexec {} \"$@\"\n",
            quoted(binary)
        ),
    )
}

/// Writes `<dir>/keywire-ro.sh`, which runs `binary` in a mount namespace of its own where
/// `read_only` is bind-mounted read-only onto itself: writes there fail with `EROFS`, for root
/// too (where `chmod` would not stop anything). `None` when this machine cannot do that (no
/// `unshare`, or no right to make a mount namespace); the host's mounts are never touched.
///
/// # Panics
///
/// If the script cannot be written.
pub fn read_only_mounted(binary: &Path, dir: &Path, read_only: &Path) -> Option<PathBuf> {
    let mount = format!(
        "mount -o bind,ro {ro} {ro} || exit 97\n",
        ro = quoted(read_only)
    );
    let probe = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg(format!(
            "{mount}! ( : > {}/.keywire-ro-probe ) 2>/dev/null",
            quoted(read_only)
        ))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !probe.success() {
        return None;
    }
    Some(script(
        dir,
        "keywire-ro.sh",
        &format!(
            "exec unshare --mount sh -c {} keywire-ro \"$@\"\n",
            quoted_text(&format!("{mount}exec {} \"$@\"", quoted(binary)))
        ),
    ))
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write the wrapper script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the wrapper executable");
    path
}

/// `path` quoted for `sh`.
fn quoted(path: &Path) -> String {
    quoted_text(&path.display().to_string())
}

fn quoted_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Ends every other session on the PostgreSQL database `url` names with
/// `pg_terminate_backend`, as a fast shutdown or restart of the server does: each gets
/// `FATAL 57P01 terminating connection due to administrator command` and is closed. Returns
/// how many were ended. Only that database's sessions are touched, so a shared cluster is safe.
///
/// # Panics
///
/// If the database cannot be reached.
pub async fn terminate_sessions(url: &str) -> usize {
    use diesel::sql_types::Bool;
    use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
    #[derive(diesel::QueryableByName)]
    struct Ended {
        #[diesel(sql_type = Bool)]
        ended: bool,
    }
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|error| panic!("connect to end sessions: {error}"));
    let ended: Vec<Ended> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load(&mut conn)
    .await
    .unwrap_or_else(|error| panic!("end sessions: {error}"));
    ended.iter().filter(|e| e.ended).count()
}
