//! A fake of the parts of the Vercel REST API that keywire's `vercel` integration uses, with
//! state (the project's environment variables and deployments) that tests can seed and read.
//!
//! It checks what Vercel checks: `Authorization: Bearer <token>` (403 `forbidden` otherwise),
//! the project by id or name, `teamId` for a team's project (404 without it, as Vercel answers),
//! JSON bodies, key names, types (`plain`, `encrypted`, `sensitive`; `sensitive` is refused for
//! `development`), targets and custom environment ids, and that one key is not defined twice
//! for the same target (`ENV_CONFLICT`, unless `upsert=true`). It answers in Vercel's shapes:
//! `{"envs": [...], "pagination": {"count", "next", "prev"}}` pages (newest first, `until` =
//! the previous page's `next`), `{"created": ..., "failed": []}` for creates, errors as
//! `{"error": {"code", "message", ...}}`, and `429 rate_limited` with `Retry-After` and the
//! `X-RateLimit-*` headers. Values of `encrypted` variables are listed as ciphertext and those
//! of `sensitive` ones not at all, as Vercel does without `decrypt=true`.
//!
//! Routes: `GET /v9/projects/{idOrName}`, `GET /v9/projects/{idOrName}/custom-environments`,
//! `GET|POST /v10/projects/{idOrName}/env`, `PATCH|DELETE /v9/projects/{idOrName}/env/{id}`,
//! `GET /v6/deployments`, `PATCH /v12/deployments/{id}/cancel`, `POST /v13/deployments`.
//! Route `https://api.vercel.com` here with [`crate::context_overriding`] (a `&FakeVercel`
//! derefs to the [`FakeServer`]).

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::fake::{FakeResponse, FakeServer, RecordedRequest};

/// The API token the fake accepts.
pub const TOKEN: &str = "vc_test_9Qm2xLr7TkW4pZ";
/// The project's id.
pub const PROJECT_ID: &str = "prj_kw7Hd2LmQ9";
/// The project's name (Vercel accepts either in paths).
pub const PROJECT_NAME: &str = "shop-web";
/// The team that owns the project when started with [`Options::team_id`].
pub const TEAM_ID: &str = "team_kw4Rt8Nc";
/// The id of the project's one custom environment (`staging`).
pub const CUSTOM_ENV_ID: &str = "env_kwStaging01";
/// The default Vercel origin, to route to the fake.
pub const ORIGIN: &str = "https://api.vercel.com";

const TARGETS: [&str; 3] = ["production", "preview", "development"];
const RESERVED: [&str; 11] = [
    "AWS_SECRET_KEY",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "NOW_REGION",
    "TZ",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// One environment variable as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// Vercel's id for it.
    pub id: String,
    /// The name.
    pub key: String,
    /// The value in clear (the fake keeps it so tests can compare).
    pub value: String,
    /// `plain`, `encrypted` or `sensitive`.
    pub kind: String,
    /// Standard targets: `production`, `preview`, `development`.
    pub target: Vec<String>,
    /// Custom environment ids.
    pub custom_environment_ids: Vec<String>,
    /// A preview variable limited to one git branch.
    pub git_branch: Option<String>,
    /// The comment, if one was given.
    pub comment: Option<String>,
    /// Creation time (ms); the list pages by it.
    pub created_at: u64,
}

impl EnvVar {
    /// Whether it applies to `target` (a standard target or a custom environment id).
    pub fn covers(&self, target: &str) -> bool {
        self.target.iter().any(|t| t == target)
            || self.custom_environment_ids.iter().any(|t| t == target)
    }

    fn all_targets(&self) -> impl Iterator<Item = &String> {
        self.target.iter().chain(self.custom_environment_ids.iter())
    }

    fn to_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "key": self.key,
            "type": self.kind,
            "target": self.target,
            "customEnvironmentIds": self.custom_environment_ids,
            "configurationId": null,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "decrypted": false,
        });
        match self.kind.as_str() {
            "plain" => out["value"] = json!(self.value),
            // Ciphertext, never the value.
            "encrypted" => out["value"] = json!(format!("enc_v1_{:016x}", fnv(&self.value))),
            _ => {} // sensitive: not returned at all
        }
        if let Some(branch) = &self.git_branch {
            out["gitBranch"] = json!(branch);
        }
        if let Some(comment) = &self.comment {
            out["comment"] = json!(comment);
        }
        out
    }
}

/// One deployment as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Its id (`dpl_...`).
    pub uid: String,
    /// The deployment name (the project name).
    pub name: String,
    /// `production`, `preview` or a custom environment id.
    pub target: String,
    /// `QUEUED`, `BUILDING`, `READY`, `CANCELED`, `ERROR`...
    pub state: String,
    /// Creation time (ms).
    pub created: u64,
    /// For a redeploy: the deployment it rebuilt.
    pub redeploy_of: Option<String>,
}

impl Deployment {
    fn to_json(&self) -> Value {
        let (target, custom) = match self.target.as_str() {
            "production" => (json!("production"), Value::Null),
            "preview" => (Value::Null, Value::Null),
            id => (Value::Null, json!({"id": id})),
        };
        json!({
            "uid": self.uid,
            "name": self.name,
            "url": format!("{}-{}.vercel.app", self.name, self.uid.trim_start_matches("dpl_").to_ascii_lowercase()),
            "created": self.created,
            "createdAt": self.created,
            "state": self.state,
            "readyState": self.state,
            "type": "LAMBDAS",
            "target": target,
            "customEnvironment": custom,
            "projectId": PROJECT_ID,
            "creator": {"uid": "usr_kw1", "username": "alice"},
        })
    }
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The team that owns the project: requests must then carry `teamId` (Vercel answers 404
    /// without it). `None`: a personal project.
    pub team_id: Option<String>,
    /// How many variables one page of `GET .../env` holds (small, so clients must follow
    /// `pagination.next`).
    pub page_size: usize,
    /// Refuse (400) to redeploy a cancelled deployment, to exercise clients' fallback (Vercel
    /// does not document whether it may).
    pub refuse_cancelled_redeploys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            team_id: None,
            page_size: 3,
            refuse_cancelled_redeploys: false,
        }
    }
}

struct State {
    options: Options,
    envs: Vec<EnvVar>,
    deployments: Vec<Deployment>,
    clock: u64,
    next_id: u64,
    canned: VecDeque<FakeResponse>,
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:06}", self.next_id)
    }
}

/// A running fake Vercel API. Derefs to its [`FakeServer`] (URL, recorded requests).
pub struct FakeVercel {
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

impl Deref for FakeVercel {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

fn error(status: u16, code: &str, message: &str) -> FakeResponse {
    FakeResponse::json(status, json!({"error": {"code": code, "message": message}}))
}

fn not_found(what: &str) -> FakeResponse {
    error(404, "not_found", &format!("{what} not found"))
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

fn valid_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The fields of a create or edit body, checked.
struct EnvInput {
    key: Option<String>,
    value: Option<String>,
    kind: Option<String>,
    target: Option<Vec<String>>,
    custom: Option<Vec<String>>,
    comment: Option<String>,
    git_branch: Option<String>,
}

fn strings(v: &Value, field: &str) -> Result<Option<Vec<String>>, FakeResponse> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_owned).ok_or_else(|| {
                    error(
                        400,
                        "bad_request",
                        &format!("Invalid request: `{field}` should be array of strings."),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        // Vercel also takes a single target as a string.
        Some(Value::String(one)) => Ok(Some(vec![one.clone()])),
        Some(_) => Err(error(
            400,
            "bad_request",
            &format!("Invalid request: `{field}` should be array."),
        )),
    }
}

fn text(v: &Value, field: &str) -> Result<Option<String>, FakeResponse> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(error(
            400,
            "bad_request",
            &format!("Invalid request: `{field}` should be string."),
        )),
    }
}

fn env_input(v: &Value) -> Result<EnvInput, FakeResponse> {
    if !v.is_object() {
        return Err(error(
            400,
            "bad_request",
            "Invalid request: should be object.",
        ));
    }
    let known = [
        "key",
        "value",
        "type",
        "target",
        "customEnvironmentIds",
        "comment",
        "gitBranch",
    ];
    if let Some(extra) = v
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Err(error(
            400,
            "bad_request",
            &format!("Invalid request: should NOT have additional property `{extra}`."),
        ));
    }
    Ok(EnvInput {
        key: text(v, "key")?,
        value: text(v, "value")?,
        kind: text(v, "type")?,
        target: strings(v, "target")?,
        custom: strings(v, "customEnvironmentIds")?,
        comment: text(v, "comment")?,
        git_branch: text(v, "gitBranch")?,
    })
}

/// Checks a variable as it would be after a create or edit. Errors carry the offending
/// value, as Vercel's error objects can (clients must not repeat it).
fn check_var(var: &EnvVar) -> Result<(), FakeResponse> {
    let refuse = |code: &str, message: String| {
        Err(FakeResponse::json(
            400,
            json!({"error": {"code": code, "message": message, "key": var.key, "value": var.value, "target": var.target}}),
        ))
    };
    if !valid_key(&var.key) {
        return refuse(
            "invalid_key",
            "The name of your Environment Variable contains invalid characters. Only letters, digits and underscores are allowed, and it cannot start with a digit.".into(),
        );
    }
    if RESERVED.contains(&var.key.as_str()) {
        return refuse(
            "reserved_key",
            format!("The name `{}` is reserved", var.key),
        );
    }
    if !["plain", "encrypted", "sensitive"].contains(&var.kind.as_str()) {
        return refuse(
            "bad_request",
            format!(
                "Invalid request: `type` should be equal to one of the allowed values \"system, encrypted, plain, sensitive, secret\" (fake supports plain, encrypted, sensitive), got `{}`",
                var.kind
            ),
        );
    }
    if let Some(bad) = var.target.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        return refuse(
            "bad_request",
            format!(
                "Invalid request: `target` should be equal to one of the allowed values \"production, preview, development\", got `{bad}`"
            ),
        );
    }
    if let Some(bad) = var
        .custom_environment_ids
        .iter()
        .find(|c| *c != CUSTOM_ENV_ID)
    {
        return refuse(
            "custom_environment_not_found",
            format!("Custom environment `{bad}` not found"),
        );
    }
    if var.target.is_empty() && var.custom_environment_ids.is_empty() {
        return refuse(
            "bad_request",
            "Invalid request: at least one `target` or `customEnvironmentIds` is required".into(),
        );
    }
    if var.kind == "sensitive" && var.target.iter().any(|t| t == "development") {
        return refuse(
            "bad_request",
            "Sensitive Environment Variables cannot be created in the Development environment"
                .into(),
        );
    }
    if var.value.len() > 65_536 {
        return refuse(
            "env_too_large",
            "The value of an Environment Variable must be at most 64 KB".into(),
        );
    }
    if var.git_branch.is_some() && var.target != ["preview"] {
        return refuse(
            "bad_request",
            "A git branch can only be set for the Preview target".into(),
        );
    }
    Ok(())
}

fn conflict(envs: &[EnvVar], var: &EnvVar) -> Option<usize> {
    envs.iter().position(|e| {
        e.id != var.id
            && e.key == var.key
            && e.git_branch == var.git_branch
            && e.all_targets().any(|t| var.covers(t))
    })
}

fn conflict_error(var: &EnvVar) -> FakeResponse {
    FakeResponse::json(
        400,
        json!({"error": {
            "code": "ENV_CONFLICT",
            "message": format!("A variable with the name `{}` already exists for the target {} on branch undefined", var.key, var.all_targets().cloned().collect::<Vec<_>>().join(",")),
            "envVarKey": var.key,
            "target": var.target,
        }}),
    )
}

impl FakeVercel {
    /// Starts the fake for a personal project, paging the env list by 3.
    pub fn start() -> FakeVercel {
        FakeVercel::start_with(Options::default())
    }

    /// Starts the fake with options (a team-owned project, another page size).
    pub fn start_with(options: Options) -> FakeVercel {
        let state = Arc::new(Mutex::new(State {
            options,
            envs: Vec::new(),
            deployments: Vec::new(),
            clock: 1_700_000_000_000,
            next_id: 0,
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
        FakeVercel { server, state }
    }

    /// The metadata that configures a `vercel` integration for this fake's project (with
    /// `teamId` when the project belongs to a team).
    pub fn metadata(&self) -> Value {
        let state = self.state.lock().expect("fake state");
        let mut out = json!({"token": TOKEN, "projectId": PROJECT_ID});
        if let Some(team) = &state.options.team_id {
            out["teamId"] = json!(team);
        }
        out
    }

    /// Adds a variable someone else created (`targets` may hold custom environment ids);
    /// returns its id.
    pub fn seed(&self, key: &str, value: &str, kind: &str, targets: &[&str]) -> String {
        self.seed_var(key, value, kind, targets, None)
    }

    /// Adds a preview variable limited to a git branch; returns its id.
    pub fn seed_branch(&self, key: &str, value: &str, kind: &str, branch: &str) -> String {
        self.seed_var(key, value, kind, &["preview"], Some(branch))
    }

    fn seed_var(
        &self,
        key: &str,
        value: &str,
        kind: &str,
        targets: &[&str],
        branch: Option<&str>,
    ) -> String {
        let mut state = self.state.lock().expect("fake state");
        let id = state.id("env_v");
        let created_at = state.tick();
        let (custom, target): (Vec<String>, Vec<String>) = targets
            .iter()
            .map(|t| (*t).to_owned())
            .partition(|t| t.starts_with("env_"));
        state.envs.push(EnvVar {
            id: id.clone(),
            key: key.into(),
            value: value.into(),
            kind: kind.into(),
            target,
            custom_environment_ids: custom,
            git_branch: branch.map(str::to_owned),
            comment: None,
            created_at,
        });
        id
    }

    /// Changes a variable as someone in the dashboard would (e.g. adds a target to it).
    pub fn edit(&self, id: &str, change: impl FnOnce(&mut EnvVar)) {
        let mut state = self.state.lock().expect("fake state");
        if let Some(var) = state.envs.iter_mut().find(|e| e.id == id) {
            change(var);
        }
    }

    /// Every variable the project holds.
    pub fn envs(&self) -> Vec<EnvVar> {
        self.state.lock().expect("fake state").envs.clone()
    }

    /// The (branch-less) variable `key` that applies to `target`, if any.
    pub fn var_at(&self, key: &str, target: &str) -> Option<EnvVar> {
        self.envs()
            .into_iter()
            .find(|e| e.key == key && e.git_branch.is_none() && e.covers(target))
    }

    /// Adds a deployment of the project to `target` in `state`; returns its id.
    pub fn add_deployment(&self, target: &str, state_name: &str) -> String {
        let mut state = self.state.lock().expect("fake state");
        let uid = state.id("dpl_");
        let created = state.tick();
        state.deployments.push(Deployment {
            uid: uid.clone(),
            name: PROJECT_NAME.into(),
            target: target.into(),
            state: state_name.into(),
            created,
            redeploy_of: None,
        });
        uid
    }

    /// Sets a deployment's state (a build finished, failed...).
    pub fn set_deployment_state(&self, uid: &str, state_name: &str) {
        let mut state = self.state.lock().expect("fake state");
        if let Some(d) = state.deployments.iter_mut().find(|d| d.uid == uid) {
            d.state = state_name.into();
        }
    }

    /// Every deployment, oldest first.
    pub fn deployments(&self) -> Vec<Deployment> {
        self.state.lock().expect("fake state").deployments.clone()
    }

    /// The next request (whatever it is) gets this answer instead.
    pub fn answer_next(&self, response: FakeResponse) {
        self.state
            .lock()
            .expect("fake state")
            .canned
            .push_back(response);
    }

    /// The next `n` requests get Vercel's `429 rate_limited`, with `Retry-After: 7` and the
    /// `X-RateLimit-*` headers.
    pub fn rate_limit_next(&self, n: usize) {
        for _ in 0..n {
            let reset = now_secs() + 7;
            self.answer_next(
                FakeResponse::json(
                    429,
                    json!({"error": {"code": "rate_limited", "message": "Rate limit exceeded",
                           "limit": {"remaining": 0, "reset": reset, "resetMs": reset * 1000, "total": 100}}}),
                )
                .with_header("retry-after", "7")
                .with_header("x-ratelimit-limit", "100")
                .with_header("x-ratelimit-remaining", "0")
                .with_header("x-ratelimit-reset", &reset.to_string()),
            );
        }
    }
}

fn handle(state: &mut State, req: &RecordedRequest) -> FakeResponse {
    let pairs = query(req);
    match req.header("authorization") {
        None => {
            return FakeResponse::json(
                403,
                json!({"error": {"code": "forbidden", "message": "The request is missing an authentication token", "missingToken": true}}),
            );
        }
        Some(value) if value != format!("Bearer {TOKEN}") => {
            return FakeResponse::json(
                403,
                json!({"error": {"code": "forbidden", "message": "Not authorized", "invalidToken": true}}),
            );
        }
        Some(_) => {}
    }
    let team = param(&pairs, "teamId");
    match (&state.options.team_id, &team) {
        (Some(_), None) => {} // the project is looked up in the personal account: 404 below
        (Some(want), Some(got)) if want != got => {
            return error(
                403,
                "forbidden",
                "You don't have permission to access this team",
            );
        }
        (None, Some(_)) => {
            return error(
                403,
                "forbidden",
                "You don't have permission to access this team",
            );
        }
        _ => {}
    }
    let project_visible = state.options.team_id.is_none() || team.is_some();
    let is_project = |p: &str| project_visible && (p == PROJECT_ID || p == PROJECT_NAME);
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let json_body = || -> Result<Value, FakeResponse> {
        if !req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err(error(
                400,
                "bad_request",
                "Invalid request: the body must be JSON (Content-Type: application/json)",
            ));
        }
        serde_json::from_slice(&req.body)
            .map_err(|_| error(400, "bad_request", "Invalid JSON body"))
    };
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["v9", "projects", p]) if is_project(p) => FakeResponse::json(
            200,
            json!({"id": PROJECT_ID, "name": PROJECT_NAME, "accountId": state.options.team_id.clone().unwrap_or_else(|| "usr_kw1".into()), "framework": "nextjs"}),
        ),
        ("GET", ["v9", "projects", p, "custom-environments"]) if is_project(p) => {
            FakeResponse::json(
                200,
                json!({"accountLimit": {"total": 1}, "environments": [{
                    "id": CUSTOM_ENV_ID, "slug": "staging", "type": "preview", "description": "",
                    "branchMatcher": {"type": "equals", "pattern": "staging"},
                    "createdAt": 1_700_000_000_000_u64, "updatedAt": 1_700_000_000_000_u64,
                }]}),
            )
        }
        ("GET", ["v10", "projects", p, "env"]) if is_project(p) => list_envs(state, &pairs),
        ("POST", ["v10", "projects", p, "env"]) if is_project(p) => match json_body() {
            Ok(body) => create_envs(
                state,
                &body,
                param(&pairs, "upsert").as_deref() == Some("true"),
            ),
            Err(e) => e,
        },
        ("PATCH", ["v9", "projects", p, "env", id]) if is_project(p) => match json_body() {
            Ok(body) => edit_env(state, id, &body),
            Err(e) => e,
        },
        ("DELETE", ["v9", "projects", p, "env", id]) if is_project(p) => {
            match state.envs.iter().position(|e| e.id == *id) {
                Some(i) => FakeResponse::json(200, state.envs.remove(i).to_json()),
                None => not_found("Environment Variable"),
            }
        }
        ("GET", ["v6", "deployments"]) => {
            let project = param(&pairs, "projectId");
            if !project.as_deref().is_some_and(is_project) {
                return not_found("Project");
            }
            list_deployments(state, &pairs)
        }
        ("PATCH", ["v12", "deployments", id, "cancel"]) if project_visible => {
            match state.deployments.iter_mut().find(|d| d.uid == *id) {
                None => not_found("Deployment"),
                Some(d) if ["QUEUED", "BUILDING", "INITIALIZING"].contains(&d.state.as_str()) => {
                    d.state = "CANCELED".into();
                    FakeResponse::json(200, d.to_json())
                }
                Some(_) => error(
                    400,
                    "bad_request",
                    "Only deployments that are still building can be canceled",
                ),
            }
        }
        ("POST", ["v13", "deployments"]) if project_visible => match json_body() {
            Ok(body) => redeploy(state, &body),
            Err(e) => e,
        },
        (_, ["v9" | "v10", "projects", ..]) => not_found("Project"),
        _ => error(404, "not_found", "The requested endpoint was not found"),
    }
}

fn list_envs(state: &State, pairs: &[(String, String)]) -> FakeResponse {
    let until: Option<u64> = param(pairs, "until").and_then(|u| u.parse().ok());
    let mut envs: Vec<&EnvVar> = state
        .envs
        .iter()
        .filter(|e| until.is_none_or(|u| e.created_at < u))
        .collect();
    envs.sort_by_key(|e| std::cmp::Reverse(e.created_at));
    let size = param(pairs, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .map_or(state.options.page_size, |l| l.min(state.options.page_size))
        .max(1);
    let more = envs.len() > size;
    let page: Vec<&EnvVar> = envs.into_iter().take(size).collect();
    let next = if more {
        json!(page.last().map(|e| e.created_at))
    } else {
        Value::Null
    };
    FakeResponse::json(
        200,
        json!({
            "envs": page.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
            "pagination": {"count": page.len(), "next": next, "prev": page.first().map(|e| e.created_at)},
        }),
    )
}

fn create_envs(state: &mut State, body: &Value, upsert: bool) -> FakeResponse {
    let single = !body.is_array();
    let items: Vec<Value> = match body {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut created = Vec::new();
    let mut failed = Vec::new();
    for item in &items {
        let input = match env_input(item) {
            Ok(input) => input,
            Err(e) if single => return e,
            Err(e) => {
                failed.push(serde_json::from_str::<Value>(&e.body).unwrap_or(Value::Null));
                continue;
            }
        };
        let (Some(key), Some(value)) = (input.key, input.value) else {
            let e = error(
                400,
                "bad_request",
                "Invalid request: missing required property `key` or `value`.",
            );
            if single {
                return e;
            }
            failed.push(serde_json::from_str::<Value>(&e.body).unwrap_or(Value::Null));
            continue;
        };
        let mut var = EnvVar {
            id: String::new(),
            key,
            value,
            kind: input.kind.unwrap_or_else(|| "encrypted".into()),
            target: input.target.unwrap_or_default(),
            custom_environment_ids: input.custom.unwrap_or_default(),
            git_branch: input.git_branch,
            comment: input.comment,
            created_at: 0,
        };
        let outcome = check_var(&var).and_then(|()| match conflict(&state.envs, &var) {
            Some(i) if upsert => {
                let existing = &state.envs[i];
                if existing.kind == "sensitive" && var.kind != "sensitive" {
                    return Err(error(
                        400,
                        "bad_request",
                        "Sensitive Environment Variables cannot be changed to another type",
                    ));
                }
                Ok(Some(i))
            }
            Some(_) => Err(conflict_error(&var)),
            None => Ok(None),
        });
        match outcome {
            Ok(Some(i)) => {
                let existing = &mut state.envs[i];
                existing.value = var.value;
                existing.kind = var.kind;
                existing.comment = var.comment.or(existing.comment.take());
                created.push(existing.to_json());
            }
            Ok(None) => {
                var.id = state.id("env_v");
                var.created_at = state.tick();
                created.push(var.to_json());
                state.envs.push(var);
            }
            Err(e) if single => return e,
            Err(e) => failed.push(serde_json::from_str::<Value>(&e.body).unwrap_or(Value::Null)),
        }
    }
    let created = if single {
        created.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::Array(created)
    };
    FakeResponse::json(201, json!({"created": created, "failed": failed}))
}

fn edit_env(state: &mut State, id: &str, body: &Value) -> FakeResponse {
    let Some(index) = state.envs.iter().position(|e| e.id == id) else {
        return not_found("Environment Variable");
    };
    let input = match env_input(body) {
        Ok(input) => input,
        Err(e) => return e,
    };
    let mut var = state.envs[index].clone();
    if let Some(kind) = input.kind {
        if var.kind == "sensitive" && kind != "sensitive" {
            return error(
                400,
                "bad_request",
                "Sensitive Environment Variables cannot be changed to another type",
            );
        }
        var.kind = kind;
    }
    if let Some(key) = input.key {
        var.key = key;
    }
    if let Some(value) = input.value {
        var.value = value;
    }
    if let Some(target) = input.target {
        var.target = target;
    }
    if let Some(custom) = input.custom {
        var.custom_environment_ids = custom;
    }
    if input.comment.is_some() {
        var.comment = input.comment;
    }
    if input.git_branch.is_some() {
        var.git_branch = input.git_branch;
    }
    if let Err(e) = check_var(&var) {
        return e;
    }
    if conflict(&state.envs, &var).is_some() {
        return conflict_error(&var);
    }
    state.envs[index] = var;
    FakeResponse::json(200, state.envs[index].to_json())
}

fn list_deployments(state: &State, pairs: &[(String, String)]) -> FakeResponse {
    let target = param(pairs, "target");
    let states: Option<Vec<String>> = param(pairs, "state").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_ascii_uppercase())
            .collect()
    });
    let limit = param(pairs, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let mut found: Vec<&Deployment> = state
        .deployments
        .iter()
        .filter(|d| target.as_deref().is_none_or(|t| d.target == t))
        .filter(|d| states.as_ref().is_none_or(|s| s.contains(&d.state)))
        .collect();
    found.sort_by_key(|d| std::cmp::Reverse(d.created));
    let more = found.len() > limit;
    let page: Vec<&Deployment> = found.into_iter().take(limit).collect();
    FakeResponse::json(
        200,
        json!({
            "deployments": page.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
            "pagination": {"count": page.len(), "next": if more { json!(page.last().map(|d| d.created)) } else { Value::Null }, "prev": Value::Null},
        }),
    )
}

fn redeploy(state: &mut State, body: &Value) -> FakeResponse {
    let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
        return error(
            400,
            "bad_request",
            "Invalid request: missing required property `name`.",
        );
    };
    let Some(source) = body["deploymentId"].as_str() else {
        return error(
            400,
            "bad_request",
            "Invalid request: this fake only redeploys (`deploymentId` is required).",
        );
    };
    if let Some(project) = body["project"].as_str()
        && project != PROJECT_ID
        && project != PROJECT_NAME
    {
        return not_found("Project");
    }
    match state.deployments.iter().find(|d| d.uid == source) {
        None => return not_found("Deployment"),
        Some(d) if d.state == "CANCELED" && state.options.refuse_cancelled_redeploys => {
            return error(
                400,
                "bad_request",
                "A canceled deployment cannot be redeployed",
            );
        }
        Some(_) => {}
    }
    let target = match body.get("target") {
        None | Some(Value::Null) => "preview".to_owned(),
        Some(Value::String(t)) if t == "production" || t == "staging" => t.clone(),
        Some(Value::String(t)) if t == CUSTOM_ENV_ID => t.clone(),
        Some(other) => {
            return error(
                400,
                "bad_request",
                &format!(
                    "Invalid request: `target` should be `production`, `staging` or a custom environment id, got {other}"
                ),
            );
        }
    };
    let uid = state.id("dpl_");
    let created = state.tick();
    let deployment = Deployment {
        uid: uid.clone(),
        name: name.into(),
        target,
        state: "QUEUED".into(),
        created,
        redeploy_of: Some(source.into()),
    };
    let mut answer = deployment.to_json();
    answer["id"] = json!(uid);
    answer["status"] = json!("QUEUED");
    state.deployments.push(deployment);
    FakeResponse::json(200, answer)
}
