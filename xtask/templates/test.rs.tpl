//! The {{Name}} integration against a fake of its API on 127.0.0.1.

use keywire_core::{Delivery, IntegrationError, check_descriptor, find};
use keywire_test_support::fake::{FakeResponse, FakeServer};
use keywire_test_support::{context, sample_event};
use serde_json::json;

// Names the crate, so its registration is linked into this test binary.
use {{crate_ident}} as _;

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("{{name}}").unwrap_or_else(|problems| panic!("{problems:#?}"));
}

/// A fake of the {{Name}} API. Make it check requests the way the provider does and answer
/// what its documentation says, errors and 429s included. (For a provider with a fixed host,
/// use `keywire_test_support::context_overriding` to send its origin here.)
fn provider() -> FakeServer {
    FakeServer::start(|req| {
        if req.header("authorization") != Some("Bearer example-token") {
            return FakeResponse::json(401, json!({"error": "unauthorized"}));
        }
        FakeResponse::json(200, json!({"ok": true}))
    })
}

#[tokio::test]
async fn emit_delivers_the_event_to_the_provider() {
    let fake = provider();
    let integration = find("{{name}}")
        .unwrap()
        .build(&json!({"baseUrl": fake.url(), "apiToken": "example-token"}))
        .unwrap();
    let event = sample_event();
    let result = integration
        .emit(
            &context(),
            Delivery {
                message_id: "run_1",
                attempt: 1,
                event: &event,
            },
        )
        .await;
    // Once emit() is written, replace this match with checks of what the fake received
    // (`fake.requests()`: method, path, headers, body) and of the outcome's status.
    match result {
        Err(IntegrationError::Unsupported(message)) => {
            assert!(message.contains("not yet implemented"), "{message}");
        }
        other => panic!(
            "emit() is implemented now: make this test check the requests it sends ({other:?})"
        ),
    }
    assert!(fake.requests().is_empty());
}
