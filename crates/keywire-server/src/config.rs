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
pub enum Command {
    /// Run the API server (the default).
    Serve(ServeArgs),
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
    /// HTTP worker threads.
    #[arg(long, env = "KEYWIRE_HTTP_WORKERS", default_value_t = 2)]
    pub http_workers: usize,
    /// Log format: `text` or `json`. The level comes from `KEYWIRE_LOG` (default `info`).
    #[arg(long, env = "KEYWIRE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl ServeArgs {
    /// The database URL: the configured one, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!("sqlite://{}", self.data_dir.join("keywire.db").display()),
        }
    }
}
