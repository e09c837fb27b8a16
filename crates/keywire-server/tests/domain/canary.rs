//! Secrets never leak. Distinctive canary values are planted as secret values, as every
//! credential field of every integration type (tokens, the secret parts of webhook URLs, signing
//! secrets, custom header values, an SMTP password, AWS keys and session tokens) and as API
//! tokens; then every route is called (the access matrix's table, as the server admin and as a
//! member holding exactly the route's authority), every integration type is created, checked,
//! tested, synced, dry-run, patched and deleted against providers that answer OK and against
//! providers that refuse (401/403, 429, 5xx, and a provider that echoes the whole request back
//! in its error), with `KEYWIRE_LOG=trace`. Then every answer, every run and attempt record,
//! the events, the captured standard output and error, and the database (the SQLite file with
//! its `-wal` and `-shm`, or a `pg_dump` of the PostgreSQL database) are searched for the
//! canaries: none may appear, except in the answer that shows a value by design (a
//! `?reveal=true` read, the token in the answer that creates it, `generatedSecrets` at
//! creation).
//!
//! A canary is searched as a whole, as the Rust `Debug` list of its bytes (what an SDK's
//! request dump prints), percent-encoded, and — for the random canaries — as any 12 characters
//! of its random part, so a truncated excerpt that cut a value in half is found too. The test
//! also checks that the canaries did reach the fakes where they should, so the paths above
//! really ran.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use keywire_test_support::TestDb;
use keywire_test_support::fake::{FakeResponse, FakeServer, RecordedRequest};
use keywire_test_support::github::{self, FakeGitHub};
use keywire_test_support::gitlab::{self, FakeGitLab};
use keywire_test_support::lambda::{self, FakeLambda};
use keywire_test_support::smtp::{SmtpConfig, SmtpServer};
use keywire_test_support::vercel::{self, FakeVercel};
use keywire_test_support::{discord, slack, teams};
use serde_json::{Value, json};

use crate::access::{self, Caller, text, v1};
use crate::support::{ADMIN, Api, RawAnswer};

const SMTP_USER: &str = "keywire-mailer";
/// How many characters of a random canary make a leak when found anywhere.
const WINDOW: usize = 12;

/// One planted value.
struct Canary {
    label: String,
    value: String,
    /// The random part, searched in windows too (`None` for fixed values such as the fakes'
    /// credentials, which share substrings with ordinary test names).
    random: Option<String>,
}

impl Canary {
    /// The strings whose presence is a leak.
    fn needles(&self) -> Vec<String> {
        let mut out = vec![self.value.clone()];
        let bytes = format!("{:?}", self.value.as_bytes());
        out.push(bytes.trim_matches(['[', ']']).to_owned());
        let encoded = percent_encode(&self.value);
        if encoded != self.value {
            out.push(encoded);
        }
        if let Some(random) = &self.random {
            let chars: Vec<char> = random.chars().collect();
            for window in chars.windows(WINDOW) {
                out.push(window.iter().collect());
            }
        }
        out
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A whsec_ signing secret: base64 of 32 random bytes.
fn random_signing_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut key = [0u8; 33];
    getrandom::fill(&mut key).expect("random bytes");
    let mut out = String::from("whsec_");
    for chunk in key.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
        }
    }
    out
}

/// Something the test saw: an answer, a record, a log, a database dump.
struct Seen {
    label: String,
    text: String,
    /// Canary values this text may hold by design.
    allowed: BTreeSet<String>,
}

/// The canaries and everything seen, for one backend.
struct Probe<'a> {
    api: &'a Api,
    canaries: Vec<Canary>,
    responses: Vec<Seen>,
    records: Vec<Seen>,
}

impl<'a> Probe<'a> {
    fn new(api: &'a Api) -> Self {
        Probe {
            api,
            canaries: Vec::new(),
            responses: Vec::new(),
            records: Vec::new(),
        }
    }

    /// A new random canary: `prefix` and 32 random hex digits.
    fn plant(&mut self, label: &str, prefix: &str) -> String {
        let random = random_hex(16);
        let value = format!("{prefix}{random}");
        self.canaries.push(Canary {
            label: label.to_owned(),
            value: value.clone(),
            random: Some(random),
        });
        value
    }

    /// A value chosen elsewhere (a fake's credential, a server-made token) as a canary.
    fn watch(&mut self, label: &str, value: &str, random: Option<&str>) {
        if self.canaries.iter().any(|c| c.value == value) {
            return;
        }
        self.canaries.push(Canary {
            label: label.to_owned(),
            value: value.to_owned(),
            random: random.map(str::to_owned),
        });
    }

    /// A token the server made (`kw_…`): all of it is random.
    fn watch_token(&mut self, label: &str, token: &str) {
        let random = token.split_once('_').map_or(token, |(_, rest)| rest);
        let random = (random.len() >= WINDOW).then_some(random);
        self.watch(label, token, random);
    }

    /// Sends a request as `token` and keeps the answer (status line, headers and body).
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        allowed: &[&str],
    ) -> RawAnswer {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.call_raw(method, path, token, bytes, allowed).await
    }

    async fn call_raw(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
        allowed: &[&str],
    ) -> RawAnswer {
        let content_type = body.as_ref().map(|_| "application/json");
        let authorization = format!("Bearer {token}");
        let answer = self
            .api
            .send(method, path, Some(&authorization), content_type, body)
            .await;
        self.keep_answer(&format!("{method} {path}"), &answer, allowed);
        answer
    }

    fn keep_answer(&mut self, label: &str, answer: &RawAnswer, allowed: &[&str]) {
        let headers: String = answer
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        self.responses.push(Seen {
            label: label.to_owned(),
            text: format!("{}\n{headers}\n{}", answer.status, answer.text),
            allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
        });
    }

    /// Every canary found where it is not allowed: (where, which canary, as what). Each text
    /// is scanned once: a needle is looked up by its first [`WINDOW`] bytes at every offset.
    fn leaks_in(&self, seen: &[Seen]) -> Vec<String> {
        let mut by_prefix: HashMap<&[u8], Vec<(usize, String)>> = HashMap::new();
        let needles: Vec<Vec<String>> = self.canaries.iter().map(Canary::needles).collect();
        for (i, list) in needles.iter().enumerate() {
            for needle in list {
                assert!(needle.len() >= WINDOW, "canary `{needle}` is too short");
                by_prefix
                    .entry(&needle.as_bytes()[..WINDOW])
                    .or_default()
                    .push((i, needle.clone()));
            }
        }
        let mut out = Vec::new();
        for s in seen {
            let bytes = s.text.as_bytes();
            let mut found = BTreeSet::new();
            for at in 0..bytes.len().saturating_sub(WINDOW - 1) {
                let Some(candidates) = by_prefix.get(&bytes[at..at + WINDOW]) else {
                    continue;
                };
                for (i, needle) in candidates {
                    let canary = &self.canaries[*i];
                    if found.contains(i)
                        || s.allowed.contains(&canary.value)
                        || !bytes[at..].starts_with(needle.as_bytes())
                    {
                        continue;
                    }
                    found.insert(*i);
                    let context = String::from_utf8_lossy(
                        &bytes[at.saturating_sub(120)..(at + needle.len() + 120).min(bytes.len())],
                    );
                    out.push(format!(
                        "{} in {} (as `{needle}`): …{context}…",
                        canary.label, s.label
                    ));
                }
            }
        }
        out
    }
}

/// An echoing provider: `GET` answers an empty list (so a sync's listing succeeds), anything
/// else is refused with `status` and the whole request (method, path, query, headers, body)
/// quoted back in the error, as some providers do.
fn echo(status: u16) -> FakeServer {
    FakeServer::start(move |req: &RecordedRequest| {
        if req.method == "GET" {
            return FakeResponse::json(200, json!([]));
        }
        let headers: String = req
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        let echoed = format!(
            "{} {}?{}\n{headers}\n{}",
            req.method,
            req.path,
            req.query,
            req.text()
        );
        let answer = FakeResponse::json(
            status,
            json!({"message": echoed, "error": {"code": "echo", "message": echoed}}),
        );
        if status == 429 {
            answer.with_header("retry-after", "1")
        } else {
            answer
        }
    })
}

/// The fakes one backend's run talks to.
struct Fakes {
    hook: FakeServer,
    echo400: FakeServer,
    echo429: FakeServer,
    echo503: FakeServer,
    discord: FakeServer,
    slack: FakeServer,
    teams: FakeServer,
    smtp_ok: SmtpServer,
    smtp_refusing: SmtpServer,
    vercel: FakeVercel,
    gitlab: FakeGitLab,
    github: FakeGitHub,
    github_echo: FakeGitHub,
    lambda_ok: FakeLambda,
    lambda_echo: FakeLambda,
}

impl Fakes {
    fn overrides(&self) -> String {
        [
            ("https://discord.com", self.discord.url()),
            ("https://hooks.slack.com", self.slack.url()),
            ("https://slack.com", self.slack.url()),
            (teams::ORIGIN, self.teams.url()),
            (teams::LEGACY_ORIGIN, self.echo400.url()),
            (vercel::ORIGIN, self.vercel.url()),
        ]
        .map(|(from, to)| format!("{from}={to}"))
        .join(",")
    }
}

/// One integration to create: name, type, metadata, and the rest of the create body.
struct Planned {
    name: &'static str,
    kind: &'static str,
    metadata: Value,
    extra: Value,
}

fn communication(name: &'static str, kind: &'static str, metadata: Value) -> Planned {
    Planned {
        name,
        kind,
        metadata,
        extra: json!({"notifyOn": ["SECRET_ADDED", "SECRET_UPDATED", "SECRET_DELETED"],
                      "projectSlug": "shop"}),
    }
}

fn infrastructure(name: &'static str, kind: &'static str, metadata: Value, sync: Value) -> Planned {
    let environments = if sync["targets"].as_object().is_some_and(|t| t.len() == 2) {
        json!(["dev", "prod"])
    } else {
        json!(["prod"])
    };
    Planned {
        name,
        kind,
        metadata,
        extra: json!({"notifyOn": ["SECRET_ADDED", "SECRET_UPDATED", "SECRET_DELETED"],
                      "actions": ["upsert", "delete", "cleanup_on_remove"],
                      "projectSlug": "shop", "environmentSlugs": environments, "sync": sync}),
    }
}

impl Planned {
    fn body(&self) -> Value {
        let mut body = self.extra.clone();
        body["name"] = json!(self.name);
        body["type"] = json!(self.kind);
        body["metadata"] = self.metadata.clone();
        body
    }
}

/// What one backend's run looked at.
#[derive(Debug, Default)]
struct Figures {
    canaries: usize,
    responses: usize,
    response_bytes: usize,
    runs: usize,
    attempts: usize,
    failed_attempts: usize,
    events: usize,
    record_bytes: usize,
    log_bytes: usize,
    log_lines: usize,
    database_bytes: usize,
    leaks: Vec<String>,
}

#[tokio::test]
async fn canaries_planted_everywhere_appear_nowhere_they_should_not() {
    let mut all = Vec::new();
    for db in TestDb::all().await {
        let backend = db.backend().to_string();
        let started = Instant::now();
        let figures = run(db).await;
        eprintln!(
            "{backend}: {} canaries; searched {} answers ({} bytes), {} runs with {} attempts \
             ({} failed) and {} events ({} bytes of records), {} log lines ({} bytes), {} bytes \
             of database; canaries found: {} ({:?})",
            figures.canaries,
            figures.responses,
            figures.response_bytes,
            figures.runs,
            figures.attempts,
            figures.failed_attempts,
            figures.events,
            figures.record_bytes,
            figures.log_lines,
            figures.log_bytes,
            figures.database_bytes,
            figures.leaks.len(),
            started.elapsed()
        );
        all.extend(figures.leaks.into_iter().map(|l| format!("{backend}: {l}")));
    }
    assert!(all.is_empty(), "{} leaks:\n{}", all.len(), all.join("\n"));
}

async fn run(db: TestDb) -> Figures {
    // The SMTP server must know the password before the probe exists: planted below.
    let smtp_random = random_hex(16);
    let smtp_password = format!("kwsp{smtp_random}");
    let lambda_ok = FakeLambda::start();
    let lambda_echo = FakeLambda::start();
    // Lambda quotes the variables it measured when they exceed its size limit.
    lambda_echo.set_size_limit(16);
    let fakes = Fakes {
        hook: FakeServer::start(|_| FakeResponse::json(200, json!({"ok": true}))),
        echo400: echo(400),
        echo429: echo(429),
        echo503: echo(503),
        discord: discord::start(0),
        slack: slack::start(),
        teams: teams::start(),
        smtp_ok: SmtpServer::start(SmtpConfig::with_credentials(SMTP_USER, &smtp_password)),
        smtp_refusing: SmtpServer::start(SmtpConfig::with_credentials(
            SMTP_USER,
            "the-password-the-server-wants",
        )),
        vercel: FakeVercel::start(),
        gitlab: FakeGitLab::start(),
        github: FakeGitHub::start(),
        github_echo: FakeGitHub::start(),
        lambda_ok,
        lambda_echo,
    };
    let overrides = fakes.overrides();
    let sqlite_file = db
        .url()
        .strip_prefix("sqlite://")
        .map(std::path::PathBuf::from);
    let postgres_url = sqlite_file.is_none().then(|| db.url().to_owned());
    let api = Api::with_env(
        db,
        &[
            ("KEYWIRE_TEST_ORIGIN_OVERRIDES", overrides.as_str()),
            ("KEYWIRE_LOG", "trace"),
            ("KEYWIRE_RETRY_SCHEDULE", "0s,200ms"),
            ("KEYWIRE_SYNC_DEBOUNCE", "100ms"),
            ("KEYWIRE_POLL_INTERVAL", "100ms"),
        ],
    );
    let mut probe = Probe::new(&api);

    // The fakes' own credentials are canaries too: fixed, so searched whole only.
    for (label, value) in [
        ("the Vercel token", vercel::TOKEN),
        ("the GitLab token", gitlab::TOKEN),
        ("the GitHub token", github::TOKEN),
        ("the AWS secret access key", lambda::SECRET_ACCESS_KEY),
        ("the Discord webhook token", discord::WEBHOOK_TOKEN),
        ("the Slack webhook secret", slack::WEBHOOK_SECRET),
        ("the Slack bot token", slack::BOT_TOKEN),
        ("the Teams signature", teams::SIG),
        ("the bootstrap admin token", ADMIN),
    ] {
        probe.watch(label, value, None);
    }

    // The world of the access matrix (workspace `acme`, project `shop` with `dev` and `prod`,
    // the `alerts`, `failing` and `shop-sync` integrations, members, failed runs).
    let mut world = access::world(&api, &fakes.hook, &fakes.echo400).await;

    // Secret values.
    let values: Vec<String> = (1..=6)
        .map(|i| probe.plant(&format!("secret value {i}"), "kwsv"))
        .collect();
    let all_values: Vec<&str> = values.iter().map(String::as_str).collect();
    probe
        .call(
            "PUT",
            &v1("/projects/shop/secrets/ENTRY_KEY"),
            ADMIN,
            Some(json!({"values": {"dev": values[0], "prod": values[1]}})),
            &[],
        )
        .await;
    probe
        .call(
            "PUT",
            &v1("/projects/shop/secrets/CANARY_A"),
            ADMIN,
            Some(json!({"values": {"dev": values[2], "prod": values[3]}, "note": "canary"})),
            &[],
        )
        .await;
    probe
        .call(
            "PUT",
            &v1("/projects/shop/secrets"),
            ADMIN,
            Some(json!({"items": [{"key": "CANARY_B", "values": {"dev": values[4], "prod": values[5]}}]})),
            &[],
        )
        .await;

    // Credentials, one set per integration.
    let discord_bad = probe.plant("a Discord webhook token", "kwdc");
    let slack_hook_bad = probe.plant("a Slack webhook secret", "kwsh");
    let slack_bot_bad = probe.plant("a Slack bot token", "kwsb");
    let teams_sig_bad = probe.plant("a Teams signature", "kwts");
    let legacy_a = probe.plant("a Teams connector URL part", "kwtl");
    let legacy_b = probe.plant("another Teams connector URL part", "kwtm");
    probe.watch("an SMTP password", &smtp_password, Some(&smtp_random));
    let smtp_wrong = probe.plant("a refused SMTP password", "kwsr");
    let header_ok = probe.plant("a webhook header value", "kwwh");
    let header_echo = probe.plant("an echoed webhook header value", "kwwe");
    let header_429 = probe.plant("a webhook header value (429)", "kwwr");
    let header_503 = probe.plant("a webhook header value (503)", "kwws");
    let vercel_bad = probe.plant("a refused Vercel token", "kwvc");
    let gitlab_bad = probe.plant("a refused GitLab token", "kwgl");
    let gitlab_echo = probe.plant("an echoed GitLab token", "kwge");
    let github_bad = probe.plant("a refused GitHub token", "kwgh");
    let aws_bad = probe.plant("a refused AWS secret access key", "kwak");
    let session = probe.plant("an AWS session token", "kwst");
    let session_echo = probe.plant("an echoed AWS session token", "kwse");
    let mut signing = Vec::new();
    for label in [
        "a webhook signing secret",
        "an echoed webhook signing secret",
        "a webhook signing secret (503)",
    ] {
        let secret = random_signing_secret();
        let random = secret.trim_start_matches("whsec_").to_owned();
        probe.watch(label, &secret, Some(&random));
        signing.push(secret);
    }
    fakes.lambda_ok.require_session_token(&session);
    fakes.lambda_echo.require_session_token(&session_echo);
    fakes.github_echo.fail_matching(
        "PUT",
        "/actions/secrets/CANARY_A",
        FakeResponse::json(
            422,
            json!({"message": format!("Invalid request: Authorization: Bearer {}", github::TOKEN),
                   "documentation_url": "https://docs.github.com/rest", "status": "422"}),
        ),
    );
    let smtp_refusing_password = smtp_wrong.clone();
    let teams_bad_url = teams::webhook_url().replace(teams::SIG, &teams_sig_bad);
    assert_ne!(teams_bad_url, teams::webhook_url());
    let smtp = |server: &SmtpServer, password: &str| {
        json!({"host": server.host(), "port": server.port(), "tls": "none",
               "username": SMTP_USER, "password": password,
               "from": "keywire <keywire@example.com>", "to": ["ops@example.com"]})
    };
    let vercel_targets = json!({"targets": {"dev": "development", "prod": "production"}});
    let gitlab_targets = json!({"targets": {"dev": "development", "prod": "production"}});
    let mut gitlab_echo_metadata = fakes.gitlab.metadata();
    gitlab_echo_metadata["token"] = json!(gitlab_echo);
    gitlab_echo_metadata["baseUrl"] = json!(fakes.echo400.url());
    let mut gitlab_bad_metadata = fakes.gitlab.metadata();
    gitlab_bad_metadata["token"] = json!(gitlab_bad);
    let mut github_bad_metadata = github::metadata(&fakes.github);
    github_bad_metadata["token"] = json!(github_bad);
    let mut lambda_ok_metadata = lambda::metadata(&fakes.lambda_ok);
    lambda_ok_metadata["sessionToken"] = json!(session);
    let mut lambda_bad_metadata = lambda_ok_metadata.clone();
    lambda_bad_metadata["secretAccessKey"] = json!(aws_bad);
    let mut lambda_echo_metadata = lambda::metadata(&fakes.lambda_echo);
    lambda_echo_metadata["sessionToken"] = json!(session_echo);
    let planned = vec![
        communication(
            "Discord ok",
            "discord",
            json!({"webhookUrl": discord::webhook_url()}),
        ),
        communication(
            "Discord bad",
            "discord",
            json!({"webhookUrl": format!("https://discord.com/api/webhooks/{}/{discord_bad}", discord::WEBHOOK_ID)}),
        ),
        communication(
            "Slack hook ok",
            "slack",
            json!({"webhookUrl": slack::webhook_url()}),
        ),
        communication(
            "Slack hook bad",
            "slack",
            json!({"webhookUrl": format!("https://hooks.slack.com/services/{}/{}/{slack_hook_bad}", slack::TEAM_ID, slack::WEBHOOK_ID)}),
        ),
        communication(
            "Slack bot ok",
            "slack",
            json!({"botToken": slack::BOT_TOKEN, "channel": slack::CHANNEL_NAME}),
        ),
        communication(
            "Slack bot bad",
            "slack",
            json!({"botToken": format!("xoxb-{slack_bot_bad}"), "channel": slack::CHANNEL_NAME}),
        ),
        communication(
            "Teams ok",
            "microsoft_teams",
            json!({"webhookUrl": teams::webhook_url()}),
        ),
        communication(
            "Teams bad",
            "microsoft_teams",
            json!({"webhookUrl": teams_bad_url}),
        ),
        communication(
            "Teams echo",
            "microsoft_teams",
            json!({"webhookUrl": format!("{}/webhookb2/{legacy_a}@{legacy_b}/IncomingWebhook/{legacy_b}/{legacy_a}", teams::LEGACY_ORIGIN)}),
        ),
        communication("Email ok", "email", smtp(&fakes.smtp_ok, &smtp_password)),
        communication(
            "Email bad",
            "email",
            smtp(&fakes.smtp_refusing, &smtp_refusing_password),
        ),
        communication(
            "Webhook ok",
            "webhook",
            json!({"url": format!("{}/hooks/keywire", fakes.hook.url()),
                   "headers": {"Authorization": format!("Bearer {header_ok}")},
                   "signingSecret": signing[0]}),
        ),
        communication(
            "Webhook echo",
            "webhook",
            json!({"url": format!("{}/hooks/echo", fakes.echo400.url()),
                   "headers": {"X-Api-Key": header_echo},
                   "signingSecret": signing[1]}),
        ),
        // No signing secret: keywire generates one and shows it once.
        communication(
            "Webhook limited",
            "webhook",
            json!({"url": format!("{}/hooks/busy", fakes.echo429.url()),
                   "headers": {"Authorization": format!("Token {header_429}")}}),
        ),
        communication(
            "Webhook down",
            "webhook",
            json!({"url": format!("{}/hooks/down", fakes.echo503.url()),
                   "headers": {"X-Token": header_503}, "signingSecret": signing[2]}),
        ),
        infrastructure(
            "Vercel bad",
            "vercel",
            json!({"token": vercel_bad, "projectId": vercel::PROJECT_ID}),
            vercel_targets,
        ),
        infrastructure(
            "GitLab ok",
            "gitlab_ci",
            fakes.gitlab.metadata(),
            gitlab_targets.clone(),
        ),
        infrastructure(
            "GitLab bad",
            "gitlab_ci",
            gitlab_bad_metadata,
            gitlab_targets.clone(),
        ),
        infrastructure(
            "GitLab echo",
            "gitlab_ci",
            gitlab_echo_metadata,
            gitlab_targets,
        ),
        infrastructure(
            "GitHub ok",
            "github_actions",
            github::metadata(&fakes.github),
            json!({}),
        ),
        infrastructure(
            "GitHub bad",
            "github_actions",
            github_bad_metadata,
            json!({}),
        ),
        infrastructure(
            "GitHub echo",
            "github_actions",
            github::metadata(&fakes.github_echo),
            json!({}),
        ),
        infrastructure("Lambda ok", "aws_lambda", lambda_ok_metadata, json!({})),
        infrastructure("Lambda bad", "aws_lambda", lambda_bad_metadata, json!({})),
        infrastructure("Lambda echo", "aws_lambda", lambda_echo_metadata, json!({})),
    ];

    // Create each: a dry run first, then with the live check; a refused check is answered 422
    // (kept and searched) and the integration is created without it.
    let mut slugs = vec![
        ("alerts".to_owned(), "webhook"),
        ("failing".to_owned(), "webhook"),
        ("shop-sync".to_owned(), "vercel"),
    ];
    for plan in &planned {
        let mut dry = plan.body();
        dry["workspace"] = json!("acme");
        let answer = probe
            .call("POST", &v1("/integrations/validate"), ADMIN, Some(dry), &[])
            .await;
        assert_eq!(answer.status, 200, "{}: {}", plan.name, answer.text);
        let create = v1("/workspaces/acme/integrations");
        let mut answer = probe
            .call("POST", &create, ADMIN, Some(plan.body()), &[])
            .await;
        if answer.status == 422 {
            answer = probe
                .call(
                    "POST",
                    &format!("{create}?validate=false"),
                    ADMIN,
                    Some(plan.body()),
                    &[],
                )
                .await;
        }
        assert_eq!(answer.status, 201, "{}: {}", plan.name, answer.text);
        // A generated signing secret is shown in this answer only.
        if let Some(generated) = answer.body["generatedSecrets"].as_object() {
            for secret in generated.values().filter_map(Value::as_str) {
                let random = secret.trim_start_matches("whsec_").to_owned();
                probe.watch("a generated signing secret", secret, Some(&random));
                if let Some(last) = probe.responses.last_mut() {
                    last.allowed.insert(secret.to_owned());
                }
            }
        }
        slugs.push((text(&answer.body, "slug"), plan.kind));
    }

    // Reads, tests, dry runs and syncs of each.
    for (slug, kind) in &slugs {
        let at = v1(&format!("/integrations/{slug}"));
        probe.call("GET", &at, ADMIN, None, &[]).await;
        if matches!(
            *kind,
            "vercel" | "gitlab_ci" | "github_actions" | "aws_lambda"
        ) {
            probe
                .call(
                    "POST",
                    &format!("{at}/sync?dryRun=true"),
                    ADMIN,
                    Some(json!({})),
                    &[],
                )
                .await;
            probe
                .call("POST", &format!("{at}/sync"), ADMIN, Some(json!({})), &[])
                .await;
        } else {
            probe
                .call("POST", &format!("{at}/test"), ADMIN, None, &[])
                .await;
        }
    }
    probe
        .call(
            "GET",
            &v1("/workspaces/acme/integrations?limit=100"),
            ADMIN,
            None,
            &[],
        )
        .await;

    // Updates: a rotated signing secret, a new webhook URL, a new token.
    let rotated = random_signing_secret();
    let random = rotated.trim_start_matches("whsec_").to_owned();
    probe.watch("a rotated webhook signing secret", &rotated, Some(&random));
    let discord_new = probe.plant("a replaced Discord webhook token", "kwdn");
    let gitlab_new = probe.plant("a replaced GitLab token", "kwgn");
    for (slug, patch) in [
        (
            "webhook-ok",
            json!({"metadata": {"signingSecret": rotated}}),
        ),
        (
            "discord-bad",
            json!({"metadata": {"webhookUrl": format!("https://discord.com/api/webhooks/{}/{discord_new}", discord::WEBHOOK_ID)}}),
        ),
        ("gitlab-bad", json!({"metadata": {"token": gitlab_new}})),
    ] {
        let answer = probe
            .call(
                "PATCH",
                &v1(&format!("/integrations/{slug}?validate=false")),
                ADMIN,
                Some(patch.clone()),
                &[],
            )
            .await;
        assert_eq!(answer.status, 200, "PATCH {slug}: {}", answer.text);
        let mut dry = json!({"slug": slug, "patch": patch});
        dry["workspace"] = json!("acme");
        probe
            .call("POST", &v1("/integrations/validate"), ADMIN, Some(dry), &[])
            .await;
    }

    // Every route of the API, as the admin and as a member holding exactly its authority.
    let mut wrong = Vec::new();
    for caller in [Caller::Admin, Caller::With] {
        let column = if caller == Caller::Admin { 6 } else { 5 };
        for route in access::routes() {
            world.n += 1;
            let (authorization, _) = world.authorization(&route, caller).await;
            let token = authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or_default()
                .to_owned();
            if caller == Caller::With {
                probe.watch_token("a member's API token", &token);
            }
            let fresh = world.fresh(&route, caller, Some(&token)).await;
            let run = world.failed_runs[1].clone();
            let path = access::fill(&route.path, world.n, &fresh, &run, &world.hook);
            let body = route.body.as_ref().map(|b| {
                access::fill(&b.to_string(), world.n, &fresh, &run, &world.hook).into_bytes()
            });
            let reveals = path.contains("reveal=true");
            let allowed: &[&str] = if reveals { &all_values } else { &[] };
            let answer = probe
                .call_raw(route.method, &path, &token, body, allowed)
                .await;
            if let Err(why) = access::check(&route, caller, route.expect[column], &answer) {
                wrong.push(format!("{} {path} as {caller:?}: {why}", route.method));
            }
            // A token made by this call is shown in this answer only.
            if let Some(made) = answer.body["token"].as_str() {
                probe.watch_token("an API token", made);
                if let Some(last) = probe.responses.last_mut() {
                    last.allowed.insert(made.to_owned());
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "routes answered wrongly:\n{}",
        wrong.join("\n")
    );

    // A token of the admin's own, used after its creation.
    let made = probe
        .call(
            "POST",
            &v1("/me/tokens"),
            ADMIN,
            Some(json!({"name": "canary"})),
            &[],
        )
        .await;
    let own = text(&made.body, "token");
    probe.watch_token("the admin's new API token", &own);
    if let Some(last) = probe.responses.last_mut() {
        last.allowed.insert(own.clone());
    }
    for path in ["/me", "/me/tokens", "/workspaces/acme/integrations"] {
        probe.call("GET", &v1(path), &own, None, &[]).await;
    }

    // Changes every integration hears: new values, a deleted value.
    let newer: Vec<String> = (7..=8)
        .map(|i| probe.plant(&format!("secret value {i}"), "kwsv"))
        .collect();
    probe
        .call(
            "PUT",
            &v1("/projects/shop/secrets/ENTRY_KEY"),
            ADMIN,
            Some(json!({"values": {"dev": newer[0], "prod": newer[1]}})),
            &[],
        )
        .await;
    probe
        .call(
            "DELETE",
            &v1("/projects/shop/secrets/CANARY_B?environment=dev"),
            ADMIN,
            None,
            &[],
        )
        .await;
    let mut values = values;
    values.extend(newer);
    let all_values: Vec<&str> = values.iter().map(String::as_str).collect();
    for path in [
        "/projects/shop/secrets?reveal=true",
        "/projects/shop/secrets/ENTRY_KEY?reveal=true",
        "/projects/shop/secrets/ENTRY_KEY/versions?environment=dev&reveal=true",
        "/projects/shop/secrets/ENTRY_KEY/versions?environment=prod&reveal=true",
    ] {
        probe.call("GET", &v1(path), ADMIN, None, &all_values).await;
    }
    for path in [
        "/projects/shop/secrets",
        "/projects/shop/secrets/ENTRY_KEY",
        "/projects/shop/secrets/ENTRY_KEY/versions?environment=prod",
    ] {
        probe.call("GET", &v1(path), ADMIN, None, &[]).await;
    }

    // Wait until every run has finished (retryable failures get their second attempt).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut busy = Vec::new();
        for (slug, _) in &slugs {
            let runs = api
                .get(&v1(&format!("/integrations/{slug}/runs?limit=200")), ADMIN)
                .await;
            let items = runs.expect(200)["items"].as_array().unwrap().clone();
            if items
                .iter()
                .any(|r| r["status"] == "pending" || r["status"] == "running")
            {
                busy.push(slug.clone());
            }
        }
        if busy.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: runs did not settle: {busy:?}",
            api.backend()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The run log and the events, kept as records.
    let mut figures = Figures::default();
    let mut outcomes = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    for (slug, _) in &slugs {
        let list = probe
            .call(
                "GET",
                &v1(&format!("/integrations/{slug}/runs?limit=200")),
                ADMIN,
                None,
                &[],
            )
            .await;
        let runs = list.body["items"].as_array().cloned().unwrap_or_default();
        for run in runs {
            figures.runs += 1;
            let id = text(&run, "id");
            let detail = probe
                .call(
                    "GET",
                    &v1(&format!("/integrations/{slug}/runs/{id}")),
                    ADMIN,
                    None,
                    &[],
                )
                .await;
            for attempt in detail.body["attemptLog"].as_array().into_iter().flatten() {
                figures.attempts += 1;
                let outcome = text(attempt, "outcome");
                if outcome != "succeeded" {
                    figures.failed_attempts += 1;
                }
                outcomes.insert(outcome);
                if let Some(status) = attempt["httpStatus"].as_u64() {
                    statuses.insert(status);
                }
            }
        }
    }
    let events = probe
        .call(
            "GET",
            &v1("/workspaces/acme/events?limit=200"),
            ADMIN,
            None,
            &[],
        )
        .await;
    figures.events = events.body["items"].as_array().map_or(0, Vec::len);
    // Runs and events are records; the rest are answers.
    let (records, responses): (Vec<Seen>, Vec<Seen>) = probe
        .responses
        .drain(..)
        .partition(|s| s.label.contains("/runs") || s.label.contains("/events"));
    probe.responses = responses;
    probe.records = records;

    // The canaries reached the providers where they should (before the cleanup removes them).
    check_deliveries(&fakes, &probe, &values, &signing);

    // Cleanup on delete reaches the providers (and their errors).
    for slug in ["gitlab-ok", "lambda-echo", "vercel-bad"] {
        probe
            .call(
                "DELETE",
                &v1(&format!("/integrations/{slug}?cleanup=true")),
                ADMIN,
                None,
                &[],
            )
            .await;
    }

    // The error paths ran: refusals, rate limits and provider failures were recorded.
    for outcome in ["succeeded", "permanent_failure", "retryable_failure"] {
        assert!(
            outcomes.contains(outcome),
            "no `{outcome}` attempt: {outcomes:?}"
        );
    }
    for status in [400, 401, 403, 429, 503] {
        assert!(
            statuses.contains(&status),
            "no attempt answered {status}: {statuses:?}"
        );
    }

    // The logs, then the database, as they are now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = vec![
        Seen {
            label: "standard output".into(),
            text: api.server.stdout(),
            allowed: BTreeSet::new(),
        },
        Seen {
            label: "the log (standard error)".into(),
            text: api.server.stderr(),
            allowed: BTreeSet::new(),
        },
    ];
    let database = match (&sqlite_file, &postgres_url) {
        (Some(file), _) => ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let path = format!("{}{suffix}", file.display());
                let bytes = std::fs::read(&path).ok()?;
                Some(Seen {
                    label: path,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    allowed: BTreeSet::new(),
                })
            })
            .collect(),
        (None, Some(url)) => vec![Seen {
            label: "pg_dump of the database".into(),
            text: pg_dump(url),
            allowed: BTreeSet::new(),
        }],
        (None, None) => Vec::new(),
    };
    assert!(!database.is_empty(), "no database file to search");
    assert!(
        logs[1].text.contains(" TRACE ") && logs[1].text.contains(" DEBUG "),
        "the server did not log at trace level"
    );

    figures.canaries = probe.canaries.len();
    figures.responses = probe.responses.len();
    figures.response_bytes = probe.responses.iter().map(|s| s.text.len()).sum();
    figures.record_bytes = probe.records.iter().map(|s| s.text.len()).sum();
    figures.log_bytes = logs.iter().map(|s| s.text.len()).sum();
    figures.log_lines = logs.iter().map(|s| s.text.lines().count()).sum();
    figures.database_bytes = database.iter().map(|s| s.text.len()).sum();
    figures.leaks = probe.leaks_in(&probe.responses);
    figures.leaks.extend(probe.leaks_in(&probe.records));
    figures.leaks.extend(probe.leaks_in(&logs));
    figures.leaks.extend(probe.leaks_in(&database));
    figures
}

/// The data of a PostgreSQL database as `pg_dump` prints it.
fn pg_dump(url: &str) -> String {
    let mut candidates = vec![std::path::PathBuf::from("pg_dump")];
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<_> = dirs
            .filter_map(Result::ok)
            .map(|d| d.path().join("bin/pg_dump"))
            .filter(|p| p.exists())
            .collect();
        found.sort();
        candidates.splice(0..0, found.into_iter().rev());
    }
    for binary in candidates {
        let Ok(out) = std::process::Command::new(&binary)
            .args(["--data-only", "--no-owner", "--dbname", url])
            .output()
        else {
            continue;
        };
        assert!(
            out.status.success(),
            "{} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
    panic!("pg_dump is not installed: it comes with PostgreSQL's client package");
}

fn has_header(requests: &[RecordedRequest], name: &str, value: &str) -> bool {
    requests.iter().any(|r| r.header(name) == Some(value))
}

/// The canaries arrived where they are meant to: proof that the paths searched above ran.
fn check_deliveries(fakes: &Fakes, probe: &Probe<'_>, values: &[String], signing: &[String]) {
    let find = |label: &str| -> String {
        probe
            .canaries
            .iter()
            .find(|c| c.label == label)
            .map(|c| c.value.clone())
            .unwrap_or_else(|| panic!("no canary `{label}`"))
    };
    let is_value = |v: &str| values.iter().any(|x| x == v);
    // Secret values at the targets (the first values went out before the update).
    assert!(
        fakes.vercel.envs().iter().any(|e| is_value(&e.value)),
        "no secret value reached Vercel"
    );
    assert!(
        fakes.gitlab.variables().iter().any(|v| is_value(&v.value)),
        "no secret value reached GitLab"
    );
    assert!(
        fakes
            .github
            .secret_value("", "CANARY_A")
            .is_some_and(|v| is_value(&v)),
        "CANARY_A did not reach GitHub (sealed)"
    );
    assert!(
        fakes.lambda_ok.variables().values().any(|v| is_value(v)),
        "no secret value reached Lambda"
    );
    assert!(
        fakes
            .lambda_echo
            .requests()
            .iter()
            .any(|r| values.iter().any(|v| r.text().contains(v.as_str()))),
        "no secret value reached the echoing Lambda"
    );
    assert!(
        fakes.echo400.requests().iter().any(|r| r.method == "POST"
            && r.path.contains("/variables")
            && values.iter().any(|v| r.text().contains(v.as_str()))),
        "no secret value reached the echoing GitLab"
    );
    // Credentials used as credentials.
    assert!(has_header(
        &fakes.vercel.requests(),
        "authorization",
        &format!("Bearer {}", vercel::TOKEN)
    ));
    assert!(has_header(
        &fakes.vercel.requests(),
        "authorization",
        &format!("Bearer {}", find("a refused Vercel token"))
    ));
    assert!(has_header(
        &fakes.gitlab.requests(),
        "private-token",
        &find("a refused GitLab token")
    ));
    assert!(has_header(
        &fakes.echo400.requests(),
        "private-token",
        &find("an echoed GitLab token")
    ));
    assert!(has_header(
        &fakes.github.requests(),
        "authorization",
        &format!("Bearer {}", find("a refused GitHub token"))
    ));
    assert!(has_header(
        &fakes.lambda_ok.requests(),
        "x-amz-security-token",
        &find("an AWS session token")
    ));
    assert!(
        fakes.lambda_ok.writes() > 0,
        "the Lambda fake accepted no signed write"
    );
    assert!(has_header(
        &fakes.hook.requests(),
        "authorization",
        &format!("Bearer {}", find("a webhook header value"))
    ));
    assert!(has_header(
        &fakes.echo400.requests(),
        "x-api-key",
        &find("an echoed webhook header value")
    ));
    assert!(has_header(
        &fakes.echo429.requests(),
        "authorization",
        &format!("Token {}", find("a webhook header value (429)"))
    ));
    assert!(has_header(
        &fakes.echo503.requests(),
        "x-token",
        &find("a webhook header value (503)")
    ));
    assert!(
        fakes
            .hook
            .requests()
            .iter()
            .any(|r| r.header("webhook-signature").is_some()),
        "no signed delivery (signing secret {} unused)",
        signing[0].len()
    );
    assert!(
        !fakes.smtp_ok.mails().is_empty(),
        "no mail went through the SMTP login with the canary password"
    );
    assert!(
        fakes.smtp_refusing.sessions().iter().any(|s| s.auth_failed),
        "the refusing SMTP server saw no login"
    );
    let paths = |fake: &FakeServer| -> String {
        fake.requests()
            .iter()
            .map(|r| format!("{}?{}\n", r.path, r.query))
            .collect()
    };
    let discord_paths = paths(&fakes.discord);
    assert!(discord_paths.contains(discord::WEBHOOK_TOKEN));
    assert!(discord_paths.contains(&find("a Discord webhook token")));
    let slack_paths = paths(&fakes.slack);
    assert!(slack_paths.contains(slack::WEBHOOK_SECRET));
    assert!(slack_paths.contains(&find("a Slack webhook secret")));
    assert!(has_header(
        &fakes.slack.requests(),
        "authorization",
        &format!("Bearer xoxb-{}", find("a Slack bot token"))
    ));
    let teams_paths = paths(&fakes.teams);
    assert!(teams_paths.contains(&find("a Teams signature")));
    assert!(paths(&fakes.echo400).contains(&find("a Teams connector URL part")));
}
