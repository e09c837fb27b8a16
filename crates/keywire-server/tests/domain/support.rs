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

/// An answer with its headers and raw text, for checks on `WWW-Authenticate`, the content type
/// and bodies that are not JSON.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy).
    pub text: String,
    /// The body as JSON (`Null` when empty, a string when not JSON).
    pub body: Value,
}

impl RawAnswer {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn parse_body(text: &str) -> Value {
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        }
    }
}

impl Api {
    /// Sends any request: `authorization` is the whole `Authorization` header value (none when
    /// `None`), `content_type` and `body` are sent as given (bytes need not be JSON).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> RawAnswer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server.url));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        if let Some(bytes) = body {
            request = request.body(bytes);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let text = response.text().await.unwrap();
        RawAnswer {
            status,
            headers,
            body: RawAnswer::parse_body(&text),
            text,
        }
    }

    /// Sends raw bytes as the body (invalid JSON, another content type...) as `token`.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        raw_body: Vec<u8>,
    ) -> RawAnswer {
        let authorization = format!("Bearer {token}");
        self.send(
            method,
            path,
            Some(&authorization),
            content_type,
            Some(raw_body),
        )
        .await
    }

    /// Writes `request` as is to the server's socket (HTTP/1.1; add `Connection: close`) and
    /// reads the answer: for what an HTTP client would normalise away (`..` segments, a chunked
    /// body without a length).
    pub async fn wire(&self, request: Vec<u8>) -> RawAnswer {
        let address = self
            .server
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        tokio::task::spawn_blocking(move || wire_exchange(&address, &request))
            .await
            .unwrap()
    }
}

/// One request over a fresh connection; the answer is read until the server closes it.
fn wire_exchange(address: &str, request: &[u8]) -> RawAnswer {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // The server may answer (413) and stop reading before the body is sent: that is fine.
    let _ = stream.write_all(request);
    let _ = stream.flush();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(_) if !raw.is_empty() => break,
            Err(err) => panic!("no answer from {address}: {err}"),
        }
        if answer_complete(&raw) {
            break;
        }
    }
    parse_answer(&raw)
}

fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (&raw[..at], &raw[at + 4..]))
}

fn head_lines(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// Whether `raw` holds a whole answer with a `content-length` (chunked answers end at close).
fn answer_complete(raw: &[u8]) -> bool {
    let Some((head, body)) = split_head(raw) else {
        return false;
    };
    let (_, headers) = head_lines(head);
    headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .is_some_and(|length| body.len() >= length)
}

fn parse_answer(raw: &[u8]) -> RawAnswer {
    let (head, body) = split_head(raw).unwrap_or((raw, &[]));
    let (status, headers) = head_lines(head);
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        let mut rest = body;
        while let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..at]).trim(), 16).unwrap_or(0);
            rest = &rest[at + 2..];
            if size == 0 || rest.len() < size {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = rest.get(size + 2..).unwrap_or_default();
        }
        out
    } else {
        body.to_vec()
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    RawAnswer {
        status,
        headers,
        body: RawAnswer::parse_body(&text),
        text,
    }
}
