#![doc = include_str!("../README.md")]

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_box::PublicKey;
use keywire_core::schemars::JsonSchema;
use keywire_core::sync::{Change, EntryKind, Op, RemoteKey, SyncTarget};
use keywire_core::{
    ACTION_CLEANUP_ON_REMOVE, ACTION_DELETE, ACTION_UPSERT, Applied, Category, Context, FieldError,
    FieldErrors, Integration, IntegrationDescriptor, IntegrationError, Metadata, Method,
    OutboundError, Reply, ScopeRule, Secret, Url, async_trait, inventory,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The public GitHub API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.github.com";
/// The REST API version keywire speaks (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
/// The media type GitHub recommends (`Accept`).
pub const MEDIA_TYPE: &str = "application/vnd.github+json";
/// GitHub's limit on one secret or variable value.
pub const MAX_VALUE_BYTES: usize = 48 * 1024;
/// Secrets are listed 100 a page (GitHub's maximum).
const SECRETS_PER_PAGE: usize = 100;
/// Variables are listed 30 a page (GitHub's maximum for variables).
const VARIABLES_PER_PAGE: usize = 30;
/// A guard against a server that pages forever.
const MAX_PAGES: usize = 200;
/// How long to wait on a rate limit GitHub gave no time for (its docs: at least a minute).
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Metadata of a GitHub Actions integration.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GithubActionsMetadata {
    /// A GitHub token that may manage the repository's Actions secrets and variables: a
    /// fine-grained personal access token (or GitHub App installation token) with the
    /// repository permissions "Secrets" and "Variables" (read and write; "Environments" too
    /// for environment-level keys), or a classic token with the `repo` scope. Sent as
    /// `Authorization: Bearer`. A credential: write-only, never returned or logged.
    pub token: Secret,
    /// The account (user or organization) that owns the repository, e.g. `acme`.
    pub owner: String,
    /// The repository's name, e.g. `shop`.
    pub repo: String,
    /// The REST API base URL of a GitHub Enterprise Server (`https://github.example.com/api/v3`);
    /// leave it out for github.com (`https://api.github.com`). Calls to it go through keywire's
    /// outbound guard: private and link-local addresses are refused unless allow-listed.
    #[serde(default)]
    pub api_base_url: Option<String>,
}

impl Metadata for GithubActionsMetadata {
    fn example() -> Value {
        json!({
            "token": "github_pat_11ABCDEFG0123456789_example",
            "owner": "acme",
            "repo": "shop"
        })
    }

    fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        if let Err(why) = check_owner(&self.owner) {
            errors.push(FieldError::new("/owner", why));
        }
        if let Err(why) = check_repo(&self.repo) {
            errors.push(FieldError::new("/repo", why));
        }
        if let Some(base) = &self.api_base_url
            && let Err(why) = normalise_base_url(base)
        {
            errors.push(FieldError::new("/apiBaseUrl", why));
        }
        if self.token.expose().trim() != self.token.expose() || self.token.expose().is_empty() {
            errors.push(FieldError::new(
                "/token",
                "must be a token without surrounding spaces",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors { errors })
        }
    }
}

/// GitHub account names: letters, digits and single hyphens, at most 39 characters.
fn check_owner(owner: &str) -> Result<(), String> {
    let ok = !owner.is_empty()
        && owner.len() <= 39
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && !owner.contains("--");
    if ok {
        Ok(())
    } else {
        Err("must be a GitHub user or organization name (letters, digits and single hyphens, at most 39 characters)".into())
    }
}

/// GitHub repository names: letters, digits, `-`, `_` and `.`, at most 100 characters.
fn check_repo(repo: &str) -> Result<(), String> {
    let ok = !repo.is_empty()
        && repo.len() <= 100
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && repo != "."
        && repo != "..";
    if ok {
        Ok(())
    } else {
        Err("must be a repository name (letters, digits, `-`, `_` and `.`, at most 100 characters), without the owner".into())
    }
}

/// Checks an API base URL and returns it without a trailing `/`.
fn normalise_base_url(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw.trim()).map_err(|_| "must be an absolute URL".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an https (or http) URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not carry a query or fragment".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// GitHub's naming rules for secrets and variables. Names are case-insensitive and stored in
/// upper case, so a lower-case key would come back renamed: it is refused instead.
pub fn check_name(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("GitHub needs a non-empty name".into());
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(
            "GitHub names may hold only letters, digits and `_` (no spaces or other characters)"
                .into(),
        );
    }
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("GitHub names must not start with a digit".into());
    }
    if key.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err("GitHub reserves names starting with `GITHUB_`".into());
    }
    if key.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(format!(
            "GitHub stores names in upper case (it would become `{}`): use an upper-case key or key template",
            key.to_ascii_uppercase()
        ));
    }
    Ok(())
}

/// A configured GitHub Actions integration.
pub struct GithubActions {
    metadata: GithubActionsMetadata,
    base: String,
}

impl From<GithubActionsMetadata> for GithubActions {
    fn from(metadata: GithubActionsMetadata) -> Self {
        // `check` has accepted the URL already; fall back to the raw text defensively.
        let base = match &metadata.api_base_url {
            Some(raw) => normalise_base_url(raw).unwrap_or_else(|_| raw.clone()),
            None => DEFAULT_API_BASE_URL.to_owned(),
        };
        GithubActions { metadata, base }
    }
}

/// The repository's (or an environment's) public key, to seal secrets to.
struct RepoKey {
    id: String,
    key: PublicKey,
}

/// Public keys fetched during one sync, by scope.
type KeyCache = HashMap<String, RepoKey>;

impl GithubActions {
    fn repo_url(&self) -> String {
        format!(
            "{}/repos/{}/{}",
            self.base,
            segment(&self.metadata.owner),
            segment(&self.metadata.repo)
        )
    }

    /// Where a scope's secrets and variables live: `/repos/o/r/actions` for the repository,
    /// `/repos/o/r/environments/{env}` for an environment.
    fn area(&self, scope: &str) -> String {
        if scope.is_empty() {
            format!("{}/actions", self.repo_url())
        } else {
            format!("{}/environments/{}", self.repo_url(), segment(scope))
        }
    }

    /// The scope for people: `repository acme/shop` or `environment production of acme/shop`.
    fn where_(&self, scope: &str) -> String {
        let repo = format!("{}/{}", self.metadata.owner, self.metadata.repo);
        if scope.is_empty() {
            format!("repository {repo}")
        } else {
            format!("GitHub environment `{scope}` of {repo}")
        }
    }

    async fn call(
        &self,
        ctx: &Context,
        method: Method,
        url: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Reply, IntegrationError> {
        let mut request = ctx
            .http
            .request(method, url)?
            .bearer_auth(self.metadata.token.expose())
            .header("accept", MEDIA_TYPE)
            .header("x-github-api-version", API_VERSION);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).expect("JSON values serialize"));
        }
        let reply = ctx.http.send(request).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(github_error(&reply, what, self.metadata.token.expose()))
        }
    }

    async fn public_key<'c>(
        &self,
        ctx: &Context,
        scope: &str,
        cache: &'c mut KeyCache,
    ) -> Result<&'c RepoKey, IntegrationError> {
        if !cache.contains_key(scope) {
            let url = format!("{}/secrets/public-key", self.area(scope));
            let reply = self
                .call(
                    ctx,
                    Method::GET,
                    &url,
                    None,
                    &format!("public key of {}", self.where_(scope)),
                )
                .await
                .map_err(|e| self.explain_missing_environment(e, scope))?;
            let key = parse_public_key(&reply)?;
            cache.insert(scope.to_owned(), key);
        }
        Ok(cache.get(scope).expect("inserted above"))
    }

    /// A 404 under an environment means the environment does not exist: say so.
    fn explain_missing_environment(
        &self,
        error: IntegrationError,
        scope: &str,
    ) -> IntegrationError {
        if error.status() == Some(404) && !scope.is_empty() {
            IntegrationError::Provider {
                message: format!(
                    "{} does not exist (or the token cannot see it): create it under the repository's Settings → Environments, or map the keywire environment to another target",
                    self.where_(scope)
                ),
                retryable: false,
                status: Some(404),
            }
        } else {
            error
        }
    }

    async fn list_scope(
        &self,
        ctx: &Context,
        scope: &str,
        out: &mut Vec<RemoteKey>,
    ) -> Result<(), IntegrationError> {
        for (kind, collection, per_page) in [
            (EntryKind::Secret, "secrets", SECRETS_PER_PAGE),
            (EntryKind::Variable, "variables", VARIABLES_PER_PAGE),
        ] {
            let mut seen = 0usize;
            for page in 1..=MAX_PAGES {
                let url = format!(
                    "{}/{collection}?per_page={per_page}&page={page}",
                    self.area(scope)
                );
                let reply = self
                    .call(
                        ctx,
                        Method::GET,
                        &url,
                        None,
                        &format!("{collection} of {}", self.where_(scope)),
                    )
                    .await
                    .map_err(|e| self.explain_missing_environment(e, scope))?;
                let body: Value = serde_json::from_slice(&reply.body).map_err(|_| {
                    unexpected(&format!("the {collection} list of {}", self.where_(scope)))
                })?;
                let items = body
                    .get(collection)
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        unexpected(&format!("the {collection} list of {}", self.where_(scope)))
                    })?;
                let total = body
                    .get("total_count")
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok());
                for item in items {
                    let Some(name) = item.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    let value = match kind {
                        // Secrets cannot be read back: ownership comes from keywire's records.
                        EntryKind::Secret => None,
                        EntryKind::Variable => {
                            item.get("value").and_then(Value::as_str).map(Secret::new)
                        }
                    };
                    out.push(RemoteKey {
                        scope: scope.to_owned(),
                        key: name.to_owned(),
                        value,
                        handle: None,
                        kind: Some(kind),
                    });
                }
                seen += items.len();
                let more = match total {
                    Some(total) => seen < total && !items.is_empty(),
                    None => items.len() == per_page,
                };
                if !more {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn write_with(
        &self,
        ctx: &Context,
        change: &Change,
        keys: &mut KeyCache,
    ) -> Result<(), IntegrationError> {
        let scope = change.scope.as_str();
        let name = segment(&change.key);
        let area = self.area(scope);
        let existing_kind = change.existing.as_ref().and_then(|e| e.kind);
        match &change.op {
            Op::Upsert(value) => {
                match change.kind {
                    EntryKind::Secret => {
                        let key = self.public_key(ctx, scope, keys).await?;
                        let sealed = key
                            .key
                            .seal(&mut crypto_box::aead::OsRng, value.expose().as_bytes())
                            .map_err(|_| IntegrationError::Provider {
                                message: format!(
                                    "could not encrypt secret `{}` for GitHub",
                                    change.key
                                ),
                                retryable: false,
                                status: None,
                            })?;
                        let body = json!({
                            "encrypted_value": BASE64.encode(sealed),
                            "key_id": key.id,
                        });
                        self.call(
                            ctx,
                            Method::PUT,
                            &format!("{area}/secrets/{name}"),
                            Some(body),
                            &format!("secret `{}` in {}", change.key, self.where_(scope)),
                        )
                        .await
                        .map_err(|e| self.explain_missing_environment(e, scope))?;
                    }
                    EntryKind::Variable => {
                        self.upsert_variable(ctx, change, value, existing_kind)
                            .await
                            .map_err(|e| self.explain_missing_environment(e, scope))?;
                    }
                }
                // The key changed kind (a variable became a secret or back): remove the other.
                if let Some(other) = existing_kind.filter(|k| *k != change.kind) {
                    self.delete(ctx, scope, &change.key, other).await?;
                }
                Ok(())
            }
            Op::Delete => {
                self.delete(
                    ctx,
                    scope,
                    &change.key,
                    existing_kind.unwrap_or(change.kind),
                )
                .await
            }
        }
    }

    async fn upsert_variable(
        &self,
        ctx: &Context,
        change: &Change,
        value: &Secret,
        existing_kind: Option<EntryKind>,
    ) -> Result<(), IntegrationError> {
        let area = self.area(&change.scope);
        let what = format!(
            "variable `{}` in {}",
            change.key,
            self.where_(&change.scope)
        );
        let body = json!({"name": change.key, "value": value.expose()});
        let patch_url = format!("{area}/variables/{}", segment(&change.key));
        let create_url = format!("{area}/variables");
        if existing_kind == Some(EntryKind::Variable) {
            match self
                .call(ctx, Method::PATCH, &patch_url, Some(body.clone()), &what)
                .await
            {
                Err(e) if e.status() == Some(404) => {}
                other => return other.map(drop),
            }
            self.call(ctx, Method::POST, &create_url, Some(body), &what)
                .await
                .map(drop)
        } else {
            match self
                .call(ctx, Method::POST, &create_url, Some(body.clone()), &what)
                .await
            {
                // Created meanwhile (or listed under another kind): update it.
                Err(e) if e.status() == Some(409) => {}
                other => return other.map(drop),
            }
            self.call(ctx, Method::PATCH, &patch_url, Some(body), &what)
                .await
                .map(drop)
        }
    }

    async fn delete(
        &self,
        ctx: &Context,
        scope: &str,
        key: &str,
        kind: EntryKind,
    ) -> Result<(), IntegrationError> {
        let collection = match kind {
            EntryKind::Secret => "secrets",
            EntryKind::Variable => "variables",
        };
        let url = format!("{}/{collection}/{}", self.area(scope), segment(key));
        match self
            .call(
                ctx,
                Method::DELETE,
                &url,
                None,
                &format!("{} `{key}` in {}", kind.as_str(), self.where_(scope)),
            )
            .await
        {
            // Already gone: what a delete wants.
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(drop),
        }
    }
}

fn unexpected(what: &str) -> IntegrationError {
    IntegrationError::Provider {
        message: format!("GitHub answered {what} with an unexpected body"),
        retryable: true,
        status: None,
    }
}

fn parse_public_key(reply: &Reply) -> Result<RepoKey, IntegrationError> {
    let body: Value =
        serde_json::from_slice(&reply.body).map_err(|_| unexpected("the public key"))?;
    let id = body
        .get("key_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| unexpected("the public key (no `key_id`)"))?;
    let bytes = body
        .get("key")
        .and_then(Value::as_str)
        .and_then(|k| BASE64.decode(k).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| unexpected("the public key (`key` is not a base64 X25519 key)"))?;
    Ok(RepoKey {
        id: id.to_owned(),
        key: PublicKey::from(bytes),
    })
}

/// Maps a GitHub error answer: rate limits (403/429 with `Retry-After`, or
/// `x-ratelimit-remaining: 0` and `x-ratelimit-reset`) are retryable after GitHub's wait;
/// otherwise 408/409/425/429/5xx are retryable and other statuses final. The message names
/// what was asked and GitHub's `message`, never a value or the token.
fn github_error(reply: &Reply, what: &str, token: &str) -> IntegrationError {
    let status = reply.status.as_u16();
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let mut message = body
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| reply.excerpt());
    if !token.is_empty() {
        message = message.replace(token, "***");
    }
    let message: String = message.chars().take(300).collect();
    let header = |name: &str| {
        reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let rate_limited = matches!(status, 403 | 429)
        && (header("retry-after").is_some()
            || header("x-ratelimit-remaining") == Some("0")
            || message.to_ascii_lowercase().contains("rate limit")
            || status == 429);
    if rate_limited {
        let wait = reply.retry_after().or_else(|| {
            let reset: u64 = header("x-ratelimit-reset")?.parse().ok()?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
            Some(Duration::from_secs(reset.saturating_sub(now) + 1))
        });
        return IntegrationError::Http(OutboundError::Status {
            status,
            retryable: true,
            retry_after: Some(wait.unwrap_or(DEFAULT_RATE_LIMIT_WAIT)),
            excerpt: format!("{what}: GitHub rate limit: {message}"),
        });
    }
    let hint = match status {
        401 => " (the token is invalid or expired)",
        403 => " (the token lacks a permission: see the integration's documentation)",
        404 => " (not found, or the token cannot see it)",
        _ => "",
    };
    IntegrationError::Http(OutboundError::Status {
        status,
        retryable: matches!(status, 408 | 409 | 425 | 429) || reply.status.is_server_error(),
        retry_after: reply.retry_after(),
        excerpt: format!("{what}: {message}{hint}"),
    })
}

#[async_trait]
impl Integration for GithubActions {
    /// Reads the repository, then its Actions public key: posts nothing.
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let repo = format!("repository {}/{}", self.metadata.owner, self.metadata.repo);
        self.call(ctx, Method::GET, &self.repo_url(), None, &repo)
            .await?;
        let mut keys = KeyCache::new();
        self.public_key(ctx, "", &mut keys).await?;
        Ok(())
    }

    fn sync_target(&self) -> Option<&dyn SyncTarget> {
        Some(self)
    }
}

#[async_trait]
impl SyncTarget for GithubActions {
    /// The GitHub environment the keywire environment writes to; empty (the default) for
    /// repository-level secrets and variables.
    fn scope(&self, target: Option<&str>) -> Result<String, String> {
        let target = target.unwrap_or_default().trim();
        if target.chars().count() > 255 {
            return Err("a GitHub environment name has at most 255 characters".into());
        }
        if target.chars().any(char::is_control) {
            return Err("a GitHub environment name has no control characters".into());
        }
        Ok(target.to_owned())
    }

    fn check(&self, key: &str, _kind: EntryKind, value: &str) -> Result<(), String> {
        check_name(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "the value is {} bytes, over GitHub's limit of 48 KB",
                value.len()
            ));
        }
        Ok(())
    }

    async fn list(
        &self,
        ctx: &Context,
        scopes: &[String],
    ) -> Result<Vec<RemoteKey>, IntegrationError> {
        let mut out = Vec::new();
        for scope in scopes {
            self.list_scope(ctx, scope, &mut out).await?;
        }
        Ok(out)
    }

    async fn write(&self, ctx: &Context, change: &Change) -> Result<(), IntegrationError> {
        self.write_with(ctx, change, &mut KeyCache::new()).await
    }

    /// Like the default, but fetches each scope's public key once.
    async fn apply(&self, ctx: &Context, changes: &[Change]) -> Applied {
        let mut keys = KeyCache::new();
        for (done, change) in changes.iter().enumerate() {
            if let Err(error) = self.write_with(ctx, change, &mut keys).await {
                return Applied {
                    done,
                    error: Some(error),
                };
            }
        }
        Applied {
            done: changes.len(),
            error: None,
        }
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<GithubActionsMetadata, GithubActions>(
        "github_actions",
        "GitHub Actions",
        "Keeps a repository's GitHub Actions secrets and variables, repository-wide or per GitHub environment, equal to a project's.",
    )
    .category(Category::Infrastructure)
    .events(keywire_core::sync::SYNC_EVENTS)
    .actions(&[ACTION_UPSERT, ACTION_DELETE, ACTION_CLEANUP_ON_REMOVE])
    .scope(ScopeRule::PROJECT_ENVIRONMENTS)
}
