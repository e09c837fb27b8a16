//! A real HTTP server on 127.0.0.1 that records every request and answers through a handler, so
//! a test can check what an integration sent the way the provider would, and answer what the
//! provider's documentation says it answers (including errors and 429s).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`...
    pub method: String,
    /// The path, e.g. `/api/webhooks/1/abc`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; `Value::Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A query parameter's value.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body; sent as `application/json` when it parses as JSON.
    pub body: String,
    /// Wait this long before answering (to exercise client timeouts).
    pub delay: Duration,
}

impl FakeResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        FakeResponse {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// An empty answer.
    pub fn empty(status: u16) -> Self {
        FakeResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers after a delay.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&RecordedRequest) -> FakeResponse + Send + Sync;

/// A running fake. Stops when dropped.
pub struct FakeServer {
    url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    handle: actix_web::dev::ServerHandle,
}

struct Shared {
    handler: Box<Handler>,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

async fn serve(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = RecordedRequest {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let answer = (shared.handler)(&recorded);
    shared.requests.lock().expect("fake lock").push(recorded);
    if !answer.delay.is_zero() {
        actix_web::rt::time::sleep(answer.delay).await;
    }
    let status = actix_web::http::StatusCode::from_u16(answer.status).expect("valid status");
    let mut response = HttpResponse::build(status);
    if serde_json::from_str::<serde_json::Value>(&answer.body).is_ok() {
        response.content_type("application/json");
    }
    for (name, value) in &answer.headers {
        response.insert_header((name.as_str(), value.as_str()));
    }
    response.body(answer.body)
}

impl FakeServer {
    /// Starts a fake on a free port of 127.0.0.1, in a thread of its own (so it works under any
    /// test runtime).
    pub fn start(
        handler: impl Fn(&RecordedRequest) -> FakeResponse + Send + Sync + 'static,
    ) -> FakeServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = web::Data::new(Shared {
            handler: Box::new(handler),
            requests: requests.clone(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(shared.clone())
                        .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                        .default_service(web::to(serve))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind(("127.0.0.1", 0))
                .expect("bind 127.0.0.1:0");
                let port = server.addrs()[0].port();
                let server = server.run();
                tx.send((port, server.handle())).expect("report port");
                let _ = server.await;
            });
        });
        let (port, handle) = rx.recv().expect("fake server started");
        FakeServer {
            url: format!("http://127.0.0.1:{port}"),
            requests,
            handle,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("fake lock").clone()
    }

    /// Waits (up to `timeout`) until at least `n` requests arrived; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.requests();
            if seen.len() >= n || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // Fire and forget: the server's own thread finishes the shutdown.
        drop(self.handle.stop(false));
    }
}
