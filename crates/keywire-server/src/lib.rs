//! The keywire server: the HTTP API over the registry and the database.
//!
//! - [`run`] starts everything from the command line ([`config::Cli`]).
//! - [`app`] composes the routes (one `config` per module in [`routes`]) around one
//!   [`state::AppState`]; [`error::ApiError`] renders every failure as RFC 9457 problem JSON.
//! - `integrations` (generated) names every integration crate so each one's registration is
//!   linked in.

pub mod access;
pub mod auth;
pub mod body;
pub mod config;
pub mod delivery;
pub mod docs;
pub mod error;
mod integrations;
pub mod metrics;
pub mod routes;
pub mod state;
pub mod sync;

use std::io::Write;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpServer, ResponseError, web};
use anyhow::Context as _;
use keywire_core::{OutboundClient, OutboundPolicy, registry};
use keywire_db::Db;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_actix_web::{AppExt, UtoipaApp, scope};

use crate::config::{Cli, Command, ServeArgs};
use crate::error::ApiError;
use crate::state::AppState;

/// Composes the application: every route, the body limit, the problem-JSON fallbacks.
pub fn app(
    state: web::Data<AppState>,
) -> UtoipaApp<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.max_body_bytes;
    App::new()
        .into_utoipa_app()
        .app_data(state)
        .app_data(web::PayloadConfig::new(limit))
        .app_data(
            web::PathConfig::default()
                .error_handler(|err, _| ApiError::not_found(err.to_string()).into()),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|err, _| ApiError::bad_request(err.to_string()).into()),
        )
        .map(|app| app.wrap(actix_web::middleware::from_fn(guard_and_log)))
        .configure(routes::health::config)
        .configure(metrics::config)
        .configure(routes::console::config)
        .service(
            scope::scope("/api/v1")
                .configure(routes::integration_types::config)
                .configure(routes::me::config)
                .configure(routes::users::config)
                .configure(routes::members::config)
                .configure(routes::workspaces::config)
                .configure(routes::integrations::config)
                .configure(routes::entries::config)
                .configure(routes::events::config)
                .configure(routes::runs::config),
        )
        .default_service(web::to(|req: actix_web::HttpRequest| async move {
            let path: String = req.path().chars().take(200).collect();
            Err::<actix_web::HttpResponse, _>(ApiError::not_found(format!(
                "no route for {} {path}",
                req.method()
            )))
        }))
}

/// Refuses bodies declared larger than the limit before any handler runs (413), and logs each
/// request: method, path (never the query string, which could carry a token), status, time.
async fn guard_and_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(1024 * 1024, |s| s.max_body_bytes);
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let method = req.method().clone();
    let path = req.path().to_owned();
    // NUL names nothing keywire stores (PostgreSQL cannot even compare it): answer before any
    // handler looks it up.
    let nul_in_path = path.to_ascii_lowercase().contains("%00");
    let nul_in_query = req.query_string().to_ascii_lowercase().contains("%00");
    let response = if declared.is_some_and(|n| n > limit as u64) {
        let (req, _) = req.into_parts();
        ServiceResponse::new(req, ApiError::too_large(limit).error_response())
    } else if nul_in_path {
        let (req, _) = req.into_parts();
        ServiceResponse::new(
            req,
            ApiError::not_found("nothing here: a path never contains the NUL character")
                .error_response(),
        )
    } else if nul_in_query {
        let (req, _) = req.into_parts();
        ServiceResponse::new(
            req,
            ApiError::bad_request("query parameters must not contain the NUL character")
                .error_response(),
        )
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        "request"
    );
    Ok(response)
}

/// The OpenAPI document of [`app`].
pub fn openapi_document(state: web::Data<AppState>) -> serde_json::Value {
    let (_, mut api) = app(state).split_for_parts();
    api.info.title = "keywire".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.description = Some(
        "Secrets and variables per project and environment, delivered where they matter.".into(),
    );
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    serde_json::to_value(&api).expect("the OpenAPI document serializes")
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Docs(args)) => return docs::command(&args),
        Some(Command::RotateKey(args)) => return rotate_key(&args),
        Some(Command::Client(command)) => {
            // The client decides its own exit code (docs/cli.md); `keywire run` replaces the
            // process and does not come back at all.
            let cli = <Cli as clap::CommandFactory>::command();
            std::process::exit(keywire_cli::run(command, cli));
        }
        None => cli.serve,
    };
    init_logging(&args.log_format);
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // SQLite calls run here (one per pooled connection at a time); a small pool keeps
        // idle threads, and their malloc arenas, from piling up under bursts.
        .max_blocking_threads(16)
        .thread_name("keywire-background")
        .enable_all()
        .build()
        .context("cannot start the background runtime")?;
    let handle = background.handle().clone();
    let result = actix_web::rt::System::new().block_on(serve(args, handle));
    background.shutdown_timeout(std::time::Duration::from_secs(10));
    result
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYWIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        eprintln!("keywire: logging was already initialised");
    }
}

/// Starts the server and waits until SIGINT or SIGTERM has drained it.
pub async fn serve(args: ServeArgs, background: tokio::runtime::Handle) -> anyhow::Result<()> {
    let debounce = crate::delivery::parse_duration(&args.sync_debounce)
        .map_err(|e| anyhow::anyhow!("KEYWIRE_SYNC_DEBOUNCE: {e}"))?;
    keywire_db::delivery::set_sync_debounce(debounce);
    let url = args.database_url();
    if args
        .database_url
        .as_deref()
        .is_none_or(|u| u.trim().is_empty())
    {
        std::fs::create_dir_all(&args.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                args.data_dir.display()
            )
        })?;
        probe_writable(&args.data_dir)?;
    }
    let cipher = master_key(&args)?;
    // Errors name the database: the SQLite file, never a PostgreSQL URL (it may hold a
    // password).
    let shown = if url.starts_with("postgres") {
        "named by KEYWIRE_DATABASE_URL".to_owned()
    } else {
        url.clone()
    };
    let db = Db::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {shown}"))?;
    tracing::info!(database = db.redacted_url(), "database opened");
    let applied = db
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the database {}", db.redacted_url()))?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "migrations applied");
    }
    db.check_master_key(&cipher)
        .await
        .context("the master key does not fit this database")?;
    tracing::info!(key_id = cipher.key_id(), "master key ready");
    let bootstrap = std::env::var("KEYWIRE_BOOTSTRAP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let given = bootstrap.is_some();
    if let Some(token) = db
        .bootstrap_admin(bootstrap.as_deref())
        .await
        .context("cannot create the admin user")?
    {
        announce_admin(&token, given);
    } else if given {
        tracing::info!("KEYWIRE_BOOTSTRAP_TOKEN ignored: the database already has users");
    }

    let allow = OutboundPolicy::parse_allow_list(&args.outbound_allow)
        .map_err(|why| anyhow::anyhow!("KEYWIRE_OUTBOUND_ALLOW: {why}"))?;
    let origin_overrides = args
        .origin_overrides()
        .map_err(|why| anyhow::anyhow!("KEYWIRE_TEST_ORIGIN_OVERRIDES: {why}"))?;
    if !origin_overrides.is_empty() {
        tracing::warn!(
            count = origin_overrides.len(),
            "KEYWIRE_TEST_ORIGIN_OVERRIDES is set: outbound requests to some origins go elsewhere (for tests only)"
        );
    }
    let http = OutboundClient::new(OutboundPolicy {
        allow,
        origin_overrides,
        ..OutboundPolicy::default()
    })
    .context("cannot build the outbound HTTP client")?;
    let types: Vec<&str> = registry().iter().map(|d| d.type_id).collect();
    tracing::info!(types = %types.join(","), "integration types registered");

    let mut state = AppState {
        background,
        metrics: Default::default(),
        db,
        cipher,
        http,
        public_url: args.public_url.clone(),
        max_body_bytes: args.max_body_bytes,
        openapi: std::sync::Arc::new(serde_json::Value::Null),
    };
    state.openapi = std::sync::Arc::new(openapi_document(web::Data::new(state.clone())));
    let state = web::Data::new(state);

    let (stop_workers, stop) = tokio::sync::watch::channel(false);
    let workers = if args.role == "api" {
        Vec::new()
    } else {
        let config = args.worker_config().map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!(
            workers = config.workers,
            attempts = config.schedule.len(),
            "delivery workers starting"
        );
        // Other nodes' runs wake this node at once on PostgreSQL; polling covers the rest.
        state.background.spawn(state.db.clone().listen_for_runs());
        delivery::spawn_workers(state.get_ref().clone(), config, &state.background, stop)
    };

    if args.role == "worker" {
        say("keywire worker running (no HTTP listener)");
        wait_for_signal().await;
    } else {
        let server = HttpServer::new({
            let state = state.clone();
            move || app(state.clone()).into_app()
        })
        .workers(args.http_workers.max(1))
        .shutdown_timeout(10)
        .bind(&args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addrs = server.addrs();
        // Started (and its SIGTERM/SIGINT handlers installed, which happens on its first
        // poll) before "listening" is announced: a supervisor that signals right after the
        // line gets a graceful stop, not the default action of the signal.
        let mut running = std::pin::pin!(server.run());
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(running.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(ended) = first {
            ended.context("the HTTP server failed")?;
        } else {
            for addr in addrs {
                tracing::info!(%addr, "listening");
                say(&format!("keywire listening on http://{addr}"));
            }
            running.await.context("the HTTP server failed")?;
        }
    }
    // Workers finish the attempt in hand (at most the attempt timeout) and stop; an attempt
    // cut short by a harder stop is taken again when its lease expires.
    let _ = stop_workers.send(true);
    for worker in workers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(20), worker).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGINT or SIGTERM (the HTTP server handles them itself when it runs).
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The master key: `KEYWIRE_MASTER_KEY`, else `<data dir>/master.key`, generated on first use
/// with owner-only permissions.
fn master_key(args: &ServeArgs) -> anyhow::Result<keywire_db::Cipher> {
    use keywire_db::Cipher;
    if let Some(encoded) = args.master_key.as_deref().filter(|k| !k.trim().is_empty()) {
        return Cipher::from_base64(encoded)
            .map_err(|e| anyhow::anyhow!("KEYWIRE_MASTER_KEY: {e}"));
    }
    let path = args.data_dir.join("master.key");
    match read_key_file(&path) {
        Ok(encoded) => {
            Cipher::from_base64(&encoded).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&args.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    args.data_dir.display()
                )
            })?;
            let encoded = Cipher::generate_base64();
            write_owner_only(&path, encoded.as_bytes())
                .with_context(|| format!("cannot write the master key to {}", path.display()))?;
            let cipher = Cipher::from_base64(&encoded).map_err(|e| anyhow::anyhow!("{e}"))?;
            tracing::warn!(path = %path.display(), key_id = cipher.key_id(), "generated a new master key; back it up: without it secret values cannot be read");
            say(&format!(
                "keywire: generated a master key in {} (owner-only); back it up.",
                path.display()
            ));
            Ok(cipher)
        }
        Err(err) => Err(anyhow::anyhow!(
            "cannot read the master key {}: {err}",
            path.display()
        )),
    }
}

/// Reads a key file, refusing one longer than 1 KiB (a key is 44 characters): a device such
/// as `/dev/zero` or a stray large file must not be read into memory.
fn read_key_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read as _;
    const LIMIT: u64 = 1024;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(LIMIT + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {LIMIT} bytes: not a master key file"),
        ));
    }
    Ok(text)
}

/// `keywire rotate-key`: re-encrypts everything from the current master key to a new one.
/// With a key file, the new key is written next to it first (`master.key.next`, owner-only)
/// and moved over it once the database committed; with `KEYWIRE_MASTER_KEY`, a generated new
/// key is printed once for the operator to configure.
fn rotate_key(args: &config::RotateKeyArgs) -> anyhow::Result<()> {
    use keywire_db::Cipher;
    let serve = &args.serve;
    let from_env = serve
        .master_key
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty());
    let key_file = serve.data_dir.join("master.key");
    if !from_env && !key_file.exists() {
        anyhow::bail!(
            "no master key to rotate: set KEYWIRE_MASTER_KEY, or point --data-dir at the directory holding master.key"
        );
    }
    let old = master_key(serve)?;
    let (new_encoded, generated) = match args.new_master_key.as_deref() {
        Some(given) if !given.trim().is_empty() => {
            (zeroize::Zeroizing::new(given.trim().to_owned()), false)
        }
        _ => (Cipher::generate_base64(), true),
    };
    let new = Cipher::from_base64(&new_encoded)
        .map_err(|e| anyhow::anyhow!("KEYWIRE_NEW_MASTER_KEY: {e}"))?;
    if new.key_id() == old.key_id() {
        anyhow::bail!("the new master key is the current one");
    }
    let next = serve.data_dir.join("master.key.next");
    if !from_env {
        let _ = std::fs::remove_file(&next);
        write_owner_only(&next, new_encoded.as_bytes())
            .with_context(|| format!("cannot write {}", next.display()))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let url = serve.database_url();
    let rotated = runtime.block_on(async {
        let db = Db::connect(&url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        db.rotate_master_key(&old, &new)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    });
    let rotated = match rotated {
        Ok(rotated) => rotated,
        Err(err) => {
            if !from_env {
                let _ = std::fs::remove_file(&next);
            }
            return Err(err.context("nothing was changed"));
        }
    };
    say(&format!(
        "keywire: re-encrypted {} secret values and {} integrations from master key {} to {}",
        rotated.secret_values,
        rotated.integrations,
        old.key_id(),
        new.key_id()
    ));
    if from_env {
        if generated {
            // Printed once, on standard output only, like the bootstrap token.
            say(&format!("KEYWIRE_MASTER_KEY={}", new_encoded.as_str()));
            say("keywire: set KEYWIRE_MASTER_KEY to the key above before starting keywire again");
        } else {
            say("keywire: start keywire with KEYWIRE_MASTER_KEY set to the new key");
        }
    } else {
        std::fs::rename(&next, &key_file).with_context(|| {
            format!(
                "the database now uses the key in {}; move it to {} by hand",
                next.display(),
                key_file.display()
            )
        })?;
        say(&format!(
            "keywire: {} now holds the new key; back it up",
            key_file.display()
        ));
    }
    Ok(())
}

/// Creates `path` with mode 0600 (never readable by others, not even briefly). When the
/// write fails (a full disk), the file is removed: a truncated key file would stop every later
/// start.
fn write_owner_only(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Fails early, with the path in the message, when the data directory cannot be written.
fn probe_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    let probe = dir.join(".keywire-write-probe");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// The one place a token is printed: to standard output, once, when the admin is created.
/// It never goes to the log.
fn announce_admin(token: &str, given: bool) {
    tracing::info!("created the admin user (token printed once on standard output)");
    if given {
        say("keywire: created user `admin` with the token from KEYWIRE_BOOTSTRAP_TOKEN");
    } else {
        say(&format!(
            "keywire: created user `admin`. Its API token is shown only now; store it safely:\n\n    {token}\n\n\
             Use it as `Authorization: Bearer <token>`."
        ));
    }
}

#[expect(
    clippy::print_stdout,
    reason = "start-up facts for the operator go to standard output"
)]
fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}
