//! PostgreSQL for the bench: the server named by `KEYWIRE_BENCH_DATABASE_URL`, or a throwaway
//! cluster started the way `.ci/run` starts one (initdb + pg_ctl, as the `postgres` user when
//! running as root, on a free port of 127.0.0.1, `fsync=off`), stopped and removed at the end.
//! Each scenario gets a database of its own (`CREATE DATABASE kw_bench_<pid>_<n>`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

/// The variable that names a PostgreSQL server for the bench (a role that may
/// `CREATE DATABASE`).
pub const URL_ENV: &str = "KEYWIRE_BENCH_DATABASE_URL";

/// A PostgreSQL server the bench may create databases on.
pub struct Postgres {
    /// `postgres://…/postgres`: where `CREATE DATABASE` is sent.
    admin_url: String,
    /// What the report says about it (never the URL, which may hold a password).
    pub description: String,
    /// Stops and deletes the throwaway cluster when dropped.
    _cluster: Option<Cluster>,
    next: u32,
}

/// A database that exists for one scenario.
pub struct Database {
    /// Its URL.
    pub url: String,
    name: String,
    admin_url: String,
}

struct Cluster {
    bin: PathBuf,
    data: tempfile::TempDir,
    as_postgres: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data.path())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Cluster {
    /// `bin/<tool>`, run as the `postgres` user when we are root (initdb refuses root).
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The first port from `from` on which nothing listens on 127.0.0.1.
fn free_port(from: u16) -> Option<u16> {
    (from..from.saturating_add(200)).find(|port| {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], *port)),
            std::time::Duration::from_millis(100),
        )
        .is_err()
            && std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok()
    })
}

fn run(command: &mut Command, what: &str, log: Option<&Path>) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut message = format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if let Some(log) = log.and_then(|p| std::fs::read_to_string(p).ok()) {
        message.push_str(&log);
    }
    Err(message)
}

impl Postgres {
    /// The configured server, else a throwaway cluster, else `Err` with the reason PostgreSQL
    /// is skipped.
    pub fn find() -> Result<Postgres, String> {
        if let Some(url) = std::env::var(URL_ENV).ok().filter(|u| !u.trim().is_empty()) {
            return Ok(Postgres {
                admin_url: url.trim().to_owned(),
                description: format!("the server in {URL_ENV}"),
                _cluster: None,
                next: 0,
            });
        }
        let bin = postgres_bin().ok_or_else(|| {
            format!(
                "PostgreSQL skipped: no /usr/lib/postgresql/*/bin/initdb and {URL_ENV} is unset \
                 (apt-get install postgresql, or set {URL_ENV})"
            )
        })?;
        let as_postgres = is_root();
        let data = tempfile::Builder::new()
            .prefix("keywire-bench-pg.")
            .tempdir()
            .map_err(|e| format!("PostgreSQL skipped: no temporary directory: {e}"))?;
        if as_postgres {
            run(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(data.path()),
                "chown postgres",
                None,
            )
            .map_err(|e| format!("PostgreSQL skipped: {e}"))?;
        }
        let port = free_port(55433).ok_or("PostgreSQL skipped: no free port from 55433")?;
        let cluster = Cluster {
            bin,
            data,
            as_postgres,
        };
        let dir = cluster.data.path().to_owned();
        run(
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&dir)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
                .args(["--locale=C.UTF-8", "--no-sync"]),
            "initdb",
            None,
        )
        .map_err(|e| format!("PostgreSQL skipped: {e}"))?;
        let log = dir.join("server.log");
        run(
            cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(&dir)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "30", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
                    dir.display()
                ))
                .arg("start"),
            "pg_ctl start",
            Some(&log),
        )
        .map_err(|e| format!("PostgreSQL skipped: {e}"))?;
        Ok(Postgres {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            description: format!(
                "a throwaway cluster ({}) on 127.0.0.1:{port}, fsync=off as in CI",
                cluster
                    .bin
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|v| format!("PostgreSQL {}", v.to_string_lossy()))
                    .unwrap_or_default()
            ),
            _cluster: Some(cluster),
            next: 0,
        })
    }

    /// A new, empty database.
    pub async fn database(&mut self) -> Result<Database, String> {
        self.next += 1;
        let name = format!("kw_bench_{}_{}", std::process::id(), self.next);
        let mut admin = AsyncPgConnection::establish(&self.admin_url)
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        let mut url = url::Url::parse(&self.admin_url)
            .map_err(|e| format!("the PostgreSQL URL does not parse: {e}"))?;
        url.set_path(&format!("/{name}"));
        Ok(Database {
            url: url.to_string(),
            name,
            admin_url: self.admin_url.clone(),
        })
    }
}

impl Database {
    /// Drops the database (best effort: a failure leaves it behind and says so).
    pub async fn drop_now(self) {
        let result = async {
            let mut admin = AsyncPgConnection::establish(&self.admin_url)
                .await
                .map_err(|e| e.to_string())?;
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await
            .map_err(|e| e.to_string())
        }
        .await;
        if let Err(error) = result {
            eprintln!("bench: could not drop database {}: {error}", self.name);
        }
    }
}
