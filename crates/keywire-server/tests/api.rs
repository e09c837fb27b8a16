//! End to end: the real `keywire` binary on a free port, on SQLite and (when
//! `KEYWIRE_TEST_DATABASE_URL` is set) PostgreSQL, driven over HTTP.

use keywire_test_support::TestDb;
use keywire_test_support::server::{Server, ServerConfig};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keywire");
const ADMIN_TOKEN: &str = "kw_test_bootstrap_token_0123456789abcdef";

struct Harness {
    server: Server,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

impl Harness {
    async fn start(db: TestDb) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::new(BIN, dir.path())
            .database(Some(db.url()))
            .env("KEYWIRE_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .env("KEYWIRE_MAX_BODY_BYTES", "4096");
        let server = Server::start(&config);
        Harness {
            server,
            http: keywire_test_support::http_client(),
            _dir: dir,
            _db: db,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, String, Value) {
        let mut request = self.http.get(format!("{}{path}", self.server.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.unwrap()).await
    }
}

async fn answer(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

fn assert_problem(answer: &(u16, String, Value), status: u16, code: &str) {
    let (got, content_type, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn serves_health_readiness_openapi_and_the_registry_on_every_backend() {
    for db in TestDb::all().await {
        let backend = format!("{:?}", db.backend()).to_lowercase();
        let h = Harness::start(db).await;
        let (status, _, body) = h.get("/health", None).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
        let (status, _, body) = h.get("/ready", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["database"].as_str().map(str::to_owned), Some(backend));

        let (status, _, types) = h.get("/api/v1/integration-types", Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 200, "{types}");
        let ids: Vec<&str> = types["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["type"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&"discord") && ids.contains(&"webhook"),
            "{ids:?}"
        );
        assert!(ids.is_sorted(), "types are sorted by id: {ids:?}");
        let discord = &types["items"][ids.iter().position(|i| *i == "discord").unwrap()];
        assert_eq!(discord["category"], "communication");
        assert_eq!(discord["scope"]["environments"], "any");
        assert_eq!(discord["permittedEvents"].as_array().unwrap().len(), 27);
        assert_eq!(
            discord["metadataSchema"]["properties"]["webhookUrl"]["writeOnly"],
            true
        );
        assert_eq!(discord["secretFields"], serde_json::json!(["/webhookUrl"]));
        assert!(discord["exampleMetadata"]["webhookUrl"].is_string());

        let (status, _, webhook) = h
            .get("/api/v1/integration-types/webhook", Some(ADMIN_TOKEN))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            webhook["metadataSchema"]["properties"]["signingSecret"]["writeOnly"],
            true
        );
        let missing = h
            .get(
                "/api/v1/integration-types/carrier_pigeon",
                Some(ADMIN_TOKEN),
            )
            .await;
        assert_problem(&missing, 404, "not_found");
        assert!(
            missing.2["detail"].as_str().unwrap().contains("discord"),
            "lists the known types"
        );

        let (status, _, spec) = h.get("/openapi.json", None).await;
        assert_eq!(status, 200);
        assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/health",
            "/ready",
            "/api/v1/integration-types",
            "/api/v1/integration-types/{type}",
            "/api/v1/me",
        ] {
            assert!(
                spec["paths"][path]["get"].is_object(),
                "OpenAPI lacks GET {path}"
            );
            for (code, response) in spec["paths"][path]["get"]["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{path} {code}"
                );
            }
        }
    }
}

#[tokio::test]
async fn authentication_failures_are_problem_json_with_a_bearer_challenge() {
    let h = Harness::start(TestDb::sqlite().await).await;
    let none = h
        .http
        .get(format!("{}/api/v1/me", h.server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer realm=\"keywire\""
    );
    assert_problem(&answer(none).await, 401, "unauthorized");
    assert_problem(
        &h.get("/api/v1/me", Some("kw_not_a_real_token_at_all_000000000"))
            .await,
        401,
        "unauthorized",
    );
    let basic = h
        .http
        .get(format!("{}/api/v1/me", h.server.url))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_problem(&answer(basic).await, 401, "unauthorized");
    assert_problem(
        &h.get("/api/v1/integration-types", Some("")).await,
        401,
        "unauthorized",
    );

    let (status, _, me) = h.get("/api/v1/me", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "admin");
    assert_eq!(me["isAdmin"], true);
    assert_eq!(me["token"]["name"], "bootstrap");
    assert!(ADMIN_TOKEN.starts_with(me["token"]["prefix"].as_str().unwrap()));
    assert!(
        !me.to_string().contains(ADMIN_TOKEN),
        "the token itself is never returned"
    );
}

#[tokio::test]
async fn unknown_routes_and_oversized_bodies_are_problem_json() {
    let h = Harness::start(TestDb::sqlite().await).await;
    assert_problem(
        &h.get("/api/v1/nothing-here", Some(ADMIN_TOKEN)).await,
        404,
        "not_found",
    );
    assert_problem(&h.get("/../../etc/passwd", None).await, 404, "not_found");

    let big = h
        .http
        .post(format!("{}/api/v1/me", h.server.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(vec![b' '; 5000])
        .send()
        .await
        .unwrap();
    let big = answer(big).await;
    assert_problem(&big, 413, "body_too_large");
    assert!(big.2["detail"].as_str().unwrap().contains("4096"));
}

#[test]
fn sigterm_right_after_the_listening_line_is_a_clean_stop() {
    // A supervisor may signal as soon as it sees the line: the handlers are in place by then.
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&ServerConfig::new(BIN, dir.path()));
        let (status, log) = server.terminate();
        assert!(status.success(), "SIGTERM is a clean stop: {status}\n{log}");
        assert!(log.contains("stopped"), "{log}");
    }
}

#[tokio::test]
async fn first_start_prints_one_token_once_and_never_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::new(BIN, dir.path());
    let server = Server::start(&config);
    let token = server
        .printed_token()
        .expect("the first start prints the admin token");
    let http = keywire_test_support::http_client();
    let me = http
        .get(format!("{}/api/v1/me", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let (status, log) = server.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    assert!(log.contains("stopped"), "{log}");
    assert!(!log.contains(&token), "the token is never in the log");
    assert!(
        dir.path().join("keywire.db").exists(),
        "SQLite lives in the data directory"
    );

    let again = Server::start(&config);
    assert_eq!(
        again.printed_token(),
        None,
        "the token is printed only on the first start"
    );
    let me = http
        .get(format!("{}/api/v1/me", again.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the token survives a restart");
    assert!(!again.stderr().contains(&token));
}

#[tokio::test]
async fn a_bootstrap_token_from_the_environment_is_used_and_not_echoed() {
    let h = Harness::start(TestDb::sqlite().await).await;
    assert_eq!(h.server.printed_token(), None);
    assert!(!h.server.stdout().contains(ADMIN_TOKEN) && !h.server.stderr().contains(ADMIN_TOKEN));
    assert_eq!(h.get("/api/v1/me", Some(ADMIN_TOKEN)).await.0, 200);

    let dir = tempfile::tempdir().unwrap();
    let short = ServerConfig::new(BIN, dir.path()).env("KEYWIRE_BOOTSTRAP_TOKEN", "tooshort");
    let (_, _, err) = Server::try_start(&short)
        .err()
        .expect("a short bootstrap token is refused");
    assert!(
        err.contains("KEYWIRE_BOOTSTRAP_TOKEN") || err.contains("token"),
        "{err}"
    );
    assert!(
        !err.contains("tooshort"),
        "the refused token is not echoed: {err}"
    );
}

#[tokio::test]
async fn an_unusable_data_directory_is_a_clear_error_and_a_failed_exit() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let config = ServerConfig::new(BIN, &file.path().join("data"));
    let (status, _, err) = Server::try_start(&config)
        .err()
        .expect("cannot start under a file");
    assert_ne!(status, "exit status: 0");
    assert!(err.contains("data directory"), "{err}");
}

#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("README has the walkthrough markers");
    let end = readme.find("<!-- walkthrough:end -->").unwrap();
    let block = &readme[start..end];
    let script = block
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    let h = Harness::start(TestDb::sqlite().await).await;
    let output = std::process::Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .env("KW", &h.server.url)
        .env("TOKEN", ADMIN_TOKEN)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the walkthrough failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The plain listing shows no value; the revealed one does; events never do.
    let answers: Vec<&str> = stdout.split('\n').filter(|l| !l.is_empty()).collect();
    assert!(
        stdout.contains("\"slug\":\"acme\"") && stdout.contains("\"slug\":\"web-shop\""),
        "{stdout}"
    );
    let revealed = answers
        .iter()
        .find(|l| l.contains("postgres://db.internal/shop"))
        .expect("the revealed secret");
    assert!(revealed.contains("DATABASE_URL"));
    assert_eq!(
        stdout.matches("postgres://db.internal/shop").count(),
        1,
        "only the revealed answer shows the value: {stdout}"
    );
}
