#![doc = include_str!("../README.md")]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keywire_core::schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use keywire_core::sync::{Change, EntryKind, Op, RemoteKey, SyncTarget};
use keywire_core::{
    ACTION_CLEANUP_ON_REMOVE, ACTION_DELETE, ACTION_UPSERT, Category, Context, FieldError,
    FieldErrors, Integration, IntegrationDescriptor, IntegrationError, Metadata, Method,
    OutboundError, Reply, ScopeRule, Secret, Url, async_trait, inventory,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The Vercel REST API (fixed: no user-supplied base URL, so nothing to guard but the host).
pub const API_BASE_URL: &str = "https://api.vercel.com";
/// The provider action: after a sync that changed something, redeploy each changed target.
pub const ACTION_REDEPLOY: &str = "redeploy";
/// Vercel's limit on all variables of one deployment together, so on any one value.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The standard Vercel targets.
pub const TARGETS: [&str; 3] = ["production", "preview", "development"];
/// Names Vercel's function runtimes reserve (Vercel's "Reserved environment variables").
pub const RESERVED_KEYS: [&str; 11] = [
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
/// The comment keywire puts on the variables it creates.
pub const COMMENT: &str = "managed by keywire";
/// A guard against a server that pages forever.
const MAX_PAGES: usize = 500;
/// How long to wait on a 429 that names no time.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// How Vercel stores keywire's secrets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretType {
    /// Encrypted at rest; readable in the dashboard by project members.
    #[default]
    Encrypted,
    /// Encrypted and never readable again, in the dashboard or the API (production, preview
    /// and custom environments; Vercel does not allow it for `development`).
    Sensitive,
}

/// A plain string enum in the schema (`"enum": ["encrypted", "sensitive"]`).
impl JsonSchema for SecretType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretType".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "enum": ["encrypted", "sensitive"], "default": "encrypted"})
    }
}

impl SecretType {
    fn as_str(self) -> &'static str {
        match self {
            SecretType::Encrypted => "encrypted",
            SecretType::Sensitive => "sensitive",
        }
    }
}

/// Metadata of a Vercel integration. Which Vercel environment each keywire environment writes
/// to (`production`, `preview`, `development` or a custom environment id `env_…`) is the
/// integration's environment mapping, not metadata.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VercelMetadata {
    /// A Vercel access token (Account Settings → Tokens) scoped to the project's team, sent as
    /// `Authorization: Bearer`. A credential: write-only, never returned or logged.
    pub token: Secret,
    /// The Vercel project's id (`prj_…`, Project Settings → General) or its name.
    pub project_id: String,
    /// The id of the team that owns the project (`team_…`); leave it out for a project of a
    /// personal account.
    #[serde(default)]
    pub team_id: Option<String>,
    /// How secrets are stored: `encrypted` (the default) or `sensitive` (never readable again;
    /// a secret mapped to `development` is stored `encrypted`, as Vercel allows no sensitive
    /// variables there). keywire variables are always `plain`.
    #[serde(default)]
    pub secret_type: SecretType,
}

impl Metadata for VercelMetadata {
    fn example() -> Value {
        json!({
            "token": "vc_example_token_0123456789",
            "projectId": "prj_12HKQaOmR5t5Uy6vdcQsNIiZgHGB",
            "teamId": "team_nO2mCG4W8IxPIeKoSsqwAxxB",
            "secretType": "encrypted"
        })
    }

    fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        let token = self.token.expose();
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(FieldError::new(
                "/token",
                "must be a token without spaces or control characters",
            ));
        }
        let project_ok = !self.project_id.is_empty()
            && self.project_id.len() <= 100
            && self
                .project_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !project_ok {
            errors.push(FieldError::new(
                "/projectId",
                "must be a Vercel project id (`prj_…`) or name: letters, digits, `_`, `-`, `.`, at most 100 characters",
            ));
        }
        if let Some(team) = &self.team_id {
            let ok = team.starts_with("team_")
                && team.len() <= 100
                && team.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                errors.push(FieldError::new(
                    "/teamId",
                    "must be a Vercel team id (`team_…`, Team Settings → General)",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors { errors })
        }
    }
}

/// Checks a target key against Vercel's rules; the reason never contains a value.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(
            "Vercel names hold only letters, digits and `_`, and do not start with a digit".into(),
        );
    }
    if RESERVED_KEYS.contains(&key) {
        return Err("Vercel reserves this name for its function runtimes".into());
    }
    Ok(())
}

/// A configured Vercel integration.
pub struct Vercel {
    /// The metadata it was configured with (already parsed and checked).
    pub metadata: VercelMetadata,
}

impl From<VercelMetadata> for Vercel {
    fn from(metadata: VercelMetadata) -> Self {
        Vercel { metadata }
    }
}

/// A variable as `GET /v10/projects/{id}/env` lists it. `value` is kept only for `plain`
/// variables (for the others it is ciphertext or absent).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiEnv {
    id: String,
    key: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    target: Option<Value>,
    #[serde(default)]
    custom_environment_ids: Option<Vec<String>>,
    #[serde(default)]
    git_branch: Option<String>,
    #[serde(default)]
    value: Option<Secret>,
}

impl ApiEnv {
    fn targets(&self) -> Vec<String> {
        let mut out: Vec<String> = match &self.target {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        out.extend(self.custom_environment_ids.iter().flatten().cloned());
        out
    }
}

#[derive(Deserialize)]
struct EnvPage {
    envs: Vec<ApiEnv>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default)]
    next: Option<u64>,
}

/// What keywire needs to know about an existing variable to change it: its id, type and every
/// target it applies to. Carried from `list` to `write` as the key's handle
/// (`id|type|target,target`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Handle {
    id: String,
    kind: String,
    targets: Vec<String>,
}

impl Handle {
    fn encode(&self) -> String {
        format!("{}|{}|{}", self.id, self.kind, self.targets.join(","))
    }

    fn decode(text: &str) -> Option<Handle> {
        let mut parts = text.splitn(3, '|');
        let id = parts.next().filter(|s| !s.is_empty())?.to_owned();
        let kind = parts.next()?.to_owned();
        let targets = parts
            .next()?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Handle { id, kind, targets })
    }

    /// Whether the variable applies to exactly this one target.
    fn only(&self, target: &str) -> bool {
        self.targets.len() == 1 && self.targets[0] == target
    }
}

/// The body of a target list: standard targets in `target`, custom environment ids apart.
fn split_targets(targets: &[String]) -> (Vec<&str>, Vec<&str>) {
    targets
        .iter()
        .map(String::as_str)
        .partition(|t| TARGETS.contains(t))
}

#[derive(Deserialize)]
struct DeploymentList {
    deployments: Vec<ApiDeployment>,
}

#[derive(Debug, Deserialize)]
struct ApiDeployment {
    #[serde(alias = "id")]
    uid: String,
    name: String,
    #[serde(default)]
    created: u64,
}

/// Replaces anything of the call's value or the token in a provider message.
fn scrub(text: &str, value: Option<&str>, token: &str) -> String {
    let leaks = |s: &str| !s.is_empty() && text.contains(s);
    if value.is_some_and(leaks) || leaks(token) {
        "(Vercel's message is withheld: it repeated a credential or value)".into()
    } else {
        text.to_owned()
    }
}

impl Vercel {
    /// An API URL: path segments (each percent-encoded) and query pairs, plus `teamId`.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> String {
        let mut url = Url::parse(API_BASE_URL).expect("the API base URL is valid");
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().extend(segments);
        }
        let team = self.metadata.team_id.as_deref();
        if !query.is_empty() || team.is_some() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
            if let Some(team) = team {
                pairs.append_pair("teamId", team);
            }
        }
        url.into()
    }

    /// One API call; a non-2xx answer becomes an error that names `what` and never carries
    /// the token or `value`.
    async fn call(
        &self,
        ctx: &Context,
        method: Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
        value: Option<&str>,
    ) -> Result<Reply, IntegrationError> {
        let mut request = ctx
            .http
            .request(method, url)?
            .bearer_auth(self.metadata.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply = ctx.http.send(request).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(self.error(&reply, what, value))
        }
    }

    fn error(&self, reply: &Reply, what: &str, value: Option<&str>) -> IntegrationError {
        let status = reply.status.as_u16();
        let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| {
                let code = v.pointer("/error/code").and_then(Value::as_str);
                let text = v.pointer("/error/message").and_then(Value::as_str);
                match (code, text) {
                    (Some(c), Some(t)) => Some(format!("{c}: {t}")),
                    (None, Some(t)) => Some(t.to_owned()),
                    (Some(c), None) => Some(c.to_owned()),
                    (None, None) => None,
                }
            })
            .unwrap_or_else(|| reply.excerpt());
        let message = scrub(&message, value, self.metadata.token.expose());
        let hint = match status {
            401 | 403 => {
                " (the token is invalid or expired, or has no access to this project or team)"
            }
            404 if self.metadata.team_id.is_none() => {
                " (not found: a team's project also needs `teamId`)"
            }
            404 => " (not found, or the token cannot see it)",
            _ => "",
        };
        let mut retry_after = reply.retry_after();
        if status == 429 && retry_after.is_none() {
            // Vercel documents `X-RateLimit-Reset` (epoch seconds) on its rate limits.
            retry_after = Some(
                reply
                    .headers
                    .get("x-ratelimit-reset")
                    .and_then(|h| h.to_str().ok())
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map_or(DEFAULT_RATE_LIMIT_WAIT, |reset| {
                        let now = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        Duration::from_secs(reset.saturating_sub(now).clamp(1, 3600))
                    }),
            );
        }
        IntegrationError::Http(OutboundError::Status {
            status,
            retryable: matches!(status, 408 | 409 | 425 | 429) || reply.status.is_server_error(),
            retry_after,
            excerpt: format!("{what}: {message}{hint}"),
        })
    }

    fn project(&self) -> &str {
        &self.metadata.project_id
    }

    /// Every variable of the project, following `pagination.next`.
    async fn all_envs(&self, ctx: &Context) -> Result<Vec<ApiEnv>, IntegrationError> {
        let mut out: Vec<ApiEnv> = Vec::new();
        let mut until: Option<u64> = None;
        for _ in 0..MAX_PAGES {
            let cursor = until.map(|u| u.to_string());
            let query: Vec<(&str, &str)> = cursor
                .as_deref()
                .map(|u| vec![("until", u)])
                .unwrap_or_default();
            let url = self.url(&["v10", "projects", self.project(), "env"], &query);
            let reply = self
                .call(
                    ctx,
                    Method::GET,
                    &url,
                    None,
                    "listing the project's environment variables",
                    None,
                )
                .await?;
            let page: EnvPage =
                serde_json::from_slice(&reply.body).map_err(|_| IntegrationError::Provider {
                    message: "Vercel's list of environment variables was not the documented JSON"
                        .into(),
                    retryable: false,
                    status: Some(reply.status.as_u16()),
                })?;
            for env in page.envs {
                if !out.iter().any(|e| e.id == env.id) {
                    out.push(env);
                }
            }
            match page.pagination.and_then(|p| p.next) {
                None => return Ok(out),
                Some(next) if until.is_some_and(|u| next >= u) => {
                    return Err(IntegrationError::Provider {
                        message: "Vercel's pagination of environment variables did not advance"
                            .into(),
                        retryable: true,
                        status: None,
                    });
                }
                Some(next) => until = Some(next),
            }
        }
        Err(IntegrationError::Provider {
            message: format!("more than {MAX_PAGES} pages of environment variables"),
            retryable: false,
            status: None,
        })
    }

    /// The variable's current state (for the rare changes that split a shared variable).
    async fn fresh(&self, ctx: &Context, id: &str) -> Result<Option<Handle>, IntegrationError> {
        Ok(self
            .all_envs(ctx)
            .await?
            .into_iter()
            .find(|e| e.id == id)
            .map(|e| Handle {
                targets: e.targets(),
                id: e.id,
                kind: e.kind,
            }))
    }

    /// The type keywire writes a key of this kind as, in this target.
    fn vercel_type(&self, kind: EntryKind, target: &str) -> &'static str {
        match kind {
            EntryKind::Variable => "plain",
            EntryKind::Secret if target == "development" => "encrypted",
            EntryKind::Secret => self.metadata.secret_type.as_str(),
        }
    }

    /// Creates the key with exactly this one target (`upsert=true`, so a retry after a lost
    /// answer overwrites instead of failing).
    async fn create(
        &self,
        ctx: &Context,
        key: &str,
        value: &Secret,
        kind: &str,
        target: &str,
    ) -> Result<(), IntegrationError> {
        let mut body =
            json!({"key": key, "value": value.expose(), "type": kind, "comment": COMMENT});
        if TARGETS.contains(&target) {
            body["target"] = json!([target]);
        } else {
            body["customEnvironmentIds"] = json!([target]);
        }
        let url = self.url(
            &["v10", "projects", self.project(), "env"],
            &[("upsert", "true")],
        );
        let what = format!("creating `{key}` for {target}");
        let reply = self
            .call(
                ctx,
                Method::POST,
                &url,
                Some(&body),
                &what,
                Some(value.expose()),
            )
            .await?;
        // A 201 can still list the key under `failed`.
        let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        if let Some(failed) = answer["failed"].as_array().and_then(|f| f.first()) {
            let code = failed.pointer("/error/code").and_then(Value::as_str);
            let text = failed.pointer("/error/message").and_then(Value::as_str);
            let message = scrub(
                &format!("{}: {}", code.unwrap_or("failed"), text.unwrap_or("")),
                Some(value.expose()),
                self.metadata.token.expose(),
            );
            return Err(IntegrationError::Provider {
                message: format!("{what}: {message}"),
                retryable: false,
                status: Some(reply.status.as_u16()),
            });
        }
        Ok(())
    }

    async fn patch(
        &self,
        ctx: &Context,
        id: &str,
        body: &Value,
        what: &str,
        value: Option<&str>,
    ) -> Result<(), IntegrationError> {
        let url = self.url(&["v9", "projects", self.project(), "env", id], &[]);
        self.call(ctx, Method::PATCH, &url, Some(body), what, value)
            .await
            .map(|_| ())
    }

    async fn delete(&self, ctx: &Context, id: &str, what: &str) -> Result<(), IntegrationError> {
        let url = self.url(&["v9", "projects", self.project(), "env", id], &[]);
        match self.call(ctx, Method::DELETE, &url, None, what, None).await {
            // Already gone: what was wanted.
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Takes `target` out of a variable that applies to several targets, leaving the others
    /// as they are.
    async fn detach(
        &self,
        ctx: &Context,
        handle: &Handle,
        target: &str,
        key: &str,
    ) -> Result<(), IntegrationError> {
        let rest: Vec<String> = handle
            .targets
            .iter()
            .filter(|t| *t != target)
            .cloned()
            .collect();
        let (standard, custom) = split_targets(&rest);
        let body = json!({"target": standard, "customEnvironmentIds": custom});
        self.patch(
            ctx,
            &handle.id,
            &body,
            &format!("taking {target} out of the shared variable `{key}`"),
            None,
        )
        .await
    }

    /// The existing variable as it is now: the handle from `list`, re-read when it applies to
    /// several targets (an earlier change of this sync may have split it).
    async fn current(
        &self,
        ctx: &Context,
        existing: Option<&RemoteKey>,
    ) -> Result<Option<Handle>, IntegrationError> {
        let Some(handle) = existing.and_then(|e| e.handle.as_deref()) else {
            return Ok(None);
        };
        match Handle::decode(handle) {
            Some(h) if h.targets.len() == 1 => Ok(Some(h)),
            Some(h) => self.fresh(ctx, &h.id).await,
            None => Err(IntegrationError::Provider {
                message: "the variable's handle is not one keywire wrote".into(),
                retryable: false,
                status: None,
            }),
        }
    }

    async fn upsert(
        &self,
        ctx: &Context,
        change: &Change,
        value: &Secret,
    ) -> Result<(), IntegrationError> {
        let (key, target) = (change.key.as_str(), change.scope.as_str());
        let want = self.vercel_type(change.kind, target);
        let Some(handle) = self.current(ctx, change.existing.as_ref()).await? else {
            return self.create(ctx, key, value, want, target).await;
        };
        if !["plain", "encrypted", "sensitive", "secret"].contains(&handle.kind.as_str()) {
            return Err(IntegrationError::Provider {
                message: format!(
                    "`{key}` in {target} is a Vercel `{}` variable, which keywire does not overwrite",
                    handle.kind
                ),
                retryable: false,
                status: None,
            });
        }
        if !handle.targets.iter().any(|t| t == target) {
            // Someone took this target out of it meanwhile.
            return self.create(ctx, key, value, want, target).await;
        }
        if !handle.only(target) {
            // Shared with other targets: leave them their value and write our own variable.
            self.detach(ctx, &handle, target, key).await?;
            return self.create(ctx, key, value, want, target).await;
        }
        let what = format!("updating `{key}` in {target}");
        if handle.kind == want {
            let body = json!({"value": value.expose()});
            self.patch(ctx, &handle.id, &body, &what, Some(value.expose()))
                .await
        } else if handle.kind == "sensitive" {
            // A sensitive variable cannot become readable: replace it.
            self.delete(ctx, &handle.id, &what).await?;
            self.create(ctx, key, value, want, target).await
        } else {
            let body = json!({"value": value.expose(), "type": want});
            self.patch(ctx, &handle.id, &body, &what, Some(value.expose()))
                .await
        }
    }

    async fn remove(&self, ctx: &Context, change: &Change) -> Result<(), IntegrationError> {
        let (key, target) = (change.key.as_str(), change.scope.as_str());
        let Some(handle) = self.current(ctx, change.existing.as_ref()).await? else {
            return Ok(());
        };
        if !handle.targets.iter().any(|t| t == target) {
            return Ok(());
        }
        if handle.only(target) {
            self.delete(ctx, &handle.id, &format!("deleting `{key}` from {target}"))
                .await
        } else {
            // Someone made it apply elsewhere too: only take this target out.
            self.detach(ctx, &handle, target, key).await
        }
    }

    async fn deployments(
        &self,
        ctx: &Context,
        target: &str,
        states: &str,
        limit: &str,
    ) -> Result<Vec<ApiDeployment>, IntegrationError> {
        let url = self.url(
            &["v6", "deployments"],
            &[
                ("projectId", self.project()),
                ("target", target),
                ("state", states),
                ("limit", limit),
            ],
        );
        let reply = self
            .call(
                ctx,
                Method::GET,
                &url,
                None,
                &format!("listing {target} deployments"),
                None,
            )
            .await?;
        let list: DeploymentList =
            serde_json::from_slice(&reply.body).map_err(|_| IntegrationError::Provider {
                message: "Vercel's list of deployments was not the documented JSON".into(),
                retryable: false,
                status: Some(reply.status.as_u16()),
            })?;
        Ok(list.deployments)
    }

    async fn create_redeploy(
        &self,
        ctx: &Context,
        source: &ApiDeployment,
        target: &str,
    ) -> Result<(), IntegrationError> {
        let mut body = json!({
            "name": source.name,
            "deploymentId": source.uid,
            "project": self.project(),
            "meta": {"keywireRedeploy": "true"},
        });
        // Preview is the default target (no `target`); production and custom environments
        // are named.
        if target != "preview" {
            body["target"] = json!(target);
        }
        let url = self.url(&["v13", "deployments"], &[]);
        self.call(
            ctx,
            Method::POST,
            &url,
            Some(&body),
            &format!("redeploying {target}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Cancels builds of `target` still in progress (they would ship the old values) and
    /// redeploys: the newest cancelled build when there was one (it may carry newer code than
    /// the last ready deployment), otherwise the latest ready deployment.
    async fn redeploy(&self, ctx: &Context, target: &str) -> Result<(), IntegrationError> {
        let mut building = self
            .deployments(ctx, target, "BUILDING,QUEUED,INITIALIZING", "20")
            .await?;
        building.sort_by_key(|d| std::cmp::Reverse(d.created));
        let mut cancelled = Vec::new();
        for deployment in building {
            let url = self.url(&["v12", "deployments", &deployment.uid, "cancel"], &[]);
            match self
                .call(
                    ctx,
                    Method::PATCH,
                    &url,
                    None,
                    &format!("cancelling a {target} build"),
                    None,
                )
                .await
            {
                Ok(_) => cancelled.push(deployment),
                // It finished or vanished meanwhile: nothing to cancel.
                Err(e) if matches!(e.status(), Some(400 | 404)) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(newest) = cancelled.first() {
            match self.create_redeploy(ctx, newest, target).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() => return Err(e),
                Err(_) => {} // fall back to the latest ready deployment
            }
        }
        let ready = self.deployments(ctx, target, "READY", "1").await?;
        match ready.first() {
            Some(latest) => self.create_redeploy(ctx, latest, target).await,
            None => Ok(()), // nothing deployed to this target yet
        }
    }
}

#[async_trait]
impl Integration for Vercel {
    /// Lists the project's custom environments: proves the token, the team and the project,
    /// and changes nothing.
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let url = self.url(
            &["v9", "projects", self.project(), "custom-environments"],
            &[],
        );
        self.call(
            ctx,
            Method::GET,
            &url,
            None,
            "reading the project's environments",
            None,
        )
        .await
        .map(|_| ())
    }

    fn sync_target(&self) -> Option<&dyn SyncTarget> {
        Some(self)
    }
}

#[async_trait]
impl SyncTarget for Vercel {
    /// `production`, `preview`, `development` or a custom environment id (`env_…`). Vercel
    /// has no default: every mapped environment must name its target.
    fn scope(&self, target: Option<&str>) -> Result<String, String> {
        let Some(target) = target.map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(
                "choose the Vercel target: production, preview, development or a custom environment id (env_…)"
                    .into(),
            );
        };
        let lower = target.to_ascii_lowercase();
        if TARGETS.contains(&lower.as_str()) {
            return Ok(lower);
        }
        let custom = target.starts_with("env_")
            && target.len() > 4
            && target.len() <= 100
            && target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if custom {
            Ok(target.to_owned())
        } else {
            Err("a Vercel target is production, preview, development or a custom environment id (env_…, Project Settings → Environments)".into())
        }
    }

    fn check(&self, key: &str, _kind: EntryKind, value: &str) -> Result<(), String> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "the value is {} bytes, over Vercel's limit of 64 KB for all variables of a deployment",
                value.len()
            ));
        }
        Ok(())
    }

    /// Every variable of the project that applies to one of `scopes` (one key per target it
    /// applies to), except branch-specific preview variables, which keywire leaves alone.
    /// Values come back only for `plain` variables.
    async fn list(
        &self,
        ctx: &Context,
        scopes: &[String],
    ) -> Result<Vec<RemoteKey>, IntegrationError> {
        let wanted: BTreeSet<&str> = scopes.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for env in self.all_envs(ctx).await? {
            if env.git_branch.as_deref().is_some_and(|b| !b.is_empty()) {
                continue;
            }
            let targets = env.targets();
            let handle = Handle {
                id: env.id.clone(),
                kind: env.kind.clone(),
                targets: targets.clone(),
            }
            .encode();
            let kind = match env.kind.as_str() {
                "plain" => Some(EntryKind::Variable),
                "encrypted" | "sensitive" | "secret" => Some(EntryKind::Secret),
                _ => None,
            };
            for target in targets.iter().filter(|t| wanted.contains(t.as_str())) {
                out.push(RemoteKey {
                    scope: target.clone(),
                    key: env.key.clone(),
                    value: if env.kind == "plain" {
                        env.value.clone()
                    } else {
                        None
                    },
                    handle: Some(handle.clone()),
                    kind,
                });
            }
        }
        Ok(out)
    }

    async fn write(&self, ctx: &Context, change: &Change) -> Result<(), IntegrationError> {
        match &change.op {
            Op::Upsert(value) => self.upsert(ctx, change, value).await,
            Op::Delete => self.remove(ctx, change).await,
        }
    }

    /// With the `redeploy` action: for each changed target but `development` (which has no
    /// deployments), cancel its builds in progress and redeploy it.
    async fn after_sync(
        &self,
        ctx: &Context,
        changed_scopes: &[String],
        actions: &[String],
    ) -> Result<(), IntegrationError> {
        if !actions.iter().any(|a| a == ACTION_REDEPLOY) {
            return Ok(());
        }
        let targets: BTreeSet<&str> = changed_scopes
            .iter()
            .map(String::as_str)
            .filter(|t| *t != "development")
            .collect();
        for target in targets {
            self.redeploy(ctx, target).await?;
        }
        Ok(())
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<VercelMetadata, Vercel>(
        "vercel",
        "Vercel",
        "Keeps a Vercel project's environment variables (production, preview, development or custom environments) equal to a project's secrets and variables, and can redeploy after a change.",
    )
    .category(Category::Infrastructure)
    .events(keywire_core::sync::SYNC_EVENTS)
    .actions(&[ACTION_UPSERT, ACTION_DELETE, ACTION_CLEANUP_ON_REMOVE, ACTION_REDEPLOY])
    .scope(ScopeRule::PROJECT_ENVIRONMENTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vercel() -> Vercel {
        Vercel {
            metadata: keywire_core::parse_metadata::<VercelMetadata>(&VercelMetadata::example())
                .unwrap(),
        }
    }

    #[test]
    fn keys_follow_vercels_rules_and_reasons_never_hold_values() {
        let v = vercel();
        for ok in ["DATABASE_URL", "_x", "a1"] {
            assert_eq!(v.check(ok, EntryKind::Secret, "v"), Ok(()), "{ok}");
        }
        for bad in ["1ABC", "A-B", "A B", "", "TZ", "AWS_EXECUTION_ENV", "ÄB"] {
            let reason = v
                .check(bad, EntryKind::Secret, "hunter2-value")
                .unwrap_err();
            assert!(!reason.contains("hunter2-value"), "{reason}");
        }
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        let reason = v.check("BIG", EntryKind::Variable, &big).unwrap_err();
        assert!(
            reason.contains("64 KB") && !reason.contains("xxxx"),
            "{reason}"
        );
    }

    #[test]
    fn targets_are_normalised_and_there_is_no_default() {
        let v = vercel();
        assert_eq!(v.scope(Some("Production")), Ok("production".into()));
        assert_eq!(v.scope(Some(" preview ")), Ok("preview".into()));
        assert_eq!(v.scope(Some("env_abc123")), Ok("env_abc123".into()));
        assert!(v.scope(None).is_err());
        assert!(v.scope(Some("")).is_err());
        assert!(v.scope(Some("staging")).is_err());
        assert!(v.scope(Some("env_")).is_err());
    }

    #[test]
    fn handles_round_trip() {
        let h = Handle {
            id: "env_1".into(),
            kind: "encrypted".into(),
            targets: vec!["production".into(), "env_x".into()],
        };
        assert_eq!(Handle::decode(&h.encode()), Some(h.clone()));
        assert!(!h.only("production"));
        assert_eq!(Handle::decode("garbage"), None);
        assert_eq!(
            split_targets(&h.targets),
            (vec!["production"], vec!["env_x"])
        );
    }

    #[test]
    fn sensitive_is_not_used_for_development() {
        let mut v = vercel();
        v.metadata.secret_type = SecretType::Sensitive;
        assert_eq!(v.vercel_type(EntryKind::Secret, "production"), "sensitive");
        assert_eq!(v.vercel_type(EntryKind::Secret, "development"), "encrypted");
        assert_eq!(v.vercel_type(EntryKind::Variable, "production"), "plain");
    }

    #[test]
    fn urls_carry_the_team_and_encode_segments() {
        let v = vercel();
        assert_eq!(
            v.url(
                &["v9", "projects", "a/b", "env", "x"],
                &[("upsert", "true")]
            ),
            "https://api.vercel.com/v9/projects/a%2Fb/env/x?upsert=true&teamId=team_nO2mCG4W8IxPIeKoSsqwAxxB"
        );
    }
}
