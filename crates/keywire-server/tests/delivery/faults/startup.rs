//! A data directory that cannot be written at start-up: a full disk, a read-only mount, a path
//! that is a file, a key file that never ends. Each is a clear message on standard error that
//! names the path and the cause, a non-zero exit, no panic, within seconds. The tests may run
//! as root, where `chmod` stops nothing: a full disk is `RLIMIT_FSIZE` (or `/dev/full`) and a
//! read-only directory a read-only bind mount in a mount namespace of the server's own.

use std::path::Path;
use std::time::{Duration, Instant};

use keywire_test_support::TestDb;
use keywire_test_support::faults::{file_size_limited, read_only_mounted};
use keywire_test_support::server::{Server, ServerConfig};

const BINARY: &str = env!("CARGO_BIN_EXE_keywire");

/// Starts `config`, expects it to fail within seconds with a non-zero exit and a `keywire:`
/// line on standard error that holds every one of `names`; returns that line.
fn fails_clearly(config: &ServerConfig, names: &[&str], label: &str) -> String {
    let started = Instant::now();
    let Err((status, _out, err)) = Server::try_start(config) else {
        panic!("{label}: keywire started");
    };
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "{label}: took {took:?} to give up"
    );
    assert!(
        status.starts_with("exit status: ") && status != "exit status: 0",
        "{label}: a non-zero exit, not a signal: {status}\n{err}"
    );
    assert_ne!(status, "exit status: 101", "{label}: a panic\n{err}");
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(
            !err.contains(bad),
            "{label}: `{bad}` on standard error:\n{err}"
        );
    }
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with("keywire: "))
        .unwrap_or_else(|| panic!("{label}: no `keywire:` error line:\n{err}"))
        .to_owned();
    for name in names {
        assert!(line.contains(name), "{label}: `{name}` is not in `{line}`");
    }
    eprintln!("{label}: {status} after {took:.1?}: {line}");
    line
}

/// Starts a server on `data` without any limit, and stops it.
async fn starts_again(data: &Path, url: Option<&str>, label: &str) {
    let server = Server::try_start(&ServerConfig::new(BINARY, data).database(url)).unwrap_or_else(
        |(status, _, err)| panic!("{label}: does not start once there is room ({status}):\n{err}"),
    );
    stop(server, label).await;
}

/// Checks that `server` answers, then stops it with SIGTERM; a clean exit.
async fn stop(server: Server, label: &str) {
    let health = keywire_test_support::http_client()
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "{label}");
    let (status, _) = server.terminate();
    assert!(status.success(), "{label}: {status}");
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// One data directory per backend: SQLite in it, or PostgreSQL with only the key in it.
async fn backends() -> Vec<(String, Option<TestDb>)> {
    let mut all = vec![("sqlite".to_owned(), None)];
    if let Some(db) = TestDb::postgres().await {
        all.push(("postgres".to_owned(), Some(db)));
    }
    all
}

#[tokio::test]
async fn a_data_dir_that_is_a_file_fails_start_up_clearly() {
    for (backend, db) in backends().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, b"not a directory").unwrap();
        let config = ServerConfig::new(BINARY, &file).database(db.as_ref().map(TestDb::url));
        // SQLite creates the directory first; PostgreSQL reads the key from it first.
        let cause = if db.is_none() {
            "File exists"
        } else {
            "Not a directory"
        };
        fails_clearly(
            &config,
            &[&path(&file), cause],
            &format!("data dir is a file ({backend})"),
        );
    }
}

#[tokio::test]
async fn a_full_disk_at_start_up_fails_clearly() {
    for (backend, db) in backends().await {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // Nothing can be written at all.
        let full = file_size_limited(Path::new(BINARY), dir.path(), 0);
        let config = ServerConfig::new(&full, &data).database(db.as_ref().map(TestDb::url));
        let named = match db {
            None => path(&data),
            Some(_) => path(&data.join("master.key")),
        };
        fails_clearly(
            &config,
            &[&named, "File too large"],
            &format!("disk full ({backend})"),
        );
        // Room again: the failed start left nothing behind that stops the next one.
        starts_again(
            &data,
            db.as_ref().map(TestDb::url),
            &format!("disk full ({backend})"),
        )
        .await;
    }
    // Room for the key but not for the database: the disk fills during start-up.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let nearly_full = file_size_limited(Path::new(BINARY), dir.path(), 1);
    fails_clearly(
        &ServerConfig::new(&nearly_full, &data),
        &[&path(&data.join("keywire.db")), "disk I/O error"],
        "disk fills during start-up (sqlite)",
    );
    starts_again(&data, None, "disk fills during start-up (sqlite)").await;
    // A database file on a device that is always full (ENOSPC on every write).
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("keywire.db")).unwrap();
    fails_clearly(
        &ServerConfig::new(BINARY, dir.path()),
        &[&path(&dir.path().join("keywire.db")), "disk is full"],
        "database on /dev/full (sqlite)",
    );
}

#[tokio::test]
async fn a_read_only_data_dir_at_start_up_fails_clearly() {
    for (backend, db) in backends().await {
        let url = db.as_ref().map(TestDb::url);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let Some(read_only) = read_only_mounted(Path::new(BINARY), dir.path(), &data) else {
            // No mount namespace here (no `unshare`, or no right to one): chmod stops anyone
            // but root.
            eprintln!(
                "read-only data dir ({backend}): no read-only mount possible here; checked with chmod unless root"
            );
            chmod_read_only(&data, url, &backend);
            continue;
        };
        // A fresh directory.
        let named = match db {
            None => path(&data),
            Some(_) => path(&data.join("master.key")),
        };
        fails_clearly(
            &ServerConfig::new(&read_only, &data).database(url),
            &[&named, "Read-only file system"],
            &format!("read-only data dir, fresh ({backend})"),
        );
        // A directory that already holds keywire's data (the key, and the SQLite database).
        let first = Server::start(&ServerConfig::new(BINARY, &data).database(url));
        stop(first, &backend).await;
        let config = ServerConfig::new(&read_only, &data).database(url);
        match db {
            None => {
                fails_clearly(
                    &config,
                    &[&path(&data), "Read-only file system"],
                    "read-only data dir, existing data (sqlite)",
                );
            }
            Some(_) => {
                // With PostgreSQL the directory only holds the key, which is only read.
                stop(Server::start(&config), "read-only data dir (postgres)").await;
                eprintln!(
                    "read-only data dir, existing key (postgres): starts and serves (the key is only read)"
                );
            }
        }
    }
}

/// The fallback where no read-only mount can be made: mode 0555, which stops every user but
/// root.
fn chmod_read_only(data: &Path, url: Option<&str>, backend: &str) {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        eprintln!(
            "read-only data dir ({backend}): running as root without a mount namespace: not checked"
        );
        return;
    }
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o555)).unwrap();
    fails_clearly(
        &ServerConfig::new(BINARY, data).database(url),
        &[&path(data), "Permission denied"],
        &format!("read-only data dir, chmod ({backend})"),
    );
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn a_master_key_file_that_never_ends_is_refused_at_once() {
    // A key file is 44 bytes; one that is a device (or huge) must not be read into memory.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::os::unix::fs::symlink("/dev/zero", &key).unwrap();
    fails_clearly(
        &ServerConfig::new(BINARY, dir.path()),
        &[&path(&key)],
        "master.key is /dev/zero (sqlite)",
    );
}
