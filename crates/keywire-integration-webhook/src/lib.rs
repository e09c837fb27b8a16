#![doc = include_str!("../README.md")]

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{KeyInit, Mac};
use keywire_core::schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use keywire_core::{
    Context, Delivery, EventData, FieldError, FieldErrors, Integration, IntegrationDescriptor,
    IntegrationError, Metadata, Outcome, Secret, async_trait, inventory,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The version of the envelope (`version` in every body). Adding fields or event types does not
/// change it; an incompatible change would, together with `envelope.schema.json`.
pub const ENVELOPE_VERSION: u64 = 1;

/// The JSON Schema (2020-12) of every body keywire posts.
pub const ENVELOPE_SCHEMA: &str = include_str!("../envelope.schema.json");

/// The `type` of the live check's envelope.
pub const PING_TYPE: &str = "keywire.ping";

/// How long a replaced signing secret still signs deliveries.
pub const ROTATION_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The most previous secrets kept (each signs until it expires).
const MAX_PREVIOUS: usize = 10;
/// The most custom headers.
const MAX_HEADERS: usize = 32;
/// The longest header name.
const MAX_HEADER_NAME: usize = 128;
/// The longest header value, in bytes.
const MAX_HEADER_VALUE: usize = 8192;
/// Random bytes in a generated signing secret.
const GENERATED_KEY_BYTES: usize = 32;

/// Metadata field names (camelCase, as in the API).
const SIGNING_SECRET: &str = "signingSecret";
const PREVIOUS_SECRETS: &str = "previousSigningSecrets";

/// Header names a user may not set: those keywire sets itself, the ones that describe the body
/// or the connection (hop-by-hop), and every `webhook-*` name (the Standard Webhooks namespace).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "user-agent",
];

/// Metadata of a webhook integration.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookMetadata {
    /// The URL that receives a POST for every event (http or https).
    pub url: String,
    /// Extra request headers, name → value (an `Authorization` your receiver expects, say).
    /// Names are HTTP tokens; the ones keywire sets (`content-type`, `user-agent`, `webhook-*`)
    /// and connection headers (`host`, `content-length`, `transfer-encoding`, `connection`...)
    /// are refused. Values are credentials: the whole map is write-only.
    #[serde(default)]
    pub headers: Headers,
    /// The signing secret, `whsec_` followed by base64 of 24 to 64 random bytes. Leave it out
    /// at creation and keywire generates one and shows it once, in the create answer. Set a
    /// new one (or `null` for a generated one) to rotate: the replaced secret keeps signing
    /// for 24 hours.
    #[serde(default)]
    pub signing_secret: Option<Secret>,
    /// Managed by keywire: secrets replaced in the last 24 hours, which still sign every
    /// delivery until they expire. Whatever is sent here is ignored, except `[]`, which revokes
    /// them (and the secret being replaced) at once.
    #[serde(default)]
    pub previous_signing_secrets: PreviousSecrets,
}

/// Custom request headers: names with credential values.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Headers(pub BTreeMap<String, Secret>);

impl JsonSchema for Headers {
    fn schema_name() -> Cow<'static, str> {
        "WebhookHeaders".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "writeOnly": true,
            "maxProperties": MAX_HEADERS,
            "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$"},
            "additionalProperties": {"type": "string", "maxLength": MAX_HEADER_VALUE},
        })
    }
}

/// A replaced signing secret and until when it still signs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreviousSecret {
    /// The replaced secret (`whsec_…`).
    pub secret: Secret,
    /// When it stops signing.
    pub expires_at: DateTime<Utc>,
}

/// The replaced signing secrets that still sign (write-only, managed by keywire).
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct PreviousSecrets(pub Vec<PreviousSecret>);

impl JsonSchema for PreviousSecrets {
    fn schema_name() -> Cow<'static, str> {
        "WebhookPreviousSecrets".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "writeOnly": true,
            "maxItems": MAX_PREVIOUS,
            "items": {
                "type": "object",
                "required": ["secret", "expiresAt"],
                "additionalProperties": false,
                "properties": {
                    "secret": {"type": "string"},
                    "expiresAt": {"type": "string", "format": "date-time"},
                },
            },
        })
    }
}

impl Metadata for WebhookMetadata {
    fn example() -> Value {
        json!({
            "url": "https://hooks.example.com/keywire",
            "headers": {"Authorization": "Bearer example-receiver-token"},
            "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        })
    }

    fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        if let Err(why) = check_url(&self.url) {
            errors.push(FieldError::new("/url", why));
        }
        errors.extend(check_headers(&self.headers.0));
        // Absent only if nothing completed the metadata (keywire always does before parsing).
        if self.signing_secret.as_ref().and_then(signing_key).is_none() {
            errors.push(FieldError::new("/signingSecret", SECRET_SHAPE));
        }
        if self.previous_signing_secrets.0.len() > MAX_PREVIOUS {
            errors.push(FieldError::new(
                "/previousSigningSecrets",
                format!("at most {MAX_PREVIOUS} previous secrets"),
            ));
        }
        for (i, previous) in self.previous_signing_secrets.0.iter().enumerate() {
            if signing_key(&previous.secret).is_none() {
                errors.push(FieldError::new(
                    format!("/previousSigningSecrets/{i}/secret"),
                    SECRET_SHAPE,
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors { errors })
        }
    }

    fn complete(metadata: &mut Value) -> Vec<(String, Secret)> {
        let Some(map) = metadata.as_object_mut() else {
            return Vec::new();
        };
        if map.get(SIGNING_SECRET).is_some_and(|v| !v.is_null()) {
            return Vec::new();
        }
        let secret = generate_secret();
        map.insert(SIGNING_SECRET.into(), Value::String(secret.expose().into()));
        vec![(format!("/{SIGNING_SECRET}"), secret)]
    }

    fn on_update(previous: Option<&Value>, metadata: &mut Value) {
        rotate(previous, metadata, Utc::now());
    }
}

const SECRET_SHAPE: &str = "must be `whsec_` followed by base64 of 24 to 64 bytes";

fn check_url(raw: &str) -> Result<(), &'static str> {
    let url = keywire_core::Url::parse(raw).map_err(|_| "must be an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password");
    }
    Ok(())
}

/// `/headers/<name>` with the name escaped per RFC 6901.
fn header_pointer(name: &str) -> String {
    format!("/headers/{}", name.replace('~', "~0").replace('/', "~1"))
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Checks names and values; messages name the header (it is in the pointer anyway) but never
/// quote a value.
fn check_headers(headers: &BTreeMap<String, Secret>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if headers.len() > MAX_HEADERS {
        errors.push(FieldError::new(
            "/headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in headers {
        let pointer = header_pointer(name);
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || name.len() > MAX_HEADER_NAME || !name.chars().all(is_tchar) {
            errors.push(FieldError::new(
                pointer,
                format!(
                    "a header name is 1 to {MAX_HEADER_NAME} letters, digits or !#$%&'*+-.^_`|~"
                ),
            ));
            continue;
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            errors.push(FieldError::new(
                pointer,
                "keywire sets this header itself (or it belongs to the connection): choose another name",
            ));
            continue;
        }
        if seen.contains(&lower) {
            errors.push(FieldError::new(
                pointer,
                "repeats another header's name (names are case-insensitive)",
            ));
            continue;
        }
        seen.push(lower);
        let value = value.expose();
        let printable = value
            .chars()
            .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic());
        if value.is_empty() || value.len() > MAX_HEADER_VALUE || !printable {
            errors.push(FieldError::new(
                pointer,
                format!(
                    "the value must be 1 to {MAX_HEADER_VALUE} printable ASCII characters (no line breaks)"
                ),
            ));
        } else if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
            errors.push(FieldError::new(
                pointer,
                "the value must not start or end with white space",
            ));
        }
    }
    errors
}

/// The HMAC key inside a `whsec_` secret (base64 of 24 to 64 bytes), when it is one.
pub fn signing_key(secret: &Secret) -> Option<Vec<u8>> {
    let encoded = secret.expose().strip_prefix("whsec_")?;
    let key = STANDARD.decode(encoded).ok()?;
    (24..=64).contains(&key.len()).then_some(key)
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> Secret {
    let mut key = [0u8; GENERATED_KEY_BYTES];
    getrandom::fill(&mut key).expect("the operating system's random generator failed");
    Secret::new(format!("whsec_{}", STANDARD.encode(key)))
}

/// Keeps `previousSigningSecrets` right when metadata is written (`previous`: the stored
/// metadata, `None` on create), as of `now`:
///
/// - on create, there are none (whatever was sent is dropped);
/// - `[]` in the written metadata revokes them all, and the secret being replaced, at once;
/// - otherwise the stored ones that have not expired are kept (what was sent is ignored), and
///   a replaced `signingSecret` joins them, valid until `now` + 24 hours.
pub fn rotate(previous: Option<&Value>, metadata: &mut Value, now: DateTime<Utc>) {
    let Some(map) = metadata.as_object_mut() else {
        return;
    };
    let revoke = map
        .get(PREVIOUS_SECRETS)
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    let current = map
        .get(SIGNING_SECRET)
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut list: Vec<Value> = match previous {
        Some(stored) if !revoke => stored
            .get(PREVIOUS_SECRETS)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let unexpired = |entry: &Value| {
        entry
            .get("expiresAt")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t > now)
    };
    list.retain(|e| unexpired(e) && e.get("secret").and_then(Value::as_str) != current.as_deref());
    let replaced = previous
        .and_then(|p| p.get(SIGNING_SECRET))
        .and_then(Value::as_str)
        .filter(|old| Some(*old) != current.as_deref());
    if let (Some(old), false) = (replaced, revoke) {
        list.retain(|e| e.get("secret").and_then(Value::as_str) != Some(old));
        let expires = (now + ROTATION_GRACE).to_rfc3339_opts(SecondsFormat::Secs, true);
        list.insert(0, json!({"secret": old, "expiresAt": expires}));
    }
    list.truncate(MAX_PREVIOUS);
    if list.is_empty() {
        map.remove(PREVIOUS_SECRETS);
    } else {
        map.insert(PREVIOUS_SECRETS.into(), Value::Array(list));
    }
}

/// The Standard Webhooks signature of one message: `v1,<base64 HMAC-SHA256(id.timestamp.body)>`.
pub fn sign(key: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The envelope of one event: `{version, type, timestamp, data}` (see `envelope.schema.json`).
pub fn envelope(event: &EventData) -> Value {
    let mut data = serde_json::to_value(event).expect("events serialize");
    // The schema promises an object; an event without details has an empty one.
    if !data["payload"].is_object() {
        data["payload"] = json!({});
    }
    json!({
        "version": ENVELOPE_VERSION,
        "type": event.event_type,
        "timestamp": event.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "data": data,
    })
}

/// The envelope of the live check.
pub fn ping_envelope(now: DateTime<Utc>) -> Value {
    json!({
        "version": ENVELOPE_VERSION,
        "type": PING_TYPE,
        "timestamp": now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "data": {},
    })
}

/// A configured webhook.
pub struct Webhook {
    url: String,
    headers: Vec<(String, Secret)>,
    key: Vec<u8>,
    previous: Vec<(Vec<u8>, DateTime<Utc>)>,
}

impl From<WebhookMetadata> for Webhook {
    fn from(metadata: WebhookMetadata) -> Self {
        // `check` has validated every secret before this runs.
        let key = metadata
            .signing_secret
            .as_ref()
            .and_then(signing_key)
            .unwrap_or_default();
        let previous = metadata
            .previous_signing_secrets
            .0
            .iter()
            .filter_map(|p| signing_key(&p.secret).map(|key| (key, p.expires_at)))
            .collect();
        Webhook {
            url: metadata.url,
            headers: metadata.headers.0.into_iter().collect(),
            key,
            previous,
        }
    }
}

impl Webhook {
    /// The `webhook-signature` value at `now`: the current secret's signature, then one per
    /// previous secret that has not expired, space-separated.
    fn signatures(
        &self,
        message_id: &str,
        timestamp: i64,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> String {
        let mut all = vec![sign(&self.key, message_id, timestamp, body)];
        for (key, expires_at) in &self.previous {
            if *expires_at > now {
                all.push(sign(key, message_id, timestamp, body));
            }
        }
        all.join(" ")
    }

    /// `text` with every header value replaced by `***` (a receiver may echo its request).
    fn scrub(&self, text: &str) -> String {
        let mut values: Vec<&str> = self
            .headers
            .iter()
            .map(|(_, v)| v.expose())
            .filter(|v| v.len() >= 4)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values
            .into_iter()
            .fold(text.to_owned(), |acc, v| acc.replace(v, "***"))
    }

    async fn post(
        &self,
        ctx: &Context,
        message_id: &str,
        envelope: &Value,
    ) -> Result<Outcome, IntegrationError> {
        let body = serde_json::to_vec(envelope).expect("JSON values serialize");
        let now = Utc::now();
        let timestamp = now.timestamp();
        let mut request = ctx.http.request(keywire_core::Method::POST, &self.url)?;
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.expose());
        }
        let request = request
            .header("content-type", "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                self.signatures(message_id, timestamp, &body, now),
            )
            .body(body);
        let mut reply = ctx.http.send(request).await?;
        // Scrubbed whole, before any excerpt is cut from it: a header value cut in half by the
        // excerpt's end would no longer match.
        reply.body = self.scrub(&reply.text()).into_bytes();
        let reply = reply.error_for_status()?;
        Ok(Outcome {
            status: Some(reply.status.as_u16()),
            excerpt: reply.excerpt(),
        })
    }
}

#[async_trait]
impl Integration for Webhook {
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let now = Utc::now();
        let id = format!("ping_{}", now.timestamp_micros());
        self.post(ctx, &id, &ping_envelope(now)).await.map(|_| ())
    }

    async fn emit(
        &self,
        ctx: &Context,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntegrationError> {
        self.post(ctx, delivery.message_id, &envelope(delivery.event))
            .await
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<WebhookMetadata, Webhook>(
        "webhook",
        "Webhook",
        "Posts every subscribed event as JSON to your URL, signed per Standard Webhooks.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        let key = signing_key(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert_eq!(signing_key(&a).unwrap().len(), GENERATED_KEY_BYTES);
    }

    #[test]
    fn header_checks_point_at_the_header_and_quote_no_value() {
        let headers: BTreeMap<String, Secret> = [
            ("Host", "evil.example"),
            ("Webhook-Signature", "v1,forged"),
            ("X Bad", "ok"),
            ("X-Newline", "a\r\nInjected: yes-hunter2"),
            ("X-Empty", ""),
            ("X-Padded", " hunter2"),
            ("a/b", "x"),
            ("X-Fine", "Bearer hunter2"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), Secret::new(v)))
        .collect();
        let errors = check_headers(&headers);
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/headers/Host",
                "/headers/Webhook-Signature",
                "/headers/X Bad",
                "/headers/X-Empty",
                "/headers/X-Newline",
                "/headers/X-Padded",
                "/headers/a~1b",
            ]
        );
        for e in &errors {
            assert!(
                !e.detail.contains("hunter2") && !e.detail.contains("evil"),
                "{e:?}"
            );
        }
        let duplicate: BTreeMap<String, Secret> = [("X-Key", "a"), ("x-key", "b")]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), Secret::new(v)))
            .collect();
        assert_eq!(check_headers(&duplicate)[0].pointer, "/headers/x-key");
    }
}
