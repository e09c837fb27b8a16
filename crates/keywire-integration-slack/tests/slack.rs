//! The Slack integration against a local fake of Slack (incoming webhooks and the Web API).

use std::time::Duration;

// Names the crate, so its registration is linked into this test binary.
use keywire_integration_slack as _;

use keywire_core::{
    Context, Delivery, EventData, Integration, IntegrationError, Outcome, check_descriptor, find,
};
use keywire_test_support::slack::{self, Behaviour};
use keywire_test_support::{fake::FakeServer, sample_event};
use serde_json::{Value, json};

fn webhook_metadata() -> Value {
    json!({"webhookUrl": slack::webhook_url()})
}

fn bot_metadata(channel: &str) -> Value {
    json!({"botToken": slack::BOT_TOKEN, "channel": channel})
}

fn build(metadata: &Value) -> Box<dyn Integration> {
    find("slack").unwrap().build(metadata).unwrap()
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

/// Every credential the tests use: none may appear in an error, excerpt or message body.
fn assert_no_credential(text: &str) {
    for secret in [slack::BOT_TOKEN, slack::WEBHOOK_SECRET, "wrongSecretValue1"] {
        assert!(!text.contains(secret), "a credential leaked: {text}");
    }
}

fn fields_of(body: &Value) -> Vec<String> {
    body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["fields"].as_array())
        .flatten()
        .map(|f| f["text"].as_str().unwrap().to_owned())
        .collect()
}

fn started(behaviour: Behaviour) -> (FakeServer, Context) {
    let fake = slack::start_with(behaviour);
    let ctx = slack::context(&fake);
    (fake, ctx)
}

#[test]
fn descriptor_meets_the_contract_and_both_credentials_are_write_only() {
    check_descriptor("slack").unwrap_or_else(|problems| panic!("{problems:#?}"));
    let d = find("slack").unwrap();
    assert_eq!(d.secret_fields(), vec!["/botToken", "/webhookUrl"]);
    assert_eq!(d.permitted_events.len(), 27);
}

#[test]
fn exactly_one_mode_is_accepted_and_errors_name_the_field_without_echoing_credentials() {
    let d = find("slack").unwrap();
    assert!(d.build(&webhook_metadata()).is_ok());
    assert!(d.build(&bot_metadata(slack::CHANNEL_ID)).is_ok());
    assert!(d.build(&bot_metadata(slack::CHANNEL_NAME)).is_ok());

    let cases = [
        (json!({}), "/webhookUrl"),
        (
            json!({"webhookUrl": slack::webhook_url(), "botToken": slack::BOT_TOKEN, "channel": "C0DEPLOYS1"}),
            "/botToken",
        ),
        (
            json!({"webhookUrl": slack::webhook_url(), "channel": "C0DEPLOYS1"}),
            "/channel",
        ),
        (json!({"botToken": slack::BOT_TOKEN}), "/channel"),
        (
            json!({"botToken": slack::BOT_TOKEN, "channel": "Not A Channel"}),
            "/channel",
        ),
        (
            json!({"botToken": "xoxp-user-token-wrongSecretValue1", "channel": "C0DEPLOYS1"}),
            "/botToken",
        ),
        (
            json!({"webhookUrl": "https://evil.example/services/T0/B0/wrongSecretValue1"}),
            "/webhookUrl",
        ),
        (
            json!({"webhookUrl": format!("https://hooks.slack.com/services/T0/B0/{}", slack::WEBHOOK_SECRET), "extra": 1}),
            "/extra",
        ),
        (json!({"webhookUrl": 42}), "/webhookUrl"),
    ];
    for (metadata, pointer) in cases {
        let errors = match d.build(&metadata) {
            Ok(_) => panic!("accepted {metadata}"),
            Err(errors) => errors,
        };
        assert!(
            errors.errors.iter().any(|e| e.pointer == pointer),
            "{metadata} → {errors}"
        );
        assert_no_credential(&format!("{errors} {errors:?}"));
    }
}

#[tokio::test]
async fn webhook_mode_posts_block_kit_with_a_text_fallback() {
    let (fake, ctx) = started(Behaviour::default());
    let integration = build(&webhook_metadata());
    let outcome = emit(&*integration, &ctx, &sample_event()).await.unwrap();
    assert_eq!(
        outcome,
        Outcome {
            status: Some(200),
            excerpt: "ok".into()
        }
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!(
            "/services/{}/{}/{}",
            slack::TEAM_ID,
            slack::WEBHOOK_ID,
            slack::WEBHOOK_SECRET
        )
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), None);
    let body = request.json();
    slack::check_message(&body).unwrap();
    assert!(body.get("channel").is_none(), "a webhook has its channel");
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "Secret DATABASE_URL updated"
    );
    let summary = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert_eq!(
        summary,
        ":large_blue_circle: *Info* · SECRET_UPDATED in project shop, environment prod"
    );
    let fields = fields_of(&body);
    for expected in [
        "*Workspace*\nacme",
        "*Project*\nshop",
        "*Environments*\nprod",
        "*By*\nalice",
        "*key*\nDATABASE_URL",
        "*version*\n3",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected}: {fields:?}"
        );
    }
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("Secret DATABASE_URL updated\n"), "{text}");
    assert!(text.contains("key: DATABASE_URL"), "{text}");
    let last = body["blocks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "context");
    let context = last["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.starts_with(
            "<!date^1795860000^{date_short_pretty} {time_secs}|2026-11-28 10:00:00 UTC>"
        ),
        "{context}"
    );
    assert!(!context.contains("View events"), "no public URL, no link");
    assert_eq!(body["unfurl_links"], false);
    assert_no_credential(&body.to_string());
}

#[tokio::test]
async fn bot_mode_posts_to_the_channel_with_a_bearer_token() {
    let (fake, mut ctx) = started(Behaviour::default());
    ctx.public_url = Some("https://keywire.example.com/".into());
    let integration = build(&bot_metadata(slack::CHANNEL_ID));
    let outcome = emit(&*integration, &ctx, &sample_event()).await.unwrap();
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.excerpt, "message 1764324000.000100 in C0DEPLOYS1");

    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/api/chat.postMessage")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {}", slack::BOT_TOKEN).as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = request.json();
    assert_eq!(body["channel"], slack::CHANNEL_ID);
    slack::check_message(&body).unwrap();
    let context = body["blocks"].as_array().unwrap().last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        context
            .ends_with("<https://keywire.example.com/api/v1/workspaces/acme/events|View events>"),
        "{context}"
    );
    assert_no_credential(&body.to_string());
    assert_no_credential(&outcome.excerpt);
}

#[tokio::test]
async fn ok_false_is_a_failure_permanent_or_retryable_by_error_code() {
    // Channel problems come from the channel the fake knows.
    let (_fake, ctx) = started(Behaviour::default());
    for (channel, code) in [
        ("C0NOSUCHCHAN", "channel_not_found"),
        (slack::PRIVATE_CHANNEL, "not_in_channel"),
        (slack::ARCHIVED_CHANNEL, "is_archived"),
    ] {
        let err = emit(&*build(&bot_metadata(channel)), &ctx, &sample_event())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(code), "{text}");
        assert!(!err.is_retryable(), "{code} is permanent");
        assert_eq!(err.status(), Some(200), "Slack said it with HTTP 200");
    }
    // A wrong token.
    let wrong =
        build(&json!({"botToken": "xoxb-1-2-wrongSecretValue1", "channel": slack::CHANNEL_ID}));
    let err = emit(&*wrong, &ctx, &sample_event()).await.unwrap_err();
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("invalid_auth") && text.contains("botToken"),
        "{text}"
    );
    assert_no_credential(&text);

    // Codes Slack returns for its own trouble are retried; the others are final.
    for (code, retryable) in [
        ("internal_error", true),
        ("service_unavailable", true),
        ("request_timeout", true),
        ("fatal_error", true),
        ("ratelimited", true),
        ("token_revoked", false),
        ("account_inactive", false),
        ("msg_too_long", false),
        ("no_text", false),
        ("missing_scope", false),
    ] {
        let (fake, ctx) = started(Behaviour {
            fail_with: Some(code),
            ..Behaviour::default()
        });
        let err = emit(
            &*build(&bot_metadata(slack::CHANNEL_NAME)),
            &ctx,
            &sample_event(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "{code}: {err}");
        assert!(err.to_string().contains(code), "{err}");
        assert_eq!(fake.requests().len(), 1);
    }
}

#[tokio::test]
async fn rate_limits_are_retried_after_slacks_retry_after_in_both_modes() {
    for metadata in [webhook_metadata(), bot_metadata(slack::CHANNEL_ID)] {
        let (fake, ctx) = started(Behaviour {
            rate_limited: 1,
            ..Behaviour::default()
        });
        let integration = build(&metadata);
        let err = emit(&*integration, &ctx, &sample_event())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert_no_credential(&format!("{err} {err:?}"));
        emit(&*integration, &ctx, &sample_event()).await.unwrap();
        assert_eq!(fake.requests().len(), 2);
    }
}

#[tokio::test]
async fn webhook_errors_are_final_except_slacks_own_trouble() {
    for (code, status, retryable) in [
        ("channel_is_archived", 410, false),
        ("channel_not_found", 404, false),
        ("action_prohibited", 403, false),
        ("invalid_payload", 400, false),
        ("rollup_error", 500, true),
    ] {
        let (_fake, ctx) = started(Behaviour {
            fail_with: Some(code),
            ..Behaviour::default()
        });
        let err = emit(&*build(&webhook_metadata()), &ctx, &sample_event())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status), "{code}");
        assert_eq!(err.is_retryable(), retryable, "{code}");
        let text = format!("{err} {err:?}");
        assert!(text.contains(code), "{text}");
        assert_no_credential(&text);
    }
    // A revoked or mistyped webhook secret.
    let (_fake, ctx) = started(Behaviour::default());
    let wrong = format!(
        "https://hooks.slack.com/services/{}/{}/wrongSecretValue1",
        slack::TEAM_ID,
        slack::WEBHOOK_ID
    );
    let err = emit(
        &*build(&json!({"webhookUrl": wrong})),
        &ctx,
        &sample_event(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("invalid_token"), "{text}");
    assert_no_credential(&text);
}

#[tokio::test]
async fn oversized_events_are_cut_to_slacks_limits_not_refused() {
    let (fake, ctx) = started(Behaviour::default());
    let mut event = sample_event();
    event.title = "T".repeat(1000);
    event.environments = (0..400).map(|i| format!("environment-{i}")).collect();
    let mut payload = serde_json::Map::new();
    for i in 0..700 {
        payload.insert(format!("field{i:03}"), json!("v".repeat(3000)));
    }
    event.payload = payload.into();
    for metadata in [webhook_metadata(), bot_metadata(slack::CHANNEL_ID)] {
        emit(&*build(&metadata), &ctx, &event).await.unwrap();
    }
    for request in fake.requests() {
        let body = request.json();
        slack::check_message(&body).unwrap();
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), 150);
        assert!(header.ends_with('…'));
        let total: usize = body["blocks"].to_string().chars().count();
        assert!(total < 16_000, "blocks too long for Slack: {total}");
        let note = blocks[blocks.len() - 2]["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert!(
            note.starts_with("…and ") && note.ends_with(" more details left out"),
            "{note}"
        );
        assert!(body["text"].as_str().unwrap().chars().count() <= 3000);
    }
}

#[tokio::test]
async fn names_cannot_become_mentions_or_links() {
    let (fake, ctx) = started(Behaviour::default());
    let mut event = sample_event();
    event.title = "Secret <!channel> updated".into();
    event.payload = json!({"key": "A<https://evil.example|click>&B"});
    emit(&*build(&webhook_metadata()), &ctx, &event)
        .await
        .unwrap();
    let body = fake.requests()[0].json();
    let fields = fields_of(&body).join("\n");
    assert!(
        fields.contains("A&lt;https://evil.example|click&gt;&amp;B"),
        "{fields}"
    );
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"),
        "{text}"
    );
    // The header is plain text: shown as is, never parsed.
    assert_eq!(body["blocks"][0]["text"]["type"], "plain_text");
}

#[tokio::test]
async fn live_check_calls_auth_test_for_a_bot_and_posts_nothing_for_a_webhook() {
    let (fake, ctx) = started(Behaviour::default());
    build(&bot_metadata(slack::CHANNEL_ID))
        .validate(&ctx)
        .await
        .unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/api/auth.test");
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {}", slack::BOT_TOKEN).as_str())
    );

    let err =
        build(&json!({"botToken": "xoxb-1-2-wrongSecretValue1", "channel": slack::CHANNEL_ID}))
            .validate(&ctx)
            .await
            .unwrap_err();
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("auth.test: invalid_auth"), "{text}");
    assert_no_credential(&text);

    build(&webhook_metadata()).validate(&ctx).await.unwrap();
    assert_eq!(fake.requests().len(), 2, "the webhook check posts nothing");
}

#[tokio::test]
async fn unreachable_slack_is_a_retryable_network_error_without_the_url() {
    // Nothing listens on the fake's port once it is dropped.
    let ctx = {
        let fake = slack::start();
        slack::context(&fake)
    };
    std::thread::sleep(Duration::from_millis(200));
    let err = emit(&*build(&webhook_metadata()), &ctx, &sample_event())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_no_credential(&format!("{err} {err:?}"));
}
