#![doc = include_str!("../README.md")]

pub mod db;
pub mod discord;
pub mod fake;
pub mod faults;
pub mod github;
pub mod gitlab;
pub mod lambda;
pub mod server;
pub mod slack;
pub mod smtp;
pub mod teams;
pub mod vercel;

pub use db::{TEST_DATABASE_URL_ENV, TestDb};

use keywire_core::{
    Actor, Context, EventData, EventSource, EventType, OutboundClient, OutboundPolicy, Severity,
};

/// An integration context whose HTTP client may reach 127.0.0.1 (where the fakes listen), as
/// `KEYWIRE_OUTBOUND_ALLOW=127.0.0.1/32` does for a server.
pub fn context() -> Context {
    context_with(OutboundPolicy {
        allow: OutboundPolicy::parse_allow_list("127.0.0.1/32").expect("valid allow-list"),
        ..OutboundPolicy::default()
    })
}

/// An integration context with a policy of the test's choosing.
pub fn context_with(policy: OutboundPolicy) -> Context {
    Context {
        http: OutboundClient::new(policy).expect("client builds"),
        public_url: None,
    }
}

/// A `SECRET_UPDATED` event in workspace `acme`, project `shop`, environment `prod`.
pub fn sample_event() -> EventData {
    EventData {
        id: "evt_01".into(),
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
        created_at: "2026-11-28T10:00:00Z".parse().expect("valid time"),
        payload: serde_json::json!({"key": "DATABASE_URL", "version": 3}),
    }
}

/// Like [`context`], with requests to `origin` (`https://discord.com`) sent to a local fake.
pub fn context_overriding(origin: &str, fake: &fake::FakeServer) -> Context {
    context_with(OutboundPolicy {
        allow: OutboundPolicy::parse_allow_list("127.0.0.1/32").expect("valid allow-list"),
        origin_overrides: vec![(origin.to_owned(), fake.url().to_owned())],
        ..OutboundPolicy::default()
    })
}

/// A plain reqwest client for talking to a spawned server.
pub fn http_client() -> reqwest::Client {
    keywire_core::ensure_crypto_provider();
    reqwest::Client::new()
}
