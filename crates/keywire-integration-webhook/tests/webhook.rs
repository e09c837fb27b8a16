//! The webhook integration against a real receiver on 127.0.0.1.

use std::time::Duration;

use keywire_core::{
    Delivery, IntegrationError, OutboundError, OutboundPolicy, check_descriptor, find,
};
use keywire_integration_webhook::sign;
use keywire_test_support::fake::{FakeResponse, FakeServer};
use keywire_test_support::{context, context_with, sample_event};
use serde_json::json;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn key() -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(&SECRET[6..])
        .unwrap()
}

/// A receiver that verifies signatures the way a Standard Webhooks library does.
fn receiver() -> FakeServer {
    FakeServer::start(|req| {
        let (Some(id), Some(ts), Some(sig)) = (
            req.header("webhook-id"),
            req.header("webhook-timestamp"),
            req.header("webhook-signature"),
        ) else {
            return FakeResponse::json(400, json!({"error": "missing webhook headers"}));
        };
        let ts: i64 = ts.parse().unwrap_or(0);
        if (chrono_now() - ts).abs() > 300 {
            return FakeResponse::json(400, json!({"error": "timestamp too far off"}));
        }
        if sign(&key(), id, ts, &req.body) != sig
            || req.header("content-type") != Some("application/json")
        {
            return FakeResponse::json(401, json!({"error": "bad signature"}));
        }
        FakeResponse::json(200, json!({"received": true}))
    })
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("webhook").unwrap();
}

#[tokio::test]
async fn emit_posts_a_signed_envelope_with_a_stable_message_id() {
    let sink = receiver();
    let integration = find("webhook")
        .unwrap()
        .build(&json!({"url": format!("{}/hook", sink.url()), "signingSecret": SECRET}))
        .unwrap();
    let event = sample_event();
    let ctx = context();
    for attempt in 1..=2 {
        let outcome = integration
            .emit(
                &ctx,
                Delivery {
                    message_id: "run_42",
                    attempt,
                    event: &event,
                },
            )
            .await
            .unwrap();
        assert_eq!(outcome.status, Some(200));
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
        assert!(req.header("user-agent").unwrap().starts_with("keywire/"));
        let body = req.json();
        assert_eq!(body["type"], "SECRET_UPDATED");
        assert_eq!(body["data"]["title"], "Secret DATABASE_URL updated");
        assert_eq!(body["data"]["environments"], json!(["prod"]));
        assert!(
            !req.text().contains("whsec_"),
            "the signing secret is never sent"
        );
    }
}

#[tokio::test]
async fn live_check_sends_a_signed_ping() {
    let sink = receiver();
    let integration = find("webhook")
        .unwrap()
        .build(&json!({"url": sink.url(), "signingSecret": SECRET}))
        .unwrap();
    integration.validate(&context()).await.unwrap();
    assert_eq!(sink.requests()[0].json()["type"], "keywire.ping");
}

#[tokio::test]
async fn rate_limits_are_retryable_and_carry_retry_after_but_client_errors_are_not() {
    let limited = FakeServer::start(|_| {
        FakeResponse::json(429, json!({"error": "slow down"})).with_header("retry-after", "12")
    });
    let integration = find("webhook")
        .unwrap()
        .build(&json!({"url": limited.url(), "signingSecret": SECRET}))
        .unwrap();
    let event = sample_event();
    let err = integration
        .emit(
            &context(),
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(12)));
    assert_eq!(err.status(), Some(429));

    let rejecting = FakeServer::start(|_| FakeResponse::json(410, json!({"error": "gone"})));
    let integration = find("webhook")
        .unwrap()
        .build(&json!({"url": rejecting.url(), "signingSecret": SECRET}))
        .unwrap();
    let err = integration
        .emit(
            &context(),
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("410"), "{err}");
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allow_listed() {
    let sink = receiver();
    let integration = find("webhook")
        .unwrap()
        .build(&json!({"url": sink.url(), "signingSecret": SECRET}))
        .unwrap();
    let event = sample_event();
    let strict = context_with(OutboundPolicy::default());
    let err = integration
        .emit(
            &strict,
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, IntegrationError::Http(OutboundError::Refused(_))),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    // A host name that resolves to loopback is refused by the DNS guard.
    let by_name = sink.url().replace("127.0.0.1", "localhost");
    let integration = find("webhook")
        .unwrap()
        .build(&json!({"url": by_name, "signingSecret": SECRET}))
        .unwrap();
    let err = integration
        .emit(
            &strict,
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    assert!(sink.requests().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn unreachable_receivers_are_retryable_network_errors() {
    let url = {
        let gone = receiver();
        gone.url().to_owned()
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let integration = find("webhook")
        .unwrap()
        .build(&json!({"url": url, "signingSecret": SECRET}))
        .unwrap();
    let event = sample_event();
    let err = integration
        .emit(
            &context(),
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[test]
fn bad_metadata_names_the_field_and_never_echoes_the_secret() {
    let d = find("webhook").unwrap();
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
        (json!({"url": "https://x.example"}), "/signingSecret"),
        (
            json!({"url": "https://x.example", "signingSecret": SECRET, "extra": 1}),
            "/extra",
        ),
    ];
    for (metadata, pointer) in cases {
        let err = d
            .build(&metadata)
            .err()
            .unwrap_or_else(|| panic!("{metadata} should be refused"));
        assert_eq!(err.errors[0].pointer, pointer, "{metadata}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
