//! The webhook integration against real receivers on 127.0.0.1: one written here from the
//! Standard Webhooks specification (not with the crate's signing code), and the README's Python
//! receiver run by `python3`.

#[path = "support/schema.rs"]
mod schema;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeDelta, Utc};
use keywire_core::{
    Delivery, EventType, Integration, IntegrationError, OutboundError, OutboundPolicy, Severity,
    check_descriptor, find,
};
use keywire_integration_webhook::{ENVELOPE_SCHEMA, PING_TYPE, rotate};
use keywire_test_support::fake::{FakeResponse, FakeServer, RecordedRequest};
use keywire_test_support::{context, context_with, sample_event};
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_b2xkLXNpZ25pbmcta2V5LW9sZC1zaWduaW5nLWtleQ==";
const OTHER_SECRET: &str = "whsec_b3RoZXItc2lnbmluZy1rZXktb3RoZXItc2lnbmluZw==";
const RECEIVER_TOKEN: &str = "Bearer receiver-token-5f1d2c9e";

// ---------------------------------------------------------------------------------------------
// An independent Standard Webhooks verifier: HMAC-SHA256 built from SHA-256 (RFC 2104), the
// signed content and header format from the specification.

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

fn key_of(secret: &str) -> Vec<u8> {
    STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap()
}

/// The signature entry a sender with `secret` would put in `webhook-signature`.
fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    format!(
        "v1,{}",
        STANDARD.encode(hmac_sha256(&key_of(secret), &content))
    )
}

/// Verifies a request as a receiver holding `secret` does: every header present, timestamp
/// within 5 minutes, and one `v1` entry of `webhook-signature` that matches.
fn verify(secret: &str, req: &RecordedRequest) -> Result<(), String> {
    let id = req.header("webhook-id").ok_or("no webhook-id")?;
    let timestamp = req
        .header("webhook-timestamp")
        .ok_or("no webhook-timestamp")?;
    let signatures = req
        .header("webhook-signature")
        .ok_or("no webhook-signature")?;
    let sent: i64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    if (Utc::now().timestamp() - sent).abs() > 300 {
        return Err("timestamp outside the tolerance".into());
    }
    let wanted = expected_signature(secret, id, timestamp, &req.body);
    let wanted_bytes = STANDARD.decode(&wanted[3..]).unwrap();
    let matched = signatures.split(' ').any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|sig| STANDARD.decode(sig).ok())
            .is_some_and(|sig| sig == wanted_bytes)
    });
    if matched {
        Ok(())
    } else {
        Err("no valid signature".into())
    }
}

/// A receiver that knows `secrets` and answers 401 unless one of them verifies the request.
fn receiver(secrets: &[&str]) -> FakeServer {
    let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    FakeServer::start(move |req| {
        if req.method != "POST" || req.header("content-type") != Some("application/json") {
            return FakeResponse::json(400, json!({"error": "expected a JSON POST"}));
        }
        if secrets.iter().any(|s| verify(s, req).is_ok()) {
            FakeResponse::json(200, json!({"received": true}))
        } else {
            FakeResponse::json(401, json!({"error": "bad signature"}))
        }
    })
}

fn build(metadata: Value) -> Box<dyn Integration> {
    find("webhook")
        .unwrap()
        .build(&metadata)
        .unwrap_or_else(|e| panic!("{metadata} should build: {e}"))
}

async fn emit(
    integration: &dyn Integration,
    message_id: &str,
) -> Result<keywire_core::Outcome, IntegrationError> {
    let event = sample_event();
    integration
        .emit(
            &context(),
            Delivery {
                message_id,
                attempt: 1,
                event: &event,
            },
        )
        .await
}

fn signatures(req: &RecordedRequest) -> Vec<String> {
    req.header("webhook-signature")
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("webhook").unwrap_or_else(|problems| panic!("{problems:#?}"));
    let d = find("webhook").unwrap();
    assert_eq!(
        d.secret_fields(),
        vec!["/headers", "/previousSigningSecrets", "/signingSecret"]
    );
    let schema = d.metadata_schema();
    for field in ["headers", "previousSigningSecrets", "signingSecret"] {
        assert_eq!(
            schema["properties"][field]["writeOnly"],
            json!(true),
            "{field}"
        );
    }
}

#[tokio::test]
async fn emit_posts_a_signed_envelope_with_a_stable_message_id() {
    let sink = receiver(&[SECRET]);
    let integration =
        build(json!({"url": format!("{}/hook", sink.url()), "signingSecret": SECRET}));
    for _ in 1..=2 {
        let outcome = emit(integration.as_ref(), "run_42").await.unwrap();
        assert_eq!(outcome.status, Some(200));
        assert_eq!(outcome.excerpt, r#"{"received":true}"#);
    }
    let got = sink.requests();
    assert_eq!(got.len(), 2);
    for req in &got {
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/hook");
        assert_eq!(
            req.header("webhook-id"),
            Some("run_42"),
            "retries keep the message id"
        );
        assert_eq!(signatures(req).len(), 1, "one secret, one signature");
        assert!(req.header("user-agent").unwrap().starts_with("keywire/"));
        let body = req.json();
        assert_eq!(body["version"], 1);
        assert_eq!(body["type"], "SECRET_UPDATED");
        assert_eq!(body["timestamp"], "2026-11-28T10:00:00Z");
        assert_eq!(body["data"]["title"], "Secret DATABASE_URL updated");
        assert_eq!(body["data"]["environments"], json!(["prod"]));
        assert!(
            !req.text().contains("whsec_") && !req.text().contains(&SECRET[6..]),
            "the signing secret is never sent"
        );
    }
}

#[tokio::test]
async fn a_wrong_secret_a_tampered_body_or_a_stale_timestamp_fail_verification() {
    // keywire signs with SECRET; the receiver knows another one: it refuses, for good.
    let strict = receiver(&[OTHER_SECRET]);
    let integration = build(json!({"url": strict.url(), "signingSecret": SECRET}));
    let err = emit(integration.as_ref(), "run_1").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());

    // The request that was sent verifies with the right secret only...
    let sent = strict.requests()[0].clone();
    verify(SECRET, &sent).unwrap();
    assert!(verify(OTHER_SECRET, &sent).is_err());
    // ...and not once anything signed changes.
    let mut tampered = sent.clone();
    let at = tampered.body.iter().position(|b| *b == b'D').unwrap();
    tampered.body[at] = b'E';
    assert_eq!(verify(SECRET, &tampered).unwrap_err(), "no valid signature");
    let mut other_id = sent.clone();
    for (name, value) in &mut other_id.headers {
        if name == "webhook-id" {
            *value = "run_2".into();
        }
    }
    assert!(verify(SECRET, &other_id).is_err());
    let mut stale = sent.clone();
    let old = (Utc::now().timestamp() - 3600).to_string();
    let resigned = expected_signature(SECRET, "run_1", &old, &sent.body);
    for (name, value) in &mut stale.headers {
        match name.as_str() {
            "webhook-timestamp" => *value = old.clone(),
            "webhook-signature" => *value = resigned.clone(),
            _ => {}
        }
    }
    assert_eq!(
        verify(SECRET, &stale).unwrap_err(),
        "timestamp outside the tolerance"
    );
}

#[tokio::test]
async fn custom_headers_are_sent_and_never_shown() {
    let sink = FakeServer::start(|req| {
        if req.header("authorization") != Some(RECEIVER_TOKEN) {
            return FakeResponse::json(401, json!({"error": "unauthorized"}));
        }
        // A chatty receiver that echoes what it got.
        FakeResponse::json(
            422,
            json!({"error": "rejected", "authorization": req.header("authorization"), "tenant": req.header("x-tenant")}),
        )
    });
    let metadata = json!({
        "url": sink.url(),
        "signingSecret": SECRET,
        "headers": {"Authorization": RECEIVER_TOKEN, "X-Tenant": "tenant-8d41e7"},
    });
    let integration = build(metadata.clone());
    let err = emit(integration.as_ref(), "run_1").await.unwrap_err();
    let req = &sink.requests()[0];
    assert_eq!(req.header("authorization"), Some(RECEIVER_TOKEN));
    assert_eq!(req.header("x-tenant"), Some("tenant-8d41e7"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    verify(SECRET, req).unwrap();
    assert!(!req.text().contains("receiver-token"));
    // What the receiver echoed is blanked in the error (it lands in the run log).
    let shown = err.to_string();
    assert!(shown.contains("422"), "{shown}");
    assert!(
        !shown.contains("receiver-token") && !shown.contains("tenant-8d41e7"),
        "{shown}"
    );
    // The parsed metadata prints no value.
    let parsed: keywire_integration_webhook::WebhookMetadata =
        keywire_core::parse_metadata(&metadata).unwrap();
    let printed = format!("{parsed:?}");
    assert!(
        !printed.contains("receiver-token") && !printed.contains(&SECRET[6..]),
        "{printed}"
    );
    // The API's view drops the whole map and the secret.
    let d = find("webhook").unwrap();
    let mut shown = metadata.clone();
    keywire_core::redact_secrets(&mut shown, &d.metadata_schema());
    assert_eq!(shown, json!({"url": sink.url()}));
    let values = d.secret_values(&metadata);
    for value in [RECEIVER_TOKEN, "tenant-8d41e7", SECRET] {
        assert!(values.contains(&value.to_owned()), "{value}");
    }
}

#[tokio::test]
async fn an_echoed_header_value_cut_by_the_excerpt_is_not_shown_in_part() {
    // The receiver's answer is longer than an excerpt, and the value straddles the excerpt's
    // end: scrubbing the excerpt alone would miss the half that is shown.
    const TENANT: &str = "tenant-8d41e7-0f3a9c2b7e5d41a6b8c0";
    let sink = FakeServer::start(|req| {
        let echoed = format!(
            "{}{}",
            "x".repeat(286),
            req.header("x-tenant").unwrap_or("")
        );
        FakeResponse {
            status: 400,
            headers: Vec::new(),
            body: echoed,
            delay: std::time::Duration::ZERO,
        }
    });
    let integration = build(json!({
        "url": sink.url(),
        "signingSecret": SECRET,
        "headers": {"X-Tenant": TENANT},
    }));
    let err = emit(integration.as_ref(), "run_1").await.unwrap_err();
    assert_eq!(sink.requests()[0].header("x-tenant"), Some(TENANT));
    let shown = err.to_string();
    assert!(shown.contains("400") && shown.contains("xxx"), "{shown}");
    assert!(!shown.contains("tenant-8d41e7"), "{shown}");
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_until_the_old_one_expires() {
    let url = |sink: &FakeServer| sink.url().to_owned();
    let rotating = |sink: &FakeServer, expires: chrono::DateTime<Utc>| {
        json!({
            "url": url(sink),
            "signingSecret": SECRET,
            "previousSigningSecrets": [{"secret": OLD_SECRET, "expiresAt": expires.to_rfc3339()}],
        })
    };
    // A receiver that has not been updated yet (old secret) and one that has (new secret).
    for knows in [OLD_SECRET, SECRET] {
        let sink = receiver(&[knows]);
        let integration = build(rotating(&sink, Utc::now() + TimeDelta::hours(23)));
        emit(integration.as_ref(), "run_1")
            .await
            .unwrap_or_else(|e| panic!("a receiver with one of the secrets verifies: {e}"));
        let req = &sink.requests()[0];
        let sent = signatures(req);
        assert_eq!(sent.len(), 2, "{sent:?}");
        let id = req.header("webhook-id").unwrap();
        let ts = req.header("webhook-timestamp").unwrap();
        assert_eq!(
            sent,
            [
                expected_signature(SECRET, id, ts, &req.body),
                expected_signature(OLD_SECRET, id, ts, &req.body)
            ],
            "the new secret's signature first"
        );
    }
    // Once the old secret has expired it no longer signs: the old receiver refuses.
    let sink = receiver(&[OLD_SECRET]);
    let integration = build(rotating(&sink, Utc::now() - TimeDelta::seconds(1)));
    let err = emit(integration.as_ref(), "run_1").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(signatures(&sink.requests()[0]).len(), 1);
    verify(SECRET, &sink.requests()[0]).unwrap();
}

#[test]
fn rotation_keeps_the_replaced_secret_for_24_hours_and_nothing_else() {
    let t0: chrono::DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
    let stored = json!({"url": "https://h.example", "signingSecret": OLD_SECRET});

    // A new secret: the old one joins the list until t0 + 24 h.
    let mut new = json!({"url": "https://h.example", "signingSecret": SECRET});
    rotate(Some(&stored), &mut new, t0);
    assert_eq!(
        new["previousSigningSecrets"],
        json!([{"secret": OLD_SECRET, "expiresAt": "2026-11-29T10:00:00Z"}])
    );

    // A later change that keeps the secret keeps the list while it is valid...
    let mut later = new.clone();
    later["url"] = json!("https://h2.example");
    rotate(Some(&new), &mut later, t0 + TimeDelta::hours(23));
    assert_eq!(
        later["previousSigningSecrets"],
        new["previousSigningSecrets"]
    );
    // ...and drops it once it expired.
    let mut expired = new.clone();
    rotate(Some(&new), &mut expired, t0 + TimeDelta::hours(25));
    assert!(expired.get("previousSigningSecrets").is_none(), "{expired}");

    // What a user sends in the managed field is ignored...
    let mut forged = new.clone();
    forged["previousSigningSecrets"] =
        json!([{"secret": OTHER_SECRET, "expiresAt": "2099-01-01T00:00:00Z"}]);
    rotate(Some(&new), &mut forged, t0);
    assert_eq!(
        forged["previousSigningSecrets"],
        new["previousSigningSecrets"]
    );
    // ...except `[]`, which revokes at once, the replaced secret too.
    let mut revoked = json!({"url": "https://h.example", "signingSecret": OTHER_SECRET, "previousSigningSecrets": []});
    rotate(Some(&new), &mut revoked, t0);
    assert!(revoked.get("previousSigningSecrets").is_none(), "{revoked}");

    // Rotating back to a previous secret does not list it twice.
    let mut back = json!({"url": "https://h.example", "signingSecret": OLD_SECRET});
    rotate(Some(&new), &mut back, t0 + TimeDelta::hours(1));
    assert_eq!(
        back["previousSigningSecrets"],
        json!([{"secret": SECRET, "expiresAt": "2026-11-29T11:00:00Z"}])
    );

    // On create there are none, whatever was sent.
    let mut created = forged.clone();
    rotate(None, &mut created, t0);
    assert!(created.get("previousSigningSecrets").is_none());

    // The descriptor's update hook does the same (with the real clock), and the result builds.
    let d = find("webhook").unwrap();
    let mut via_hook = json!({"url": "https://h.example", "signingSecret": SECRET});
    d.update_metadata(Some(&stored), &mut via_hook);
    let expires: chrono::DateTime<Utc> = via_hook["previousSigningSecrets"][0]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let grace = expires - Utc::now();
    assert!(
        grace > TimeDelta::hours(23) && grace <= TimeDelta::hours(24),
        "{grace}"
    );
    d.build(&via_hook).unwrap();
}

#[test]
fn a_missing_signing_secret_is_generated_once() {
    let d = find("webhook").unwrap();
    let mut metadata = json!({"url": "https://h.example"});
    let generated = d.complete_metadata(&mut metadata);
    assert_eq!(generated.len(), 1);
    let (pointer, secret) = &generated[0];
    assert_eq!(pointer, "/signingSecret");
    assert_eq!(metadata["signingSecret"], secret.expose());
    assert_eq!(key_of(secret.expose()).len(), 32);
    assert!(d.complete_metadata(&mut metadata).is_empty(), "only once");
    // `null` (a PATCH asking for a new one) is generated too.
    let mut renewed = json!({"url": "https://h.example", "signingSecret": null});
    assert_eq!(d.complete_metadata(&mut renewed).len(), 1);
    assert_ne!(renewed["signingSecret"], metadata["signingSecret"]);
    // A dry run of a create body without a secret builds.
    d.build(&json!({"url": "https://h.example"})).unwrap();
    // A given secret is kept.
    let mut given = json!({"url": "https://h.example", "signingSecret": SECRET});
    assert!(d.complete_metadata(&mut given).is_empty());
    assert_eq!(given["signingSecret"], SECRET);
}

#[tokio::test]
async fn live_check_sends_a_signed_ping() {
    let sink = receiver(&[SECRET]);
    build(json!({"url": sink.url(), "signingSecret": SECRET}))
        .validate(&context())
        .await
        .unwrap();
    let ping = &sink.requests()[0];
    assert_eq!(ping.json()["type"], PING_TYPE);
    assert_eq!(ping.json()["data"], json!({}));
    verify(SECRET, ping).unwrap();
}

#[tokio::test]
async fn rate_limits_are_retryable_and_carry_retry_after_but_client_errors_are_not() {
    let limited = FakeServer::start(|_| {
        FakeResponse::json(429, json!({"error": "slow down"})).with_header("retry-after", "12")
    });
    let integration = build(json!({"url": limited.url(), "signingSecret": SECRET}));
    let err = emit(integration.as_ref(), "run_1").await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(12)));
    assert_eq!(err.status(), Some(429));

    let rejecting = FakeServer::start(|_| FakeResponse::json(410, json!({"error": "gone"})));
    let integration = build(json!({"url": rejecting.url(), "signingSecret": SECRET}));
    let err = emit(integration.as_ref(), "run_1").await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("410"), "{err}");
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allow_listed() {
    let sink = receiver(&[SECRET]);
    let integration = build(json!({"url": sink.url(), "signingSecret": SECRET}));
    let event = sample_event();
    let strict = context_with(OutboundPolicy::default());
    let delivery = Delivery {
        message_id: "run_1",
        attempt: 1,
        event: &event,
    };
    let err = integration.emit(&strict, delivery).await.unwrap_err();
    assert!(
        matches!(err, IntegrationError::Http(OutboundError::Refused(_))),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    // A host name that resolves to loopback is refused by the DNS guard.
    let by_name = sink.url().replace("127.0.0.1", "localhost");
    let integration = build(json!({"url": by_name, "signingSecret": SECRET}));
    let err = integration.emit(&strict, delivery).await.unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    assert!(sink.requests().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn unreachable_receivers_are_retryable_network_errors() {
    let url = {
        let gone = receiver(&[SECRET]);
        gone.url().to_owned()
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let integration = build(json!({"url": url, "signingSecret": SECRET}));
    let err = emit(integration.as_ref(), "run_1").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[test]
fn bad_metadata_names_the_field_and_never_echoes_a_credential() {
    let d = find("webhook").unwrap();
    let hook = |extra: Value| {
        let mut m = json!({"url": "https://x.example", "signingSecret": SECRET});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    let cases = [
        (json!({"url": "ftp://x", "signingSecret": SECRET}), "/url"),
        (
            json!({"url": "https://u:p@x.example", "signingSecret": SECRET}),
            "/url",
        ),
        (json!({"url": "not a url", "signingSecret": SECRET}), "/url"),
        (
            json!({"url": "https://x.example", "signingSecret": "whsec_c2hvcnQ="}),
            "/signingSecret",
        ),
        (
            json!({"url": "https://x.example", "signingSecret": "hunter2-hunter2-hunter2"}),
            "/signingSecret",
        ),
        (hook(json!({"extra": 1})), "/extra"),
        (
            hook(json!({"headers": {"Content-Type": "text/hunter2"}})),
            "/headers/Content-Type",
        ),
        (
            hook(json!({"headers": {"webhook-id": "hunter2"}})),
            "/headers/webhook-id",
        ),
        (
            hook(json!({"headers": {"Transfer-Encoding": "chunked-hunter2"}})),
            "/headers/Transfer-Encoding",
        ),
        (
            hook(json!({"headers": {"X-Foo": "a\nhunter2: yes"}})),
            "/headers/X-Foo",
        ),
        (
            hook(json!({"headers": {"X Foo": "hunter2"}})),
            "/headers/X Foo",
        ),
        (
            hook(json!({"headers": {"X-Foo": 4_8151_6234}})),
            "/headers/X-Foo",
        ),
        (hook(json!({"headers": "hunter2"})), "/headers"),
        (
            hook(
                json!({"previousSigningSecrets": [{"secret": "hunter2", "expiresAt": "2030-01-01T00:00:00Z"}]}),
            ),
            "/previousSigningSecrets/0/secret",
        ),
    ];
    for (metadata, pointer) in cases {
        let err = d
            .build(&metadata)
            .err()
            .unwrap_or_else(|| panic!("{metadata} should be refused"));
        assert_eq!(err.errors[0].pointer, pointer, "{metadata}: {err}");
        let text = err.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("48151"),
            "{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The envelope and its JSON Schema

fn envelope_schema() -> Value {
    serde_json::from_str(ENVELOPE_SCHEMA).expect("envelope.schema.json is JSON")
}

#[test]
fn the_schema_lists_every_event_type() {
    let schema = envelope_schema();
    let listed: Vec<&str> = schema["$defs"]["eventType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        listed, all,
        "update envelope.schema.json with the event types"
    );
}

#[test]
fn the_schema_refuses_what_it_does_not_describe() {
    let schema = envelope_schema();
    let good = keywire_integration_webhook::envelope(&sample_event());
    schema::validate(&schema, &good).unwrap();
    let broken = [
        ("/data", Value::Null),
        ("/version", json!(2)),
        ("/type", json!("SECRET_EXPLODED")),
        ("/timestamp", json!("yesterday")),
        ("/data/severity", json!("LOUD")),
        ("/data/environments", json!([])),
        ("/data/actor", json!({"id": "usr_1"})),
        ("/data/payload", json!("text")),
        ("/data/secretValue", json!("postgres://user:pw@db/x")),
        ("/extra", json!(true)),
    ];
    for (pointer, value) in broken {
        let mut bad = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let object = bad.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        if value.is_null() {
            object.remove(key);
        } else {
            object.insert(key.to_owned(), value);
        }
        assert!(
            schema::validate(&schema, &bad).is_err(),
            "{pointer} should break the envelope: {bad}"
        );
    }
}

#[tokio::test]
async fn every_emitted_body_matches_the_schema() {
    let schema = envelope_schema();
    let sink = FakeServer::start(|_| FakeResponse::empty(204));
    let integration = build(json!({"url": sink.url(), "signingSecret": SECRET}));
    let ctx = context();
    let mut sent = 0;
    for (i, event_type) in EventType::ALL.iter().enumerate() {
        let mut event = sample_event();
        event.event_type = *event_type;
        event.id = format!("evt_{i}");
        match i % 3 {
            0 => {
                event.project = None;
                event.environments.clear();
                event.severity = Severity::Warn;
                event.payload = Value::Null;
            }
            1 => {
                event.environments = vec!["dev".into(), "prod".into()];
                event.severity = Severity::Error;
                event.payload = json!({"key": "K", "environments": {"dev": 1, "prod": 2}});
            }
            _ => {}
        }
        let id = format!("run_{i}");
        integration
            .emit(
                &ctx,
                Delivery {
                    message_id: &id,
                    attempt: 1,
                    event: &event,
                },
            )
            .await
            .unwrap();
        sent += 1;
    }
    integration.validate(&ctx).await.unwrap();
    sent += 1;
    let bodies = sink.requests();
    assert_eq!(bodies.len(), sent);
    for req in &bodies {
        let body = req.json();
        schema::validate(&schema, &body).unwrap_or_else(|why| panic!("{why}: {body}"));
        if body["type"] != PING_TYPE {
            assert_eq!(body["type"], body["data"]["type"]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The README's Python receiver, run by python3 against real signed requests

/// The README's receiver, running; killed when dropped.
struct PythonReceiver {
    child: Child,
    lines: mpsc::Receiver<String>,
    url: String,
    _dir: tempfile::TempDir,
}

impl PythonReceiver {
    fn start(secret: &str) -> PythonReceiver {
        let readme = include_str!("../README.md");
        let start = readme
            .find("```python\n")
            .expect("the README has a Python example")
            + 10;
        let end = start + readme[start..].find("```").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("receiver.py");
        std::fs::write(&script, &readme[start..end]).unwrap();
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&script)
            .env("KEYWIRE_WEBHOOK_SECRET", secret)
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("python3 runs the README's receiver and must be installed: {e}")
            });
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the receiver says where it listens");
        let port = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        PythonReceiver {
            child,
            lines,
            url: format!("http://127.0.0.1:{port}/keywire"),
            _dir: dir,
        }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the receiver printed a line")
    }
}

impl Drop for PythonReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a recorded request again, as is, to `url`; returns the status.
async fn replay(url: &str, req: &RecordedRequest) -> u16 {
    let mut request = keywire_test_support::http_client().post(url);
    for (name, value) in &req.headers {
        if name.starts_with("webhook-") || name == "content-type" {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    request
        .body(req.body.clone())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_readme_receiver_verifies_real_requests_and_refuses_forgeries() {
    let python = PythonReceiver::start(SECRET);

    // A real delivery and the live check verify.
    let integration = build(json!({"url": python.url, "signingSecret": SECRET}));
    let outcome = emit(integration.as_ref(), "run_77").await.unwrap();
    assert_eq!(outcome.status, Some(204));
    assert_eq!(python.next_line(), "verified run_77 SECRET_UPDATED");
    integration.validate(&context()).await.unwrap();
    assert!(python.next_line().ends_with(" keywire.ping"));

    // During a rotation, a receiver with the old secret still verifies.
    let rotating = build(json!({
        "url": python.url,
        "signingSecret": OTHER_SECRET,
        "previousSigningSecrets": [{"secret": SECRET, "expiresAt": (Utc::now() + TimeDelta::hours(1)).to_rfc3339()}],
    }));
    emit(rotating.as_ref(), "run_78").await.unwrap();
    assert_eq!(python.next_line(), "verified run_78 SECRET_UPDATED");

    // Signed with another secret: refused, and a refusal is final.
    let wrong = build(json!({"url": python.url, "signingSecret": OTHER_SECRET}));
    let err = emit(wrong.as_ref(), "run_79").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());

    // A captured request replays as is, but not with a changed body or id.
    let capture = FakeServer::start(|_| FakeResponse::empty(204));
    let integration = build(json!({"url": capture.url(), "signingSecret": SECRET}));
    emit(integration.as_ref(), "run_80").await.unwrap();
    let captured = capture.requests()[0].clone();
    assert_eq!(replay(&python.url, &captured).await, 204);
    assert_eq!(python.next_line(), "verified run_80 SECRET_UPDATED");
    let mut tampered = captured.clone();
    let at = tampered.body.iter().position(|b| *b == b'D').unwrap();
    tampered.body[at] = b'E';
    assert_eq!(replay(&python.url, &tampered).await, 401);
    let mut other_id = captured.clone();
    for (name, value) in &mut other_id.headers {
        if name == "webhook-id" {
            *value = "run_81".into();
        }
    }
    assert_eq!(replay(&python.url, &other_id).await, 401);
    // Correctly signed, but an hour old: refused.
    let mut stale = captured.clone();
    let old = (Utc::now().timestamp() - 3600).to_string();
    let resigned = expected_signature(SECRET, "run_80", &old, &captured.body);
    for (name, value) in &mut stale.headers {
        match name.as_str() {
            "webhook-timestamp" => *value = old.clone(),
            "webhook-signature" => *value = resigned.clone(),
            _ => {}
        }
    }
    assert_eq!(replay(&python.url, &stale).await, 401);
}
