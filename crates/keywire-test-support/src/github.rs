//! A fake of GitHub's Actions secrets and variables REST API for one repository, at repository
//! level and for its deployment environments, checking requests the way GitHub does:
//! `Authorization` (`Bearer` or `token`; 401 `Bad credentials`), a `User-Agent` (403 without
//! one), an `X-GitHub-Api-Version` it knows (400 otherwise), GitHub's name rules and 48 KB value
//! limit (422), sealed boxes that open with the target's key and a current `key_id` (422), and
//! pagination (`per_page` capped at 100 for secrets and 30 for variables, `page`, `Link`).
//!
//! Each target (the repository, `""`, and each environment) has its own **real** X25519 key
//! pair, as on GitHub; stored secrets keep the encrypted value and key id exactly as sent, so a
//! test can open the sealed box itself with [`FakeGitHub::secret_key`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_box::SecretKey;
use crypto_box::aead::OsRng;
use serde_json::{Value, json};

use crate::fake::{FakeResponse, FakeServer, RecordedRequest};

/// The token the fake accepts.
pub const TOKEN: &str = "github_pat_11KEYWIRE0fake_TokenValue0123456789abcdefXYZ";
/// The repository owner the fake serves.
pub const OWNER: &str = "acme";
/// The repository the fake serves.
pub const REPO: &str = "shop";
/// API versions GitHub accepts in `X-GitHub-Api-Version`.
pub const API_VERSIONS: &[&str] = &["2022-11-28", "2026-03-10"];
/// GitHub's limit on a secret or variable value.
pub const MAX_VALUE_BYTES: usize = 48 * 1024;

const DOCS: &str = "https://docs.github.com/rest";
const TIMESTAMP: &str = "2026-11-28T10:00:00Z";

/// A secret as GitHub stores it: the sealed box and the key id it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The `key_id` sent with it.
    pub key_id: String,
    /// The base64 sealed box, as sent.
    pub encrypted_value: String,
}

struct Target {
    secret_key: SecretKey,
    key_id: String,
    secrets: BTreeMap<String, StoredSecret>,
    variables: BTreeMap<String, String>,
    /// Sealed boxes made by `put_secret`, by value (sealing is slow in debug builds).
    seeded: BTreeMap<String, StoredSecret>,
}

impl Target {
    fn new(key_id: String) -> Target {
        Target {
            secret_key: SecretKey::generate(&mut OsRng),
            key_id,
            secrets: BTreeMap::new(),
            variables: BTreeMap::new(),
            seeded: BTreeMap::new(),
        }
    }
}

struct State {
    /// `""` is the repository; other keys are environment names (case-insensitive: stored
    /// lower-case, as GitHub compares them).
    targets: BTreeMap<String, Target>,
    /// Answers to give to the next requests instead of serving them.
    queued: VecDeque<FakeResponse>,
    /// One-shot answers for the first request whose method and path match.
    rules: Vec<(String, String, FakeResponse)>,
    next_key_id: u64,
}

/// A running GitHub fake. Stops when dropped.
pub struct FakeGitHub {
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn error(status: u16, message: &str) -> FakeResponse {
    FakeResponse::json(
        status,
        json!({"message": message, "documentation_url": DOCS, "status": status.to_string()}),
    )
}

/// GitHub's rules for secret and variable names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_")
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `github_actions` metadata that reaches this fake (as `apiBaseUrl`, so use a context that
/// allows 127.0.0.1, such as [`crate::context`]).
pub fn metadata(fake: &FakeGitHub) -> Value {
    json!({"token": TOKEN, "owner": OWNER, "repo": REPO, "apiBaseUrl": fake.url()})
}

impl FakeGitHub {
    /// Starts the fake with an empty repository `acme/shop` and no environments.
    pub fn start() -> FakeGitHub {
        let mut targets = BTreeMap::new();
        targets.insert(String::new(), Target::new("568250167242549743".into()));
        let state = Arc::new(Mutex::new(State {
            targets,
            queued: VecDeque::new(),
            rules: Vec::new(),
            next_key_id: 568_250_167_242_549_800,
        }));
        let shared = state.clone();
        let server = FakeServer::start(move |req| handle(&shared, req));
        FakeGitHub { server, state }
    }

    /// `http://127.0.0.1:<port>`: use as `apiBaseUrl`, or route `https://api.github.com` here.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The underlying server (for `context_overriding("https://api.github.com", ...)`).
    pub fn server(&self) -> &FakeServer {
        &self.server
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Creates a deployment environment (with a key pair of its own).
    pub fn add_environment(&self, name: &str) {
        let mut state = lock(&self.state);
        state.next_key_id += 1;
        let id = state.next_key_id.to_string();
        state
            .targets
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| Target::new(id));
    }

    /// Stores a secret as someone else would (sealed to the target's key). `scope` is `""` for
    /// the repository or an environment name.
    pub fn put_secret(&self, scope: &str, name: &str, value: &str) {
        let mut state = lock(&self.state);
        let target = state
            .targets
            .get_mut(&scope.to_ascii_lowercase())
            .expect("known target");
        // Sealing is slow in debug builds: seeding many secrets with one value seals once.
        let stored = match target.seeded.get(value) {
            Some(stored) => stored.clone(),
            None => {
                let sealed = target
                    .secret_key
                    .public_key()
                    .seal(&mut OsRng, value.as_bytes())
                    .expect("seal");
                let stored = StoredSecret {
                    key_id: target.key_id.clone(),
                    encrypted_value: BASE64.encode(sealed),
                };
                target.seeded.insert(value.to_owned(), stored.clone());
                stored
            }
        };
        target.secrets.insert(name.to_ascii_uppercase(), stored);
    }

    /// Stores a variable as someone else would.
    pub fn put_variable(&self, scope: &str, name: &str, value: &str) {
        lock(&self.state)
            .targets
            .get_mut(&scope.to_ascii_lowercase())
            .expect("known target")
            .variables
            .insert(name.to_ascii_uppercase(), value.to_owned());
    }

    /// The secret names at a target.
    pub fn secret_names(&self, scope: &str) -> Vec<String> {
        lock(&self.state)
            .targets
            .get(&scope.to_ascii_lowercase())
            .map(|t| t.secrets.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A stored secret, exactly as it was sent.
    pub fn secret(&self, scope: &str, name: &str) -> Option<StoredSecret> {
        lock(&self.state)
            .targets
            .get(&scope.to_ascii_lowercase())
            .and_then(|t| t.secrets.get(&name.to_ascii_uppercase()).cloned())
    }

    /// The target's private key (to open sealed boxes) and its key id.
    pub fn secret_key(&self, scope: &str) -> (SecretKey, String) {
        let state = lock(&self.state);
        let target = state
            .targets
            .get(&scope.to_ascii_lowercase())
            .expect("known target");
        (target.secret_key.clone(), target.key_id.clone())
    }

    /// Opens a stored secret with the target's key.
    pub fn secret_value(&self, scope: &str, name: &str) -> Option<String> {
        let stored = self.secret(scope, name)?;
        let (key, _) = self.secret_key(scope);
        open(&key, &stored)
    }

    /// The variables at a target.
    pub fn variables(&self, scope: &str) -> BTreeMap<String, String> {
        lock(&self.state)
            .targets
            .get(&scope.to_ascii_lowercase())
            .map(|t| t.variables.clone())
            .unwrap_or_default()
    }

    /// Gives a new key pair (and key id) to a target, as GitHub may.
    pub fn rotate_key(&self, scope: &str) {
        let mut state = lock(&self.state);
        state.next_key_id += 1;
        let id = state.next_key_id.to_string();
        let target = state
            .targets
            .get_mut(&scope.to_ascii_lowercase())
            .expect("known target");
        target.secret_key = SecretKey::generate(&mut OsRng);
        target.key_id = id;
        target.seeded.clear();
    }

    /// Answers the next request with `response` instead of serving it (queue several for
    /// several requests).
    pub fn fail_next(&self, response: FakeResponse) {
        lock(&self.state).queued.push_back(response);
    }

    /// Answers the first later request with this method whose path ends with `path_suffix`
    /// with `response`, once.
    pub fn fail_matching(&self, method: &str, path_suffix: &str, response: FakeResponse) {
        lock(&self.state)
            .rules
            .push((method.to_owned(), path_suffix.to_owned(), response));
    }

    /// The next request hits GitHub's primary rate limit: 403, `x-ratelimit-remaining: 0`,
    /// `x-ratelimit-reset` `reset_in_secs` from now.
    pub fn primary_rate_limit_next(&self, reset_in_secs: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        self.fail_next(
            error(403, "API rate limit exceeded for user ID 1.")
                .with_header("x-ratelimit-limit", "5000")
                .with_header("x-ratelimit-remaining", "0")
                .with_header("x-ratelimit-used", "5000")
                .with_header("x-ratelimit-reset", &(now + reset_in_secs).to_string())
                .with_header("x-ratelimit-resource", "core"),
        );
    }

    /// The next request hits a secondary rate limit: 429 with `Retry-After`.
    pub fn secondary_rate_limit_next(&self, retry_after_secs: u64) {
        self.fail_next(
            error(
                429,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            )
            .with_header("retry-after", &retry_after_secs.to_string()),
        );
    }
}

fn open(key: &SecretKey, stored: &StoredSecret) -> Option<String> {
    let sealed = BASE64.decode(&stored.encrypted_value).ok()?;
    String::from_utf8(key.unseal(&sealed).ok()?).ok()
}

fn handle(state: &Mutex<State>, req: &RecordedRequest) -> FakeResponse {
    if req.header("user-agent").is_none_or(str::is_empty) {
        return error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
        );
    }
    if let Some(version) = req.header("x-github-api-version")
        && !API_VERSIONS.contains(&version)
    {
        return error(
            400,
            &format!("Unsupported 'X-GitHub-Api-Version' header '{version}'."),
        );
    }
    let token = req.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("token "))
    });
    match token {
        None => return error(401, "Requires authentication"),
        Some(t) if t != TOKEN => return error(401, "Bad credentials"),
        Some(_) => {}
    }
    let mut state = lock(state);
    if let Some(queued) = state.queued.pop_front() {
        return queued;
    }
    if let Some(i) = state.rules.iter().position(|(method, suffix, _)| {
        *method == req.method && req.path.ends_with(suffix.as_str())
    }) {
        return state.rules.remove(i).2;
    }
    let Some(parts) = req
        .path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect::<Option<Vec<String>>>()
    else {
        return error(400, "Bad path");
    };
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (scope, rest) = match parts.as_slice() {
        ["repos", owner, repo, rest @ ..]
            if owner.eq_ignore_ascii_case(OWNER) && repo.eq_ignore_ascii_case(REPO) =>
        {
            match rest {
                [] if req.method == "GET" => {
                    return FakeResponse::json(
                        200,
                        json!({"id": 1296269, "name": REPO, "full_name": format!("{OWNER}/{REPO}"),
                               "private": true, "owner": {"login": OWNER, "type": "Organization"},
                               "permissions": {"admin": true, "maintain": true, "push": true, "triage": true, "pull": true}}),
                    );
                }
                ["actions", rest @ ..] => (String::new(), rest),
                ["environments", env, rest @ ..] => (env.to_ascii_lowercase(), rest),
                _ => return error(404, "Not Found"),
            }
        }
        _ => return error(404, "Not Found"),
    };
    let Some(target) = state.targets.get_mut(&scope) else {
        return error(404, "Not Found");
    };
    let body = req.json();
    match (req.method.as_str(), rest) {
        ("GET", ["secrets", "public-key"]) => FakeResponse::json(
            200,
            json!({"key_id": target.key_id,
                   "key": BASE64.encode(target.secret_key.public_key().as_bytes())}),
        ),
        ("GET", ["secrets"]) => {
            let items: Vec<Value> = target
                .secrets
                .keys()
                .map(|name| json!({"name": name, "created_at": TIMESTAMP, "updated_at": TIMESTAMP}))
                .collect();
            page(req, "secrets", items, 100)
        }
        ("GET", ["secrets", name]) => match target.secrets.get(&name.to_ascii_uppercase()) {
            Some(_) => FakeResponse::json(
                200,
                json!({"name": name.to_ascii_uppercase(), "created_at": TIMESTAMP, "updated_at": TIMESTAMP}),
            ),
            None => error(404, "Not Found"),
        },
        ("PUT", ["secrets", name]) => {
            if !valid_name(name) {
                return error(
                    422,
                    "Invalid request.\n\nSecret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), must not start with a number or GITHUB_.",
                );
            }
            let (Some(encrypted), Some(key_id)) = (
                body.get("encrypted_value").and_then(Value::as_str),
                body.get("key_id").and_then(Value::as_str),
            ) else {
                return error(
                    422,
                    "Invalid request.\n\n\"encrypted_value\", \"key_id\" weren't supplied.",
                );
            };
            if key_id != target.key_id {
                return error(
                    422,
                    "Bad request - key_id does not match the current public key.",
                );
            }
            let opened = BASE64
                .decode(encrypted)
                .ok()
                .and_then(|sealed| target.secret_key.unseal(&sealed).ok());
            let Some(plain) = opened else {
                return error(
                    422,
                    "Bad request - encrypted_value is not a valid sealed box for this key.",
                );
            };
            if plain.len() > MAX_VALUE_BYTES {
                return error(422, "Secret value exceeds the maximum size of 48 KB.");
            }
            let stored = StoredSecret {
                key_id: key_id.to_owned(),
                encrypted_value: encrypted.to_owned(),
            };
            match target.secrets.insert(name.to_ascii_uppercase(), stored) {
                None => FakeResponse::json(201, json!({})),
                Some(_) => FakeResponse::empty(204),
            }
        }
        ("DELETE", ["secrets", name]) => match target.secrets.remove(&name.to_ascii_uppercase()) {
            Some(_) => FakeResponse::empty(204),
            None => error(404, "Not Found"),
        },
        ("GET", ["variables"]) => {
            let items: Vec<Value> = target
                .variables
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value, "created_at": TIMESTAMP, "updated_at": TIMESTAMP}))
                .collect();
            page(req, "variables", items, 30)
        }
        ("GET", ["variables", name]) => match target.variables.get(&name.to_ascii_uppercase()) {
            Some(value) => FakeResponse::json(
                200,
                json!({"name": name.to_ascii_uppercase(), "value": value, "created_at": TIMESTAMP, "updated_at": TIMESTAMP}),
            ),
            None => error(404, "Not Found"),
        },
        ("POST", ["variables"]) => {
            let (Some(name), Some(value)) = (
                body.get("name").and_then(Value::as_str),
                body.get("value").and_then(Value::as_str),
            ) else {
                return error(
                    422,
                    "Invalid request.\n\n\"name\", \"value\" weren't supplied.",
                );
            };
            if let Err(response) = check_variable(name, value) {
                return response;
            }
            if target.variables.contains_key(&name.to_ascii_uppercase()) {
                return error(409, "Already exists - Variable already exists");
            }
            target
                .variables
                .insert(name.to_ascii_uppercase(), value.to_owned());
            FakeResponse::json(201, json!({}))
        }
        ("PATCH", ["variables", name]) => {
            let key = name.to_ascii_uppercase();
            if !target.variables.contains_key(&key) {
                return error(404, "Not Found");
            }
            let new_name = body
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_owned();
            let value = match body.get("value").and_then(Value::as_str) {
                Some(v) => v.to_owned(),
                None => target.variables[&key].clone(),
            };
            if let Err(response) = check_variable(&new_name, &value) {
                return response;
            }
            target.variables.remove(&key);
            target
                .variables
                .insert(new_name.to_ascii_uppercase(), value);
            FakeResponse::empty(204)
        }
        ("DELETE", ["variables", name]) => {
            match target.variables.remove(&name.to_ascii_uppercase()) {
                Some(_) => FakeResponse::empty(204),
                None => error(404, "Not Found"),
            }
        }
        _ => error(404, "Not Found"),
    }
}

fn check_variable(name: &str, value: &str) -> Result<(), FakeResponse> {
    if !valid_name(name) {
        return Err(error(
            422,
            "Invalid request.\n\nVariable names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), must not start with a number or GITHUB_.",
        ));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(error(
            422,
            "Variable value exceeds the maximum size of 48 KB.",
        ));
    }
    Ok(())
}

/// One page of a list, as GitHub pages: `per_page` (default 30, capped at `max`), `page`
/// (from 1), `total_count` and a `Link` header.
fn page(req: &RecordedRequest, field: &str, items: Vec<Value>, max: usize) -> FakeResponse {
    let default = if field == "variables" { 10 } else { 30 };
    let per_page = req
        .query_param("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, max);
    let page = req
        .query_param("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let last = total.div_ceil(per_page).max(1);
    let mut response = FakeResponse::json(200, json!({"total_count": total, field: slice}));
    if page < last {
        response = response.with_header(
            "link",
            &format!(
                "<{}?per_page={per_page}&page={}>; rel=\"next\", <{}?per_page={per_page}&page={last}>; rel=\"last\"",
                req.path,
                page + 1,
                req.path
            ),
        );
    }
    response
}
