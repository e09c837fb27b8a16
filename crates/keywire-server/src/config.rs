//! Command line and `KEYWIRE_*` environment variables.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// keywire: secrets and variables per project and environment, delivered where they matter.
#[derive(Debug, Parser)]
#[command(name = "keywire", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start-up; boxing would only add noise (whether the lint fires \
              depends on the sizes of the serve and client arguments)"
)]
pub enum Command {
    /// Run the API server (the default).
    Serve(ServeArgs),
    /// Write (or check) the generated integration docs; run by `cargo xtask codegen`.
    #[command(hide = true)]
    Docs(DocsArgs),
    /// Re-encrypt every secret value and integration setting with a new master key, in one
    /// transaction. Stop every keywire server on the database first.
    RotateKey(RotateKeyArgs),
    /// The client: every other subcommand talks to a keywire server (see `docs/cli.md`).
    #[command(flatten)]
    Client(keywire_cli::Command),
}

/// How `keywire rotate-key` runs: the server's settings say where the data and the current key
/// are.
#[derive(Debug, clap::Args)]
pub struct RotateKeyArgs {
    /// The data directory, database and current master key, as `keywire serve` takes them.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The new master key (base64 of 32 bytes); generated when absent.
    #[arg(long, env = "KEYWIRE_NEW_MASTER_KEY", hide_env_values = true)]
    pub new_master_key: Option<String>,
}

/// How `keywire docs` runs.
#[derive(Debug, Clone, Args)]
pub struct DocsArgs {
    /// The workspace root: pages go to `<out>/docs/integrations/`, the table into `<out>/README.md`.
    #[arg(long)]
    pub out: PathBuf,
    /// Change nothing; fail when a page or the README table is stale.
    #[arg(long)]
    pub check: bool,
}

/// How `keywire serve` runs.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEYWIRE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Directory for the embedded SQLite database and generated keys.
    #[arg(long, env = "KEYWIRE_DATA_DIR", default_value = "./keywire-data")]
    pub data_dir: PathBuf,
    /// `postgres://user:pass@host/db` for PostgreSQL; default: SQLite in the data directory.
    #[arg(long, env = "KEYWIRE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The master key, base64 of 32 bytes; default: generated once into `<data dir>/master.key`.
    #[arg(long, env = "KEYWIRE_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Comma-separated CIDRs or host names that outbound calls may reach although private
    /// (`127.0.0.1/32` in tests). Empty by default: private addresses are refused.
    #[arg(long, env = "KEYWIRE_OUTBOUND_ALLOW", default_value = "")]
    pub outbound_allow: String,
    /// Where people reach keywire, for links in messages (`https://keywire.example.com`).
    #[arg(long, env = "KEYWIRE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "KEYWIRE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// What this node does: `all` (API and delivery), `api` or `worker`.
    #[arg(long, env = "KEYWIRE_ROLE", default_value = "all", value_parser = ["all", "api", "worker"])]
    pub role: String,
    /// Delivery workers (runs delivered at once) on this node.
    #[arg(long, env = "KEYWIRE_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// Wait before each delivery attempt; its length is the number of attempts.
    #[arg(long, env = "KEYWIRE_RETRY_SCHEDULE", default_value = crate::delivery::DEFAULT_SCHEDULE)]
    pub retry_schedule: String,
    /// How long a worker's claim on a run lasts (`60s`); a crashed worker's runs are taken
    /// again after it.
    #[arg(long, env = "KEYWIRE_LEASE", default_value = "60s")]
    pub lease: String,
    /// Longest a single delivery attempt may take.
    #[arg(long, env = "KEYWIRE_ATTEMPT_TIMEOUT", default_value = "15s")]
    pub attempt_timeout: String,
    /// How often idle workers look for due runs made by other nodes.
    #[arg(long, env = "KEYWIRE_POLL_INTERVAL", default_value = "1s")]
    pub poll_interval: String,
    /// How long a sync queued by an event waits, so a burst of changes shares one sync.
    #[arg(long, env = "KEYWIRE_SYNC_DEBOUNCE", default_value = "1s")]
    pub sync_debounce: String,
    /// HTTP worker threads.
    #[arg(long, env = "KEYWIRE_HTTP_WORKERS", default_value_t = 2)]
    pub http_workers: usize,
    /// Test only: comma-separated `origin=replacement` pairs
    /// (`https://discord.com=http://127.0.0.1:4567`); outbound requests whose URL starts with an
    /// origin go to its replacement, so tests can put a local fake behind a provider's fixed
    /// host. Never set it in production.
    #[arg(
        long,
        env = "KEYWIRE_TEST_ORIGIN_OVERRIDES",
        default_value = "",
        hide = true
    )]
    pub test_origin_overrides: String,
    /// Log format: `text` or `json`. The level comes from `KEYWIRE_LOG` (default `info`).
    #[arg(long, env = "KEYWIRE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl ServeArgs {
    /// The parsed `KEYWIRE_TEST_ORIGIN_OVERRIDES`.
    pub fn origin_overrides(&self) -> Result<Vec<(String, String)>, String> {
        parse_origin_overrides(&self.test_origin_overrides)
    }

    /// The database URL: the configured one, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!("sqlite://{}", self.data_dir.join("keywire.db").display()),
        }
    }
}

impl ServeArgs {
    /// The delivery settings, validated.
    pub fn worker_config(&self) -> Result<crate::delivery::WorkerConfig, String> {
        use crate::delivery::{parse_duration, parse_schedule};
        let config = crate::delivery::WorkerConfig {
            workers: self.workers.clamp(1, 256),
            schedule: parse_schedule(&self.retry_schedule)
                .map_err(|e| format!("KEYWIRE_RETRY_SCHEDULE: {e}"))?,
            lease: parse_duration(&self.lease).map_err(|e| format!("KEYWIRE_LEASE: {e}"))?,
            attempt_timeout: parse_duration(&self.attempt_timeout)
                .map_err(|e| format!("KEYWIRE_ATTEMPT_TIMEOUT: {e}"))?,
            poll: parse_duration(&self.poll_interval)
                .map_err(|e| format!("KEYWIRE_POLL_INTERVAL: {e}"))?,
        };
        if config.lease <= config.attempt_timeout {
            return Err("KEYWIRE_LEASE must be longer than KEYWIRE_ATTEMPT_TIMEOUT".into());
        }
        Ok(config)
    }
}

/// Parses `origin=replacement` pairs separated by commas; both sides must be http(s) URLs
/// without a trailing slash-path (an origin), e.g. `https://discord.com=http://127.0.0.1:4567`.
pub fn parse_origin_overrides(list: &str) -> Result<Vec<(String, String)>, String> {
    let origin = |s: &str| -> Result<String, String> {
        let s = s.trim().trim_end_matches('/');
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(|| format!("`{s}` is not an http(s) origin"))?;
        if rest.is_empty() || rest.contains('/') {
            return Err(format!("`{s}` is not an origin (scheme://host[:port])"));
        }
        Ok(s.to_owned())
    };
    list.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{}` is not `origin=replacement`", pair.trim()))?;
            Ok((origin(from)?, origin(to)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_overrides_parse() {
        assert_eq!(
            parse_origin_overrides(" https://discord.com=http://127.0.0.1:4567/ ,").unwrap(),
            vec![(
                "https://discord.com".to_owned(),
                "http://127.0.0.1:4567".to_owned()
            )]
        );
        assert_eq!(parse_origin_overrides("").unwrap(), vec![]);
        assert!(parse_origin_overrides("discord.com=http://x").is_err());
        assert!(parse_origin_overrides("https://discord.com").is_err());
        assert!(parse_origin_overrides("https://discord.com/api=http://x").is_err());
    }
}
