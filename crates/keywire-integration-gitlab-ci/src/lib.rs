#![doc = include_str!("../README.md")]

use std::collections::BTreeSet;
use std::time::Duration;

use keywire_core::schemars::JsonSchema;
use keywire_core::sync::{Change, EntryKind, Op, RemoteKey, SyncTarget};
use keywire_core::{
    ACTION_CLEANUP_ON_REMOVE, ACTION_DELETE, ACTION_UPSERT, Category, Context, FieldError,
    FieldErrors, Integration, IntegrationDescriptor, IntegrationError, Metadata, Method,
    OutboundError, Reply, ScopeRule, Secret, Url, async_trait, inventory,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// GitLab.com, used when no `baseUrl` is given.
pub const DEFAULT_BASE_URL: &str = "https://gitlab.com";
/// The scope of a variable for every environment, used when a mapping names none.
pub const ALL_ENVIRONMENTS: &str = "*";
/// Variables are listed 100 a page (GitLab's maximum).
const PER_PAGE: usize = 100;
/// A guard against a server that pages forever.
const MAX_PAGES: usize = 1000;
/// How long to wait on a 429 that names no time.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Why a secret is skipped when it cannot be masked.
const UNMASKABLE: &str = "GitLab cannot mask this value (masking needs at least 8 characters from A-Z a-z 0-9 + / = _ - @ : . ~ on one line); set `allowUnmasked` to send such secrets unmasked";

fn yes() -> bool {
    true
}

/// Metadata of a GitLab CI/CD integration. Which environment scope each keywire environment
/// writes to is the integration's environment mapping (default `*`), not metadata.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitlabCiMetadata {
    /// A GitLab access token with the `api` scope whose user (or bot) is a Maintainer of the
    /// project (a project access token works), sent as `PRIVATE-TOKEN`. A credential:
    /// write-only, never returned or logged.
    pub token: Secret,
    /// The project: its numeric id (Settings → General) or its path (`group/project`, also
    /// accepted URL-encoded as `group%2Fproject`).
    pub project_id: String,
    /// The URL of a self-managed GitLab (`https://gitlab.example.com`); leave it out for
    /// gitlab.com. https only (plain http only for a loopback address). Calls to it go through
    /// keywire's outbound guard: private and link-local addresses are refused unless
    /// allow-listed.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Mask secrets in job logs (default `true`). keywire variables are never masked.
    #[serde(default = "yes")]
    pub masked: bool,
    /// Make every key keywire writes protected: only pipelines on protected branches and tags
    /// see it (default `false`).
    #[serde(default)]
    pub protected: bool,
    /// Send a secret that GitLab cannot mask unmasked instead of skipping it (default `false`:
    /// such a secret is reported as `skip` in the plan).
    #[serde(default)]
    pub allow_unmasked: bool,
}

impl Metadata for GitlabCiMetadata {
    fn example() -> Value {
        json!({
            "token": "glpat-example0123456789abcd",
            "projectId": "acme/shop",
            "masked": true,
            "protected": false,
            "allowUnmasked": false
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
        if let Err(why) = project_path(&self.project_id) {
            errors.push(FieldError::new("/projectId", why));
        }
        if let Some(base) = &self.base_url
            && let Err(why) = normalise_base_url(base)
        {
            errors.push(FieldError::new("/baseUrl", why));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors { errors })
        }
    }
}

/// The project as one path segment's text (a numeric id, or `group/sub/project`; the URL
/// encodes the slashes).
pub fn project_path(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit()) {
        return Ok(raw.to_owned());
    }
    let decoded = raw.replace("%2F", "/").replace("%2f", "/");
    let ok = decoded.len() <= 1024
        && decoded.split('/').count() >= 2
        && decoded.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
    if ok {
        Ok(decoded)
    } else {
        Err("must be a numeric project id or a path like `group/project` (letters, digits, `_`, `-`, `.`)".into())
    }
}

/// The GitLab URL without a trailing `/` (and without `/api/v4`, if it was pasted).
pub fn normalise_base_url(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw.trim()).map_err(|_| "must be an absolute URL".to_owned())?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
        || url
            .host_str()
            .is_some_and(|h| h.starts_with("127.") && h.parse::<std::net::Ipv4Addr>().is_ok());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must be an https URL (the token would travel in clear)".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    let mut text = url.as_str().trim_end_matches('/').to_owned();
    if let Some(stripped) = text.strip_suffix("/api/v4") {
        text = stripped.to_owned();
    }
    Ok(text)
}

/// GitLab's conservative masking rule (`Ci::Maskable::REGEX`, the set every supported version
/// documents): at least 8 characters, all from the Base64 alphabet (RFC 4648, with the URL-safe
/// `-` and `_`) or `@`, `:`, `.`, `~`.
pub fn maskable(value: &str) -> bool {
    value.chars().count() >= 8
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=_-@:.~".contains(c))
}

/// Checks a key against GitLab's rules: letters, digits and `_`, at most 255 characters.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("GitLab variable keys hold only letters, digits and `_`".into());
    }
    if key.len() > 255 {
        return Err("GitLab variable keys have at most 255 characters".into());
    }
    Ok(())
}

/// A configured GitLab CI/CD integration.
pub struct GitlabCi {
    /// The metadata it was configured with (already parsed and checked).
    pub metadata: GitlabCiMetadata,
    /// `https://gitlab.example.com` (no trailing slash).
    base: String,
    /// The project id or decoded path.
    project: String,
}

impl From<GitlabCiMetadata> for GitlabCi {
    fn from(metadata: GitlabCiMetadata) -> Self {
        // Both were checked when the metadata was parsed.
        let base = metadata
            .base_url
            .as_deref()
            .map_or(Ok(DEFAULT_BASE_URL.to_owned()), normalise_base_url)
            .unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned());
        let project = project_path(&metadata.project_id).unwrap_or_default();
        GitlabCi {
            metadata,
            base,
            project,
        }
    }
}

/// A variable as GitLab lists it. `value` is `null` for hidden variables.
#[derive(Deserialize)]
struct ApiVariable {
    key: String,
    #[serde(default)]
    value: Option<Secret>,
    #[serde(default = "all_environments")]
    environment_scope: String,
}

fn all_environments() -> String {
    ALL_ENVIRONMENTS.to_owned()
}

/// Replaces a provider message that repeats the call's value or the token.
fn scrub(text: &str, value: Option<&str>, token: &str) -> String {
    let leaks = |s: &str| !s.is_empty() && text.contains(s);
    if value.is_some_and(leaks) || leaks(token) {
        "(GitLab's message is withheld: it repeated a credential or value)".into()
    } else {
        text.to_owned()
    }
}

impl GitlabCi {
    /// `{base}/api/v4/projects/{project}/…` with each segment percent-encoded (a path's `/`
    /// becomes `%2F`, as GitLab requires).
    fn url(&self, tail: &[&str], query: &[(&str, &str)]) -> Result<String, IntegrationError> {
        let mut url = Url::parse(&self.base).map_err(|_| IntegrationError::Provider {
            message: "the GitLab base URL is not valid".into(),
            retryable: false,
            status: None,
        })?;
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v4", "projects", self.project.as_str()])
                .extend(tail);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url.into())
    }

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
            .header("PRIVATE-TOKEN", self.metadata.token.expose());
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
        let message = match parsed
            .as_ref()
            .and_then(|v| v.get("message").or(v.get("error")))
        {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => reply.excerpt().trim().to_owned(),
        };
        let message = scrub(&message, value, self.metadata.token.expose());
        let hint = match status {
            401 => " (the token is invalid, expired or revoked)",
            403 => " (the token needs the `api` scope and the Maintainer role on the project)",
            404 => " (not found, or the token cannot see the project)",
            _ => "",
        };
        let mut retry_after = reply.retry_after();
        if status == 429 && retry_after.is_none() {
            retry_after = Some(DEFAULT_RATE_LIMIT_WAIT);
        }
        IntegrationError::Http(OutboundError::Status {
            status,
            retryable: matches!(status, 408 | 409 | 425 | 429) || reply.status.is_server_error(),
            retry_after,
            excerpt: format!("{what}: {message}{hint}"),
        })
    }

    /// Whether a value keywire writes is masked.
    fn masked(&self, kind: EntryKind, value: &str) -> bool {
        kind == EntryKind::Secret && self.metadata.masked && maskable(value)
    }

    fn body(&self, change: &Change, value: &Secret) -> Value {
        json!({
            "value": value.expose(),
            "variable_type": "env_var",
            "masked": self.masked(change.kind, value.expose()),
            "protected": self.metadata.protected,
            // keywire values are literal: `$OTHER` must not be expanded by GitLab.
            "raw": true,
        })
    }

    async fn create(
        &self,
        ctx: &Context,
        change: &Change,
        value: &Secret,
    ) -> Result<(), IntegrationError> {
        let mut body = self.body(change, value);
        body["key"] = json!(change.key);
        body["environment_scope"] = json!(change.scope);
        let url = self.url(&["variables"], &[])?;
        let what = format!("creating `{}` in scope `{}`", change.key, change.scope);
        let result = self
            .call(
                ctx,
                Method::POST,
                &url,
                Some(&body),
                &what,
                Some(value.expose()),
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone (or a lost answer to an earlier try) created it since it was listed:
            // let the next sync decide, with the key in sight.
            Err(e)
                if e.status() == Some(400) && e.to_string().contains("has already been taken") =>
            {
                Err(IntegrationError::Provider {
                    message: format!(
                        "{what}: it appeared at GitLab after it was listed; the next sync decides whether keywire owns it"
                    ),
                    retryable: true,
                    status: Some(400),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn update(
        &self,
        ctx: &Context,
        change: &Change,
        value: &Secret,
    ) -> Result<(), IntegrationError> {
        let url = self.url(
            &["variables", &change.key],
            &[("filter[environment_scope]", &change.scope)],
        )?;
        let what = format!("updating `{}` in scope `{}`", change.key, change.scope);
        let body = self.body(change, value);
        match self
            .call(
                ctx,
                Method::PUT,
                &url,
                Some(&body),
                &what,
                Some(value.expose()),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Deleted since it was listed: create it.
            Err(e) if e.status() == Some(404) => self.create(ctx, change, value).await,
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, ctx: &Context, change: &Change) -> Result<(), IntegrationError> {
        let url = self.url(
            &["variables", &change.key],
            &[("filter[environment_scope]", &change.scope)],
        )?;
        let what = format!("deleting `{}` from scope `{}`", change.key, change.scope);
        match self
            .call(ctx, Method::DELETE, &url, None, &what, None)
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[async_trait]
impl Integration for GitlabCi {
    /// Reads the project (`GET /api/v4/projects/:id`): proves the URL, the token and the
    /// project, and changes nothing.
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let url = self.url(&[], &[])?;
        self.call(ctx, Method::GET, &url, None, "reading the project", None)
            .await
            .map(|_| ())
    }

    fn sync_target(&self) -> Option<&dyn SyncTarget> {
        Some(self)
    }
}

#[async_trait]
impl SyncTarget for GitlabCi {
    /// The environment scope: an environment name, a wildcard (`review/*`) or `*` (the
    /// default: every environment).
    fn scope(&self, target: Option<&str>) -> Result<String, String> {
        let target = target.map(str::trim).filter(|t| !t.is_empty());
        let Some(scope) = target else {
            return Ok(ALL_ENVIRONMENTS.to_owned());
        };
        let ok = scope.chars().count() <= 255
            && scope.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '-' | '_' | '/' | '$' | '{' | '}' | '.' | '*' | ' ')
            });
        if ok {
            Ok(scope.to_owned())
        } else {
            Err("a GitLab environment scope is an environment name or pattern (letters, digits, spaces, `-`, `_`, `/`, `$`, `{`, `}`, `.`, `*`; at most 255 characters), or `*` for all".into())
        }
    }

    fn check(&self, key: &str, kind: EntryKind, value: &str) -> Result<(), String> {
        check_key(key)?;
        if kind == EntryKind::Secret
            && self.metadata.masked
            && !self.metadata.allow_unmasked
            && !maskable(value)
        {
            return Err(UNMASKABLE.into());
        }
        Ok(())
    }

    /// The project's variables in these scopes, every page (`X-Next-Page`).
    async fn list(
        &self,
        ctx: &Context,
        scopes: &[String],
    ) -> Result<Vec<RemoteKey>, IntegrationError> {
        let wanted: BTreeSet<&str> = scopes.iter().map(String::as_str).collect();
        let per_page = PER_PAGE.to_string();
        let mut out = Vec::new();
        let mut page = 1_usize;
        for _ in 0..MAX_PAGES {
            let page_text = page.to_string();
            let url = self.url(
                &["variables"],
                &[("per_page", &per_page), ("page", &page_text)],
            )?;
            let reply = self
                .call(
                    ctx,
                    Method::GET,
                    &url,
                    None,
                    "listing the project's variables",
                    None,
                )
                .await?;
            let variables: Vec<ApiVariable> =
                serde_json::from_slice(&reply.body).map_err(|_| IntegrationError::Provider {
                    message: "GitLab's list of variables was not the documented JSON".into(),
                    retryable: false,
                    status: Some(reply.status.as_u16()),
                })?;
            let full = variables.len() >= PER_PAGE;
            for variable in variables {
                if wanted.contains(variable.environment_scope.as_str()) {
                    out.push(RemoteKey {
                        scope: variable.environment_scope,
                        key: variable.key,
                        value: variable.value,
                        handle: None,
                        // GitLab has no secret/variable distinction to report.
                        kind: None,
                    });
                }
            }
            let next = reply
                .headers
                .get("x-next-page")
                .and_then(|h| h.to_str().ok())
                .map(str::trim);
            page = match next {
                Some("") => return Ok(out),
                Some(n) => match n.parse::<usize>() {
                    Ok(n) if n > page => n,
                    _ => {
                        return Err(IntegrationError::Provider {
                            message: "GitLab's X-Next-Page did not advance".into(),
                            retryable: true,
                            status: None,
                        });
                    }
                },
                // No pagination headers: a full page may have a successor.
                None if full => page + 1,
                None => return Ok(out),
            };
        }
        Err(IntegrationError::Provider {
            message: format!("more than {MAX_PAGES} pages of variables"),
            retryable: false,
            status: None,
        })
    }

    async fn write(&self, ctx: &Context, change: &Change) -> Result<(), IntegrationError> {
        match (&change.op, &change.existing) {
            (Op::Upsert(value), None) => self.create(ctx, change, value).await,
            (Op::Upsert(value), Some(_)) => self.update(ctx, change, value).await,
            (Op::Delete, _) => self.delete(ctx, change).await,
        }
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<GitlabCiMetadata, GitlabCi>(
        "gitlab_ci",
        "GitLab CI/CD",
        "Keeps a GitLab project's CI/CD variables, per environment scope, equal to a project's secrets and variables, masking secrets.",
    )
    .category(Category::Infrastructure)
    .events(keywire_core::sync::SYNC_EVENTS)
    .actions(&[ACTION_UPSERT, ACTION_DELETE, ACTION_CLEANUP_ON_REMOVE])
    .scope(ScopeRule::PROJECT_ENVIRONMENTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_follows_gitlabs_conservative_rule() {
        for ok in ["abcdefgh", "a+b/c=d_e-f@g:h.i~j", "QUJDREVGR0g="] {
            assert!(maskable(ok), "{ok}");
        }
        for bad in [
            "short7!",
            "abcdefg",
            "has space in",
            "line\nbreak1",
            "dollar$sign",
            "pipe|char",
            "ümlautsss",
        ] {
            assert!(!maskable(bad), "{bad}");
        }
    }

    #[test]
    fn projects_and_base_urls_are_normalised() {
        assert_eq!(project_path("4242"), Ok("4242".into()));
        assert_eq!(project_path("acme/shop"), Ok("acme/shop".into()));
        assert_eq!(
            project_path("acme%2Fsub%2fshop"),
            Ok("acme/sub/shop".into())
        );
        for bad in ["", "shop", "acme//shop", "acme/../x", "acme/sh op", "a/b?c"] {
            assert!(project_path(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalise_base_url("https://git.example.com/gitlab/api/v4/"),
            Ok("https://git.example.com/gitlab".into())
        );
        assert_eq!(
            normalise_base_url("http://127.0.0.1:8080"),
            Ok("http://127.0.0.1:8080".into())
        );
        for bad in [
            "http://git.example.com",
            "ftp://git.example.com",
            "https://u:p@git.example.com",
            "https://git.example.com/?x=1",
            "git.example.com",
        ] {
            assert!(normalise_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_encode_the_project_path_and_the_scope_filter() {
        let gitlab = GitlabCi::from(
            keywire_core::parse_metadata::<GitlabCiMetadata>(&json!({
                "token": "t", "projectId": "acme/shop", "baseUrl": "https://git.example.com/gl/"
            }))
            .unwrap(),
        );
        assert_eq!(
            gitlab
                .url(
                    &["variables", "KEY"],
                    &[("filter[environment_scope]", "review/*")]
                )
                .unwrap(),
            "https://git.example.com/gl/api/v4/projects/acme%2Fshop/variables/KEY?filter%5Benvironment_scope%5D=review%2F*"
        );
    }

    #[test]
    fn scopes_default_to_all_environments() {
        let gitlab = GitlabCi::from(
            keywire_core::parse_metadata::<GitlabCiMetadata>(&GitlabCiMetadata::example()).unwrap(),
        );
        assert_eq!(gitlab.scope(None), Ok("*".into()));
        assert_eq!(gitlab.scope(Some("  ")), Ok("*".into()));
        assert_eq!(gitlab.scope(Some("review/*")), Ok("review/*".into()));
        assert!(gitlab.scope(Some("bad\"scope")).is_err());
        assert!(gitlab.scope(Some(&"x".repeat(256))).is_err());
    }

    #[test]
    fn keys_and_unmaskable_secrets_are_refused_without_the_value() {
        let mut gitlab = GitlabCi::from(
            keywire_core::parse_metadata::<GitlabCiMetadata>(&GitlabCiMetadata::example()).unwrap(),
        );
        assert!(gitlab.check("A-B", EntryKind::Variable, "v").is_err());
        assert!(
            gitlab
                .check(&"K".repeat(256), EntryKind::Variable, "v")
                .is_err()
        );
        let reason = gitlab
            .check("SHORT", EntryKind::Secret, "p@ss w0rd!")
            .unwrap_err();
        assert!(reason.contains("allowUnmasked") && !reason.contains("p@ss w0rd!"));
        assert_eq!(
            gitlab.check("SHORT", EntryKind::Variable, "p@ss w0rd!"),
            Ok(())
        );
        gitlab.metadata.allow_unmasked = true;
        assert_eq!(
            gitlab.check("SHORT", EntryKind::Secret, "p@ss w0rd!"),
            Ok(())
        );
        assert!(!gitlab.masked(EntryKind::Secret, "p@ss w0rd!"));
        assert!(gitlab.masked(EntryKind::Secret, "abcdefgh12"));
        gitlab.metadata.masked = false;
        assert!(!gitlab.masked(EntryKind::Secret, "abcdefgh12"));
        gitlab.metadata.allow_unmasked = false;
        assert_eq!(
            gitlab.check("SHORT", EntryKind::Secret, "p@ss w0rd!"),
            Ok(())
        );
    }
}
