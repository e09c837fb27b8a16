#![doc = include_str!("../README.md")]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::types::Environment;
use keywire_core::schemars::JsonSchema;
use keywire_core::sync::{Change, EntryKind, Op, RemoteKey, SyncTarget};
use keywire_core::{
    ACTION_CLEANUP_ON_REMOVE, ACTION_DELETE, ACTION_UPSERT, AllowRule, Applied, Category, Context,
    FieldError, FieldErrors, Integration, IntegrationDescriptor, IntegrationError, Metadata,
    OutboundError, OutboundPolicy, ScopeRule, Secret, Url, async_trait, inventory, is_private_ip,
};
use serde::Deserialize;
use serde_json::{Value, json};

mod http;

/// Lambda's limit on a function's environment variables: their JSON must fit in 4 KB.
pub const MAX_VARIABLES_BYTES: usize = 4096;
/// How often a write is tried when the function changed concurrently (`RevisionId` conflict).
pub const MAX_REVISION_ATTEMPTS: usize = 4;
/// Keys Lambda reserves (the runtime sets them); it refuses a configuration that sets them.
pub const RESERVED_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
    "TZ",
];

/// Metadata of an AWS Lambda integration.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsLambdaMetadata {
    /// The AWS Region of the function, e.g. `eu-west-1`.
    pub region: String,
    /// The function: its name (`my-function`), ARN
    /// (`arn:aws:lambda:eu-west-1:123456789012:function:my-function`) or partial ARN
    /// (`123456789012:function:my-function`), without a version or alias (Lambda changes the
    /// configuration of `$LATEST`).
    pub function_name: String,
    /// The access key id of an IAM identity allowed `lambda:GetFunctionConfiguration` and
    /// `lambda:UpdateFunctionConfiguration` on the function (`AKIA…` or, with a session token,
    /// `ASIA…`).
    pub access_key_id: String,
    /// The secret access key of that identity. A credential: write-only, never returned or
    /// logged; it signs requests (SigV4) and is never sent.
    pub secret_access_key: Secret,
    /// A session token, for temporary credentials (`ASIA…` access keys). A credential.
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// Another endpoint than AWS's for the Lambda API, such as LocalStack
    /// (`http://localstack.internal:4566`). Private and link-local addresses are refused unless
    /// the operator allow-lists them (`KEYWIRE_OUTBOUND_ALLOW`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

impl Metadata for AwsLambdaMetadata {
    fn example() -> Value {
        json!({
            "region": "eu-west-1",
            "functionName": "checkout-api",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        })
    }

    fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        if let Err(why) = check_region(&self.region) {
            errors.push(FieldError::new("/region", why));
        }
        if let Err(why) = check_function_name(&self.function_name) {
            errors.push(FieldError::new("/functionName", why));
        }
        let akid_ok = (16..=128).contains(&self.access_key_id.len())
            && self
                .access_key_id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !akid_ok {
            errors.push(FieldError::new(
                "/accessKeyId",
                "must be an AWS access key id (16 to 128 upper-case letters and digits, e.g. AKIA…)",
            ));
        }
        if self.secret_access_key.expose().trim() != self.secret_access_key.expose() {
            errors.push(FieldError::new(
                "/secretAccessKey",
                "must not have surrounding spaces",
            ));
        }
        if let Some(endpoint) = &self.endpoint_url
            && let Err(why) = parse_endpoint(endpoint)
        {
            errors.push(FieldError::new("/endpointUrl", why));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors { errors })
        }
    }
}

/// Region codes: lower-case letters, digits and single dashes (`eu-west-1`, `us-gov-east-1`).
fn check_region(region: &str) -> Result<(), String> {
    let ok = (4..=32).contains(&region.len())
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !region.contains("--")
        && region.ends_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err("must be an AWS Region code such as `eu-west-1`".into())
    }
}

/// A name, partial ARN or ARN, unqualified.
fn check_function_name(name: &str) -> Result<(), String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let account_ok = |a: &str| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit());
    let parts: Vec<&str> = name.split(':').collect();
    let ok = name.len() <= 140
        && match parts.as_slice() {
            [n] => name_ok(n),
            [account, "function", n] => account_ok(account) && name_ok(n),
            ["arn", partition, "lambda", region, account, "function", n] => {
                partition.starts_with("aws")
                    && check_region(region).is_ok()
                    && account_ok(account)
                    && name_ok(n)
            }
            _ => false,
        };
    if ok {
        Ok(())
    } else {
        Err("must be a function name, ARN or partial ARN without a version or alias (`my-function`, `123456789012:function:my-function`)".into())
    }
}

fn parse_endpoint(raw: &str) -> Result<Url, String> {
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
    Ok(url)
}

/// Whether an allow-list rule admits a private address.
fn allow_rule_admits(rule: &AllowRule, ip: IpAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let AllowRule::Cidr { network, prefix } = rule else {
        // Host rules admit names, which the guarded resolver checks; an IP literal is no name.
        return false;
    };
    match (canonical(ip), canonical(*network)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let bits = u32::from(*prefix).min(32);
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits = u32::from(*prefix).min(128);
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Refuses an endpoint whose host is a private or reserved IP literal that the policy does not
/// allow-list. (The SDK's requests go through keywire's guarded client, whose DNS hook checks
/// host names; an IP literal never reaches DNS, so it is checked here, up front.)
fn check_endpoint_policy(url: &Url, policy: &OutboundPolicy) -> Result<(), IntegrationError> {
    let host = url.host_str().unwrap_or_default();
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    if is_private_ip(ip) && !policy.allow.iter().any(|rule| allow_rule_admits(rule, ip)) {
        return Err(IntegrationError::Http(OutboundError::Refused(
            "endpointUrl points to a private or reserved address (allow-list it with KEYWIRE_OUTBOUND_ALLOW)"
                .into(),
        )));
    }
    Ok(())
}

/// A configured AWS Lambda integration.
pub struct AwsLambda {
    metadata: AwsLambdaMetadata,
}

impl From<AwsLambdaMetadata> for AwsLambda {
    fn from(metadata: AwsLambdaMetadata) -> Self {
        AwsLambda { metadata }
    }
}

/// The function's variables as read, with the revision they belong to.
struct Current {
    variables: BTreeMap<String, String>,
    revision_id: Option<String>,
}

/// Removes credentials and values from provider text (Lambda's 4 KB error, for one, echoes the
/// whole variable set).
struct Scrubber {
    secrets: Vec<String>,
}

impl Scrubber {
    fn scrub(&self, text: &str) -> String {
        // Lambda's size error quotes every variable after this phrase: drop it whole.
        let mut text = match text.find("String measured") {
            Some(at) => format!("{}[variables omitted]", &text[..at]),
            None => text.to_owned(),
        };
        for secret in &self.secrets {
            if secret.len() >= 4 {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text.chars().take(300).collect()
    }
}

impl AwsLambda {
    fn scrubber<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> Scrubber {
        let mut secrets: Vec<String> = values.into_iter().map(str::to_owned).collect();
        secrets.push(self.metadata.secret_access_key.expose().to_owned());
        if let Some(token) = &self.metadata.session_token {
            secrets.push(token.expose().to_owned());
        }
        // Longest first, so a value containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrubber { secrets }
    }

    /// The SDK client for one call, sending through keywire's guarded HTTP client.
    fn client(&self, ctx: &Context) -> Result<aws_sdk_lambda::Client, IntegrationError> {
        let credentials = Credentials::new(
            self.metadata.access_key_id.clone(),
            self.metadata.secret_access_key.expose().to_owned(),
            self.metadata
                .session_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
            None,
            "keywire",
        );
        let mut config = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.metadata.region.clone()))
            .credentials_provider(credentials)
            .http_client(http::KeywireHttpClient::new(ctx.http.clone()))
            // keywire's run scheduler retries, honouring Retry-After; the SDK must not also.
            .retry_config(RetryConfig::disabled());
        if let Some(raw) = &self.metadata.endpoint_url {
            let url = parse_endpoint(raw).map_err(|why| IntegrationError::Provider {
                message: format!("endpointUrl {why}"),
                retryable: false,
                status: None,
            })?;
            check_endpoint_policy(&url, ctx.http.policy())?;
            config = config.endpoint_url(url.as_str().trim_end_matches('/'));
        }
        Ok(aws_sdk_lambda::Client::from_conf(config.build()))
    }

    fn function(&self) -> String {
        format!("function `{}`", self.metadata.function_name)
    }

    async fn read(
        &self,
        client: &aws_sdk_lambda::Client,
        scrubber: &Scrubber,
    ) -> Result<Current, IntegrationError> {
        let output = client
            .get_function_configuration()
            .function_name(&self.metadata.function_name)
            .send()
            .await
            .map_err(|e| sdk_error(e, &format!("reading {}", self.function()), scrubber))?;
        let environment = output.environment();
        if let Some(error) = environment.and_then(|e| e.error()) {
            return Err(IntegrationError::Provider {
                message: format!(
                    "Lambda cannot read the environment variables of {} ({}): keywire will not write them, as that would replace variables it cannot see",
                    self.function(),
                    error.error_code().unwrap_or("unknown error")
                ),
                retryable: false,
                status: None,
            });
        }
        let variables = environment
            .and_then(|e| e.variables())
            .map(|vars| {
                vars.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default();
        Ok(Current {
            variables,
            revision_id: output.revision_id().map(str::to_owned),
        })
    }

    /// Merges the changes into the function's current variables and writes them in one
    /// `UpdateFunctionConfiguration`, with the `RevisionId` read; on a concurrent change,
    /// reads again and retries.
    async fn apply_all(&self, ctx: &Context, changes: &[Change]) -> Result<(), IntegrationError> {
        if changes.is_empty() {
            return Ok(());
        }
        let client = self.client(ctx)?;
        let mut last_conflict = None;
        for attempt in 1..=MAX_REVISION_ATTEMPTS {
            let scrubber = self.scrubber(changes.iter().filter_map(|c| match &c.op {
                Op::Upsert(v) => Some(v.expose()),
                Op::Delete => None,
            }));
            let current = self.read(&client, &scrubber).await?;
            let mut merged = current.variables.clone();
            for change in changes {
                match &change.op {
                    Op::Upsert(value) => {
                        merged.insert(change.key.clone(), value.expose().to_owned());
                    }
                    Op::Delete => {
                        merged.remove(&change.key);
                    }
                }
            }
            if merged == current.variables {
                return Ok(());
            }
            let size = variables_size(&merged);
            if size > MAX_VARIABLES_BYTES {
                return Err(IntegrationError::Provider {
                    message: format!(
                        "the environment variables of {} would take {size} bytes as JSON ({} keys), over Lambda's limit of 4 KB ({MAX_VARIABLES_BYTES} bytes): nothing was written; remove keys or values from the environment",
                        self.function(),
                        merged.len()
                    ),
                    retryable: false,
                    status: None,
                });
            }
            let scrubber = self.scrubber(
                merged
                    .values()
                    .chain(current.variables.values())
                    .map(String::as_str),
            );
            let result = client
                .update_function_configuration()
                .function_name(&self.metadata.function_name)
                .environment(
                    Environment::builder()
                        .set_variables(Some(merged.into_iter().collect()))
                        .build(),
                )
                .set_revision_id(current.revision_id)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_precondition_failed_exception()) =>
                {
                    tracing::info!(
                        attempt,
                        function = %self.metadata.function_name,
                        "Lambda RevisionId changed concurrently; reading the function again"
                    );
                    last_conflict = Some(sdk_error(
                        e,
                        &format!("writing {}", self.function()),
                        &scrubber,
                    ));
                }
                Err(e) => {
                    return Err(sdk_error(
                        e,
                        &format!("writing {}", self.function()),
                        &scrubber,
                    ));
                }
            }
        }
        let detail = last_conflict.map(|e| e.to_string()).unwrap_or_default();
        Err(IntegrationError::Provider {
            message: format!(
                "{} kept changing while keywire wrote it ({MAX_REVISION_ATTEMPTS} RevisionId conflicts): {detail}",
                self.function()
            ),
            retryable: true,
            status: Some(412),
        })
    }
}

/// The size Lambda counts: the variables as a JSON object.
pub fn variables_size(variables: &BTreeMap<String, String>) -> usize {
    serde_json::to_string(variables).map_or(usize::MAX, |s| s.len())
}

/// Maps an SDK error. Its `Display` says only "service error", so the Lambda error code and
/// message (scrubbed) make the message, and are logged.
fn sdk_error<E>(error: SdkError<E>, what: &str, scrubber: &Scrubber) -> IntegrationError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let raw = service.raw();
            let status = raw.status().as_u16();
            let code = service.err().code().unwrap_or("UnknownError");
            let message = scrubber.scrub(service.err().message().unwrap_or_default());
            let retry_after = raw
                .headers()
                .get("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            tracing::warn!(status, code, message = %message, "{what}: Lambda error");
            let retryable = matches!(status, 408 | 409 | 412 | 425 | 429)
                || (500..600).contains(&status)
                || matches!(
                    code,
                    "TooManyRequestsException"
                        | "ServiceException"
                        | "ResourceConflictException"
                        | "ResourceNotReadyException"
                        | "ThrottlingException"
                );
            let hint = match code {
                "ResourceNotFoundException" => " (check functionName and region)",
                "UnrecognizedClientException" | "InvalidSignatureException" => {
                    " (check accessKeyId and secretAccessKey)"
                }
                "AccessDeniedException" | "AccessDeniedExceptionV2" => {
                    " (the identity needs lambda:GetFunctionConfiguration and lambda:UpdateFunctionConfiguration)"
                }
                "ExpiredTokenException" => " (the session token expired)",
                _ => "",
            };
            IntegrationError::Http(OutboundError::Status {
                status,
                retryable,
                retry_after,
                excerpt: format!("{what}: {code}: {message}{hint}"),
            })
        }
        SdkError::DispatchFailure(failure) => {
            // keywire's own client failed: hand back its error (refused, timeout, network).
            let outbound = failure
                .as_connector_error()
                .and_then(std::error::Error::source)
                .and_then(|source| source.downcast_ref::<OutboundError>())
                .cloned();
            match outbound {
                Some(outbound) => IntegrationError::Http(outbound),
                None => IntegrationError::Http(OutboundError::Network(format!(
                    "{what}: the request could not be sent"
                ))),
            }
        }
        SdkError::TimeoutError(_) => IntegrationError::Http(OutboundError::Timeout),
        SdkError::ResponseError(response) => IntegrationError::Provider {
            message: format!(
                "{what}: Lambda answered HTTP {} with a body that could not be read",
                response.raw().status().as_u16()
            ),
            retryable: true,
            status: Some(response.raw().status().as_u16()),
        },
        SdkError::ConstructionFailure(_) => IntegrationError::Provider {
            message: format!(
                "{what}: the request could not be built (check region, functionName and endpointUrl)"
            ),
            retryable: false,
            status: None,
        },
        _ => IntegrationError::Provider {
            message: format!("{what}: the AWS SDK failed"),
            retryable: true,
            status: None,
        },
    }
}

#[async_trait]
impl Integration for AwsLambda {
    /// `GetFunctionConfiguration`: the credentials work and the function exists. Writes nothing.
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let client = self.client(ctx)?;
        self.read(&client, &self.scrubber([])).await.map(drop)
    }

    fn sync_target(&self) -> Option<&dyn SyncTarget> {
        Some(self)
    }
}

#[async_trait]
impl SyncTarget for AwsLambda {
    /// A function has one set of environment variables: the target is always empty.
    fn scope(&self, target: Option<&str>) -> Result<String, String> {
        match target.map(str::trim) {
            None | Some("") => Ok(String::new()),
            Some(_) => Err(
                "an AWS Lambda function has one set of environment variables: leave the target empty"
                    .into(),
            ),
        }
    }

    fn check(&self, key: &str, _kind: EntryKind, value: &str) -> Result<(), String> {
        let pattern_ok = key.len() >= 2
            && key.starts_with(|c: char| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !pattern_ok {
            return Err("Lambda keys start with a letter and hold at least two letters, digits or `_` ([a-zA-Z][a-zA-Z0-9_]+)".into());
        }
        if RESERVED_KEYS.contains(&key) {
            return Err(format!(
                "Lambda reserves `{key}` for its runtime (it cannot be set)"
            ));
        }
        let alone = variables_size(&BTreeMap::from([(key.to_owned(), value.to_owned())]));
        if alone > MAX_VARIABLES_BYTES {
            return Err(format!(
                "this key and its value alone take {alone} bytes as JSON, over Lambda's 4 KB limit for all variables"
            ));
        }
        Ok(())
    }

    async fn list(
        &self,
        ctx: &Context,
        scopes: &[String],
    ) -> Result<Vec<RemoteKey>, IntegrationError> {
        if scopes.iter().all(|s| !s.is_empty()) {
            return Ok(Vec::new());
        }
        let client = self.client(ctx)?;
        let current = self.read(&client, &self.scrubber([])).await?;
        Ok(current
            .variables
            .into_iter()
            .map(|(key, value)| RemoteKey {
                scope: String::new(),
                key,
                value: Some(Secret::new(value)),
                handle: None,
                kind: None,
            })
            .collect())
    }

    async fn write(&self, ctx: &Context, change: &Change) -> Result<(), IntegrationError> {
        self.apply_all(ctx, std::slice::from_ref(change)).await
    }

    /// All changes in one write: either all are done or none.
    async fn apply(&self, ctx: &Context, changes: &[Change]) -> Applied {
        match self.apply_all(ctx, changes).await {
            Ok(()) => Applied {
                done: changes.len(),
                error: None,
            },
            Err(error) => Applied {
                done: 0,
                error: Some(error),
            },
        }
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<AwsLambdaMetadata, AwsLambda>(
        "aws_lambda",
        "AWS Lambda",
        "Keeps one environment's secrets and variables in an AWS Lambda function's environment variables, next to the variables keywire does not manage.",
    )
    .category(Category::Infrastructure)
    .events(keywire_core::sync::SYNC_EVENTS)
    .actions(&[ACTION_UPSERT, ACTION_DELETE, ACTION_CLEANUP_ON_REMOVE])
    .scope(ScopeRule::PROJECT_ONE_ENVIRONMENT)
}
