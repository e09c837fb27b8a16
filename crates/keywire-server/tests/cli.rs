//! The `keywire` command line end to end: the real binary run as a user runs it (own home
//! directory, clean environment), against one spawned server on SQLite, a local webhook sink
//! and a fake Vercel. Checks output, JSON, exit codes, and that no secret leaks.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keywire_test_support::fake::{FakeResponse, FakeServer};
use keywire_test_support::server::{Server, ServerConfig};
use keywire_test_support::vercel::{self, FakeVercel};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_keywire");
const ADMIN: &str = "kw_cli_admin_token_0123456789abcdef";
const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What one command did.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A person at a terminal-less shell: a home directory of their own (profiles go to
/// `~/.config/keywire`) and nothing else in the environment but what a test adds.
struct User {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl User {
    fn new() -> User {
        User {
            home: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, key: &str, value: &str) -> User {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Ran {
        let mut command = self.command(BIN, args);
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn keywire");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Ran {
        self.run_with(args, None)
    }

    /// Runs a command that must succeed; its standard output.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let ran = self.run(args);
        assert_eq!(ran.code, 0, "keywire {args:?} failed: {ran:?}");
        ran.stdout
    }

    /// Runs a command with `-o json` that must succeed; its output, parsed.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let out = self.ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("keywire {args:?}: {e}: {out}"))
    }

    /// Runs a command that must fail with `code`: one `error:` line on stderr, nothing on
    /// stdout.
    #[track_caller]
    fn fails(&self, args: &[&str], code: i32) -> String {
        let ran = self.run(args);
        assert_eq!(ran.code, code, "keywire {args:?}: {ran:?}");
        assert!(ran.stdout.is_empty(), "keywire {args:?}: {ran:?}");
        assert!(ran.stderr.starts_with("error: "), "{ran:?}");
        ran.stderr
    }
}

/// Waits (at most 20 s) until `check` holds.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines().map(str::to_owned).collect()
}

#[test]
fn the_cli_drives_a_server_from_login_to_retried_runs() {
    // A webhook sink: `/hook` answers 200; `/flaky` 500 until told otherwise.
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    let sink = FakeServer::start(move |req| {
        if req.path == "/flaky" && flag.load(Ordering::SeqCst) {
            FakeResponse::json(500, json!({"error": "down"}))
        } else {
            FakeResponse::json(200, json!({"ok": true}))
        }
    });
    let vercel_fake = FakeVercel::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &ServerConfig::new(BIN, dir.path())
            .env("KEYWIRE_BOOTSTRAP_TOKEN", ADMIN)
            .env("KEYWIRE_RETRY_SCHEDULE", "0s,200ms")
            .env("KEYWIRE_POLL_INTERVAL", "200ms")
            .env(
                "KEYWIRE_TEST_ORIGIN_OVERRIDES",
                &format!("{}={}", vercel::ORIGIN, vercel_fake.url()),
            ),
    );
    let url = server.url.clone();
    let user = User::new();

    // Login: the token from stdin, checked, stored owner-only; a refused token stores nothing.
    let refused = user.run_with(
        &["login", "--url", &url],
        Some("kw_not_a_real_token_000000\n"),
    );
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(!user.home().join(".config/keywire/config.json").exists());
    let login = user.run_with(
        &["login", "--url", &format!("{url}/")],
        Some(&format!("{ADMIN}\n")),
    );
    assert_eq!(login.code, 0, "{login:?}");
    assert!(login.stdout.contains("as admin"), "{login:?}");
    assert!(!login.stdout.contains(ADMIN));
    let config = user.home().join(".config/keywire/config.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&config), 0o600);
        assert_eq!(mode(config.parent().unwrap()), 0o700);
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(stored["profiles"]["default"]["url"], url);
    assert!(user.ok(&["whoami"]).contains("admin"));
    assert_eq!(user.json(&["whoami"])["name"], "admin");
    let profiles = user.json(&["profile", "list"]);
    assert_eq!(
        profiles,
        json!([{"name": "default", "url": url, "current": true}])
    );
    assert!(!user.ok(&["profile", "list"]).contains(ADMIN));

    // Workspace, project, environments.
    assert_eq!(user.json(&["workspace", "create", "Acme"])["slug"], "acme");
    let project = user.json(&[
        "project", "create", "Web Shop", "-w", "acme", "-e", "dev,prod",
    ]);
    assert_eq!(project["slug"], "web-shop");
    user.ok(&["environment", "create", "staging", "--project", "web-shop"]);
    let envs = user.json(&["environment", "list", "-p", "web-shop"]);
    let slugs: Vec<&str> = envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs.len(), 3, "{envs}");
    assert!(
        user.ok(&["project", "get", "web-shop"])
            .contains("dev, prod")
    );
    let workspaces = user.ok(&["workspace", "list"]);
    assert!(workspaces.starts_with("SLUG"), "{workspaces}");
    assert!(workspaces.contains("acme"));

    // Secrets and variables: set, read back, history; values only when revealed.
    let set = user.ok(&[
        "secret",
        "set",
        "DATABASE_URL",
        "-p",
        "web-shop",
        "--env",
        "dev=postgres://localhost/shop",
        "--env",
        "prod=postgres://db.internal/shop",
        "--note",
        "primary database",
    ]);
    assert_eq!(set, "Secret `DATABASE_URL` created: dev v1, prod v1\n");
    user.ok(&[
        "variable",
        "set",
        "LOG_LEVEL",
        "-p",
        "web-shop",
        "-e",
        "dev=debug",
        "-e",
        "prod=info",
    ]);
    let piped = user.run_with(
        &["secret", "set", "API_KEY", "-p", "web-shop", "--env", "dev"],
        Some("s3cr3t-from-stdin\n"),
    );
    assert_eq!(piped.code, 0, "{piped:?}");
    assert!(!piped.stdout.contains("s3cr3t"));
    let dotenv = user.home().join("staging.env");
    std::fs::write(&dotenv, "# staging\nexport A=1\nB=\"two words\"\n").unwrap();
    let bulk = user.ok(&[
        "secret",
        "set",
        "-p",
        "web-shop",
        "--dotenv",
        dotenv.to_str().unwrap(),
        "--env",
        "staging",
    ]);
    assert_eq!(bulk, "Set 2 secrets in staging.\n");

    let listed = user.ok(&["secret", "list", "-p", "web-shop"]);
    assert!(
        listed.contains("DATABASE_URL") && listed.contains("dev v1, prod v1"),
        "{listed}"
    );
    let got = user.ok(&["secret", "get", "DATABASE_URL", "-p", "web-shop"]);
    for text in [&listed, &got] {
        assert!(
            !text.contains("postgres://") && !text.contains("s3cr3t"),
            "{text}"
        );
    }
    assert_eq!(
        user.ok(&[
            "secret",
            "get",
            "DATABASE_URL",
            "-p",
            "web-shop",
            "--env",
            "prod",
            "--reveal"
        ]),
        "postgres://db.internal/shop\n"
    );
    assert_eq!(
        user.ok(&[
            "secret", "get", "API_KEY", "-p", "web-shop", "-e", "dev", "--reveal"
        ]),
        "s3cr3t-from-stdin\n"
    );
    assert_eq!(
        user.ok(&[
            "variable",
            "get",
            "LOG_LEVEL",
            "-p",
            "web-shop",
            "-e",
            "dev"
        ]),
        "debug\n"
    );
    let revealed = user.json(&[
        "secret", "list", "-p", "web-shop", "--reveal", "--env", "staging",
    ]);
    let keys: Vec<&str> = revealed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["A", "B"]);
    assert_eq!(revealed[1]["environments"]["staging"]["value"], "two words");
    user.ok(&[
        "secret",
        "set",
        "DATABASE_URL",
        "-p",
        "web-shop",
        "-e",
        "dev=postgres://localhost/shop2",
    ]);
    let history = user.json(&[
        "secret",
        "history",
        "DATABASE_URL",
        "-p",
        "web-shop",
        "-e",
        "dev",
    ]);
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert!(
        history[0]["value"].is_null(),
        "no value without --reveal: {history}"
    );
    let events = user.json(&[
        "event",
        "list",
        "-w",
        "acme",
        "--type",
        "SECRET_ADDED",
        "--since",
        "1h",
    ]);
    let events = events.as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["type"] == "SECRET_ADDED"));
    assert!(
        user.ok(&["event", "list", "-w", "acme", "--limit", "3"])
            .contains("SECRET_UPDATED")
    );

    // `run`: the values are in the child's environment; keywire adds nothing to stdout and
    // keeps its own token from the child.
    let runner = User::new()
        .with_env("KEYWIRE_URL", &url)
        .with_env("KEYWIRE_TOKEN", ADMIN);
    let ran = runner.run(&["run", "-p", "web-shop", "-e", "dev", "--", "env"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let expected = lines(&format!(
        "PATH={}\nHOME={}\nKEYWIRE_URL={url}\nDATABASE_URL=postgres://localhost/shop2\nAPI_KEY=s3cr3t-from-stdin\nLOG_LEVEL=debug\n",
        std::env::var("PATH").unwrap_or_default(),
        runner.home().display()
    ));
    assert_eq!(lines(&ran.stdout), expected);
    assert!(
        !ran.stdout.contains(ADMIN) && ran.stderr.is_empty(),
        "{ran:?}"
    );
    let only = runner.run(&[
        "run",
        "-p",
        "web-shop",
        "-e",
        "dev",
        "--only-variables",
        "--",
        "env",
    ]);
    assert!(only.stdout.contains("LOG_LEVEL=debug") && !only.stdout.contains("DATABASE_URL"));
    let code = runner.run(&[
        "run", "-p", "web-shop", "-e", "dev", "--", "sh", "-c", "exit 7",
    ]);
    assert_eq!(code.code, 7, "the command's exit code: {code:?}");
    assert_eq!(
        runner
            .run(&[
                "run",
                "-p",
                "web-shop",
                "-e",
                "dev",
                "--",
                "no-such-program-kw"
            ])
            .code,
        127
    );
    runner.fails(&["run", "-p", "web-shop", "-e", "nope", "--", "env"], 3);

    // Integrations: types, one type's fields, a webhook from a metadata file, tested live.
    let types = user.json(&["integration", "types"]);
    assert!(
        types
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "webhook")
    );
    let webhook = user.ok(&["integration", "types", "webhook"]);
    let row = |field: &str| -> Vec<String> {
        webhook
            .lines()
            .find(|l| l.starts_with(&format!("{field} ")))
            .unwrap_or_else(|| panic!("no {field} row: {webhook}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    // FIELD TYPE REQUIRED CREDENTIAL DESCRIPTION
    assert_eq!(row("signingSecret")[3], "yes", "a credential");
    assert_eq!(row("url")[1..4], ["string", "yes", "no"]);
    let metadata = user.home().join("hook.json");
    std::fs::write(
        &metadata,
        json!({"url": format!("{}/hook", sink.url()), "signingSecret": SIGNING}).to_string(),
    )
    .unwrap();
    let created = user.json(&[
        "integration",
        "create",
        "-w",
        "acme",
        "-t",
        "webhook",
        "--name",
        "Hook",
        "--notify-on",
        "SECRET_ADDED,SECRET_UPDATED",
        "--metadata-file",
        metadata.to_str().unwrap(),
    ]);
    assert_eq!(created["slug"], "hook");
    assert!(!created.to_string().contains(SIGNING));
    let pings = sink.requests().len();
    assert!(pings >= 1, "the live check reached the sink");
    let shown = user.ok(&["integration", "get", "hook"]);
    assert!(
        shown.contains("(credential) set") && !shown.contains(SIGNING),
        "{shown}"
    );
    assert!(
        !user
            .ok(&["integration", "get", "hook", "-o", "json"])
            .contains(SIGNING)
    );
    let tested = user.ok(&["integration", "test", "hook"]);
    assert!(
        tested
            .lines()
            .any(|l| l.starts_with("Delivered") && l.ends_with("yes")),
        "{tested}"
    );
    let test_request = sink
        .requests()
        .into_iter()
        .skip(pings)
        .find(|r| r.path == "/hook");
    assert!(test_request.is_some_and(|r| r.header("webhook-signature").is_some()));
    let validated = user.ok(&["integration", "validate", "hook"]);
    assert!(validated.contains("Valid."), "{validated}");
    let listed = user.json(&["integration", "list", "-w", "acme"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // A run that fails (the sink answers 500 twice), shown, retried once the sink is back.
    user.ok(&[
        "integration",
        "create",
        "-w",
        "acme",
        "-t",
        "webhook",
        "--name",
        "Flaky",
        "--notify-on",
        "SECRET_UPDATED",
        "-m",
        &format!("url={}/flaky", sink.url()),
        "-m",
        &format!("signingSecret={SIGNING}"),
        "--no-validate",
    ]);
    user.ok(&[
        "secret",
        "set",
        "DATABASE_URL",
        "-p",
        "web-shop",
        "-e",
        "prod=postgres://db2/shop",
    ]);
    let mut failed = Value::Null;
    eventually("a failed run", || {
        failed = user.json(&["integration", "runs", "flaky", "--status", "failed"]);
        failed.as_array().is_some_and(|runs| runs.len() == 1)
    });
    let run = failed[0]["id"].as_str().unwrap().to_owned();
    let table = user.ok(&["integration", "runs", "flaky"]);
    assert!(table.contains(&run) && table.contains("failed"), "{table}");
    let detail = user.ok(&["integration", "runs", "show", "flaky", &run]);
    assert!(
        detail.contains("Attempts") && detail.contains("500"),
        "{detail}"
    );
    assert!(!detail.contains(SIGNING));
    failing.store(false, Ordering::SeqCst);
    assert!(
        user.ok(&["integration", "runs", "retry", "flaky", &run])
            .contains("Queued run")
    );
    eventually("the retried run to succeed", || {
        user.json(&["integration", "runs", "show", "flaky", &run])["status"] == "succeeded"
    });
    let again = user.fails(&["integration", "runs", "retry", "flaky", &run], 5);
    assert!(again.contains("HTTP 409"), "{again}");
    assert_eq!(
        user.json(&[
            "integration",
            "runs",
            "retry",
            "flaky",
            "--failed-since",
            "1h"
        ])["retried"],
        0
    );

    // Infrastructure: a sync plan, then a sync run followed to its end.
    user.ok(&[
        "integration",
        "create",
        "-w",
        "acme",
        "-t",
        "vercel",
        "--name",
        "Vercel",
        "-p",
        "web-shop",
        "-e",
        "prod",
        "--notify-on",
        "SECRET_UPDATED",
        "--action",
        "upsert",
        "-m",
        &format!("token={}", vercel::TOKEN),
        "-m",
        &format!("projectId={}", vercel::PROJECT_ID),
        "--target",
        "prod=production",
    ]);
    let plan = user.json(&["integration", "sync", "vercel", "--dry-run"]);
    assert_eq!(plan["dryRun"], true);
    let change = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "DATABASE_URL")
        .unwrap_or_else(|| panic!("{plan}"))
        .clone();
    assert_eq!(change["environment"], "prod");
    assert!(
        !plan.to_string().contains("postgres://"),
        "a plan holds no value: {plan}"
    );
    let synced = user.run(&["integration", "sync", "vercel"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(synced.stdout.contains("succeeded"), "{synced:?}");
    assert!(
        synced.stderr.contains("sync run"),
        "progress lines off a terminal: {synced:?}"
    );
    assert_eq!(
        vercel_fake
            .var_at("DATABASE_URL", "production")
            .map(|v| v.value),
        Some("postgres://db2/shop".to_owned())
    );
    let table = user.ok(&["integration", "sync", "vercel", "--dry-run"]);
    assert!(
        table.contains("DATABASE_URL") && table.contains("unchanged"),
        "{table}"
    );

    // Errors: one line, the field pointer, the documented exit codes.
    let missing = user.fails(&["secret", "get", "NOPE", "-p", "web-shop"], 3);
    assert_eq!(missing.lines().count(), 1, "{missing}");
    user.fails(&["project", "create", "Web Shop", "-w", "acme"], 5);
    let invalid = user.fails(
        &[
            "integration",
            "create",
            "-w",
            "acme",
            "-t",
            "webhook",
            "--name",
            "Bad",
            "--notify-on",
            "SECRET_ADDED",
            "-m",
            "url=ftp://example.com",
            "-m",
            &format!("signingSecret={SIGNING}"),
        ],
        2,
    );
    assert!(invalid.contains("field: /metadata/url"), "{invalid}");
    let wrong = User::new()
        .with_env("KEYWIRE_URL", &url)
        .with_env("KEYWIRE_TOKEN", "kw_wrong_token_0000");
    wrong.fails(&["whoami"], 4);
    let other = user.fails(&["whoami", "--url", "http://127.0.0.1:9"], 4);
    assert!(
        other.contains("not for http://127.0.0.1:9"),
        "a stored token stays with its server: {other}"
    );
    let down = User::new()
        .with_env("KEYWIRE_URL", "http://127.0.0.1:9")
        .with_env("KEYWIRE_TOKEN", ADMIN);
    down.fails(&["workspace", "list"], 6);
    user.fails(&["workspace", "delete", "acme"], 2);
    user.fails(&["whoami", "--profile", "nope"], 3);

    // Deletes with --yes; logout forgets the token.
    assert_eq!(
        user.json(&["integration", "delete", "hook", "--yes"]),
        json!({"deleted": "integration", "slug": "hook"})
    );
    user.fails(&["integration", "get", "hook"], 3);
    user.ok(&["logout"]);
    user.fails(&["whoami"], 4);
    drop(server);
}

/// On a terminal (a pseudo-terminal from `script`): colours (never with NO_COLOR), a hidden
/// prompt for a missing credential, the typed confirmation of a delete.
#[test]
fn on_a_terminal_colours_prompts_and_confirmations() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(&ServerConfig::new(BIN, dir.path()).env("KEYWIRE_BOOTSTRAP_TOKEN", ADMIN));
    let user = User::new()
        .with_env("KEYWIRE_URL", &server.url)
        .with_env("KEYWIRE_TOKEN", ADMIN)
        .with_env("TERM", "xterm");
    user.ok(&["workspace", "create", "Acme"]);
    let piped = user.ok(&["workspace", "list"]);
    assert!(!piped.contains('\x1b'), "{piped:?}");
    // `keywire <args>` on a terminal, answering each prompt once it is shown; what the
    // terminal showed.
    let on_terminal = |args: &str, answers: &[(&str, &str)], no_color: bool| {
        let mut command = user.command("script", &["-qec", &format!("{BIN} {args}"), "/dev/null"]);
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut shown = Vec::new();
        let mut stdin = child.stdin.take().unwrap();
        for (prompt, answer) in answers {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !String::from_utf8_lossy(&shown).contains(prompt) {
                assert!(Instant::now() < deadline, "no prompt {prompt:?}: {shown:?}");
                if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(50)) {
                    shown.extend(chunk);
                }
            }
            // The prompt is out; give it a moment to turn the echo off, then type.
            std::thread::sleep(Duration::from_millis(200));
            stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
        }
        drop(stdin);
        let status = child.wait().unwrap();
        reader.join().unwrap();
        shown.extend(rx.try_iter().flatten());
        (
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&shown).into_owned(),
        )
    };
    let (_, coloured) = on_terminal("workspace list", &[], false);
    assert!(coloured.contains("\x1b[1mSLUG"), "{coloured:?}");
    let (_, plain) = on_terminal("workspace list", &[], true);
    assert!(
        plain.contains("SLUG") && !plain.contains("\x1b["),
        "{plain:?}"
    );

    // The signing secret left out: asked for (hidden), and used instead of a generated one.
    let (code, created) = on_terminal(
        "integration create -w acme -t webhook --name Hook --notify-on SECRET_ADDED \\
         -m url=https://hooks.example.com/kw --no-validate",
        &[("/signingSecret (", SIGNING)],
        true,
    );
    assert_eq!(code, 0, "{created:?}");
    assert!(created.contains("credential, hidden"), "{created:?}");
    assert!(!created.contains(SIGNING), "typed hidden: {created:?}");
    assert!(
        created.contains("Created integration `hook`"),
        "{created:?}"
    );
    assert!(!created.contains("keywire generated"), "{created:?}");
    let hook = user.json(&["integration", "get", "hook"]);
    assert_eq!(hook["secretFields"]["/signingSecret"]["configured"], true);

    // A delete asks for the slug: a wrong answer keeps it, the right one deletes.
    let (code, kept) = on_terminal(
        "workspace delete acme",
        &[("Type `acme` to confirm", "acme-typo")],
        true,
    );
    assert_eq!(code, 1, "{kept:?}");
    assert!(kept.contains("was not deleted"), "{kept:?}");
    user.ok(&["workspace", "get", "acme"]);
    let (code, gone) = on_terminal("workspace delete acme", &[("to confirm", "acme")], true);
    assert_eq!(code, 0, "{gone:?}");
    assert!(gone.contains("Deleted workspace `acme`."), "{gone:?}");
    user.fails(&["workspace", "get", "acme"], 3);

    // Tables fit the width they are given.
    let narrow = User::new()
        .with_env("KEYWIRE_URL", &server.url)
        .with_env("KEYWIRE_TOKEN", ADMIN)
        .with_env("COLUMNS", "40");
    for line in narrow.ok(&["integration", "types"]).lines() {
        assert!(line.chars().count() <= 40, "{line:?}");
    }
}

/// The README's command-line section, run as written with `keywire` on the PATH.
#[test]
fn the_readme_command_line_section_runs() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let block = readme
        .split("<!-- cli:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- cli:end -->").next())
        .expect("README has a cli:start/cli:end block");
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(script.contains("keywire login"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(&ServerConfig::new(BIN, dir.path()).env("KEYWIRE_BOOTSTRAP_TOKEN", ADMIN));
    let user = User::new()
        .with_env("TOKEN", ADMIN)
        .with_env("KW", &server.url);
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = user
        .command("sh", &["-ec", &script])
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("\ndebug\n"),
        "run printed the variable: {stdout}"
    );
    assert!(stdout.contains("\"key\":\"DATABASE_URL\""), "{stdout}");
    assert!(
        !stdout.contains("postgres://"),
        "no value without --reveal: {stdout}"
    );
}

/// The subcommands `keywire <path> --help` lists (without `help`).
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let out = User::new().ok(&args);
    let Some(start) = out.find("Commands:") else {
        return Vec::new();
    };
    out[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn docs_cli_md_names_every_subcommand_that_help_lists() {
    let docs = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md"),
    )
    .unwrap();
    let mut missing = Vec::new();
    let mut seen = 0;
    let mut stack: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = stack.pop() {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands(&refs) {
            let mut full = path.clone();
            full.push(sub);
            let name = format!("keywire {}", full.join(" "));
            seen += 1;
            if !docs.contains(&name) {
                missing.push(name);
            }
            stack.push(full);
        }
    }
    assert!(seen > 40, "expected the whole tree, found {seen} commands");
    assert!(missing.is_empty(), "docs/cli.md does not name: {missing:?}");
    // And the exit codes table names every documented code.
    for code in 0..=6 {
        assert!(docs.contains(&format!("\n| {code} |")), "exit code {code}");
    }
}

#[test]
fn usage_errors_completions_and_no_login_need_no_server() {
    let user = User::new();
    // clap's usage errors: exit code 2.
    assert_eq!(user.run(&["secret"]).code, 2);
    assert_eq!(user.run(&["secret", "set", "KEY", "-p", "web"]).code, 2);
    assert_eq!(user.run(&["run", "-p", "web", "-e", "dev"]).code, 2);
    assert_eq!(user.run(&["integration", "runs", "retry", "hook"]).code, 2);
    assert_eq!(user.run(&["workspace", "list", "-o", "yaml"]).code, 2);
    // Our own: a bad --env, a bad time, before anything is sent.
    let bad = User::new()
        .with_env("KEYWIRE_URL", "http://127.0.0.1:9")
        .with_env("KEYWIRE_TOKEN", ADMIN);
    bad.fails(&["event", "list", "-w", "acme", "--since", "yesterday"], 2);
    // Not logged in.
    let stderr = user.fails(&["whoami"], 4);
    assert!(stderr.contains("keywire login"), "{stderr}");
    // Completions for the three shells name the commands.
    for shell in ["bash", "zsh", "fish"] {
        let script = user.ok(&["completions", shell]);
        assert!(
            script.contains("integration") && script.contains("secret"),
            "{shell}"
        );
    }
    assert!(user.ok(&["completions", "bash"]).contains("_keywire"));
}
