//! The Microsoft Teams integration against a local fake of a Teams Workflows webhook (and of a
//! legacy connector).

use std::time::Duration;

// Names the crate, so its registration is linked into this test binary.
use keywire_integration_microsoft_teams as _;

use keywire_core::{
    Context, Delivery, EventData, Integration, IntegrationError, Outcome, Severity,
    check_descriptor, find,
};
use keywire_test_support::sample_event;
use keywire_test_support::teams::{self, Behaviour};
use serde_json::{Value, json};

fn metadata() -> Value {
    json!({"webhookUrl": teams::webhook_url()})
}

fn build(metadata: &Value) -> Box<dyn Integration> {
    find("microsoft_teams").unwrap().build(metadata).unwrap()
}

async fn emit(
    integration: &dyn Integration,
    ctx: &Context,
    event: &EventData,
) -> Result<Outcome, IntegrationError> {
    integration
        .emit(
            ctx,
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event,
            },
        )
        .await
}

fn assert_no_credential(text: &str) {
    for secret in [teams::SIG, "wrongSignature000", teams::LEGACY_PATH] {
        assert!(!text.contains(secret), "a credential leaked: {text}");
    }
}

fn card(body: &Value) -> &Value {
    &body["attachments"][0]["content"]
}

fn facts(body: &Value) -> Vec<(String, String)> {
    card(body)["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "FactSet")
        .flat_map(|e| e["facts"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["title"].as_str().unwrap().to_owned(),
                f["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("microsoft_teams").unwrap_or_else(|problems| panic!("{problems:#?}"));
    let d = find("microsoft_teams").unwrap();
    assert_eq!(d.secret_fields(), vec!["/webhookUrl"]);
    assert_eq!(
        d.metadata_schema()["properties"]["webhookUrl"]["writeOnly"],
        json!(true)
    );
    assert_eq!(d.permitted_events.len(), 27);
}

#[test]
fn only_teams_webhooks_are_accepted_and_errors_never_echo_the_url() {
    let d = find("microsoft_teams").unwrap();
    assert!(d.build(&metadata()).is_ok());
    assert!(
        d.build(&json!({"webhookUrl": teams::legacy_webhook_url()}))
            .is_ok()
    );
    for bad in [
        json!({"webhookUrl": "https://attacker.example/workflows/x/triggers/manual/paths/invoke?api-version=1&sig=wrongSignature000"}),
        json!({"webhookUrl": format!("http://prod-42.westeurope.logic.azure.com/workflows/{}/triggers/manual/paths/invoke?api-version=1&sig=wrongSignature000", teams::WORKFLOW_ID)}),
        json!({"webhookUrl": "https://169.254.169.254.logic.azure.com.evil.example/workflows/x/triggers/manual/paths/invoke?api-version=1&sig=wrongSignature000"}),
        json!({"webhookUrl": ""}),
        json!({}),
        json!({"webhookUrl": teams::webhook_url(), "color": "red"}),
    ] {
        let errors = match d.build(&bad) {
            Ok(_) => panic!("accepted {bad}"),
            Err(errors) => errors,
        };
        assert!(
            errors
                .errors
                .iter()
                .all(|e| e.pointer == "/webhookUrl" || e.pointer == "/color"),
            "{errors:?}"
        );
        assert_no_credential(&format!("{errors} {errors:?}"));
    }
}

#[tokio::test]
async fn emit_posts_an_adaptive_card_with_a_factset_and_gets_202() {
    let fake = teams::start();
    let mut ctx = teams::context(&fake);
    ctx.public_url = Some("https://keywire.example.com".into());
    let outcome = emit(&*build(&metadata()), &ctx, &sample_event())
        .await
        .unwrap();
    assert_eq!(outcome.status, Some(202));
    assert_eq!(
        outcome.excerpt,
        "accepted, workflow run 08584512345678901234567890123CU00"
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!(
            "/workflows/{}/triggers/manual/paths/invoke",
            teams::WORKFLOW_ID
        )
    );
    assert_eq!(request.query_param("sig"), Some(teams::SIG));
    assert_eq!(request.query_param("api-version"), Some("2016-06-01"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    teams::check_message(&body).unwrap();
    assert_eq!(body["type"], "message");
    let card = card(&body);
    assert_eq!(card["version"], "1.4");
    let header = &card["body"][0];
    assert_eq!(header["style"], "accent");
    assert_eq!(header["items"][0]["text"], "Secret DATABASE_URL updated");
    assert_eq!(
        header["items"][1]["text"],
        "Info · SECRET_UPDATED in project shop, environment prod"
    );
    let facts = facts(&body);
    for expected in [
        ("Event", "SECRET_UPDATED"),
        ("Workspace", "acme"),
        ("Project", "shop"),
        ("Environments", "prod"),
        ("By", "alice"),
        ("When", "2026-11-28 10:00:00 UTC"),
        ("key", "DATABASE_URL"),
        ("version", "3"),
    ] {
        assert!(
            facts.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {facts:?}"
        );
    }
    assert_eq!(
        card["actions"][0],
        json!({"type": "Action.OpenUrl", "title": "View events",
               "url": "https://keywire.example.com/api/v1/workspaces/acme/events"})
    );
    assert_no_credential(&body.to_string());
}

#[tokio::test]
async fn severity_is_the_colour_of_the_title_container() {
    let fake = teams::start();
    let ctx = teams::context(&fake);
    for (severity, style) in [(Severity::Warn, "warning"), (Severity::Error, "attention")] {
        let mut event = sample_event();
        event.severity = severity;
        emit(&*build(&metadata()), &ctx, &event).await.unwrap();
        let body = fake.requests().last().unwrap().json();
        assert_eq!(card(&body)["body"][0]["style"], style);
        assert!(
            card(&body).get("actions").is_none(),
            "no public URL, no link"
        );
    }
}

#[tokio::test]
async fn oversized_events_are_cut_to_28_kb_not_refused() {
    let fake = teams::start();
    let ctx = teams::context(&fake);
    let mut event = sample_event();
    event.title = "T".repeat(5000);
    event.environments = (0..400).map(|i| format!("environment-{i}")).collect();
    let mut payload = serde_json::Map::new();
    for i in 0..200 {
        payload.insert(format!("field{i:03}"), json!("é".repeat(3000)));
    }
    event.payload = payload.into();
    emit(&*build(&metadata()), &ctx, &event).await.unwrap();
    let request = &fake.requests()[0];
    assert!(request.body.len() <= 28_000, "{} bytes", request.body.len());
    let body = request.json();
    teams::check_message(&body).unwrap();
    let title = card(&body)["body"][0]["items"][0]["text"].as_str().unwrap();
    assert_eq!(title.chars().count(), 256);
    assert!(title.ends_with('…'));
    let shown = facts(&body);
    assert!(shown.len() > 5, "the first facts are kept: {}", shown.len());
    assert_eq!(shown[0], ("Event".into(), "SECRET_UPDATED".into()));
    let elements = card(&body)["body"].as_array().unwrap();
    let note = elements.last().unwrap()["text"].as_str().unwrap();
    assert!(
        note.starts_with("…and ") && note.ends_with(" more details left out"),
        "{note}"
    );
}

#[tokio::test]
async fn teams_errors_are_final_or_retried_as_documented_and_never_show_the_signature() {
    let fake = teams::start();
    let ctx = teams::context(&fake);
    // A wrong signature: 401, final.
    let wrong_sig = teams::webhook_url().replace(teams::SIG, "wrongSignature000");
    let err = emit(
        &*build(&json!({"webhookUrl": wrong_sig})),
        &ctx,
        &sample_event(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("DirectApiInvalidAuthorizationSignature"),
        "{text}"
    );
    assert_no_credential(&text);

    // A deleted workflow: 404, final.
    let deleted = teams::webhook_url().replace(teams::WORKFLOW_ID, "0000deleted0000");
    let err = emit(
        &*build(&json!({"webhookUrl": deleted})),
        &ctx,
        &sample_event(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    assert_no_credential(&format!("{err} {err:?}"));

    // Throttled: 429 with Retry-After, retried, then accepted.
    let fake = teams::start_with(Behaviour {
        rate_limited: 1,
        ..Behaviour::default()
    });
    let ctx = teams::context(&fake);
    let integration = build(&metadata());
    let err = emit(&*integration, &ctx, &sample_event())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
    assert_no_credential(&format!("{err} {err:?}"));
    assert_eq!(
        emit(&*integration, &ctx, &sample_event())
            .await
            .unwrap()
            .status,
        Some(202)
    );
}

#[tokio::test]
async fn legacy_connectors_answer_1_and_their_200_errors_are_failures() {
    let fake = teams::start();
    let ctx = teams::context(&fake);
    let legacy = build(&json!({"webhookUrl": teams::legacy_webhook_url()}));
    let outcome = emit(&*legacy, &ctx, &sample_event()).await.unwrap();
    assert_eq!(outcome.status, Some(200));
    assert_eq!(fake.requests()[0].path, teams::LEGACY_PATH);

    for (text, retryable) in [
        (
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId abc",
            true,
        ),
        (
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413 with ContextId abc",
            false,
        ),
    ] {
        let fake = teams::start_with(Behaviour {
            legacy_failure: Some(text),
            ..Behaviour::default()
        });
        let ctx = teams::context(&fake);
        let err = emit(&*legacy, &ctx, &sample_event()).await.unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "{err}");
        assert!(
            err.to_string().contains("Teams refused the message"),
            "{err}"
        );
        assert_no_credential(&format!("{err} {err:?}"));
    }
}

#[tokio::test]
async fn live_check_is_the_url_shape_and_sends_nothing() {
    let fake = teams::start();
    let ctx = teams::context(&fake);
    build(&metadata()).validate(&ctx).await.unwrap();
    build(&json!({"webhookUrl": teams::legacy_webhook_url()}))
        .validate(&ctx)
        .await
        .unwrap();
    assert!(fake.requests().is_empty());
}
