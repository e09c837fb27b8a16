//! A fake of the AWS Lambda REST-JSON API for function configuration
//! (`GET`/`PUT /2015-03-31/functions/{name}/configuration`), checking requests the way Lambda
//! does:
//!
//! - SigV4: an `Authorization` header of the form `AWS4-HMAC-SHA256 Credential=<akid>/<date>/
//!   <region>/lambda/aws4_request, SignedHeaders=…, Signature=<64 hex>`, an `x-amz-date` within
//!   15 minutes whose day matches the credential's, `host` and `x-amz-date` signed, the session
//!   token (`x-amz-security-token`) when the credentials need one, and the signature itself,
//!   recomputed with the secret key (403 `IncompleteSignatureException`,
//!   `UnrecognizedClientException` or `InvalidSignatureException` otherwise);
//! - the function by name, partial ARN or ARN (404 `ResourceNotFoundException`);
//! - variable keys (`[a-zA-Z][a-zA-Z0-9_]+`, not reserved) and the 4 KB limit on their JSON
//!   (400 `InvalidParameterValueException`, whose message — as Lambda's does — quotes the
//!   variables it measured);
//! - `RevisionId`: it changes on every write, and a stale one gets 412
//!   `PreconditionFailedException`.
//!
//! Errors carry `x-amzn-ErrorType` and Lambda's JSON body (`{"Type": …, "message": …}`); a
//! throttled request gets 429 `TooManyRequestsException` with `Retry-After`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fake::{FakeResponse, FakeServer, RecordedRequest};

/// The access key id the fake knows.
pub const ACCESS_KEY_ID: &str = "AKIAKEYWIREFAKE00001";
/// Its secret access key (the fake checks signatures with it).
pub const SECRET_ACCESS_KEY: &str = "kwFake/SecretAccessKey+0123456789abcdefXYZ";
/// The region the fake serves.
pub const REGION: &str = "eu-west-1";
/// The account id in the function's ARN.
pub const ACCOUNT: &str = "123456789012";
/// The function the fake holds.
pub const FUNCTION: &str = "checkout-api";
/// Lambda's limit on the JSON of a function's variables.
pub const MAX_VARIABLES_BYTES: usize = 4096;

/// Keys Lambda reserves.
const RESERVED: &[&str] = &[
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

struct State {
    variables: BTreeMap<String, String>,
    revision: u64,
    revision_ids: bool,
    session_token: Option<String>,
    concurrent_changes: usize,
    queued: VecDeque<FakeResponse>,
    queued_writes: VecDeque<FakeResponse>,
    writes: usize,
    size_limit: usize,
}

/// A running Lambda fake holding one function. Stops when dropped.
pub struct FakeLambda {
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A Lambda error answer: status, `x-amzn-ErrorType` and the JSON body.
pub fn lambda_error(status: u16, code: &str, message: &str) -> FakeResponse {
    let kind = if status >= 500 { "Service" } else { "User" };
    FakeResponse::json(status, json!({"Type": kind, "message": message}))
        .with_header("x-amzn-errortype", code)
        .with_header("x-amzn-requestid", "6c3b1c53-1d7f-4e2a-9d0e-000000000000")
}

fn revision_id(n: u64) -> String {
    format!(
        "{:08x}-5f1c-4d3e-9a2b-{:012x}",
        n.wrapping_mul(2_654_435_761) & 0xffff_ffff,
        n
    )
}

fn function_arn() -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}")
}

/// `aws_lambda` metadata that reaches this fake (as `endpointUrl`, so use a context that
/// allows 127.0.0.1, such as [`crate::context`]).
pub fn metadata(fake: &FakeLambda) -> Value {
    json!({
        "region": REGION,
        "functionName": FUNCTION,
        "accessKeyId": ACCESS_KEY_ID,
        "secretAccessKey": SECRET_ACCESS_KEY,
        "endpointUrl": fake.url(),
    })
}

impl FakeLambda {
    /// Starts the fake: function `checkout-api` in `eu-west-1`, without variables, answering
    /// with a `RevisionId`, for credentials without a session token.
    pub fn start() -> FakeLambda {
        let state = Arc::new(Mutex::new(State {
            variables: BTreeMap::new(),
            revision: 1,
            revision_ids: true,
            session_token: None,
            concurrent_changes: 0,
            queued: VecDeque::new(),
            queued_writes: VecDeque::new(),
            writes: 0,
            size_limit: MAX_VARIABLES_BYTES,
        }));
        let shared = state.clone();
        let server = FakeServer::start(move |req| handle(&shared, req));
        FakeLambda { server, state }
    }

    /// `http://127.0.0.1:<port>`: use as `endpointUrl`.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The underlying server.
    pub fn server(&self) -> &FakeServer {
        &self.server
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Sets variables as someone else would (a new revision).
    pub fn set_variables(&self, variables: &[(&str, &str)]) {
        let mut state = lock(&self.state);
        for (k, v) in variables {
            state.variables.insert((*k).to_owned(), (*v).to_owned());
        }
        state.revision += 1;
    }

    /// The function's variables.
    pub fn variables(&self) -> BTreeMap<String, String> {
        lock(&self.state).variables.clone()
    }

    /// The current `RevisionId`.
    pub fn revision_id(&self) -> String {
        revision_id(lock(&self.state).revision)
    }

    /// How many `UpdateFunctionConfiguration` calls succeeded.
    pub fn writes(&self) -> usize {
        lock(&self.state).writes
    }

    /// Behaves like a Lambda-compatible API that returns no `RevisionId`.
    pub fn without_revision_ids(&self) {
        lock(&self.state).revision_ids = false;
    }

    /// Requires temporary credentials: this session token in `x-amz-security-token`.
    pub fn require_session_token(&self, token: &str) {
        lock(&self.state).session_token = Some(token.to_owned());
    }

    /// The next `n` updates find the function changed by someone else just before they
    /// arrive (a variable `CONCURRENT_<i>` is set and the revision moves on), so an update
    /// carrying the revision it read gets 412 `PreconditionFailedException`.
    pub fn concurrent_changes(&self, n: usize) {
        lock(&self.state).concurrent_changes = n;
    }

    /// Answers the next (authenticated) request with `response` instead of serving it.
    pub fn fail_next(&self, response: FakeResponse) {
        lock(&self.state).queued.push_back(response);
    }

    /// Answers the next (authenticated) `UpdateFunctionConfiguration` with `response`.
    pub fn fail_next_write(&self, response: FakeResponse) {
        lock(&self.state).queued_writes.push_back(response);
    }

    /// The next request is throttled: 429 `TooManyRequestsException` with `Retry-After`.
    pub fn rate_limit_next(&self, retry_after_secs: u64) {
        self.fail_next(
            FakeResponse::json(
                429,
                json!({"Reason": "CallerRateLimitExceeded", "Type": "User", "message": "Rate exceeded",
                       "retryAfterSeconds": retry_after_secs.to_string()}),
            )
            .with_header("x-amzn-errortype", "TooManyRequestsException")
            .with_header("retry-after", &retry_after_secs.to_string()),
        );
    }

    /// Lowers the size limit the fake enforces (to see how Lambda's own refusal is handled).
    pub fn set_size_limit(&self, bytes: usize) {
        lock(&self.state).size_limit = bytes;
    }
}

fn configuration(state: &State, status: &str) -> Value {
    let mut config = json!({
        "FunctionName": FUNCTION,
        "FunctionArn": function_arn(),
        "Runtime": "nodejs22.x",
        "Role": format!("arn:aws:iam::{ACCOUNT}:role/checkout-api-role"),
        "Handler": "index.handler",
        "CodeSize": 1024,
        "Description": "",
        "Timeout": 3,
        "MemorySize": 128,
        "LastModified": "2026-11-28T10:00:00.000+0000",
        "CodeSha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "Version": "$LATEST",
        "TracingConfig": {"Mode": "PassThrough"},
        "State": "Active",
        "LastUpdateStatus": status,
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
    });
    if !state.variables.is_empty() {
        config["Environment"] = json!({"Variables": state.variables});
    }
    if state.revision_ids {
        config["RevisionId"] = json!(revision_id(state.revision));
    }
    config
}

fn handle(state: &Mutex<State>, req: &RecordedRequest) -> FakeResponse {
    let mut state = lock(state);
    if let Err(refused) = check_signature(req, state.session_token.as_deref()) {
        return refused;
    }
    if let Some(queued) = state.queued.pop_front() {
        return queued;
    }
    if req.method == "PUT"
        && let Some(queued) = state.queued_writes.pop_front()
    {
        return queued;
    }
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let name = match segments.as_slice() {
        ["2015-03-31", "functions", name, "configuration"] => percent_decode(name),
        _ => {
            return lambda_error(404, "UnknownOperationException", "Unknown operation");
        }
    };
    let known = [
        FUNCTION.to_owned(),
        format!("{ACCOUNT}:function:{FUNCTION}"),
        function_arn(),
    ];
    if !known.contains(&name) {
        return lambda_error(
            404,
            "ResourceNotFoundException",
            &format!("Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
        );
    }
    match req.method.as_str() {
        "GET" => FakeResponse::json(200, configuration(&state, "Successful")),
        "PUT" => {
            if req.header("content-type") != Some("application/json") {
                return lambda_error(
                    415,
                    "UnsupportedMediaTypeException",
                    "Unsupported Media Type",
                );
            }
            let body = req.json();
            let Some(body) = body.as_object() else {
                return lambda_error(400, "InvalidParameterValueException", "Invalid JSON");
            };
            if state.concurrent_changes > 0 {
                state.concurrent_changes -= 1;
                let n = state.revision;
                state
                    .variables
                    .insert(format!("CONCURRENT_{n}"), "set by someone else".into());
                state.revision += 1;
            }
            if let Some(given) = body.get("RevisionId").and_then(Value::as_str)
                && given != revision_id(state.revision)
            {
                return lambda_error(
                    412,
                    "PreconditionFailedException",
                    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
                );
            }
            if let Some(environment) = body.get("Environment") {
                let variables: BTreeMap<String, String> = match environment
                    .get("Variables")
                    .cloned()
                    .map(serde_json::from_value)
                    .transpose()
                {
                    Ok(v) => v.unwrap_or_default(),
                    Err(_) => {
                        return lambda_error(
                            400,
                            "InvalidParameterValueException",
                            "Environment.Variables must map strings to strings",
                        );
                    }
                };
                let bad_key = variables.keys().find(|k| {
                    !(k.len() >= 2
                        && k.starts_with(|c: char| c.is_ascii_alphabetic())
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                });
                if let Some(key) = bad_key {
                    return lambda_error(
                        400,
                        "InvalidParameterValueException",
                        &format!(
                            "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] ({key})"
                        ),
                    );
                }
                let reserved: Vec<&str> = variables
                    .keys()
                    .filter(|k| RESERVED.contains(&k.as_str()))
                    .map(String::as_str)
                    .collect();
                if !reserved.is_empty() {
                    return lambda_error(
                        400,
                        "InvalidParameterValueException",
                        &format!(
                            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
                            reserved.join(", ")
                        ),
                    );
                }
                let measured = serde_json::to_string(&variables).expect("JSON");
                if measured.len() > state.size_limit {
                    // As Lambda does, the message quotes what it measured.
                    return lambda_error(
                        400,
                        "InvalidParameterValueException",
                        &format!(
                            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {measured}"
                        ),
                    );
                }
                state.variables = variables;
            }
            state.revision += 1;
            state.writes += 1;
            FakeResponse::json(200, configuration(&state, "InProgress"))
        }
        _ => lambda_error(405, "MethodNotAllowedException", "Method Not Allowed"),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 encoding as SigV4 wants it (unreserved characters kept).
fn uri_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Seconds since 1970 of a `YYYYMMDDTHHMMSSZ` time.
fn parse_amz_date(text: &str) -> Option<i64> {
    let ok = text.len() == 16
        && text.as_bytes()[8] == b'T'
        && text.ends_with('Z')
        && text[..8].bytes().all(|b| b.is_ascii_digit())
        && text[9..15].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text[range].parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn signature_error(code: &str, message: &str) -> FakeResponse {
    FakeResponse::json(403, json!({"message": message})).with_header("x-amzn-errortype", code)
}

/// Checks the SigV4 signature the way AWS does; `Err` is the answer to give.
fn check_signature(req: &RecordedRequest, session_token: Option<&str>) -> Result<(), FakeResponse> {
    let Some(authorization) = req.header("authorization") else {
        return Err(signature_error(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let incomplete = |what: &str| {
        signature_error(
            "IncompleteSignatureException",
            &format!("Authorization header requires {what}. Authorization=AWS4-HMAC-SHA256 …"),
        )
    };
    let Some(fields) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(incomplete("the AWS4-HMAC-SHA256 algorithm"));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(',').map(str::trim) {
        match field.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {
                return Err(incomplete(
                    "well-formed 'Credential', 'SignedHeaders' and 'Signature' parameters",
                ));
            }
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(
            "'Credential', 'SignedHeaders' and 'Signature' parameters",
        ));
    };
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(incomplete("a 'Signature' of 64 lower-case hex digits"));
    }
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, day, region, service, terminator] = scope.as_slice() else {
        return Err(incomplete(
            "a 'Credential' of the form <key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if *terminator != "aws4_request" || day.len() != 8 {
        return Err(incomplete(
            "a 'Credential' of the form <key>/<date>/<region>/<service>/aws4_request",
        ));
    }
    if *akid != ACCESS_KEY_ID {
        return Err(signature_error(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if *region != REGION {
        return Err(signature_error(
            "InvalidSignatureException",
            &format!("Credential should be scoped to a valid region, not '{region}'."),
        ));
    }
    if *service != "lambda" {
        return Err(signature_error(
            "InvalidSignatureException",
            &format!(
                "Credential should be scoped to correct service: 'lambda'. Found '{service}'."
            ),
        ));
    }
    let Some(amz_date) = req.header("x-amz-date") else {
        return Err(incomplete("an 'X-Amz-Date' header"));
    };
    let Some(when) = parse_amz_date(amz_date) else {
        return Err(incomplete(
            "an 'X-Amz-Date' header of the form YYYYMMDD'T'HHMMSS'Z'",
        ));
    };
    if !amz_date.starts_with(day) {
        return Err(signature_error(
            "InvalidSignatureException",
            &format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{day}' != '{}'",
                &amz_date[..8]
            ),
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if (now - when).abs() > 15 * 60 {
        return Err(signature_error(
            "InvalidSignatureException",
            "Signature expired: the request time is more than 15 minutes from now.",
        ));
    }
    let signed: Vec<&str> = signed_headers.split(';').collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return Err(incomplete("'host' and 'x-amz-date' in SignedHeaders"));
    }
    let mut sorted = signed.clone();
    sorted.sort_unstable();
    if sorted != signed {
        return Err(incomplete("SignedHeaders in sorted order"));
    }
    if let Some(token) = session_token {
        if req.header("x-amz-security-token") != Some(token) {
            return Err(signature_error(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        if !signed.contains(&"x-amz-security-token") {
            return Err(incomplete("'x-amz-security-token' in SignedHeaders"));
        }
    }
    // Recompute the signature.
    let mut canonical_headers = String::new();
    for name in &signed {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(signature_error(
                "InvalidSignatureException",
                &format!(
                    "The request signature we calculated does not match the signature you provided: signed header '{name}' is missing."
                ),
            ));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical_uri: String = req
        .path
        .split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/");
    let mut query: Vec<(String, String)> = req
        .query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let payload = req
        .header("x-amz-content-sha256")
        .map_or_else(|| hex(&Sha256::digest(&req.body)), str::to_owned);
    let canonical_request = format!(
        "{}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload}",
        req.method
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{day}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = hmac(format!("AWS4{SECRET_ACCESS_KEY}").as_bytes(), day);
    let key = hmac(&key, region);
    let key = hmac(&key, service);
    let key = hmac(&key, "aws4_request");
    if hex(&hmac(&key, &string_to_sign)) != signature {
        return Err(signature_error(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(())
}
