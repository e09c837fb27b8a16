//! A fake of GitLab's project CI/CD variables API (`/api/v4/projects/:id` and
//! `/api/v4/projects/:id/variables`), with state (the project's variables) that tests can seed
//! and read.
//!
//! It checks what GitLab checks: the `PRIVATE-TOKEN` header (401 otherwise; a Developer's
//! token may read the project but gets 403 on variables), the project by numeric id or
//! URL-encoded path (`acme%2Fshop`; an unencoded `/` is another route, so 404), key names
//! (letters, digits, `_`, at most 255), `variable_type`, that a masked value meets GitLab's
//! masking rules (`Ci::Maskable`: at least 8 characters of `[a-zA-Z0-9_+=/@:.~-]`, or any
//! non-whitespace with `raw`), and that a key is unique per environment scope. It answers in
//! GitLab's shapes: variable objects, Grape parameter errors as `{"error": "..."}`, model
//! errors as `{"message": {"field": ["..."]}}`, `404 Variable Not Found`, 409 when a key exists
//! in several scopes and no `filter[environment_scope]` is given, pages with `X-Page`,
//! `X-Per-Page`, `X-Total`, `X-Total-Pages`, `X-Next-Page`, `X-Prev-Page` and `Link` (the page
//! size is capped small, so clients must follow `X-Next-Page`), and `429 Retry later` with
//! `Retry-After` and the `RateLimit-*` headers. Values of hidden variables are listed as
//! `null`.

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::fake::{FakeResponse, FakeServer, RecordedRequest};

/// The Maintainer token the fake accepts.
pub const TOKEN: &str = "glpat-kwTest7xQ2mN9vB4";
/// A Developer's token: may read the project, not its variables (403).
pub const DEVELOPER_TOKEN: &str = "glpat-kwDev3hJ8sK1pL6";
/// The project's numeric id.
pub const PROJECT_ID: u64 = 4242;
/// The project's path (send it URL-encoded: `acme%2Fshop`).
pub const PROJECT_PATH: &str = "acme/shop";
/// The default GitLab origin, to route to the fake.
pub const ORIGIN: &str = "https://gitlab.com";

/// One CI/CD variable as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// `env_var` or `file`.
    pub variable_type: String,
    /// The environment scope (`*` for all).
    pub environment_scope: String,
    /// Masked in job logs.
    pub masked: bool,
    /// Only for protected branches and tags.
    pub protected: bool,
    /// Not expanded (`$X` stays literal).
    pub raw: bool,
    /// Masked and hidden: the value is never shown again.
    pub hidden: bool,
    /// A description.
    pub description: Option<String>,
}

impl Variable {
    /// A plain `env_var` in `scope`, as a person would add it.
    pub fn new(key: &str, value: &str, scope: &str) -> Variable {
        Variable {
            key: key.into(),
            value: value.into(),
            variable_type: "env_var".into(),
            environment_scope: scope.into(),
            masked: false,
            protected: false,
            raw: false,
            hidden: false,
            description: None,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "variable_type": self.variable_type,
            "key": self.key,
            "value": if self.hidden { Value::Null } else { json!(self.value) },
            "hidden": self.hidden,
            "protected": self.protected,
            "masked": self.masked,
            "raw": self.raw,
            "environment_scope": self.environment_scope,
            "description": self.description,
        })
    }
}

/// GitLab's masking rule (`Ci::Maskable`): without `raw`, at least 8 characters from the
/// Base64 alphabet (with `-` and `_`) plus `@`, `:`, `.`, `~`; with `raw`, any 8 or more
/// non-whitespace characters.
pub fn maskable(value: &str, raw: bool) -> bool {
    value.chars().count() >= 8
        && if raw {
            !value.chars().any(char::is_whitespace)
        } else {
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=/@:.~-".contains(c))
        }
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The largest `per_page` the fake honours (GitLab's is 100; small here, so clients must
    /// follow `X-Next-Page`).
    pub max_per_page: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_per_page: 2 }
    }
}

struct State {
    options: Options,
    variables: Vec<Variable>,
    canned: VecDeque<FakeResponse>,
}

/// A running fake GitLab. Derefs to its [`FakeServer`] (URL, recorded requests).
pub struct FakeGitLab {
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

impl Deref for FakeGitLab {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

fn message(status: u16, text: &str) -> FakeResponse {
    FakeResponse::json(status, json!({"message": text}))
}

fn field_error(field: &str, text: &str) -> FakeResponse {
    FakeResponse::json(400, json!({"message": {field: [text]}}))
}

fn query(req: &RecordedRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl FakeGitLab {
    /// Starts the fake with pages of at most 2 variables.
    pub fn start() -> FakeGitLab {
        FakeGitLab::start_with(Options::default())
    }

    /// Starts the fake with options.
    pub fn start_with(options: Options) -> FakeGitLab {
        let state = Arc::new(Mutex::new(State {
            options,
            variables: Vec::new(),
            canned: VecDeque::new(),
        }));
        let shared = state.clone();
        let server = FakeServer::start(move |req| {
            let mut state = shared.lock().expect("fake state");
            if let Some(canned) = state.canned.pop_front() {
                return canned;
            }
            handle(&mut state, req)
        });
        FakeGitLab { server, state }
    }

    /// The metadata that configures a `gitlab_ci` integration for this fake (as a self-hosted
    /// GitLab at the fake's URL).
    pub fn metadata(&self) -> Value {
        json!({"token": TOKEN, "projectId": PROJECT_ID.to_string(), "baseUrl": self.url()})
    }

    /// Adds a variable someone else created.
    pub fn seed(&self, variable: Variable) {
        self.state
            .lock()
            .expect("fake state")
            .variables
            .push(variable);
    }

    /// Changes the variable `key` in `scope` as someone in GitLab's settings would.
    pub fn edit(&self, key: &str, scope: &str, change: impl FnOnce(&mut Variable)) {
        let mut state = self.state.lock().expect("fake state");
        if let Some(var) = state
            .variables
            .iter_mut()
            .find(|v| v.key == key && v.environment_scope == scope)
        {
            change(var);
        }
    }

    /// Every variable of the project, in creation order.
    pub fn variables(&self) -> Vec<Variable> {
        self.state.lock().expect("fake state").variables.clone()
    }

    /// The variable `key` in exactly `scope`.
    pub fn get(&self, key: &str, scope: &str) -> Option<Variable> {
        self.variables()
            .into_iter()
            .find(|v| v.key == key && v.environment_scope == scope)
    }

    /// The next request (whatever it is) gets this answer instead.
    pub fn answer_next(&self, response: FakeResponse) {
        self.state
            .lock()
            .expect("fake state")
            .canned
            .push_back(response);
    }

    /// The next `n` requests get GitLab's `429 Retry later` with `Retry-After: 5`.
    pub fn rate_limit_next(&self, n: usize) {
        for _ in 0..n {
            let reset = now_secs() + 5;
            self.answer_next(
                FakeResponse {
                    status: 429,
                    headers: Vec::new(),
                    body: "Retry later\n".into(),
                    delay: std::time::Duration::ZERO,
                }
                .with_header("content-type", "text/plain")
                .with_header("retry-after", "5")
                .with_header("ratelimit-name", "throttle_authenticated_api")
                .with_header("ratelimit-limit", "60")
                .with_header("ratelimit-observed", "61")
                .with_header("ratelimit-remaining", "0")
                .with_header("ratelimit-reset", &reset.to_string()),
            );
        }
    }
}

fn handle(state: &mut State, req: &RecordedRequest) -> FakeResponse {
    let developer = match req.header("private-token") {
        Some(TOKEN) => false,
        Some(DEVELOPER_TOKEN) => true,
        _ => return message(401, "401 Unauthorized"),
    };
    let pairs = query(req);
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let ["api", "v4", "projects", project, rest @ ..] = segments.as_slice() else {
        return FakeResponse::json(404, json!({"error": "404 Not Found"}));
    };
    let known = *project == PROJECT_ID.to_string()
        || project.eq_ignore_ascii_case(&PROJECT_PATH.replace('/', "%2F"));
    if !known {
        return message(404, "404 Project Not Found");
    }
    let body = || -> Result<Value, FakeResponse> {
        let ctype = req.header("content-type").unwrap_or_default();
        if ctype.starts_with("application/json") {
            serde_json::from_slice(&req.body).map_err(|_| {
                FakeResponse::json(400, json!({"error": "The provided content-type 'application/json' is not supported or the body is not valid JSON"}))
            })
        } else if ctype.starts_with("application/x-www-form-urlencoded") {
            Ok(Value::Object(
                url::form_urlencoded::parse(&req.body)
                    .map(|(k, v)| (k.into_owned(), json!(v.into_owned())))
                    .collect(),
            ))
        } else {
            Ok(json!({}))
        }
    };
    match (req.method.as_str(), rest) {
        ("GET", []) => FakeResponse::json(
            200,
            json!({
                "id": PROJECT_ID, "name": "shop", "path": "shop", "path_with_namespace": PROJECT_PATH,
                "web_url": format!("https://gitlab.com/{PROJECT_PATH}"), "default_branch": "main",
                "permissions": {"project_access": {"access_level": if developer { 30 } else { 40 }}, "group_access": null},
            }),
        ),
        (_, ["variables", ..]) if developer => message(403, "403 Forbidden"),
        ("GET", ["variables"]) => list(state, &pairs, req),
        ("POST", ["variables"]) => match body() {
            Ok(body) => create(state, &body),
            Err(e) => e,
        },
        (method, ["variables", key]) => {
            let scope = param(&pairs, "filter[environment_scope]");
            let matches: Vec<usize> = state
                .variables
                .iter()
                .enumerate()
                .filter(|(_, v)| {
                    v.key == *key && scope.as_deref().is_none_or(|s| v.environment_scope == s)
                })
                .map(|(i, _)| i)
                .collect();
            let index = match matches.as_slice() {
                [] => return message(404, "404 Variable Not Found"),
                [one] => *one,
                _ => {
                    return message(
                        409,
                        "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'",
                    );
                }
            };
            match method {
                "GET" => FakeResponse::json(200, state.variables[index].to_json()),
                "DELETE" => {
                    state.variables.remove(index);
                    FakeResponse::empty(204)
                }
                "PUT" => match body() {
                    Ok(body) => update(state, index, &body),
                    Err(e) => e,
                },
                _ => FakeResponse::json(405, json!({"error": "405 Method Not Allowed"})),
            }
        }
        _ => FakeResponse::json(404, json!({"error": "404 Not Found"})),
    }
}

fn list(state: &State, pairs: &[(String, String)], req: &RecordedRequest) -> FakeResponse {
    let per_page = param(pairs, "per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, state.options.max_per_page.max(1));
    let page = param(pairs, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = state.variables.len();
    let pages = total.div_ceil(per_page).max(1);
    let items: Vec<Value> = state
        .variables
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(Variable::to_json)
        .collect();
    let link = |p: usize, rel: &str| {
        format!(
            "<http://gitlab.example{}?page={p}&per_page={per_page}>; rel=\"{rel}\"",
            req.path
        )
    };
    let mut links = vec![link(1, "first"), link(pages, "last")];
    if page < pages {
        links.insert(0, link(page + 1, "next"));
    }
    if page > 1 {
        links.insert(0, link(page - 1, "prev"));
    }
    FakeResponse::json(200, Value::Array(items))
        .with_header("x-page", &page.to_string())
        .with_header("x-per-page", &per_page.to_string())
        .with_header("x-total", &total.to_string())
        .with_header("x-total-pages", &pages.to_string())
        .with_header(
            "x-next-page",
            &if page < pages {
                (page + 1).to_string()
            } else {
                String::new()
            },
        )
        .with_header(
            "x-prev-page",
            &if page > 1 {
                (page - 1).to_string()
            } else {
                String::new()
            },
        )
        .with_header("link", &links.join(", "))
}

fn flag(body: &Value, field: &str) -> Result<Option<bool>, FakeResponse> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(_) => Err(FakeResponse::json(
            400,
            json!({"error": format!("{field} is invalid")}),
        )),
    }
}

fn string(body: &Value, field: &str) -> Result<Option<String>, FakeResponse> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FakeResponse::json(
            400,
            json!({"error": format!("{field} is invalid")}),
        )),
    }
}

/// Applies the optional fields of a create or update body.
fn apply(var: &mut Variable, body: &Value) -> Result<(), FakeResponse> {
    if let Some(t) = string(body, "variable_type")? {
        if t != "env_var" && t != "file" {
            return Err(FakeResponse::json(
                400,
                json!({"error": "variable_type does not have a valid value"}),
            ));
        }
        var.variable_type = t;
    }
    if let Some(scope) = string(body, "environment_scope")? {
        var.environment_scope = scope;
    }
    if let Some(masked) = flag(body, "masked")? {
        var.masked = masked;
    }
    if let Some(hidden) = flag(body, "masked_and_hidden")? {
        var.hidden = hidden;
        var.masked = var.masked || hidden;
    }
    if let Some(protected) = flag(body, "protected")? {
        var.protected = protected;
    }
    if let Some(raw) = flag(body, "raw")? {
        var.raw = raw;
    }
    if let Some(description) = string(body, "description")? {
        var.description = Some(description);
    }
    Ok(())
}

fn check(state: &State, var: &Variable, skip: Option<usize>) -> Result<(), FakeResponse> {
    if var.key.is_empty()
        || !var
            .key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(field_error(
            "key",
            "can contain only letters, digits and '_'.",
        ));
    }
    if var.key.chars().count() > 255 {
        return Err(field_error(
            "key",
            "is too long (maximum is 255 characters)",
        ));
    }
    if var.masked && !maskable(&var.value, var.raw) {
        return Err(field_error("value", "is invalid"));
    }
    if var.environment_scope.is_empty() || var.environment_scope.chars().count() > 255 {
        return Err(field_error("environment_scope", "is invalid"));
    }
    let taken = state.variables.iter().enumerate().any(|(i, v)| {
        Some(i) != skip && v.key == var.key && v.environment_scope == var.environment_scope
    });
    if taken {
        return Err(field_error(
            "key",
            &format!("({}) has already been taken", var.key),
        ));
    }
    Ok(())
}

fn create(state: &mut State, body: &Value) -> FakeResponse {
    let key = match string(body, "key") {
        Ok(Some(key)) => key,
        Ok(None) => return FakeResponse::json(400, json!({"error": "key is missing"})),
        Err(e) => return e,
    };
    let value = match string(body, "value") {
        Ok(Some(value)) => value,
        Ok(None) => return FakeResponse::json(400, json!({"error": "value is missing"})),
        Err(e) => return e,
    };
    let mut var = Variable::new(&key, &value, "*");
    if let Err(e) = apply(&mut var, body).and_then(|()| check(state, &var, None)) {
        return e;
    }
    let answer = var.to_json();
    state.variables.push(var);
    FakeResponse::json(201, answer)
}

fn update(state: &mut State, index: usize, body: &Value) -> FakeResponse {
    let mut var = state.variables[index].clone();
    match string(body, "value") {
        Ok(Some(value)) => var.value = value,
        Ok(None) => {}
        Err(e) => return e,
    }
    if let Err(e) = apply(&mut var, body).and_then(|()| check(state, &var, Some(index))) {
        return e;
    }
    state.variables[index] = var;
    FakeResponse::json(200, state.variables[index].to_json())
}
