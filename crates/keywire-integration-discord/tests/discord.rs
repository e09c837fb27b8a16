//! The Discord integration against a local fake of Discord's webhook API.

use std::time::Duration;

// Name the crate so it is linked and its descriptor registered (see docs/ARCHITECTURE.md).
use keywire_integration_discord as _;

use keywire_core::{Delivery, check_descriptor, find};
use keywire_test_support::{context_overriding, discord, sample_event};
use serde_json::json;

fn metadata() -> serde_json::Value {
    json!({"webhookUrl": discord::webhook_url()})
}

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("discord").unwrap();
    let d = find("discord").unwrap();
    assert_eq!(d.secret_fields(), vec!["/webhookUrl"]);
    assert_eq!(
        d.metadata_schema()["properties"]["webhookUrl"]["writeOnly"],
        json!(true)
    );
}

#[tokio::test]
async fn emit_posts_an_embed_and_returns_the_message_id() {
    let fake = discord::start(0);
    let ctx = context_overriding("https://discord.com", &fake);
    let integration = find("discord").unwrap().build(&metadata()).unwrap();
    let event = sample_event();
    let outcome = integration
        .emit(
            &ctx,
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.excerpt, "message 1190000000000000001");
    let request = &fake.requests()[0];
    assert_eq!(request.query_param("wait"), Some("true"));
    let embed = &request.json()["embeds"][0];
    assert_eq!(embed["title"], "Secret DATABASE_URL updated");
    let fields: Vec<(String, String)> = embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("Project", "shop"),
        ("Environments", "prod"),
        ("By", "alice"),
        ("key", "DATABASE_URL"),
    ] {
        assert!(
            fields.contains(&(expected.0.into(), expected.1.into())),
            "{fields:?}"
        );
    }
}

#[tokio::test]
async fn oversized_events_are_truncated_not_refused() {
    let fake = discord::start(0);
    let ctx = context_overriding("https://discord.com", &fake);
    let integration = find("discord").unwrap().build(&metadata()).unwrap();
    let mut event = sample_event();
    event.title = "T".repeat(1000);
    event.environments = (0..400).map(|i| format!("environment-{i}")).collect();
    let mut payload = serde_json::Map::new();
    for i in 0..60 {
        payload.insert(format!("{}{i}", "k".repeat(300)), json!("v".repeat(2000)));
    }
    event.payload = payload.into();
    integration
        .emit(
            &ctx,
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await
        .unwrap();
    let body = fake.requests()[0].json();
    discord::check_message(&body).unwrap();
    assert!(body["embeds"][0]["title"].as_str().unwrap().ends_with('…'));
}

#[tokio::test]
async fn rate_limits_are_retryable_with_discords_wait() {
    let fake = discord::start(1);
    let ctx = context_overriding("https://discord.com", &fake);
    let integration = find("discord").unwrap().build(&metadata()).unwrap();
    let event = sample_event();
    let err = integration
        .emit(
            &ctx,
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    integration
        .emit(
            &ctx,
            Delivery {
                message_id: "run_1",
                attempt: 2,
                event: &event,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn live_check_knows_good_and_unknown_webhooks_and_never_prints_the_token() {
    let fake = discord::start(0);
    let ctx = context_overriding("https://discord.com", &fake);
    find("discord")
        .unwrap()
        .build(&metadata())
        .unwrap()
        .validate(&ctx)
        .await
        .unwrap();
    assert_eq!(fake.requests()[0].method, "GET");

    let wrong = format!(
        "https://discord.com/api/webhooks/{}/wrongTokenValue",
        discord::WEBHOOK_ID
    );
    let err = find("discord")
        .unwrap()
        .build(&json!({"webhookUrl": wrong}))
        .unwrap()
        .validate(&ctx)
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("401"), "{text}");
    assert!(
        !text.contains("wrongTokenValue") && !text.contains(discord::WEBHOOK_TOKEN),
        "{text}"
    );
}
