#![doc = include_str!("../README.md")]

mod integrations;
// The validator the webhook crate's tests check every emitted body with.
#[path = "../../crates/keywire-integration-webhook/tests/support/schema.rs"]
mod schema;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use keywire_core::message;
use keywire_core::{Actor, EventData, EventSource, EventType, Secret, Severity};
use keywire_integration_webhook as webhook;
use serde_json::Value;

/// The public URL the renderers are given (so event links are rendered too).
const PUBLIC_URL: &str = "https://keywire.example.com";

/// Credentials shorter than this may appear in an error by coincidence (`"a"` in any word).
const MIN_CREDENTIAL: usize = 8;

/// Every integration type id in the registry (what `cargo xtask fuzz` runs [`metadata`] for).
pub fn integration_types() -> Vec<&'static str> {
    keywire_core::registry().iter().map(|d| d.type_id).collect()
}

/// Metadata of integration type `type_id`, as the bytes of a JSON document, through the path
/// `POST /workspaces/{workspace}/integrations` takes (complete the generated fields, update
/// hook, parse and check, build), then the path an unchanged `PATCH` takes over what was
/// stored. Checks that:
///
/// - nothing panics;
/// - errors point into the metadata (`""` or a `/` pointer);
/// - no error echoes a credential the input holds: an error that contains one is computed
///   again with the credential's letters and digits changed (same shape), and must not contain
///   the changed value (so text that merely looks like it — `functionName`, a URL in a hint —
///   is no finding); a generated credential sits at a credential field;
/// - what the API shows of accepted metadata (credentials redacted) holds no credential;
/// - accepted metadata, stored and patched with nothing, is accepted again.
///
/// # Panics
///
/// When a check fails (that is the finding), or when `type_id` is not registered.
pub fn metadata(type_id: &str, data: &[u8]) {
    let descriptor = keywire_core::find(type_id)
        .unwrap_or_else(|| panic!("`{type_id}` is not a registered integration type"));
    let Ok(mut value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let schema = descriptor.metadata_schema();
    let secret_fields = descriptor.secret_fields();
    // Create.
    let generated = descriptor.complete_metadata(&mut value);
    for (pointer, _) in &generated {
        assert!(
            secret_fields.contains(pointer),
            "{type_id}: generated `{pointer}` is not a credential field"
        );
    }
    descriptor.update_metadata(None, &mut value);
    let built = descriptor.build(&value);
    let credentials: Vec<String> = descriptor
        .secret_values(&value)
        .into_iter()
        .filter(|s| s.chars().count() >= MIN_CREDENTIAL)
        .collect();
    let mut shown = value.clone();
    keywire_core::redact_secrets(&mut shown, &schema);
    let shown = shown.to_string();
    match built {
        Err(errors) => {
            let text = errors.to_string();
            for error in &errors.errors {
                assert!(
                    error.pointer.is_empty() || error.pointer.starts_with('/'),
                    "{type_id}: error pointer `{}` is not a JSON pointer",
                    error.pointer
                );
            }
            for credential in &credentials {
                // Shown anyway when a non-credential field holds the same text.
                if shown.contains(credential.as_str()) || !text.contains(credential.as_str()) {
                    continue;
                }
                // The error may hold the same characters by chance (`functionName`, a URL in
                // a hint): it echoes the credential when it follows it, so change the value's
                // characters (keeping its shape) and look for the changed value.
                let changed = shifted(credential);
                let mut other = value.clone();
                for pointer in &secret_fields {
                    if let Some(field) = other.pointer_mut(pointer) {
                        replace_strings(field, credential, &changed);
                    }
                }
                if let Err(errors) = descriptor.build(&other) {
                    let text = errors.to_string();
                    assert!(
                        !text.contains(changed.as_str()),
                        "{type_id}: an error echoes a credential: {text}"
                    );
                }
            }
        }
        Ok(_) => {
            // `redact_secrets` must remove every credential the type declares.
            let mut redacted = value.clone();
            keywire_core::redact_secrets(&mut redacted, &schema);
            for pointer in &secret_fields {
                assert!(
                    redacted.pointer(pointer).is_none(),
                    "{type_id}: `{pointer}` survives redaction"
                );
            }
            // An unchanged update (`PATCH` with nothing that matters) keeps it valid.
            let stored = value.clone();
            let mut patched = value;
            descriptor.complete_metadata(&mut patched);
            descriptor.update_metadata(Some(&stored), &mut patched);
            if let Err(errors) = descriptor.build(&patched) {
                panic!(
                    "{type_id}: accepted metadata is refused after an unchanged update: {errors}"
                );
            }
        }
    }
}

/// The same text with each letter and digit moved on by one (`a`→`b`, `z`→`a`, `9`→`0`): the
/// same shape, other characters.
fn shifted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            c if c.is_ascii_alphanumeric() => char::from(c as u8 + 1),
            c => c,
        })
        .collect()
}

/// Replaces `from` with `to` in every string value (not object key: a header's name is shown)
/// inside `value`.
fn replace_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_strings(v, from, to)),
        _ => {}
    }
}

/// A stand-in event for payload-only inputs.
fn sample_event(payload: Value) -> EventData {
    EventData {
        id: "evt_fuzz".into(),
        event_type: EventType::SecretUpdated,
        source: EventSource::Secret,
        severity: Severity::Info,
        title: "Secret DATABASE_URL updated".into(),
        workspace: "acme".into(),
        project: Some("shop".into()),
        environments: vec!["prod".into()],
        actor: Actor {
            id: "usr_1".into(),
            name: "alice".into(),
        },
        created_at: chrono::DateTime::from_timestamp(1_795_860_000, 0).unwrap_or_default(),
        payload,
    }
}

/// The event in `data`: a whole event (JSON, as integrations receive it), or else the bytes of
/// an event row's payload column, read as the delivery workers read it (not JSON: no details).
fn event_of(data: &[u8]) -> EventData {
    if let Ok(event) = serde_json::from_slice::<EventData>(data) {
        return event;
    }
    let payload = std::str::from_utf8(data)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    sample_event(payload)
}

/// Every string inside a JSON value.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (key, v) in map {
                out.push(key.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// The text of an event a user controls (names, titles, payload strings).
fn event_texts(event: &EventData) -> Vec<String> {
    let mut out = vec![
        event.title.clone(),
        event.workspace.clone(),
        event.actor.name.clone(),
    ];
    out.extend(event.project.clone());
    out.extend(event.environments.iter().cloned());
    strings(&event.payload, &mut out);
    out
}

/// The `text` of every `mrkdwn` object in Slack blocks.
fn mrkdwn_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| mrkdwn_texts(v, out)),
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("mrkdwn")
                && let Some(text) = map.get("text").and_then(Value::as_str)
            {
                out.push(text.to_owned());
            }
            map.values().for_each(|v| mrkdwn_texts(v, out));
        }
        _ => {}
    }
}

/// Characters counted the way Discord counts them.
fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// An event (or an event row's payload column, see [`event_of`]) rendered by core and by every
/// communication integration. Checks that nothing panics and that each message keeps its
/// provider's limits and escaping:
///
/// - Discord: title ≤ 256, ≤ 25 fields of ≤ 256/1024 characters, the embed ≤ 6000 in total;
/// - Slack: ≤ 50 blocks, a header ≤ 150 characters, and no `<` in `mrkdwn` but keywire's own
///   date and link (text from the event that reached it unescaped could mention `<!channel>`);
/// - Microsoft Teams: the message ≤ 28 KB;
/// - email: the subject is one line (no header injection), and no text holding `<` reaches
///   the HTML part unescaped.
///
/// # Panics
///
/// When a check fails.
pub fn event_payload(data: &[u8]) {
    let event = event_of(data);
    let texts: Vec<String> = event_texts(&event)
        .into_iter()
        .filter(|t| t.chars().count() >= 3)
        .collect();
    let rendered = message::render(&event, Some(PUBLIC_URL));
    let _ = rendered.plain_text();

    let discord = keywire_integration_discord::render(&event, Some(PUBLIC_URL));
    let embed = &discord["embeds"][0];
    let fields = embed["fields"].as_array().cloned().unwrap_or_default();
    assert!(chars(&embed["title"]) <= 256, "Discord title too long");
    assert!(fields.len() <= 25, "more than 25 Discord fields");
    let mut total = chars(&embed["title"]) + chars(&embed["description"]);
    total += chars(&embed["footer"]["text"]);
    for field in &fields {
        assert!(chars(&field["name"]) <= 256, "Discord field name too long");
        assert!(
            (1..=1024).contains(&chars(&field["value"])),
            "Discord field value empty or too long"
        );
        total += chars(&field["name"]) + chars(&field["value"]);
    }
    assert!(total <= 6000, "Discord embed of {total} characters");

    let slack = keywire_integration_slack::render(&event, Some(PUBLIC_URL));
    let blocks = slack["blocks"].as_array().cloned().unwrap_or_default();
    assert!(blocks.len() <= 50, "{} Slack blocks", blocks.len());
    assert!(
        chars(&blocks[0]["text"]["text"]) <= 150,
        "Slack header too long"
    );
    // In mrkdwn, `<` opens a link or a mention: only keywire's own date and link may.
    let fallback = slack["text"].as_str().unwrap_or_default();
    assert!(
        !fallback.contains('<'),
        "Slack fallback text unescaped: {fallback}"
    );
    let mut marked = Vec::new();
    mrkdwn_texts(&slack["blocks"], &mut marked);
    for text in &marked {
        for (at, _) in text.match_indices('<') {
            let rest = &text[at + 1..];
            assert!(
                rest.starts_with("!date^") || rest.starts_with(PUBLIC_URL),
                "Slack mrkdwn with an unescaped `<`: {text}"
            );
        }
    }

    let teams = keywire_integration_microsoft_teams::render(&event, Some(PUBLIC_URL));
    let size = serde_json::to_vec(&teams).map_or(usize::MAX, |v| v.len());
    assert!(
        size <= keywire_integration_microsoft_teams::MAX_MESSAGE_BYTES,
        "Teams message of {size} bytes"
    );

    let subject = keywire_integration_email::subject(&rendered);
    assert!(
        !subject.chars().any(char::is_control),
        "email subject with a control character: {subject:?}"
    );
    let _ = keywire_integration_email::plain_text(&rendered);
    let html = keywire_integration_email::html(&rendered);
    // Markup keywire writes itself (`<tr>`…) may match a text by chance: not a finding.
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        keywire_integration_email::html(&message::render(
            &sample_event(serde_json::json!({"key": "KEY"})),
            Some(PUBLIC_URL),
        ))
    });
    for text in texts.iter().filter(|t| t.contains('<')) {
        assert!(
            template.contains(text.as_str()) || !html.contains(text.as_str()),
            "email HTML holds `{text}` unescaped"
        );
    }
}

/// A `webhook-signature` entry checked the way a receiver checks it (Standard Webhooks, HMAC-
/// SHA256 of `id.timestamp.body`, compared in constant time), independently of the sender.
fn verifies(key: &[u8], id: &str, timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(encoded) = signature.strip_prefix("v1,") else {
        return false;
    };
    let Ok(expected) = STANDARD.decode(encoded) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Whether keywire could emit this event: the envelope schema asks for non-empty names.
fn emittable(event: &EventData) -> bool {
    !event.id.is_empty()
        && !event.title.is_empty()
        && !event.workspace.is_empty()
        && !event.actor.id.is_empty()
        && event.project.as_ref().is_none_or(|p| !p.is_empty())
        && event.environments.iter().all(|e| !e.is_empty())
}

/// The webhook envelope of an event (see [`event_of`]), signed with a key taken from the
/// input and verified as a receiver would. Checks that:
///
/// - the envelope's `data` reads back as the same event (its payload an object), `type` and
///   `timestamp` agree with it, and `version` is the envelope version;
/// - an event keywire could emit yields a body valid against `envelope.schema.json`;
/// - the signature verifies, and not over a changed body or with another key;
/// - a `whsec_` secret's key decodes only to 24–64 bytes.
///
/// # Panics
///
/// When a check fails.
pub fn webhook_envelope(data: &[u8]) {
    let event = event_of(data);
    let envelope = webhook::envelope(&event);
    let body = serde_json::to_vec(&envelope).expect("an envelope serializes");

    // The receiver's view: parse the body, read the event back.
    let received: Value = serde_json::from_slice(&body).expect("the body is JSON");
    assert_eq!(received["version"], webhook::ENVELOPE_VERSION);
    assert_eq!(received["type"], event.event_type.as_str());
    let mut expected = event.clone();
    if !expected.payload.is_object() {
        expected.payload = Value::Object(serde_json::Map::new());
    }
    let read: EventData =
        serde_json::from_value(received["data"].clone()).expect("the envelope's data is an event");
    assert_eq!(read, expected, "the envelope changes the event");
    let timestamp = received["timestamp"].as_str().unwrap_or_default();
    let at = chrono::DateTime::parse_from_rfc3339(timestamp)
        .unwrap_or_else(|_| panic!("timestamp `{timestamp}` is not RFC 3339"));
    assert_eq!(at, event.created_at, "timestamp and createdAt disagree");
    if emittable(&event) {
        let schema: Value =
            serde_json::from_str(webhook::ENVELOPE_SCHEMA).expect("the schema is JSON");
        if let Err(why) = schema::validate(&schema, &received) {
            panic!("the envelope does not match its schema: {why}");
        }
    }

    // Signing: a key from the input (24 to 64 bytes, as a whsec_ secret holds).
    let mut key: Vec<u8> = data.iter().rev().take(64).copied().collect();
    key.resize(key.len().max(24), 0x5a);
    let secret = Secret::new(format!("whsec_{}", STANDARD.encode(&key)));
    let decoded = webhook::signing_key(&secret).expect("a whsec_ secret of 24 to 64 bytes");
    assert_eq!(decoded, key);
    let timestamp = event.created_at.timestamp();
    let signature = webhook::sign(&key, &event.id, timestamp, &body);
    assert!(
        verifies(&key, &event.id, timestamp, &body, &signature),
        "a receiver cannot verify the signature"
    );
    let mut changed = body.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    assert!(!verifies(&key, &event.id, timestamp, &changed, &signature));
    let mut other = key.clone();
    other[0] ^= 1;
    assert!(!verifies(&other, &event.id, timestamp, &body, &signature));

    // Any text after `whsec_`: a key only when it decodes to 24 to 64 bytes.
    if let Ok(text) = std::str::from_utf8(data) {
        let candidate = Secret::new(format!("whsec_{}", text.trim()));
        if let Some(key) = webhook::signing_key(&candidate) {
            assert!((24..=64).contains(&key.len()), "a {}-byte key", key.len());
        }
    }
}
