#![doc = include_str!("../README.md")]

mod descriptor;
pub mod docs;
mod event;
mod http;
mod integration;
pub mod message;
mod metadata;
pub mod sync;

pub use descriptor::{
    ACTION_CLEANUP_ON_REMOVE, ACTION_DELETE, ACTION_UPSERT, Category, EnvironmentRule,
    IntegrationDescriptor, ScopeRule, check_descriptor, find, registry, validate_permitted_actions,
    validate_permitted_events,
};
pub use docs::{integration_page, integrations_table};
pub use event::{Actor, EventData, EventSource, EventType, Severity};
pub use http::{
    AllowRule, OutboundClient, OutboundError, OutboundPolicy, Reply, ensure_crypto_provider,
    is_private_ip,
};
pub use integration::{Context, Delivery, Integration, IntegrationError, Outcome};
pub use metadata::{
    FieldError, FieldErrors, Metadata, Secret, deserialize_pointed, parse_metadata, redact_secrets,
    schema_of, secret_pointers,
};
pub use sync::{
    Action, Applied, Change, ConflictPolicy, EntryKind, Op, PlanItem, RemoteKey, SyncSettings,
    SyncTarget,
};

// Re-exported so integration crates need neither directly (see STACK.md).
pub use async_trait::async_trait;
pub use inventory;
pub use reqwest::Method;
pub use schemars;
pub use url::Url;

/// The `User-Agent` of every outbound request.
pub const USER_AGENT: &str = concat!("keywire/", env!("CARGO_PKG_VERSION"));
