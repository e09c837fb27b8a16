//! A spawned server per backend and small HTTP helpers shared by the domain tests.

use keywire_test_support::TestDb;
use keywire_test_support::server::{Server, ServerConfig};
use serde_json::Value;

/// The bootstrap admin's token in every test server.
pub const ADMIN: &str = "kw_domain_admin_token_0123456789abcdef";

/// A server with its own database, and an HTTP client.
pub struct Api {
    /// The running server.
    pub server: Server,
    http: reqwest::Client,
    /// The data directory (holds the SQLite file unless PostgreSQL is used, and master.key).
    pub dir: tempfile::TempDir,
    /// The database.
    pub db: TestDb,
}

/// An answer: status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
}

impl Answer {
    /// Asserts the status, returning the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.body);
        &self.body
    }

    /// Asserts a problem answer with this status whose first error points at `pointer`.
    #[track_caller]
    pub fn expect_field(&self, status: u16, pointer: &str) {
        assert_eq!(self.status, status, "unexpected answer: {}", self.body);
        let pointers: Vec<&str> = self.body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["pointer"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            pointers.contains(&pointer),
            "expected an error at {pointer}: {}",
            self.body
        );
    }
}

impl Api {
    /// One server per backend configured for this run (SQLite always, PostgreSQL when set).
    pub async fn all() -> Vec<Api> {
        let mut out = Vec::new();
        for db in TestDb::all().await {
            out.push(Api::start(db));
        }
        out
    }

    /// One server per backend configured for this run, each with extra environment variables.
    pub async fn all_with_env(env: &[(&str, &str)]) -> Vec<Api> {
        let mut out = Vec::new();
        for db in TestDb::all().await {
            out.push(Api::with_env(db, env));
        }
        out
    }

    /// A server on SQLite.
    pub async fn sqlite() -> Api {
        Api::start(TestDb::sqlite().await)
    }

    fn start(db: TestDb) -> Api {
        Api::with_env(db, &[])
    }

    /// A server on `db` with extra environment variables (delivery settings, log level...).
    pub fn with_env(db: TestDb, env: &[(&str, &str)]) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(env!("CARGO_BIN_EXE_keywire"), dir.path())
            .database(Some(db.url()))
            .env("KEYWIRE_BOOTSTRAP_TOKEN", ADMIN);
        for (key, value) in env {
            config = config.env(key, value);
        }
        let server = Server::start(&config);
        Api {
            server,
            http: keywire_test_support::http_client(),
            dir,
            db,
        }
    }

    /// `sqlite` or `postgres`, for messages.
    pub fn backend(&self) -> String {
        self.db.backend().to_string()
    }

    /// Sends a request with an optional JSON body as `token`.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer { status, body }
    }

    /// GET as `token`.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call("GET", path, token, None).await
    }

    /// POST as `token`.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call("POST", path, token, Some(body)).await
    }

    /// PUT as `token`.
    #[allow(dead_code, reason = "used by some test modules only")]
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call("PUT", path, token, Some(body)).await
    }

    /// PATCH as `token`.
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call("PATCH", path, token, Some(body)).await
    }

    /// DELETE as `token`.
    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call("DELETE", path, token, None).await
    }

    /// Creates a workspace as the admin; returns its slug.
    pub async fn workspace(&self, name: &str) -> String {
        let body = self
            .post(
                "/api/v1/workspaces",
                ADMIN,
                serde_json::json!({"name": name}),
            )
            .await;
        body.expect(201)["slug"].as_str().unwrap().to_owned()
    }

    /// Creates a project with `dev` and `prod` as the admin; returns its slug.
    pub async fn project(&self, workspace: &str, name: &str) -> String {
        let body = self
            .post(
                &format!("/api/v1/workspaces/{workspace}/projects"),
                ADMIN,
                serde_json::json!({"name": name, "environments": [{"name": "dev"}, {"name": "prod"}]}),
            )
            .await;
        body.expect(201)["slug"].as_str().unwrap().to_owned()
    }

    /// The event types of a workspace, newest first.
    pub async fn event_types(&self, workspace: &str) -> Vec<String> {
        let events = self
            .get(
                &format!("/api/v1/workspaces/{workspace}/events?limit=200"),
                ADMIN,
            )
            .await;
        events.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }
}
