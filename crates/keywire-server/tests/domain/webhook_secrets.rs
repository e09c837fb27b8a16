//! Credentials keywire generates (a webhook's signing secret): shown once in the answer that
//! made them, never again, never logged; and a signing-secret rotation over the API, where the
//! replaced secret keeps signing.

use keywire_test_support::fake::{FakeResponse, FakeServer, RecordedRequest};
use serde_json::{Value, json};

use crate::support::{ADMIN, Answer, Api};

const CHOSEN_SECRET: &str = "whsec_Y2hvc2VuLXNpZ25pbmcta2V5LWZvci1yb3RhdGlvbi10ZXN0";

/// The signing key inside a `whsec_` secret.
fn key_of(secret: &str) -> Vec<u8> {
    keywire_integration_webhook::signing_key(&keywire_core::Secret::new(secret)).unwrap()
}

/// The `v1,` entries of a request's `webhook-signature`, and which of `secrets` made each.
fn signed_by(req: &RecordedRequest, secrets: &[&str]) -> Vec<String> {
    let id = req.header("webhook-id").unwrap();
    let timestamp: i64 = req.header("webhook-timestamp").unwrap().parse().unwrap();
    req.header("webhook-signature")
        .unwrap()
        .split(' ')
        .map(|entry| {
            secrets
                .iter()
                .find(|s| {
                    keywire_integration_webhook::sign(&key_of(s), id, timestamp, &req.body) == entry
                })
                .map_or_else(|| format!("unknown {entry}"), |s| (*s).to_owned())
        })
        .collect()
}

/// Asserts no secret of `secrets` is in `answer`, and returns it.
#[track_caller]
fn without(answer: Answer, secrets: &[&str]) -> Answer {
    let text = answer.body.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "a secret leaked: {text}");
        assert!(!text.contains(&secret[6..]), "a secret leaked: {text}");
    }
    answer
}

/// The secret generated in an answer.
fn generated(answer: &Value) -> String {
    let secret = answer["generatedSecrets"]["/signingSecret"]
        .as_str()
        .unwrap_or_else(|| panic!("no generated secret in {answer}"))
        .to_owned();
    assert!(
        secret.starts_with("whsec_") && key_of(&secret).len() == 32,
        "{secret}"
    );
    secret
}

/// Sends the integration's test event; returns what the receiver got.
async fn test_event(api: &Api, integration: &str, receiver: &FakeServer) -> RecordedRequest {
    let seen = receiver.requests().len();
    let outcome = api
        .post(&format!("{integration}/test"), ADMIN, json!({}))
        .await;
    assert_eq!(outcome.expect(200)["delivered"], true, "{}", outcome.body);
    receiver.requests()[seen].clone()
}

#[tokio::test]
async fn generated_signing_secrets_are_shown_once_and_rotation_keeps_the_old_one_signing() {
    let receiver = FakeServer::start(|_| FakeResponse::json(200, json!({"ok": true})));
    for api in Api::all_with_env(&[("KEYWIRE_LOG", "debug")]).await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let url = format!("{}/hooks/keywire", receiver.url());
        let body = json!({
            "name": "Hook",
            "type": "webhook",
            "notifyOn": ["SECRET_UPDATED"],
            "metadata": {"url": url, "headers": {"X-Api-Key": "receiver-key-3c9b27e1"}},
        });

        // The dry run of a body without a secret passes (with a throwaway secret).
        let mut dry = body.clone();
        dry["workspace"] = json!(ws);
        let report = api.post("/api/v1/integrations/validate", ADMIN, dry).await;
        assert_eq!(
            report.expect(200)["valid"],
            true,
            "{backend}: {}",
            report.body
        );

        // Create: the generated secret is in this answer only.
        let created = api
            .post(
                &format!("/api/v1/workspaces/{ws}/integrations"),
                ADMIN,
                body,
            )
            .await;
        let first = generated(created.expect(201));
        assert_eq!(created.body["metadata"], json!({"url": url}), "{backend}");
        assert_eq!(
            created.body["secretFields"],
            json!({
                "/headers": {"configured": true},
                "/previousSigningSecrets": {"configured": false},
                "/signingSecret": {"configured": true},
            })
        );
        let slug = created.body["slug"].as_str().unwrap().to_owned();
        let one = format!("/api/v1/integrations/{slug}");
        let read = without(api.get(&one, ADMIN).await, &[&first]);
        assert!(read.expect(200).get("generatedSecrets").is_none());
        let listed = without(
            api.get(&format!("/api/v1/workspaces/{ws}/integrations"), ADMIN)
                .await,
            &[&first],
        );
        assert!(!listed.body.to_string().contains("receiver-key"));

        // Deliveries are signed with it.
        let test = || test_event(&api, &one, &receiver);
        let sent = test().await;
        assert_eq!(sent.header("x-api-key"), Some("receiver-key-3c9b27e1"));
        assert_eq!(signed_by(&sent, &[&first]), std::slice::from_ref(&first));

        // Asking for a new one: shown once in the PATCH answer; the old one still signs.
        let renewed = api
            .patch(&one, ADMIN, json!({"metadata": {"signingSecret": null}}))
            .await;
        let second = generated(renewed.expect(200));
        assert_ne!(second, first);
        let renewed = without(renewed, &[&first]);
        assert_eq!(
            renewed.body["secretFields"]["/previousSigningSecrets"],
            json!({"configured": true})
        );
        let sent = test().await;
        assert_eq!(
            signed_by(&sent, &[&first, &second]),
            [second.clone(), first.clone()]
        );

        // A chosen secret: nothing generated; all three sign for now.
        let chosen = without(
            api.patch(
                &one,
                ADMIN,
                json!({"metadata": {"signingSecret": CHOSEN_SECRET}}),
            )
            .await,
            &[&first, &second, CHOSEN_SECRET],
        );
        assert!(chosen.expect(200).get("generatedSecrets").is_none());
        let sent = test().await;
        assert_eq!(
            signed_by(&sent, &[&first, &second, CHOSEN_SECRET]),
            [CHOSEN_SECRET.to_owned(), second.clone(), first.clone()]
        );

        // Forged previous secrets are ignored; a change of the URL keeps the rotation.
        let forged = json!({"metadata": {"previousSigningSecrets": [
            {"secret": "whsec_Zm9yZ2VkLWtleS1mb3JnZWQta2V5LWZvcmdlZC1rZXk=", "expiresAt": "2099-01-01T00:00:00Z"}
        ]}});
        api.patch(&one, ADMIN, forged).await.expect(200);
        let sent = test().await;
        assert_eq!(signed_by(&sent, &[&first, &second, CHOSEN_SECRET]).len(), 3);

        // `[]` revokes the previous secrets at once.
        let revoked = api
            .patch(
                &one,
                ADMIN,
                json!({"metadata": {"previousSigningSecrets": []}}),
            )
            .await;
        assert_eq!(
            revoked.expect(200)["secretFields"]["/previousSigningSecrets"],
            json!({"configured": false})
        );
        let sent = test().await;
        assert_eq!(
            signed_by(&sent, &[CHOSEN_SECRET]),
            [CHOSEN_SECRET.to_owned()]
        );

        // None of it was logged.
        let log = api.server.stderr();
        assert!(log.contains("DEBUG"), "the server logs at debug level here");
        for secret in [first.as_str(), second.as_str(), CHOSEN_SECRET] {
            assert!(
                !log.contains(&secret[6..]),
                "{backend}: a secret leaked into the log"
            );
        }
        assert!(
            !log.contains("receiver-key"),
            "{backend}: a header value leaked"
        );
    }
}
